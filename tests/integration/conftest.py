"""Integration harness: the real local Kafka broker and a real `pipeline worker` process.

Each test module gets its own worker with unique topics and app id, so runs never see each
other's records. The broker is started if it is not running; if it cannot start, tests fail.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import orjson
import pytest
from kafka import KafkaConsumer, KafkaProducer

from pipeline.kafka_local import LocalKafka, default_state_dir

REPO_ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def bootstrap() -> str:
    status = LocalKafka(default_state_dir()).start()
    assert status.running, status.detail
    return status.bootstrap


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class PipelineRun:
    """One isolated deployment: unique topics and app id, and the worker processes on them."""

    bootstrap: str
    workdir: Path
    run_id: str = field(default_factory=lambda: uuid.uuid4().hex[:10])
    workers: list[subprocess.Popen] = field(default_factory=list)
    ports: list[int] = field(default_factory=list)
    settings: dict[str, str] = field(default_factory=dict)  # more PIPELINE_* for the workers

    @property
    def topics(self) -> dict[str, str]:
        return {
            "raw": f"raw-{self.run_id}",
            "enriched": f"enriched-{self.run_id}",
            "dlq": f"dlq-{self.run_id}",
        }

    def env(self, web_port: int | None = None, slot: int = 0) -> dict[str, str]:
        env = dict(os.environ)
        env.update(
            {
                "KAFKA_BOOTSTRAP_SERVERS": self.bootstrap,
                "PIPELINE_APP_ID": f"test-{self.run_id}",
                "PIPELINE_TOPIC_RAW": self.topics["raw"],
                "PIPELINE_TOPIC_ENRICHED": self.topics["enriched"],
                "PIPELINE_TOPIC_DLQ": self.topics["dlq"],
                "PIPELINE_STATE_DIR": str(self.workdir / f"state-{slot}"),
                **self.settings,
            }
        )
        if web_port is not None:
            env["PIPELINE_WEB_PORT"] = str(web_port)
        return env

    def cli(self, *args: str, stdin: bytes | None = None) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "-m", "pipeline", *args],
            env=self.env(),
            input=stdin,
            capture_output=True,
            timeout=120,
            cwd=REPO_ROOT,
            check=False,
        )

    def start_worker(
        self, timeout: float = 180.0, slot: int | None = None, port: int | None = None
    ) -> int:
        """Start a worker process; each slot has its own state dir (RocksDB) and log.

        With ``port``, the worker gets exactly the settings of the others started with it
        (same state dir, same PIPELINE_WEB_PORT), as a person starting N workers on one host
        would; the port it serves on is read from its log.
        """
        slot = len(self.workers) if slot is None else slot
        env = self.env(port, 0) if port is not None else self.env(port := free_port(), slot)
        log_path = self.workdir / f"worker-{len(self.workers)}.log"
        log = log_path.open("ab")
        process = subprocess.Popen(
            [sys.executable, "-m", "pipeline", "worker"],
            env=env,
            stdout=log,
            stderr=log,
            cwd=REPO_ROOT,
        )
        self.workers.append(process)
        self.ports.append(port)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise AssertionError(f"worker exited early:\n{self.log_tail()}")
            served = served_port(log_path)
            if served is not None and self.http_get(served, "/ready")[0] == 200:
                self.ports[-1] = served
                return served
            time.sleep(0.5)
        raise AssertionError(f"worker not ready after {timeout} s:\n{self.log_tail()}")

    def kill_worker(self, index: int) -> None:
        """SIGKILL: no shutdown, no commit, no leaving the group."""
        self.workers[index].kill()
        self.workers[index].wait(timeout=30)

    def restart_worker(self, index: int) -> None:
        """Start a new process in place of worker `index` (same state dir and app id)."""
        self.kill_worker(index)
        self.start_worker(slot=index)
        self.workers[index] = self.workers.pop()
        self.ports[index] = self.ports.pop()

    def stop_workers(self) -> None:
        for process in self.workers:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in self.workers:
            try:
                process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                process.kill()

    def log_tail(self, lines: int = 60) -> str:
        text = ""
        for path in sorted(self.workdir.glob("worker-*.log")):
            text += f"--- {path.name}\n" + "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
        return text

    @staticmethod
    def http_get(port: int, path: str) -> tuple[int, bytes]:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as reply:
                return reply.status, reply.read()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read()
        except (urllib.error.URLError, OSError):
            return 0, b""

    def produce(self, values: list[bytes], keys: list[bytes | None] | None = None) -> None:
        producer = KafkaProducer(bootstrap_servers=self.bootstrap, acks="all")
        try:
            for value, key in zip(values, keys or [None] * len(values), strict=True):
                producer.send(self.topics["raw"], key=key, value=value)
            producer.flush()
        finally:
            producer.close()

    def consume(
        self,
        topic: str,
        until: Callable[[list[dict]], bool],
        timeout: float = 90.0,
    ) -> list[dict]:
        """Read a topic from the start with kafka-python until `until(records)` holds."""
        consumer = KafkaConsumer(
            self.topics.get(topic, topic),
            bootstrap_servers=self.bootstrap,
            group_id=None,
            auto_offset_reset="earliest",
            enable_auto_commit=False,
            consumer_timeout_ms=1000,
        )
        records: list[dict] = []
        deadline = time.monotonic() + timeout
        try:
            while time.monotonic() < deadline:
                for message in consumer:
                    records.append({**orjson.loads(message.value), "_key": message.key})
                    if until(records):
                        return records
                if until(records):
                    return records
        finally:
            consumer.close()
        raise AssertionError(
            f"timed out on {topic} with {len(records)} record(s):\n{self.log_tail()}"
        )


def served_port(log_path: Path) -> int | None:
    """The web port a worker logged when it last claimed its slot (a log may be reused)."""
    for line in reversed(log_path.read_text(errors="replace").splitlines()):
        if '"worker slot claimed"' in line:
            return int(orjson.loads(line)["web_port"])
    return None


@pytest.fixture(scope="module")
def pipeline_run(bootstrap: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[PipelineRun]:
    run = PipelineRun(bootstrap=bootstrap, workdir=tmp_path_factory.mktemp("run"))
    try:
        yield run
    finally:
        run.stop_workers()


class TopicReader:
    """A kafka-python consumer that keeps its position, for waiting on many records."""

    def __init__(self, bootstrap: str, topic: str) -> None:
        self.consumer = KafkaConsumer(
            topic,
            bootstrap_servers=bootstrap,
            group_id=None,
            auto_offset_reset="earliest",
            enable_auto_commit=False,
        )
        self.records: list[dict] = []

    def poll(self, seconds: float = 1.0) -> list[dict]:
        batch = self.consumer.poll(timeout_ms=int(seconds * 1000))
        fresh = [
            {**orjson.loads(message.value), "_key": message.key}
            for messages in batch.values()
            for message in messages
        ]
        self.records.extend(fresh)
        return fresh

    def wait_for(self, done: Callable[[list[dict]], bool], timeout: float, why: str = "") -> None:
        deadline = time.monotonic() + timeout
        while not done(self.records):
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out after {timeout} s waiting for {why}")
            self.poll()

    def close(self) -> None:
        self.consumer.close()


@pytest.fixture(scope="module")
def reader(run: PipelineRun) -> Iterator[TopicReader]:
    """The enriched topic of a module's `run` fixture (a PipelineRun with its workers started)."""
    topic_reader = TopicReader(run.bootstrap, run.topics["enriched"])
    yield topic_reader
    topic_reader.close()
