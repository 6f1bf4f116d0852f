"""`make run`: broker, worker, sample articles in, a summary of each outcome out, until Ctrl-C.

Articles are sent one at a time, each after the previous one's outcome came out, so verdicts
read in the order given: the re-sent copy of the first article is its duplicate, and a later
article joins the story of an earlier one.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import orjson
from kafka import KafkaConsumer, TopicPartition

from pipeline.ingest import RawRecord, records_from_path
from pipeline.kafka_io import client_options, ensure_topics, produce
from pipeline.records import parse_raw_article
from pipeline.settings import Settings
from pipeline.summary import summarize_message

OUTCOME_TIMEOUT_SECONDS = 120


def wait_until_ready(port: int, worker: subprocess.Popen, timeout: float = 180.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if worker.poll() is not None:
            raise RuntimeError(f"the worker exited with code {worker.returncode}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/ready", timeout=2) as reply:
                if reply.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.5)
    raise RuntimeError(f"the worker was not ready after {timeout:.0f} s")


def sample_records(paths: list[Path], max_bytes: int) -> list[RawRecord]:
    """The given files, plus a re-sent copy of the first one under another id (a duplicate)."""
    records = [record for path in paths for record in records_from_path(path, max_bytes)]
    if records:
        first = orjson.loads(records[0].value)
        copy_id = f"{first.get('id', 'sample')}-copy"
        records.append(RawRecord(copy_id.encode(), orjson.dumps({**first, "id": copy_id})))
    return records


def run_demo(settings: Settings, paths: list[Path]) -> int:
    started_broker = None
    if "KAFKA_BOOTSTRAP_SERVERS" not in os.environ:
        from pipeline.kafka_local import LocalKafka, default_state_dir

        broker = LocalKafka(default_state_dir())
        status = broker.start()
        print(status.detail, flush=True)
        # Stop it on exit only if this run started it: a broker already running is someone's.
        started_broker = broker if status.startup_seconds is not None else None
    ensure_topics(settings)
    log_path = settings.state_dir / "worker.log"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("ab") as log_file:
        worker = subprocess.Popen(
            [sys.executable, "-m", "pipeline", "worker"], stdout=log_file, stderr=log_file
        )
    try:
        print(
            f"worker started (pid {worker.pid}, log {log_path}); waiting until ready…", flush=True
        )
        wait_until_ready(settings.web_port, worker)
        records = sample_records(paths, settings.max_message_bytes)
        colour = sys.stdout.isatty()
        watcher = _consumer_at_end(settings)
        print(f"sending {len(records)} article(s), one at a time\n", flush=True)
        for number, record in enumerate(records, start=1):
            produce(settings, settings.topic_raw, [record], progress=False)
            outcome = _outcome_of(watcher, output_keys(record))
            if outcome is None:
                print(
                    f"no outcome for article {number} within {OUTCOME_TIMEOUT_SECONDS} s; "
                    f"see {log_path}\n",
                    flush=True,
                )
            else:
                print(summarize_message(outcome, colour=colour) + "\n", flush=True)
        watcher.close()
        print(f"metrics:      http://127.0.0.1:{settings.web_port}/metrics")
        print(
            f"full records: pipeline tail --topic {settings.topic_enriched}   "
            f"(dead letters: --topic {settings.topic_dlq})"
        )
        print("the stack keeps running; Ctrl-C stops it", flush=True)
        worker.wait()
        return worker.returncode
    except KeyboardInterrupt:
        return 0
    finally:
        worker.terminate()
        try:
            worker.wait(timeout=30)
        except subprocess.TimeoutExpired:
            worker.kill()
        if started_broker is not None:
            started_broker.stop()


def _consumer_at_end(settings: Settings) -> KafkaConsumer:
    """A consumer at the current end of the enriched and DLQ topics, so only new output shows."""
    consumer = KafkaConsumer(
        **client_options(settings),
        group_id=None,
        enable_auto_commit=False,
        consumer_timeout_ms=OUTCOME_TIMEOUT_SECONDS * 1000,
        max_partition_fetch_bytes=settings.output_topic_max_bytes,
    )
    assignment = [
        TopicPartition(topic, partition)
        for topic in (settings.topic_enriched, settings.topic_dlq)
        for partition in sorted(consumer.partitions_for_topic(topic) or ())
    ]
    consumer.assign(assignment)
    consumer.seek_to_end()
    for tp in assignment:
        consumer.position(tp)  # resolve the end offsets now, before anything is produced
    return consumer


def output_keys(record: RawRecord) -> set[bytes | None]:
    """Keys its outcome may carry: the input key; without one, the article id on an enriched
    record and no key on a DLQ record."""
    if record.key is not None:
        return {record.key}
    return {parse_raw_article(record.value).derived_id().encode(), None}


def _outcome_of(consumer: KafkaConsumer, keys: set[bytes | None]) -> bytes | None:
    """The enriched or DLQ record of the article just sent; None when nothing came within the
    consumer's timeout."""
    for message in consumer:
        if message.key in keys:
            return message.value
    return None
