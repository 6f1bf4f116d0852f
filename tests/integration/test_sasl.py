"""SASL against a real broker: a second local Kafka with a SASL_PLAINTEXT listener.

The shared broker on 9092 is left alone: this module starts its own LocalKafka (own state dir,
free ports, the shared jars) with PLAIN and SCRAM-SHA-256 users, and stops it at the end. The
CLI and a real worker get the credentials through the PIPELINE_KAFKA_* environment only.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import orjson
import pytest

from pipeline.kafka_local import LocalKafka, default_state_dir, probe
from pipeline.security import kafka_python_options
from pipeline.settings import load_settings
from tests.integration.conftest import REPO_ROOT, PipelineRun, free_port

USER = "pipeline-svc"
PASSWORD = f"pw-{uuid.uuid4().hex}"  # unique, so finding it in a log can only be a leak
WRONG_PASSWORD = f"wrong-{uuid.uuid4().hex}"
FAIL_FAST_SECONDS = 30.0


@pytest.fixture(scope="module")
def sasl_kafka(bootstrap: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalKafka]:
    # `bootstrap` (the shared broker) guarantees the jars are in var/kafka/libs.
    kafka = LocalKafka(
        tmp_path_factory.mktemp("sasl-kafka"),
        port=free_port(),
        controller_port=free_port(),
        sasl_port=free_port(),
        sasl_users=((USER, PASSWORD),),
        libs=default_state_dir() / "libs",
        heap="384m",
    )
    try:
        status = kafka.start(timeout=120)
        assert status.running, status.detail
        yield kafka
    finally:
        kafka.stop()


def sasl_env(kafka: LocalKafka, mechanism: str, password: str = PASSWORD) -> dict[str, str]:
    return {
        "KAFKA_BOOTSTRAP_SERVERS": kafka.sasl_bootstrap,
        "PIPELINE_KAFKA_SECURITY_PROTOCOL": "SASL_PLAINTEXT",
        "PIPELINE_KAFKA_SASL_MECHANISM": mechanism,
        "PIPELINE_KAFKA_SASL_USERNAME": USER,
        "PIPELINE_KAFKA_SASL_PASSWORD": password,
    }


def cli(env: dict[str, str], *args: str, stdin: bytes | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "pipeline", *args],
        env={**os.environ, **env}, input=stdin, capture_output=True, timeout=120, cwd=REPO_ROOT,
        check=False,
    )


def output(done: subprocess.CompletedProcess) -> str:
    return done.stdout.decode(errors="replace") + done.stderr.decode(errors="replace")


def test_the_sasl_listener_answers_only_with_credentials(sasl_kafka: LocalKafka) -> None:
    good = kafka_python_options(load_settings(
        kafka_security_protocol="SASL_PLAINTEXT", kafka_sasl_mechanism="SCRAM-SHA-256",
        kafka_sasl_username=USER, kafka_sasl_password=PASSWORD,
    ))
    ok, why = probe(sasl_kafka.sasl_bootstrap, timeout=10, **good)
    assert ok, why
    ok, _ = probe(sasl_kafka.sasl_bootstrap, timeout=2, **{**good, "sasl_plain_password": "x"})
    assert not ok


@pytest.mark.parametrize("mechanism", ["PLAIN", "SCRAM-SHA-256"])
def test_right_credentials_ingest_and_tail(sasl_kafka: LocalKafka, mechanism: str) -> None:
    topic = f"sasl-cli-{mechanism.lower()}-{uuid.uuid4().hex[:6]}"
    env = {**sasl_env(sasl_kafka, mechanism), "PIPELINE_TOPIC_RAW": topic}
    article = {"id": f"sasl-{mechanism}", "text": "The Bank of England raised rates in London."}

    done = cli(env, "ingest", "-", stdin=orjson.dumps(article) + b"\n")
    assert done.returncode == 0, output(done)
    assert b"ingested 1 article" in done.stdout

    tailed = cli(env, "tail", "--topic", topic, "--count", "1", "--timeout", "20")
    assert tailed.returncode == 0, output(tailed)
    assert orjson.loads(tailed.stdout.splitlines()[0]) == article
    assert PASSWORD not in output(done) + output(tailed)


@pytest.mark.parametrize(
    ("mechanism", "command"),
    [("PLAIN", "ingest"), ("SCRAM-SHA-256", "ingest"), ("SCRAM-SHA-256", "tail")],
)
def test_wrong_password_fails_fast_with_a_clear_message(
    sasl_kafka: LocalKafka, mechanism: str, command: str
) -> None:
    env = sasl_env(sasl_kafka, mechanism, password=WRONG_PASSWORD)
    args = ("ingest", "-") if command == "ingest" else ("tail", "--timeout", "20")
    started = time.monotonic()
    done = cli(env, *args, stdin=b'{"id": "never", "text": "Never produced."}\n')
    elapsed = time.monotonic() - started

    text = output(done)
    assert done.returncode != 0, text
    assert elapsed < FAIL_FAST_SECONDS, f"took {elapsed:.1f} s"
    assert "authentication failed" in text.lower(), text
    assert USER in text and mechanism in text, "the message says who tried and how"
    assert "Traceback" not in text and "│" not in text, f"a message, not a traceback:\n{text}"
    assert WRONG_PASSWORD not in text and PASSWORD not in text


def test_a_mechanism_the_broker_does_not_enable_is_named(sasl_kafka: LocalKafka) -> None:
    done = cli(sasl_env(sasl_kafka, "SCRAM-SHA-512"), "tail", "--timeout", "5")
    assert done.returncode != 0
    assert "does not enable SASL mechanism SCRAM-SHA-512" in output(done)


def test_sasl_without_a_username_stops_at_start_up(sasl_kafka: LocalKafka) -> None:
    env = {**sasl_env(sasl_kafka, "PLAIN"), "PIPELINE_KAFKA_SASL_USERNAME": ""}
    done = cli(env, "tail", "--timeout", "5")
    assert done.returncode != 0
    assert "PIPELINE_KAFKA_SASL_USERNAME" in output(done)
    assert PASSWORD not in output(done)


@dataclass
class SaslRun(PipelineRun):
    """A PipelineRun whose worker and CLI reach the broker through SASL."""

    security: dict[str, str] = field(default_factory=dict)

    def env(self, *args: object, **kwargs: object) -> dict[str, str]:
        return {**super().env(*args, **kwargs), **self.security}


@pytest.fixture(scope="module")
def scram_run(sasl_kafka: LocalKafka, tmp_path_factory: pytest.TempPathFactory) -> Iterator[SaslRun]:
    run = SaslRun(
        bootstrap=sasl_kafka.bootstrap,  # the broker's PLAINTEXT listener, for the helpers only
        workdir=tmp_path_factory.mktemp("sasl-run"),
        security=sasl_env(sasl_kafka, "SCRAM-SHA-256"),
    )
    try:
        yield run
    finally:
        run.stop_workers()


def worker_logs(workdir: Path) -> str:
    return "".join(p.read_text(errors="replace") for p in sorted(workdir.glob("worker-*.log")))


def test_worker_with_scram_credentials_enriches_articles(scram_run: SaslRun) -> None:
    port = scram_run.start_worker()
    assert scram_run.http_get(port, "/ready")[0] == 200
    article = {"id": "sasl-worker-1", "text": "The Bank of England raised rates in London."}
    done = scram_run.cli("ingest", "-", stdin=orjson.dumps(article) + b"\n")
    assert done.returncode == 0, output(done)

    tailed = scram_run.cli("tail", "--count", "1", "--timeout", "60")
    assert tailed.returncode == 0, output(tailed)
    record = orjson.loads(tailed.stdout.splitlines()[0])
    assert record["id"] == "sasl-worker-1" and record["schema_version"] == 1

    logs = worker_logs(scram_run.workdir)
    assert logs, "the worker wrote no log"
    assert PASSWORD not in logs + output(done) + output(tailed)


def test_worker_with_a_wrong_password_exits_fast(
    sasl_kafka: LocalKafka, tmp_path: Path
) -> None:
    run = SaslRun(
        bootstrap=sasl_kafka.bootstrap,
        workdir=tmp_path,
        security=sasl_env(sasl_kafka, "SCRAM-SHA-256", password=WRONG_PASSWORD),
    )
    log_path = tmp_path / "worker-0.log"
    started = time.monotonic()
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "pipeline", "worker"],
            env=run.env(free_port()), stdout=log, stderr=log, cwd=REPO_ROOT,
        )
        try:
            code = process.wait(timeout=90)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
            pytest.fail(f"the worker kept running with a wrong password:\n{log_path.read_text()}")
    elapsed = time.monotonic() - started
    text = log_path.read_text(errors="replace")
    assert code != 0, text
    assert "authentication failed" in text.lower(), text
    assert elapsed < 60, f"exited after {elapsed:.1f} s"  # spaCy models load first (~10 s)
    assert WRONG_PASSWORD not in text and PASSWORD not in text
