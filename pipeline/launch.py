"""Real `pipeline worker` processes on topics and an app id of their own.

For the integration tests and the throughput benchmark: a `Deployment` gives its workers unique
topics, app id and state directories, so runs never see each other's records, and configures
them as a person would, through the environment (``PIPELINE_*``).
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
from dataclasses import dataclass, field
from pathlib import Path

import orjson
from kafka import KafkaAdminClient


class WorkerNotReady(RuntimeError):
    """A worker exited or did not answer /ready in time; the message ends with its log."""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def http_get(port: int, path: str, timeout: float = 5.0) -> tuple[int, bytes]:
    """Status and body of a worker's page; status 0 when nothing answers."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=timeout) as reply:
            return reply.status, reply.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()
    except (urllib.error.URLError, OSError):
        return 0, b""


def served_port(log_path: Path) -> int | None:
    """The web port a worker logged when it last claimed its slot (a log may be reused)."""
    for line in reversed(log_path.read_text(errors="replace").splitlines()):
        if '"worker slot claimed"' in line:
            return int(orjson.loads(line)["web_port"])
    return None


@dataclass
class Deployment:
    """One isolated deployment: unique topics and app id, and the worker processes on them."""

    bootstrap: str
    workdir: Path  # state directories and worker logs
    cwd: Path  # where workers run: its config/pipeline.toml is read
    settings: dict[str, str] = field(default_factory=dict)  # more PIPELINE_* for the workers
    run_id: str = field(default_factory=lambda: uuid.uuid4().hex[:10])
    workers: list[subprocess.Popen] = field(default_factory=list)
    ports: list[int] = field(default_factory=list)

    @property
    def app_id(self) -> str:
        return f"test-{self.run_id}"

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
                "PIPELINE_APP_ID": self.app_id,
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

    def start_worker(
        self, timeout: float = 180.0, slot: int | None = None, port: int | None = None
    ) -> int:
        """Start a worker process and wait until it answers /ready; return its web port.

        Each slot has its own state dir (RocksDB) and log. With ``port``, the worker gets
        exactly the settings of the others started with it (same state dir, same
        PIPELINE_WEB_PORT), as a person starting N workers on one host would; the port it
        serves on is read from its log.
        """
        slot = len(self.workers) if slot is None else slot
        env = self.env(port, 0) if port is not None else self.env(port := free_port(), slot)
        log_path = self.workdir / f"worker-{len(self.workers)}.log"
        with log_path.open("ab") as log:
            process = subprocess.Popen(
                [sys.executable, "-m", "pipeline", "worker"],
                env=env,
                stdout=log,
                stderr=log,
                cwd=self.cwd,
            )
        self.workers.append(process)
        self.ports.append(port)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise WorkerNotReady(f"worker exited early:\n{self.log_tail()}")
            served = served_port(log_path)
            if served is not None and http_get(served, "/ready")[0] == 200:
                self.ports[-1] = served
                return served
            time.sleep(0.5)
        raise WorkerNotReady(f"worker not ready after {timeout} s:\n{self.log_tail()}")

    def stop_workers(self) -> None:
        for process in self.workers:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in self.workers:
            try:
                process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                process.kill()

    def delete_topics(self) -> None:
        """Delete every topic of this deployment (the public ones and Faust's own)."""
        admin = KafkaAdminClient(bootstrap_servers=self.bootstrap)
        try:
            mine = [topic for topic in admin.list_topics() if self.run_id in topic]
            if mine:
                admin.delete_topics(mine)
        finally:
            admin.close()

    def log_tail(self, lines: int = 60) -> str:
        text = ""
        for path in sorted(self.workdir.glob("worker-*.log")):
            tail = path.read_text(errors="replace").splitlines()[-lines:]
            text += f"--- {path.name}\n" + "\n".join(tail) + "\n"
        return text
