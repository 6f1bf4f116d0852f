"""Nothing lost: worker crashes (SIGKILL), a broker restart, and hostile payloads."""

from __future__ import annotations

import os
import signal
import threading
import time
from pathlib import Path

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from kafka import KafkaProducer
from kafka.errors import KafkaError

from pipeline.agents import DEDUP_RECORDS_IN_FLIGHT, SPARE_BATCHES_IN_FLIGHT
from pipeline.kafka_local import LocalKafka, default_state_dir
from pipeline.settings import Settings
from tests.conftest import TEST_DATA
from tests.integration.conftest import PipelineRun, TopicReader, free_port

# A SIGKILL repeats what the worker had in flight (its analysis batches, its dedup records) and
# what it acked since its last commit (commits follow every COMMIT_INTERVAL_SECONDS); a broker
# restart repeats nothing. The crash test prints how many it saw (docs/BENCHMARKS.md, "Reliability").
BATCHES_IN_FLIGHT = Settings().ner_process_count + SPARE_BATCHES_IN_FLIGHT
REPEATS_PER_CRASH = BATCHES_IN_FLIGHT * Settings().batch_size + 2 * DEDUP_RECORDS_IN_FLIGHT
MAX_REPEATS_AFTER_CRASHES = 2 * REPEATS_PER_CRASH
LANGUAGES = ["en", "fr", "de", "es", "it", "pt", "nl", "pl"]


def articles(count: int) -> list[tuple[bytes, bytes]]:
    """Distinct short articles (4 real sentences each) from the language-ID test sentences."""
    sentences = {
        lang: (TEST_DATA / "langid" / "sentences" / f"{lang}.txt").read_text().splitlines()
        for lang in LANGUAGES
    }
    out = []
    for i in range(count):
        lang = LANGUAGES[i % len(LANGUAGES)]
        start = (i // len(LANGUAGES)) * 4 % (len(sentences[lang]) - 4)
        text = " ".join(sentences[lang][start : start + 4])
        article_id = f"art-{i:05d}"
        out.append((article_id.encode(), orjson.dumps({"id": article_id, "text": text})))
    return out


def ids_on(records: list[dict]) -> set[str]:
    return {r["id"] for r in records if "id" in r}


@pytest.fixture(scope="module")
def own_broker(tmp_path_factory):
    """A broker of this module's own, so restarting it never disturbs the shared one."""
    broker = LocalKafka(
        tmp_path_factory.mktemp("restart-kafka"),
        port=free_port(),
        controller_port=free_port(),
        libs=default_state_dir() / "libs",
        heap="512m",
    )
    assert broker.start().running
    yield broker
    broker.stop()


@pytest.fixture(scope="module")
def two_workers(own_broker, tmp_path_factory):
    run = PipelineRun(bootstrap=own_broker.bootstrap, workdir=tmp_path_factory.mktemp("crash"))
    run.start_worker()
    run.start_worker()
    yield run, own_broker
    run.stop_workers()


# Four phases of up to 240-300 s each: the suite's 300 s per test cut it off on a slow run
# (267 s on an idle 2-core machine).
@pytest.mark.timeout(900)
def test_two_sigkills_and_a_broker_restart_lose_nothing(two_workers):
    run, broker = two_workers
    batch = articles(1200)
    expected = {key.decode() for key, _ in batch}
    reader = TopicReader(run.bootstrap, run.topics["enriched"])

    def produce_slowly() -> None:
        # A steady stream, so crashes and the restart land mid-flow. A chunk refused while the
        # broker is down is sent again, as any producer with retries would.
        for start in range(0, len(batch), 50):
            chunk = batch[start : start + 50]
            for attempt in range(30):
                try:
                    run.produce([v for _, v in chunk], keys=[k for k, _ in chunk])
                    break
                except Exception:  # noqa: BLE001 - broker restarting
                    time.sleep(1)
            time.sleep(0.25)

    producer = threading.Thread(target=produce_slowly)
    producer.start()
    try:
        reader.wait_for(lambda rs: len(ids_on(rs)) >= 150, 240, "first outputs")
        run.restart_worker(0)  # SIGKILL, then a fresh process with the same state dir
        reader.wait_for(lambda rs: len(ids_on(rs)) >= 400, 240, "outputs after 1st kill")
        assert broker.stop()
        assert broker.start().running
        reader.wait_for(lambda rs: len(ids_on(rs)) >= 600, 240, "outputs after broker restart")
        run.restart_worker(1)
    finally:
        producer.join()
    reader.wait_for(lambda rs: expected <= ids_on(rs), 300, "every id")
    reader.close()

    assert all(worker.poll() is None for worker in run.workers), run.log_tail()
    dead = TopicReader(run.bootstrap, run.topics["dlq"])
    dead.poll(3)
    assert dead.records == []
    # At-least-once: repeats are possible, always with the key of the article and the same
    # verdict; offsets are committed as soon as delivery is confirmed, so they are few.
    assert all(r["_key"] == r["id"].encode() for r in reader.records)
    repeats = len(reader.records) - len(ids_on(reader.records))
    print(f"repeated records after 2 SIGKILLs and a broker restart: {repeats}")
    verdicts: dict[str, set] = {}
    for record in reader.records:
        verdicts.setdefault(record["id"], set()).add(orjson.dumps(record["dedup"]))
    assert all(len(seen) == 1 for seen in verdicts.values())
    assert repeats <= MAX_REPEATS_AFTER_CRASHES, repeats


MALFORMED = {
    "empty body": (b"", "empty_message"),
    "binary": (bytes(range(256)), "invalid_utf8"),
    "invalid UTF-8 in JSON": (b'{"text": "caf\xe9"}', "invalid_utf8"),
    "truncated JSON": (b'{"id": "t1", "text": "Le pr', "invalid_json"),
    "JSON array": (b'[{"text": "x"}]', "invalid_record"),
    "JSON string": (b'"just a string"', "invalid_record"),
    "no text nor html": (b'{"id": "n1", "title": "Only a title"}', "invalid_record"),
    "text is a number": (b'{"id": "n2", "text": 12345}', "invalid_record"),
    "id is an object": (b'{"id": {"a": 1}, "text": "Hello there"}', "invalid_record"),
    "bad timestamp": (b'{"text": "Hello", "published_at": "last tuesday"}', "invalid_record"),
}


def test_ten_kinds_of_malformed_messages_each_land_on_the_dlq(pipeline_run):
    if not pipeline_run.workers:
        pipeline_run.start_worker()
    keys = [f"bad-{i}".encode() for i in range(len(MALFORMED))]
    good = orjson.dumps({"id": "good-after-bad", "text": "The Bank of England raised rates."})
    pipeline_run.produce([v for v, _ in MALFORMED.values()] + [good], keys=[*keys, b"good"])

    dead = TopicReader(pipeline_run.bootstrap, pipeline_run.topics["dlq"])
    dead.wait_for(lambda rs: {r["key"] for r in rs} >= {k.decode() for k in keys}, 120, "DLQ")
    by_key = {r["key"]: r for r in dead.records}
    for key, (name, (payload, code)) in zip(keys, MALFORMED.items(), strict=True):
        record = by_key[key.decode()]
        assert record["error"] == code, name
        assert record["detail"], name
        original = (
            record["original"].encode()
            if record["original_encoding"] == "utf-8"
            else __import__("base64").b64decode(record["original"])
        )
        assert original == payload, name
    out = TopicReader(pipeline_run.bootstrap, pipeline_run.topics["enriched"])
    out.wait_for(lambda rs: "good-after-bad" in ids_on(rs), 120, "the good message")


def test_the_broker_refuses_a_raw_message_over_the_raw_topic_limit(pipeline_run):
    """The worker creates the raw topic with max.message.bytes = max_message_bytes + overhead,
    so a producer learns at once that its message is too large; nothing is lost in between."""
    if not pipeline_run.workers:
        pipeline_run.start_worker()
    producer = KafkaProducer(bootstrap_servers=pipeline_run.bootstrap, max_request_size=2_000_000)
    try:
        oversized = orjson.dumps({"text": "word " * 200_000})  # 1 MB > 900,000 + 65,536
        with pytest.raises(KafkaError, match="TooLarge"):
            producer.send(pipeline_run.topics["raw"], value=oversized).get(timeout=30)
    finally:
        producer.close()


def test_flagged_but_kept_inputs(pipeline_run):
    """Empty text and huge text are not errors: they come out with a quality flag."""
    if not pipeline_run.workers:
        pipeline_run.start_worker()
    huge = " ".join(["Le gouvernement a présenté son budget à Paris."] * 6000)  # ~290 kB
    pipeline_run.produce(
        [orjson.dumps({"id": "blank", "text": "   \n\n  "}), orjson.dumps({"id": "huge", "text": huge})]
    )
    out = TopicReader(pipeline_run.bootstrap, pipeline_run.topics["enriched"])
    out.wait_for(lambda rs: {"blank", "huge"} <= ids_on(rs), 120, "flagged records")
    records = {r["id"]: r for r in out.records}
    assert "empty" in records["blank"]["quality"]
    assert "truncated" in records["huge"]["quality"]
    assert len(records["huge"]["text"]) <= 200_000


@pytest.fixture(scope="module")
def fuzz_readers(pipeline_run):
    readers = {name: TopicReader(pipeline_run.bootstrap, pipeline_run.topics[name]) for name in ("enriched", "dlq")}
    yield readers
    for reader in readers.values():
        reader.close()


@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    payloads=st.lists(
        st.one_of(
            st.binary(max_size=300),
            st.text(max_size=300).map(str.encode),
            st.dictionaries(
                st.sampled_from(["id", "text", "html", "title", "url", "published_at", "language"]),
                st.one_of(st.none(), st.integers(-(2**63), 2**63 - 1), st.text(max_size=200),
                          st.lists(st.integers(0, 10))),
            ).map(orjson.dumps),
        ),
        min_size=5,
        max_size=5,
    )
)
def test_fuzzed_payloads_end_in_output_or_dlq(pipeline_run, fuzz_readers, payloads):
    if not pipeline_run.workers:
        pipeline_run.start_worker()
    tag = f"fz-{time.monotonic_ns()}"
    keys = [f"{tag}-{i}".encode() for i in range(len(payloads))]
    pipeline_run.produce(payloads, keys=keys)
    wanted = {k for k in keys}

    def seen() -> set[bytes]:
        out = {r["_key"] for r in fuzz_readers["enriched"].records}
        out |= {r["key"].encode() for r in fuzz_readers["dlq"].records if r.get("key")}
        return out

    deadline = time.monotonic() + 60
    while not wanted <= seen():
        assert time.monotonic() < deadline, f"lost: {wanted - seen()}\n{pipeline_run.log_tail()}"
        for reader in fuzz_readers.values():
            reader.poll(0.2)
    assert pipeline_run.workers[0].poll() is None, pipeline_run.log_tail()



def ner_processes_of(worker_pid: int) -> list[int]:
    """The pids of a worker's NER children (they name themselves `pipeline-ner`)."""
    # Every thread's children: a respawned NER process is the child of the thread that waits on it.
    kids = [
        int(kid)
        for task in Path(f"/proc/{worker_pid}/task").iterdir()
        for kid in (task / "children").read_text().split()
    ]
    ner = [kid for kid in kids if Path(f"/proc/{kid}/comm").read_text().strip() == "pipeline-ner"]
    assert ner, f"worker {worker_pid} has no NER process among {kids}"
    return ner


def test_a_killed_ner_process_is_respawned_and_loses_nothing(pipeline_run):
    if not pipeline_run.workers:
        pipeline_run.start_worker()
    worker = pipeline_run.workers[0]
    batch = articles(1400)[1300:1400]  # ids no other test uses
    out = TopicReader(pipeline_run.bootstrap, pipeline_run.topics["enriched"])
    dlq = TopicReader(pipeline_run.bootstrap, pipeline_run.topics["dlq"])
    pipeline_run.produce([v for _, v in batch], keys=[k for k, _ in batch])
    wanted = {key.decode() for key, _ in batch}
    out.wait_for(lambda rs: len(wanted & ids_on(rs)) >= 5, 120, "the first records")
    assert "the NER process died" not in pipeline_run.log_tail(400)
    first, *_ = ner_processes_of(worker.pid)
    os.kill(first, signal.SIGKILL)  # mid-stream: a batch is being tagged
    out.wait_for(lambda rs: wanted <= ids_on(rs), 180, "every id after the NER process died")
    dlq.poll(2.0)
    assert not wanted & {r.get("key") for r in dlq.records}, "a healthy article went to the DLQ"
    assert worker.poll() is None, pipeline_run.log_tail()
    assert first not in ner_processes_of(worker.pid)
    assert "the NER process died" in pipeline_run.log_tail(400)


def test_sigterm_stops_the_worker_cleanly_and_a_restart_resumes(pipeline_run):
    if not pipeline_run.workers:
        pipeline_run.start_worker()
    batch = articles(1300)[1200:]  # ids not used by the crash test
    pipeline_run.produce([v for _, v in batch], keys=[k for k, _ in batch])
    for process in pipeline_run.workers:
        process.terminate()
    started = time.monotonic()
    codes = [process.wait(timeout=60) for process in pipeline_run.workers]
    assert codes == [0] * len(codes), pipeline_run.log_tail()
    assert time.monotonic() - started < 30, "graceful shutdown took too long"
    pipeline_run.workers.clear()
    pipeline_run.ports.clear()
    pipeline_run.start_worker()
    out = TopicReader(pipeline_run.bootstrap, pipeline_run.topics["enriched"])
    wanted = {key.decode() for key, _ in batch}
    out.wait_for(lambda rs: wanted <= ids_on(rs), 180, "every id after a SIGTERM restart")
