"""The compose stack, checked without a container engine.

docker-compose.yml, config/prometheus.yml and the Grafana files are parsed and cross-checked;
Debian's `docker-compose` (1.29) validates the compose file and `promtool` (Debian package
`prometheus`) the Prometheus config and every PromQL query of the dashboard. Both binaries are
required: a missing one fails the test with the package to install, it never skips.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from prometheus_client import Counter, Gauge, Histogram, Summary

from pipeline import metrics
from pipeline.kafka_io import topic_configs
from pipeline.kafka_local import KAFKA_VERSION
from pipeline.kafka_local.broker import MESSAGE_MAX_BYTES
from pipeline.settings import Settings

REPO_ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = REPO_ROOT / "docker-compose.yml"
PROMETHEUS_CONFIG = REPO_ROOT / "config" / "prometheus.yml"
GRAFANA = REPO_ROOT / "config" / "grafana"
DASHBOARD = GRAFANA / "dashboards" / "pipeline.json"


def require_binary(name: str, package: str) -> str:
    path = shutil.which(name)
    if path is None:
        pytest.fail(
            f"`{name}` is not on PATH: install Debian's {package} "
            f"(apt-get update && apt-get install -y {package})",
            pytrace=False,
        )
    return path


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load(COMPOSE_FILE.read_text())


@pytest.fixture(scope="module")
def dashboard() -> dict:
    return json.loads(DASHBOARD.read_text())


def dashboard_exprs(dashboard: dict) -> list[str]:
    return [t["expr"] for p in dashboard["panels"] for t in p.get("targets", [])]


# --------------------------------------------------------------------------- compose file


def test_kafka_image_is_the_local_broker_version(compose: dict) -> None:
    services = compose["services"]
    for name in ("kafka", "topics"):
        image, _, tag = services[name]["image"].partition(":")
        assert image == "apache/kafka"
        assert tag == KAFKA_VERSION, f"{name} runs Kafka {tag}, the local broker {KAFKA_VERSION}"


def test_kafka_service_is_a_single_node_kraft_broker(compose: dict) -> None:
    kafka = compose["services"]["kafka"]
    env = {k: str(v) for k, v in kafka["environment"].items()}
    assert env["KAFKA_PROCESS_ROLES"] == "broker,controller"
    for key in (
        "KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR",
        "KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR",
        "KAFKA_TRANSACTION_STATE_LOG_MIN_ISR",
    ):
        assert env[key] == "1", key
    assert env["KAFKA_GROUP_INITIAL_REBALANCE_DELAY_MS"] == "0"
    advertised = env["KAFKA_ADVERTISED_LISTENERS"]
    assert "PLAINTEXT://kafka:9092" in advertised, "reachable as kafka:9092 inside the network"
    assert "//localhost:" in advertised, "a second listener advertised to the host"
    listeners = {item.split("://")[0] for item in env["KAFKA_LISTENERS"].split(",")}
    protocol_map = dict(
        item.split(":") for item in env["KAFKA_LISTENER_SECURITY_PROTOCOL_MAP"].split(",")
    )
    assert listeners == set(protocol_map)
    assert env["KAFKA_CONTROLLER_LISTENER_NAMES"] in listeners
    healthcheck = " ".join(kafka["healthcheck"]["test"])
    assert "/opt/kafka/bin/kafka-topics.sh" in healthcheck and "--list" in healthcheck


def test_topics_job_creates_the_three_topics_once_kafka_is_healthy(compose: dict) -> None:
    topics = compose["services"]["topics"]
    assert topics["depends_on"]["kafka"]["condition"] == "service_healthy"
    assert topics["environment"]["PARTITIONS"] == "${PIPELINE_TOPIC_PARTITIONS:-4}"
    names = topics["environment"]["TOPICS"]
    for default in ("articles.raw", "articles.enriched", "articles.dlq"):
        assert default in names
    script = " ".join(topics["command"])
    assert "--create" in script and "--if-not-exists" in script
    assert "--replication-factor 1" in script
    assert '--config "max.message.bytes=' in script


def test_compose_limits_are_the_ones_the_worker_creates_topics_with(compose: dict) -> None:
    settings = Settings()
    created = {
        entry.split("=")[0].split(":-")[1].rstrip("}"): entry.split("=")[1]
        for entry in compose["services"]["topics"]["environment"]["TOPICS"].split()
    }
    assert created == {
        name: config["max.message.bytes"] for name, config in topic_configs(settings).items()
    }
    broker_limit = compose["services"]["kafka"]["environment"]["KAFKA_MESSAGE_MAX_BYTES"]
    assert int(broker_limit) == settings.output_topic_max_bytes == MESSAGE_MAX_BYTES


def test_worker_is_built_here_scalable_and_scrapable(compose: dict) -> None:
    worker = compose["services"]["worker"]
    assert worker["build"] == "."
    assert worker["depends_on"]["topics"]["condition"] == "service_completed_successfully"
    env = {k: str(v) for k, v in worker["environment"].items()}
    assert env["KAFKA_BOOTSTRAP_SERVERS"] == "kafka:9092"
    assert env["PIPELINE_WEB_PORT"] == "6066"
    assert env["PIPELINE_WEB_HOST"] == "0.0.0.0"
    assert "ports" not in worker, "a fixed host port would break --scale worker=N"
    assert "container_name" not in worker
    assert worker["init"] is True, "the worker's NER child needs an init to reap it"


def test_mounted_files_exist(compose: dict) -> None:
    for name in ("prometheus", "grafana"):
        for volume in compose["services"][name].get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith("."):
                assert (REPO_ROOT / source).exists(), f"{name} mounts missing {source}"


def test_dockerfile_runs_the_worker() -> None:
    text = (REPO_ROOT / "Dockerfile").read_text()
    assert re.search(r"^FROM python:3\.11-slim$", text, re.MULTILINE)
    assert re.search(r"^RUN pip install /src", text, re.MULTILINE), "installed, not editable"
    assert 'CMD ["pipeline", "worker"]' in text
    assert re.search(r"^EXPOSE 6066$", text, re.MULTILINE)
    ignored = (REPO_ROOT / ".dockerignore").read_text().split()
    for entry in (".venv", "var", ".git"):
        assert entry in ignored


def test_docker_compose_validates_the_file() -> None:
    binary = require_binary("docker-compose", "docker-compose")
    proc = subprocess.run(
        [binary, "-f", str(COMPOSE_FILE), "config", "-q"],
        capture_output=True, text=True, timeout=60, cwd=REPO_ROOT, check=False,
    )
    assert proc.returncode == 0, proc.stderr or proc.stdout


# --------------------------------------------------------------------------- prometheus


def test_prometheus_discovers_every_worker_replica() -> None:
    config = yaml.safe_load(PROMETHEUS_CONFIG.read_text())
    (job,) = [j for j in config["scrape_configs"] if j["job_name"] == "pipeline-worker"]
    (sd,) = job["dns_sd_configs"]
    assert sd["names"] == ["worker"] and sd["type"] == "A" and sd["port"] == 6066
    assert job.get("metrics_path", "/metrics") == "/metrics"


def test_promtool_accepts_the_prometheus_config() -> None:
    promtool = require_binary("promtool", "prometheus")
    proc = subprocess.run(
        [promtool, "check", "config", "--syntax-only", str(PROMETHEUS_CONFIG)],
        capture_output=True, text=True, timeout=60, check=False,
    )
    assert proc.returncode == 0, proc.stderr or proc.stdout


# --------------------------------------------------------------------------- grafana


def test_grafana_provisioning() -> None:
    (datasource,) = yaml.safe_load(
        (GRAFANA / "provisioning" / "datasources" / "prometheus.yml").read_text()
    )["datasources"]
    assert datasource["type"] == "prometheus"
    assert datasource["url"] == "http://prometheus:9090"
    (provider,) = yaml.safe_load(
        (GRAFANA / "provisioning" / "dashboards" / "pipeline.yml").read_text()
    )["providers"]
    assert provider["options"]["path"] == "/var/lib/grafana/dashboards"


def test_dashboard_panels(dashboard: dict) -> None:
    assert dashboard["uid"] and dashboard["title"]
    ids = [p["id"] for p in dashboard["panels"]]
    assert len(ids) == len(set(ids))
    for panel in dashboard["panels"]:
        assert panel["datasource"]["uid"] == "prometheus"
        assert set(panel["gridPos"]) == {"x", "y", "w", "h"}
        assert panel["targets"], panel["title"]
    exprs = " ".join(dashboard_exprs(dashboard))
    compact = re.sub(r"\s+", "", exprs)
    assert "sumby(stage,outcome)(rate(pipeline_articles_total[1m]))" in compact
    assert "sumby(error)(rate(pipeline_dlq_messages_total[5m]))" in compact
    assert "sumby(kind)(pipeline_duplicates_total)" in compact


def exposed_metric_names() -> set[str]:
    """Sample names the project's collectors expose (counter x -> x_total, histogram buckets)."""
    names: set[str] = set()
    for value in vars(metrics).values():
        if not isinstance(value, Counter | Gauge | Histogram | Summary):
            continue
        (family,) = value.describe()
        base = family.name
        if isinstance(value, Counter):
            names |= {f"{base}_total", f"{base}_created"}
        elif isinstance(value, Histogram):
            names |= {f"{base}_bucket", f"{base}_sum", f"{base}_count", f"{base}_created"}
        elif isinstance(value, Summary):
            names |= {base, f"{base}_sum", f"{base}_count", f"{base}_created"}
        else:
            names.add(base)
    return names


def test_dashboard_queries_only_metrics_the_workers_expose(dashboard: dict) -> None:
    used = set(re.findall(r"\bpipeline_[a-z0-9_]+", " ".join(dashboard_exprs(dashboard))))
    assert used, "the dashboard queries no pipeline metric"
    missing = used - exposed_metric_names()
    assert not missing, f"dashboard queries metrics pipeline/metrics.py does not define: {missing}"


def test_promtool_parses_every_dashboard_query(dashboard: dict, tmp_path: Path) -> None:
    promtool = require_binary("promtool", "prometheus")
    rules = {
        "groups": [{
            "name": "dashboard",
            "rules": [
                {"record": f"dashboard:query_{i}", "expr": expr}
                for i, expr in enumerate(dashboard_exprs(dashboard))
            ],
        }]
    }
    path = tmp_path / "rules.yml"
    path.write_text(yaml.safe_dump(rules))
    proc = subprocess.run(
        [promtool, "check", "rules", str(path)],
        capture_output=True, text=True, timeout=60, check=False,
    )
    assert proc.returncode == 0, proc.stderr or proc.stdout
