"""Integration harness: the real local Kafka broker and a real `pipeline worker` process.

Each test module gets its own worker with unique topics and app id, so runs never see each
other's records. The broker is started if it is not running; if it cannot start, tests fail.
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import orjson
import pytest
from kafka import KafkaConsumer, KafkaProducer

from pipeline.kafka_local import LocalKafka, default_state_dir
from pipeline.launch import Deployment, free_port, http_get

__all__ = ["REPO_ROOT", "PipelineRun", "TopicReader", "free_port"]  # imported by the tests

REPO_ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def bootstrap() -> str:
    status = LocalKafka(default_state_dir()).start()
    assert status.running, status.detail
    return status.bootstrap


@dataclass
class PipelineRun(Deployment):
    """A deployment (pipeline.launch) run from this repository, with the tests' helpers."""

    cwd: Path = REPO_ROOT
    http_get = staticmethod(http_get)

    def cli(self, *args: str, stdin: bytes | None = None) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "-m", "pipeline", *args],
            env=self.env(),
            input=stdin,
            capture_output=True,
            timeout=120,
            cwd=self.cwd,
            check=False,
        )

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

    def state(self) -> str:
        """What each worker holds (its /ready page) and the tail of their logs."""
        pages = [
            f"worker {i}: {http_get(port, '/ready')[1].decode()}"
            for i, port in enumerate(self.ports)
        ]
        return "\n".join(pages) + "\n" + self.log_tail()

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

    def wait_for(
        self,
        done: Callable[[list[dict]], bool],
        timeout: float,
        why: str = "",
        explain: Callable[[], str] = str,
    ) -> None:
        """Poll until `done(records)`; on time-out, fail with `explain()` (say, the workers' state)."""
        deadline = time.monotonic() + timeout
        while not done(self.records):
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"timed out after {timeout} s waiting for {why} "
                    f"({len(self.records)} records read)\n{explain()}"
                )
            self.poll()

    def close(self) -> None:
        self.consumer.close()


@pytest.fixture(scope="module")
def reader(run: PipelineRun) -> Iterator[TopicReader]:
    """The enriched topic of a module's `run` fixture (a PipelineRun with its workers started)."""
    topic_reader = TopicReader(run.bootstrap, run.topics["enriched"])
    yield topic_reader
    topic_reader.close()
