"""Every failure path ends on the output or the DLQ, on the real broker, with the worker alive.

The worker runs with small limits (raw messages of at most 250 kB, records of at most 300 kB) so that the broker's refusals are
reached with small messages, a short NER time limit, and faults injected through
PIPELINE_TEST_FAULTS (a real failure inside a real worker; no mock of Kafka).
"""

from __future__ import annotations

import base64
import hashlib
import os
import re
import signal
import time
from collections import Counter

import orjson
import pytest
from kafka import KafkaConsumer, TopicPartition
from kafka.admin import KafkaAdminClient

from tests.integration.conftest import PipelineRun, TopicReader
from tests.integration.test_reliability import ner_processes_of

FAULTS = {"prepare": "FAULT-PREPARE", "tag": "FAULT-TAG", "assemble": "FAULT-ASSEMBLE",
          "deduplicate": "FAULT-DEDUP"}
DROP = "FAULT-DROP"  # the message is lost once between fetcher and agent, not a stage failure
LIMITS = {
    "PIPELINE_MAX_MESSAGE_BYTES": "250000",
    "PIPELINE_MAX_RECORD_BYTES": "300000",
    "PIPELINE_NER_TIMEOUT_SECONDS": "6",
    "PIPELINE_TEST_FAULTS": orjson.dumps({**FAULTS, "drop": DROP}).decode(),
}
STORY = (
    "Vladimir Putin met Joe Biden in Geneva on Wednesday. The two leaders spoke for four hours "
    "about arms control, cyber attacks and the fate of prisoners held in both countries."
)


def story(article_id: str, prefix: str = "") -> bytes:
    return orjson.dumps({"id": article_id, "text": f"{prefix} {STORY} ({article_id})".strip()})


def original_bytes(record: dict) -> bytes:
    if record["original_encoding"] == "base64":
        return base64.b64decode(record["original"])
    return record["original"].encode()


@pytest.fixture(scope="module")
def run(bootstrap, tmp_path_factory):
    run = PipelineRun(bootstrap=bootstrap, workdir=tmp_path_factory.mktemp("failures"))
    run.settings.update(LIMITS)
    run.start_worker()
    yield run
    run.stop_workers()


@pytest.fixture(scope="module")
def outputs(run):
    readers = {name: TopicReader(run.bootstrap, run.topics[name]) for name in ("enriched", "dlq")}
    yield readers
    for reader in readers.values():
        reader.close()


def wait_for_keys(outputs, keys: set[str], timeout: float = 180) -> dict[str, list[dict]]:
    """Records for each key, from the enriched topic (by id) and the DLQ (by key)."""

    def found() -> dict[str, list[dict]]:
        by_key: dict[str, list[dict]] = {}
        for record in outputs["enriched"].records:
            by_key.setdefault(record["id"], []).append(record)
        for record in outputs["dlq"].records:
            by_key.setdefault(record.get("key") or "", []).append(record)
        return by_key

    deadline = time.monotonic() + timeout
    while not keys <= set(found()):
        assert time.monotonic() < deadline, f"never came out: {keys - set(found())}"
        for reader in outputs.values():
            reader.poll(0.3)
    return found()


def produce_big(run: PipelineRun, values: list[bytes], keys: list[bytes]) -> None:
    from kafka import KafkaProducer

    producer = KafkaProducer(bootstrap_servers=run.bootstrap, acks="all", max_request_size=600_000)
    try:
        for value, key in zip(values, keys, strict=True):
            producer.send(run.topics["raw"], key=key, value=value).get(timeout=30)
    finally:
        producer.close()


def test_dlq_records_larger_than_the_broker_allows_are_cut_and_land(run, outputs):
    binary = os.urandom(240_000)  # 320 kB once in base64: over the 300 kB record limit
    quotes = b'{"text": "' + b'\\"' * 95_000 + b"\x01" * 5_000  # 195 kB, ~410 kB once escaped in JSON
    produce_big(run, [binary, quotes, story("after-big")], [b"big-binary", b"big-quotes", b"a"])
    found = wait_for_keys(outputs, {"big-binary", "big-quotes", "after-big"})
    for key, original in (("big-binary", binary), ("big-quotes", quotes)):
        [record] = found[key]
        assert record["error"] in ("invalid_utf8", "invalid_json")
        assert record["original_size"] == len(original)
        assert record["original_sha256"] == hashlib.sha256(original).hexdigest()
        kept = original_bytes(record)
        assert original.startswith(kept) and kept
        assert record["original_truncated"] == (len(kept) < len(original))
    assert found["big-binary"][0]["original_truncated"]
    assert run.workers[0].poll() is None, run.log_tail()


def test_an_enriched_record_over_the_limit_keeps_the_entities_that_fit(run, outputs):
    lines = "\n".join(
        f"{i}. Jean Dupont{i} (Lyon) devance Marie Curie{i} (Paris) et Paul Martin{i} (Lille)"
        for i in range(1_800)
    )
    run.produce([orjson.dumps({"id": "many-names", "text": lines})], keys=[b"many-names"])
    found = wait_for_keys(outputs, {"many-names"}, timeout=300)
    [record] = found["many-names"]
    assert "entities_truncated" in record["quality"], record.get("error")
    assert len(orjson.dumps({k: v for k, v in record.items() if k != "_key"})) <= 300_000
    assert len(record["entities"]) > 100
    assert run.workers[0].poll() is None, run.log_tail()


def test_an_exception_in_each_phase_dead_letters_that_article_alone(run, outputs):
    keys = [f"fault-{phase}" for phase in FAULTS]
    values = [story(key, marker) for key, marker in zip(keys, FAULTS.values(), strict=True)]
    good = [f"fault-mate-{i}" for i in range(4)]
    run.produce(values + [story(key) for key in good], keys=[k.encode() for k in keys + good])
    found = wait_for_keys(outputs, set(keys + good))
    stages = {"prepare": "prepare", "tag": "entities", "assemble": "assemble",
              "deduplicate": "deduplicate"}
    for phase, key in zip(FAULTS, keys, strict=True):
        [record] = found[key]
        assert (record.get("error"), record.get("stage")) == ("stage_failed", stages[phase])
        assert "InjectedFault" in record["detail"]
    for key in good:
        assert [r.get("error") for r in found[key]] == [None]
    assert run.workers[0].poll() is None, run.log_tail()


def test_a_hung_ner_process_is_stopped_and_nothing_is_lost(run, outputs):
    worker = run.workers[0]
    hung, *_ = ner_processes_of(worker.pid)
    os.kill(hung, signal.SIGSTOP)
    keys = [f"while-hung-{i}" for i in range(6)]
    for key in keys:  # one batch each: batches go to the NER processes in turn, the hung one too
        run.produce([story(key)], keys=[key.encode()])
        time.sleep(0.3)
    found = wait_for_keys(outputs, set(keys), timeout=180)
    assert all([r.get("error") for r in found[key]] == [None] for key in keys)
    assert worker.poll() is None, run.log_tail()
    assert hung not in ner_processes_of(worker.pid)
    assert "stopped after its time limit" in run.log_tail(2000)


HOSTILE = {
    "wrong types": b'{"id": "h-types", "text": ["a", "b"], "title": 7}',
    "lone surrogate": b'{"id": "h-surrogate", "text": "caf\\ud800 au lait"}',
    "NUL and zero-width": orjson.dumps(
        {"id": "h-nul", "text": "Paris\u0000 a\u200b\u200d vot\u00e9.\u0000\ufeff Le maire de Lyon."}
    ),
    "deep nesting": b'{"id": "h-deep", "text": "x", "extra": ' + b"[" * 5000 + b"]" * 5000 + b"}",
    "pathological HTML": orjson.dumps(
        {"id": "h-html", "html": "<div>" * 20_000 + "Texte" + "</div>" * 20_000}
    ),
    "many short lines": orjson.dumps(
        {"id": "h-lines", "text": "\n".join(f"M. Durand{i} 12" for i in range(12_000))}
    ),
    "empty key": story("h-empty-key"),
    "binary key": story("h-binary-key"),
    "huge key": story("h-huge-key"),
}
HOSTILE_KEYS = {
    "empty key": b"",
    "binary key": b"\xff\xfe\x00key",
    "huge key": b"k" * 5_000,
}


def test_hostile_input_ends_exactly_once_on_the_output_or_the_dlq(run, outputs):
    names = list(HOSTILE)
    keys = [HOSTILE_KEYS.get(name, f"hostile-{i}".encode()) for i, name in enumerate(names)]
    produce_big(run, [HOSTILE[name] for name in names], keys)
    by_id = {re.search(rb'"id": ?"([^"]+)"', HOSTILE[name])[1].decode(): name for name in names}

    def ends() -> Counter[str]:
        seen: Counter[str] = Counter()
        for record in outputs["enriched"].records:
            if record["id"] in by_id:
                seen[by_id[record["id"]]] += 1
        for record in outputs["dlq"].records:
            head = original_bytes(record)[:200]
            seen.update(name for name in names if head and HOSTILE[name].startswith(head))
        return seen

    deadline = time.monotonic() + 300
    while set(ends()) < set(names) and time.monotonic() < deadline:
        for reader in outputs.values():
            reader.poll(0.5)
    time.sleep(3)  # a repeat would come now
    for reader in outputs.values():
        reader.poll(0.5)
    seen = ends()
    assert {name: seen[name] for name in names} == dict.fromkeys(names, 1), run.log_tail()
    assert run.workers[0].poll() is None, run.log_tail()


def test_a_message_the_consumer_lost_is_read_again_not_committed_past(run, outputs):
    # The first message of a partition lane is lost once between the fetcher and the agent, as
    # Faust loses one around a rebalance; the two after it are acked. Faust alone would commit
    # past it and it would never come out.
    keys = ["lost-once", "after-lost-1", "after-lost-2"]
    run.produce(
        [story("lost-once", prefix=DROP), story(keys[1]), story(keys[2])],
        keys=[b"one-lane"] * 3,
    )
    found = wait_for_keys(outputs, set(keys), timeout=120)
    assert [r.get("error") for r in found["lost-once"]] == [None]
    assert "reading the partition again" in run.log_tail(400)
    metrics_text = run.http_get(run.ports[0], "/metrics")[1].decode()
    reread = re.search(r"^pipeline_unread_rereads_total\{.*\} [1-9]", metrics_text, re.MULTILINE)
    assert reread, metrics_text


def test_a_refused_record_becomes_a_dlq_record_on_the_real_broker(bootstrap, tmp_path_factory):
    """The enriched topic exists with a 3 kB limit: the broker refuses bigger records."""
    run = PipelineRun(bootstrap=bootstrap, workdir=tmp_path_factory.mktemp("refused"))
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    admin.create_topics(
        {run.topics["enriched"]: {"num_partitions": 1, "replication_factor": 1,
                                  "configs": {"max.message.bytes": "3000"}}},
        wait_for_metadata=True,
    )
    admin.close()
    run.start_worker()
    try:
        # Small articles on both sides of the big one: produced together, they are likely to
        # share its output batch, which the broker refuses as a whole. Each fits, but not 40 of
        # them (~1 kB each): batches of small records alone are refused too, and a record sent
        # again must go alone, not with the records sent next to it.
        smalls = [f"small-{n}" for n in range(40)]
        keys = smalls[:20] + ["too-big-for-the-topic"] + smalls[20:]
        run.produce(
            [story(key, "word " * 400) if key.startswith("too-big")
             else orjson.dumps({"id": key, "text": f"Paris {key}."}) for key in keys],
            keys=[key.encode() for key in keys],
        )
        readers = {n: TopicReader(run.bootstrap, run.topics[n]) for n in ("enriched", "dlq")}
        found = wait_for_keys(readers, set(keys))
        [dead] = found["too-big-for-the-topic"]
        assert (dead["error"], dead["stage"]) == ("output_too_large", "deduplicate")
        # A record without "id" is a DLQ record: show its error and reason, and the log.
        small_ids = {key: [r.get("id") for r in found[key]] for key in smalls}
        assert small_ids == {key: [key] for key in smalls}, (found, run.log_tail())
        assert run.workers[0].poll() is None, run.log_tail()
        # A refusal is handled: warnings, no error (an unawaited future of the refused batch
        # used to log one per record).
        assert '"level": "ERROR"' not in run.log_tail(10_000), run.log_tail()
    finally:
        run.stop_workers()


def test_a_refused_dlq_record_stops_the_worker_without_committing_past_it(
    bootstrap, tmp_path_factory
):
    run = PipelineRun(bootstrap=bootstrap, workdir=tmp_path_factory.mktemp("dlq-refused"))
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    admin.create_topics(
        {
            run.topics["raw"]: {"num_partitions": 1, "replication_factor": 1},
            run.topics["dlq"]: {"num_partitions": 1, "replication_factor": 1,
                                "configs": {"max.message.bytes": "1000"}},
        },
        wait_for_metadata=True,
    )
    run.start_worker()
    run.produce([story("before"), b"{not json" + b" padding" * 500, story("after")],
                keys=[b"before", b"bad", b"after"])
    worker = run.workers[0]
    assert worker.wait(timeout=180) == 70, run.log_tail()
    assert "could not be accounted for" in run.log_tail(400)
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, group_id=f"test-{run.run_id}",
                             enable_auto_commit=False)
    committed = consumer.committed(TopicPartition(run.topics["raw"], 0))
    consumer.close()
    assert committed is None or committed <= 1  # never past the bad message (offset 1)
    # With a DLQ that accepts it, the message is read again and lands there.
    run.workers.clear()
    run.ports.clear()
    run.settings["PIPELINE_TOPIC_DLQ"] = f"dlq-ok-{run.run_id}"
    run.start_worker()
    try:
        reader = TopicReader(bootstrap, f"dlq-ok-{run.run_id}")
        reader.wait_for(lambda rs: any(r.get("key") == "bad" for r in rs), 120, "the bad message")
    finally:
        run.stop_workers()


def test_three_workers_with_the_same_settings_share_one_host(bootstrap, tmp_path_factory):
    run = PipelineRun(bootstrap=bootstrap, workdir=tmp_path_factory.mktemp("one-host"))
    from tests.integration.conftest import free_port

    port = free_port()
    try:
        ports = [run.start_worker(port=port) for _ in range(3)]
        assert ports == [port, port + 1, port + 2]
        keys = [f"host-{i}" for i in range(24)]
        run.produce([story(key) for key in keys], keys=[k.encode() for k in keys])
        reader = TopicReader(bootstrap, run.topics["enriched"])
        reader.wait_for(
            lambda rs: set(keys) <= {r["id"] for r in rs}, 240, "every article", run.state
        )
        assert all(worker.poll() is None for worker in run.workers), run.log_tail()
        slots = sorted(p.name for p in (run.workdir / "state-0" / "worker").glob("*/slot-*"))
        assert slots == ["slot-0", "slot-1", "slot-2"]
    finally:
        run.stop_workers()
