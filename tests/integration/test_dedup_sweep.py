"""The dedup sweep on the real broker: expired keys leave the live tables (RocksDB) and their
changelogs get tombstones, with a retention of seconds so the test can wait it out."""

from __future__ import annotations

import time

import orjson
import pytest
from kafka import KafkaConsumer
from prometheus_client.parser import text_string_to_metric_families
from rocksdict import AccessType, Options, Rdict

from pipeline.stages.dedup import article_key, band_keys, fingerprint, signature
from tests.conftest import SEED_PATH
from tests.integration.test_dedup_stream import exact_copy, near_copy, page_text, send, wait_ids

RETENTION_SECONDS = 12.0
TABLES = {"fingerprints": "dedup-fingerprints", "near_index": "dedup-near-index"}


@pytest.fixture(scope="module")
def run(pipeline_run):
    pipeline_run.settings.update(
        {
            "PIPELINE_DEDUP_RETENTION_DAYS": str(RETENTION_SECONDS / 86_400),
            "PIPELINE_DEDUP_SWEEP_INTERVAL_SECONDS": "0.5",
            # Below the ~90 index keys of the two originals: a pass takes several steps.
            "PIPELINE_DEDUP_SWEEP_BATCH": "30",
        }
    )
    pipeline_run.start_worker()
    return pipeline_run


class Changelogs:
    """The tables' changelog topics: which keys' latest record is a tombstone."""

    def __init__(self, run) -> None:
        self.topics = {
            f"test-{run.run_id}-{name}-changelog": table for table, name in TABLES.items()
        }
        self.consumer = KafkaConsumer(
            *self.topics,
            bootstrap_servers=run.bootstrap,
            group_id=None,
            auto_offset_reset="earliest",
            enable_auto_commit=False,
        )
        self.deleted: dict[str, set[str]] = {table: set() for table in TABLES}

    def poll(self) -> None:
        for messages in self.consumer.poll(timeout_ms=1000).values():
            for message in messages:
                deleted = self.deleted[self.topics[message.topic]]
                key = orjson.loads(message.key)  # Faust's table keys are JSON
                if message.value is None:
                    deleted.add(key)
                else:
                    deleted.discard(key)


def metric(run, name: str, table: str) -> float | None:
    status, body = run.http_get(run.ports[0], "/metrics")
    assert status == 200
    for family in text_string_to_metric_families(body.decode()):
        for sample in family.samples:
            if sample.name == name and sample.labels.get("table") == table:
                return sample.value
    return None


def test_expired_keys_leave_the_live_tables_and_copies_become_unique_again(run, reader):
    originals = {"old-seed": SEED_PATH.read_text(encoding="utf-8"), "old-bbc": page_text("bbc-1")}
    send(run, originals)
    first = wait_ids(reader, set(originals))
    remembered_at = time.monotonic()
    assert all(record["dedup"]["status"] == "unique" for record in first.values())
    # Sweep steps ran on these events: live keys stay, so a copy is still found.
    send(run, {"early-copy": exact_copy(originals["old-seed"])})
    assert wait_ids(reader, {"early-copy"})["early-copy"]["dedup"]["duplicate_of"] == "old-seed"

    expected = {"fingerprints": set(), "near_index": set()}
    for article_id, record in first.items():
        expected["fingerprints"].add(fingerprint(record["text"]))
        expected["near_index"] |= {article_key(article_id), *band_keys(signature(record["text"]))}
    assert len(expected["near_index"]) >= 80

    # Past the retention, each article lets the agent sweep up to 30 keys a table. The short
    # notes have no MinHash, so they add no index keys of their own.
    time.sleep(max(0.0, remembered_at + RETENTION_SECONDS + 1 - time.monotonic()))
    changelogs = Changelogs(run)
    for note in range(20):
        send(run, {f"note-{note}": f"Short note number {note}."})
        wait_ids(reader, {f"note-{note}"})
        time.sleep(0.6)
        changelogs.poll()
        if all(expected[table] <= changelogs.deleted[table] for table in TABLES):
            break
    for table in TABLES:
        assert expected[table] <= changelogs.deleted[table], (table, len(changelogs.deleted[table]))
        swept = metric(run, "pipeline_dedup_swept_keys_total", table)
        assert swept is not None and swept >= len(expected[table]), (table, swept)

    late = {
        "late-exact": exact_copy(originals["old-seed"]),
        "late-near": near_copy(originals["old-bbc"]),
    }
    send(run, late)
    late_records = wait_ids(reader, set(late))
    for record in late_records.values():
        assert record["dedup"] == {"status": "unique", "duplicate_of": None, "similarity": None}

    # The worker's own RocksDB files, once it has stopped: what the late copies did not write
    # again is gone from the live tables.
    run.stop_workers()
    stored: dict[str, set[str]] = {}
    for table, name in TABLES.items():
        (path,) = (run.workdir / "state-0").rglob(f"*{name}-0.db")
        db = Rdict(str(path), Options(raw_mode=True), access_type=AccessType.read_only())
        try:
            raw_keys = list(db.keys())
        finally:
            db.close()
        # JSON keys; Faust also keeps its changelog offset under a key of its own
        stored[table] = {orjson.loads(key) for key in raw_keys if key.startswith(b'"')}
    rewritten = {article_key(article_id) for article_id in late}
    rewritten |= {key for r in late_records.values() for key in band_keys(signature(r["text"]))}
    assert rewritten <= stored["near_index"]
    assert not (expected["near_index"] - rewritten) & stored["near_index"]
    assert fingerprint(first["old-bbc"]["text"]) not in stored["fingerprints"]
    assert fingerprint(late_records["late-near"]["text"]) in stored["fingerprints"]
