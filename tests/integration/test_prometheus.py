"""A real Prometheus server (Debian's /usr/bin/prometheus) scrapes a real worker.

The worker comes from the integration harness (unique topics and app id); Prometheus runs with a
temporary config (1 s scrapes, the project's alert rules), its own TSDB dir and a free port, and
is stopped at the end. Its HTTP API must return the project's counters once an article went
through, the per-stage latency histograms, Faust's transport metrics, and healthy alert rules.
"""

from __future__ import annotations

import shutil
import signal
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

import orjson
import pytest
import yaml

from tests.integration.conftest import REPO_ROOT, PipelineRun, free_port

ALERTS = REPO_ROOT / "config" / "alerts.yml"
WAIT_SECONDS = 60.0


class Prometheus:
    def __init__(self, port: int, process: subprocess.Popen, log: Path) -> None:
        self.port = port
        self.process = process
        self.log = log

    def get(self, path: str) -> dict:
        url = f"http://127.0.0.1:{self.port}{path}"
        with urllib.request.urlopen(url, timeout=5) as reply:
            return orjson.loads(reply.read())

    def query(self, promql: str) -> list[dict]:
        body = self.get("/api/v1/query?" + urllib.parse.urlencode({"query": promql}))
        assert body["status"] == "success", body
        return body["data"]["result"]

    def wait_for(self, promql: str, holds: Callable[[list[dict]], bool]) -> list[dict]:
        deadline = time.monotonic() + WAIT_SECONDS
        result: list[dict] = []
        while time.monotonic() < deadline:
            assert self.process.poll() is None, f"prometheus exited:\n{self.log_tail()}"
            result = self.query(promql)
            if holds(result):
                return result
            time.sleep(1)
        raise AssertionError(f"{promql} never held within {WAIT_SECONDS:.0f} s; last: {result}")

    def log_tail(self) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-30:])


def values(result: list[dict]) -> list[float]:
    return [float(series["value"][1]) for series in result]


@pytest.fixture(scope="module")
def worker_port(pipeline_run: PipelineRun) -> int:
    return pipeline_run.start_worker()


@pytest.fixture(scope="module")
def prometheus(
    worker_port: int, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Prometheus]:
    binary = shutil.which("prometheus")
    assert binary, "the prometheus server is required (apt-get install prometheus)"
    workdir = tmp_path_factory.mktemp("prometheus")
    config = {
        "global": {"scrape_interval": "1s", "scrape_timeout": "1s", "evaluation_interval": "1s"},
        "rule_files": [str(ALERTS)],
        "scrape_configs": [{
            "job_name": "pipeline-worker",
            "metrics_path": "/metrics",
            "static_configs": [{"targets": [f"127.0.0.1:{worker_port}"]}],
        }],
    }
    (workdir / "prometheus.yml").write_text(yaml.safe_dump(config))
    port = free_port()
    log = workdir / "prometheus.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [
                binary,
                f"--config.file={workdir / 'prometheus.yml'}",
                f"--storage.tsdb.path={workdir / 'data'}",
                f"--web.listen-address=127.0.0.1:{port}",
                "--storage.tsdb.retention.time=1h",
            ],
            stdout=out, stderr=out, cwd=workdir,
        )
    server = Prometheus(port, process, log)
    try:
        deadline = time.monotonic() + 30
        while True:
            assert process.poll() is None, f"prometheus exited:\n{server.log_tail()}"
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/-/ready", timeout=2) as r:
                    if r.status == 200:
                        break
            except (urllib.error.URLError, OSError):
                pass
            assert time.monotonic() < deadline, f"prometheus not ready:\n{server.log_tail()}"
            time.sleep(0.5)
        yield server
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


@pytest.fixture(scope="module")
def processed(pipeline_run: PipelineRun, worker_port: int) -> str:
    article = {"id": "prometheus-1", "text": "The Bank of England raised rates in London."}
    done = pipeline_run.cli("ingest", "-", stdin=orjson.dumps(article) + b"\n")
    assert done.returncode == 0, done.stderr.decode()
    pipeline_run.consume("enriched", lambda rs: any(r.get("id") == "prometheus-1" for r in rs))
    return article["id"]


def test_prometheus_scrapes_the_worker(prometheus: Prometheus) -> None:
    up = prometheus.wait_for('up{job="pipeline-worker"}', lambda r: values(r) == [1.0])
    assert up[0]["metric"]["job"] == "pipeline-worker"


def test_query_returns_the_project_counters(prometheus: Prometheus, processed: str) -> None:
    prometheus.wait_for(
        'sum(pipeline_articles_total{stage="deduplicate", outcome="out"})',
        lambda r: bool(r) and values(r)[0] >= 1,
    )
    by_stage = prometheus.query("sum by (stage, outcome) (pipeline_articles_total)")
    seen = {(s["metric"]["stage"], s["metric"]["outcome"]) for s in by_stage}
    assert {("analyze", "in"), ("analyze", "out"), ("deduplicate", "in")} <= seen
    languages = prometheus.query("sum by (language) (pipeline_articles_by_language_total)")
    assert "en" in {s["metric"]["language"] for s in languages}


def test_query_returns_per_stage_latency_histograms(prometheus: Prometheus, processed: str) -> None:
    result = prometheus.wait_for(
        "sum by (stage) (pipeline_stage_duration_seconds_count)",
        lambda r: {s["metric"]["stage"] for s in r}
        >= {"prepare", "entities", "assemble", "deduplicate"},
    )
    assert all(v >= 1 for v in values(result))
    quantile = prometheus.query(
        "histogram_quantile(0.95, sum by (le, stage) (pipeline_stage_duration_seconds_bucket))"
    )
    assert quantile and all(v >= 0 for v in values(quantile))
    assert prometheus.query("pipeline_end_to_end_latency_seconds_count")


def test_query_returns_faust_transport_metrics(prometheus: Prometheus, processed: str) -> None:
    prometheus.wait_for("faust_messages_received_total", lambda r: bool(r) and values(r)[0] >= 1)
    assert prometheus.query("faust_events_runtime_seconds_count")


def test_consumer_lag_per_partition_is_scraped(
    prometheus: Prometheus, processed: str, pipeline_run: PipelineRun
) -> None:
    raw = pipeline_run.topics["raw"]
    try:
        result = prometheus.wait_for(
            f'pipeline_consumer_lag{{topic="{raw}"}}', lambda r: len(r) >= 1
        )
    except AssertionError as exc:
        raise AssertionError(
            "no pipeline_consumer_lag series: is register_lag_monitor(topology.app, "
            "settings.consumer_lag_interval_seconds) called in pipeline/agents.py?"
        ) from exc
    assert {s["metric"]["partition"] for s in result} <= {"0", "1", "2", "3"}
    # Everything was processed and committed: the raw topic drains to zero lag.
    prometheus.wait_for(f'sum(pipeline_consumer_lag{{topic="{raw}"}})', lambda r: values(r) == [0])
    progress = prometheus.query(
        f'time() - pipeline_partition_last_progress_timestamp_seconds{{topic="{raw}"}}'
    )
    assert progress and all(v < 120 for v in values(progress))


def test_alert_rules_load_and_evaluate_without_errors(prometheus: Prometheus) -> None:
    deadline = time.monotonic() + WAIT_SECONDS
    while True:
        groups = prometheus.get("/api/v1/rules")["data"]["groups"]
        rules = [rule for group in groups for rule in group["rules"]]
        if rules and all(rule["health"] == "ok" for rule in rules):
            break
        assert time.monotonic() < deadline, f"rules not healthy: {rules}"
        time.sleep(1)
    names = {rule["name"] for rule in rules}
    assert {"PipelineWorkerDown", "PipelinePartitionStuck", "PipelineDLQSpike"} <= names
    firing = prometheus.query('ALERTS{alertstate="firing"}')
    assert not firing, f"alerts firing on a healthy worker: {firing}"
