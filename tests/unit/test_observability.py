"""Metrics catalog, consumer-lag bookkeeping and alert rules, checked without a broker.

`promtool` (Debian package `prometheus`) checks and unit-tests config/alerts.yml; a missing
binary fails the test with the package to install, it never skips.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from prometheus_client import REGISTRY, Counter, Gauge, Histogram, Summary

from pipeline import metrics
from pipeline.lag import LagTracker, PartitionOffsets

REPO_ROOT = Path(__file__).resolve().parents[2]
ALERTS = REPO_ROOT / "config" / "alerts.yml"
PROMETHEUS_CONFIG = REPO_ROOT / "config" / "prometheus.yml"
CATALOG = REPO_ROOT / "docs" / "METRICS.md"
COMPOSE_FILE = REPO_ROOT / "docker-compose.yml"


def promtool() -> str:
    path = shutil.which("promtool")
    if path is None:
        pytest.fail(
            "`promtool` is not on PATH: install Debian's prometheus "
            "(apt-get update && apt-get install -y prometheus)",
            pytrace=False,
        )
    return path


def project_metrics() -> dict[str, Counter | Gauge | Histogram | Summary]:
    return {
        value.describe()[0].name: value
        for value in vars(metrics).values()
        if isinstance(value, Counter | Gauge | Histogram | Summary)
    }


def sample(name: str, **labels: str) -> float | None:
    return REGISTRY.get_sample_value(name, labels)


# --------------------------------------------------------------------------- catalog


def test_every_project_metric_is_in_the_catalog_with_its_type_and_labels() -> None:
    text = CATALOG.read_text()
    rows = {
        match.group(1): match.group(0)
        for match in re.finditer(r"^\|\s*`([a-z_]+)(?:\{[^`]*\})?`\s*\|.*$", text, re.MULTILINE)
    }
    for name, metric in project_metrics().items():
        exposed = f"{name}_total" if isinstance(metric, Counter) else name
        assert exposed in rows, f"docs/METRICS.md has no row for {exposed}"
        kind = type(metric).__name__.lower()
        assert f"| {kind} |" in rows[exposed], f"{exposed}: type {kind} not in its row"
        for label in metric._labelnames:
            assert label in rows[exposed], f"{exposed}: label {label} not in its row"


def test_catalog_lists_the_faust_metrics_the_worker_serves() -> None:
    from faust.sensors.prometheus import FaustMetrics
    from prometheus_client import CollectorRegistry

    text = CATALOG.read_text()
    names = {m.describe()[0].name for m in FaustMetrics.create(CollectorRegistry(), "faust")}
    names.discard("faust_events_runtime_ms")  # replaced by faust_events_runtime_seconds
    names.add("faust_events_runtime_seconds")
    missing = sorted(n for n in names if n not in text)
    assert not missing, f"docs/METRICS.md does not mention {missing}"


def test_metric_names_follow_prometheus_conventions() -> None:
    for name, metric in project_metrics().items():
        assert name.startswith("pipeline_"), name
        assert re.fullmatch(r"[a-z][a-z0-9_]*", name), name
        assert not name.endswith("_total"), f"{name}: the client adds _total to counters"
        assert not re.search(r"_(ms|milliseconds|minutes|hours)$", name), f"{name}: base units"
        if isinstance(metric, Histogram) and ("latency" in name or "duration" in name):
            assert name.endswith("_seconds"), f"{name}: durations are in seconds"
    lag = metrics.CONSUMER_LAG.describe()[0]
    assert lag.type == "gauge" and metrics.CONSUMER_LAG._labelnames == ("topic", "partition")
    progress = metrics.PARTITION_LAST_PROGRESS
    assert progress._labelnames == ("topic", "partition")
    assert progress.describe()[0].name.endswith("_timestamp_seconds")


def test_promtool_accepts_the_exposition_of_every_metric() -> None:
    from prometheus_client import generate_latest

    metrics.CONSUMER_LAG.labels("promtool-check", "0").set(3)
    metrics.PARTITION_LAST_PROGRESS.labels("promtool-check", "0").set(1.7e9)
    try:
        proc = subprocess.run(
            [promtool(), "check", "metrics"],
            input=generate_latest(REGISTRY), capture_output=True, timeout=60, check=False,
        )
    finally:
        metrics.CONSUMER_LAG.remove("promtool-check", "0")
        metrics.PARTITION_LAST_PROGRESS.remove("promtool-check", "0")
    assert proc.returncode == 0, proc.stdout.decode() + proc.stderr.decode()


# --------------------------------------------------------------------------- lag


class FakeClock:
    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def tracker() -> tuple[LagTracker, FakeClock]:
    clock = FakeClock()
    return LagTracker(clock=clock), clock


def offsets(topic: str, partition: int, end: int, committed: int) -> PartitionOffsets:
    return PartitionOffsets(topic=topic, partition=partition, end=end, committed=committed)


def lag(topic: str, partition: int) -> float | None:
    return sample("pipeline_consumer_lag", topic=topic, partition=str(partition))


def progress(topic: str, partition: int) -> float | None:
    return sample(
        "pipeline_partition_last_progress_timestamp_seconds", topic=topic, partition=str(partition)
    )


def test_lag_is_end_minus_committed_per_partition(tracker) -> None:
    track, clock = tracker
    track.update([offsets("lag-a", 0, 10, 4), offsets("lag-a", 1, 7, 7)])
    assert lag("lag-a", 0) == 6 and lag("lag-a", 1) == 0
    assert progress("lag-a", 0) == progress("lag-a", 1) == clock.now
    track.update([])


def test_a_partition_that_waits_without_advancing_keeps_its_old_progress_time(tracker) -> None:
    track, clock = tracker
    track.update([offsets("lag-b", 0, 10, 4)])
    first_seen = clock.now
    clock.now += 600
    track.update([offsets("lag-b", 0, 25, 4)])  # more waiting, committed offset frozen: stuck
    assert lag("lag-b", 0) == 21
    assert progress("lag-b", 0) == first_seen
    clock.now += 10
    track.update([offsets("lag-b", 0, 25, 9)])  # it moves again
    assert progress("lag-b", 0) == clock.now
    track.update([])


def test_an_idle_caught_up_partition_counts_as_progress(tracker) -> None:
    track, clock = tracker
    track.update([offsets("lag-c", 0, 5, 5)])
    clock.now += 3600
    track.update([offsets("lag-c", 0, 5, 5)])
    assert lag("lag-c", 0) == 0 and progress("lag-c", 0) == clock.now


def test_revoked_partitions_stop_being_reported(tracker) -> None:
    track, _ = tracker
    track.update([offsets("lag-d", 0, 5, 1), offsets("lag-d", 1, 5, 1)])
    track.update([offsets("lag-d", 1, 5, 2)])
    assert lag("lag-d", 0) is None and progress("lag-d", 0) is None
    assert lag("lag-d", 1) == 3
    track.update([])
    assert lag("lag-d", 1) is None


def test_lag_never_goes_negative(tracker) -> None:
    track, _ = tracker
    track.update([offsets("lag-e", 0, 3, 5)])  # end offsets are asked after the commit
    assert lag("lag-e", 0) == 0
    track.update([])


# --------------------------------------------------------------------------- alert rules


def test_promtool_checks_the_alert_rules() -> None:
    proc = subprocess.run(
        [promtool(), "check", "rules", str(ALERTS)],
        capture_output=True, text=True, timeout=60, check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "SUCCESS" in proc.stdout


def alert_rules() -> dict[str, dict]:
    groups = yaml.safe_load(ALERTS.read_text())["groups"]
    return {rule["alert"]: rule for group in groups for rule in group["rules"] if "alert" in rule}


def test_the_alerts_the_operators_asked_for_exist_with_severity_and_text() -> None:
    rules = alert_rules()
    for name in (
        "PipelineWorkerDown", "PipelineNoWorkers", "PipelineConsumerLagGrowing",
        "PipelinePartitionStuck", "PipelineDLQSpike", "PipelineStageSilent",
    ):
        assert name in rules, name
    for name, rule in rules.items():
        assert rule["labels"]["severity"] in {"warning", "critical"}, name
        assert rule["annotations"]["summary"] and rule["annotations"]["description"], name


def test_alert_rules_use_only_metrics_the_workers_serve() -> None:
    exposed = set()
    for name in project_metrics():
        exposed |= {name, f"{name}_total", f"{name}_bucket", f"{name}_sum", f"{name}_count"}
    used = set(re.findall(r"\bpipeline_[a-z0-9_]+", ALERTS.read_text()))
    assert used and not used - exposed, f"unknown metrics in alerts.yml: {used - exposed}"


def test_prometheus_loads_the_rules_and_compose_mounts_them() -> None:
    config = yaml.safe_load(PROMETHEUS_CONFIG.read_text())
    assert config["rule_files"] == ["alerts.yml"]
    assert (PROMETHEUS_CONFIG.parent / "alerts.yml").is_file()
    volumes = yaml.safe_load(COMPOSE_FILE.read_text())["services"]["prometheus"]["volumes"]
    assert "./config/alerts.yml:/etc/prometheus/alerts.yml:ro" in volumes
    assert "./config/prometheus.yml:/etc/prometheus/prometheus.yml:ro" in volumes


# promtool test rules: the expressions, `for` durations and labels against synthetic series.
# Annotations are stripped from the copy under test (promtool compares them verbatim).
RULE_TESTS = """
evaluation_interval: 1m
tests:
  - interval: 1m
    input_series:
      - series: 'up{job="pipeline-worker", instance="w1:6066"}'
        values: '1 0x10'
      - series: 'up{job="pipeline-worker", instance="w2:6066"}'
        values: '1x10'
    alert_rule_test:
      - eval_time: 1m
        alertname: PipelineWorkerDown
        exp_alerts: []
      - eval_time: 5m
        alertname: PipelineWorkerDown
        exp_alerts:
          - exp_labels: {severity: critical, job: pipeline-worker, instance: "w1:6066"}
      - eval_time: 5m
        alertname: PipelineNoWorkers
        exp_alerts: []

  - interval: 1m
    input_series:
      - series: 'up{job="pipeline-worker", instance="w1:6066"}'
        values: '0x10'
    alert_rule_test:
      - eval_time: 5m
        alertname: PipelineNoWorkers
        exp_alerts:
          - exp_labels: {severity: critical}

  - interval: 1m
    input_series:
      # partition 0 waits with a frozen committed offset; partition 1 waits but moves on
      - series: 'pipeline_consumer_lag{topic="articles.raw", partition="0", instance="w1"}'
        values: '5x20'
      - series: 'pipeline_partition_last_progress_timestamp_seconds{topic="articles.raw", partition="0", instance="w1"}'
        values: '0x20'
      - series: 'pipeline_consumer_lag{topic="articles.raw", partition="1", instance="w1"}'
        values: '5x20'
      - series: 'pipeline_partition_last_progress_timestamp_seconds{topic="articles.raw", partition="1", instance="w1"}'
        values: '0+60x20'
      # partition 2 is idle and caught up: no lag, an old timestamp does not matter
      - series: 'pipeline_consumer_lag{topic="articles.raw", partition="2", instance="w1"}'
        values: '0x20'
      - series: 'pipeline_partition_last_progress_timestamp_seconds{topic="articles.raw", partition="2", instance="w1"}'
        values: '0x20'
    alert_rule_test:
      - eval_time: 4m
        alertname: PipelinePartitionStuck
        exp_alerts: []
      - eval_time: 10m
        alertname: PipelinePartitionStuck
        exp_alerts:
          - exp_labels: {severity: critical, topic: articles.raw, partition: "0"}

  - interval: 1m
    input_series:
      - series: 'pipeline_consumer_lag{topic="articles.raw", partition="0", instance="w1"}'
        values: '0+20x40'
      - series: 'pipeline_consumer_lag{topic="articles.enriched-in", partition="0", instance="w1"}'
        values: '150x40'
    alert_rule_test:
      - eval_time: 8m
        alertname: PipelineConsumerLagGrowing
        exp_alerts: []
      - eval_time: 30m
        alertname: PipelineConsumerLagGrowing
        exp_alerts:
          - exp_labels: {severity: warning, topic: articles.raw}

  - interval: 1m
    input_series:
      - series: 'pipeline_articles_total{stage="analyze", outcome="in", instance="w1"}'
        values: '0+60x30'
      - series: 'pipeline_dlq_messages_total{stage="parse", error="invalid_json", instance="w1"}'
        values: '0+30x30'
    alert_rule_test:
      - eval_time: 20m
        alertname: PipelineDLQSpike
        exp_alerts:
          - exp_labels: {severity: warning}

  - interval: 1m
    input_series:
      - series: 'pipeline_articles_total{stage="analyze", outcome="in", instance="w1"}'
        values: '0+600x30'
      - series: 'pipeline_dlq_messages_total{stage="parse", error="invalid_json", instance="w1"}'
        values: '0+3x30'
    alert_rule_test:
      - eval_time: 20m
        alertname: PipelineDLQSpike
        exp_alerts: []

  - interval: 1m
    input_series:
      - series: 'pipeline_articles_total{stage="analyze", outcome="in", instance="w1"}'
        values: '0+10x30'
      - series: 'pipeline_articles_total{stage="analyze", outcome="out", instance="w1"}'
        values: '0+10x30'
      - series: 'pipeline_articles_total{stage="deduplicate", outcome="in", instance="w1"}'
        values: '0+10x30'
      - series: 'pipeline_articles_total{stage="deduplicate", outcome="out", instance="w1"}'
        values: '0x30'
    alert_rule_test:
      - eval_time: 20m
        alertname: PipelineStageSilent
        exp_alerts:
          - exp_labels: {severity: critical, stage: deduplicate}
      - eval_time: 20m
        alertname: PipelineDeduplicateStarved
        exp_alerts: []

  - interval: 1m
    input_series:
      - series: 'pipeline_articles_total{stage="analyze", outcome="in", instance="w1"}'
        values: '0+10x30'
      - series: 'pipeline_articles_total{stage="analyze", outcome="out", instance="w1"}'
        values: '0+10x30'
      - series: 'pipeline_articles_total{stage="deduplicate", outcome="in", instance="w1"}'
        values: '0x30'
    alert_rule_test:
      - eval_time: 20m
        alertname: PipelineDeduplicateStarved
        exp_alerts:
          - exp_labels: {severity: critical}
      - eval_time: 20m
        alertname: PipelineStageSilent
        exp_alerts: []
"""


def test_promtool_unit_tests_of_the_alerts(tmp_path: Path) -> None:
    rules = yaml.safe_load(ALERTS.read_text())
    for group in rules["groups"]:
        for rule in group["rules"]:
            rule.pop("annotations", None)
    (tmp_path / "alerts.yml").write_text(yaml.safe_dump(rules))
    tests = yaml.safe_load(RULE_TESTS)
    tests["rule_files"] = ["alerts.yml"]
    (tmp_path / "alerts_test.yml").write_text(yaml.safe_dump(tests))
    proc = subprocess.run(
        [promtool(), "test", "rules", "alerts_test.yml"],
        capture_output=True, text=True, timeout=60, check=False, cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
