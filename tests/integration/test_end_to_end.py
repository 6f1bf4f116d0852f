"""The seed article through the real broker and a real worker, checked against docs/CONTRACT.md."""

from __future__ import annotations

import re
import shutil
import subprocess
from datetime import datetime

import orjson
import pytest
from kafka import KafkaProducer

from tests.conftest import REPO_ROOT, SEED_PATH

SEED_ID = SEED_PATH.stem
WIDGET_TEXT = ("Cliquez sur une étoile", "Note moyenne", "Laisser un commentaire", "Aucun vote")


@pytest.fixture(scope="module")
def worker_port(pipeline_run):
    return pipeline_run.start_worker()


def by_id(records: list[dict]) -> dict[str, dict]:
    return {r["id"]: r for r in records if "id" in r}


def test_seed_as_txt_is_enriched_per_contract(pipeline_run, worker_port):
    done = pipeline_run.cli("ingest", str(SEED_PATH))
    assert done.returncode == 0, done.stderr.decode()
    assert b"ingested 1 article" in done.stdout

    record = by_id(pipeline_run.consume("enriched", lambda rs: SEED_ID in by_id(rs)))[SEED_ID]

    assert record["schema_version"] == 1
    assert record["_key"] == SEED_ID.encode()
    assert record["url"] is None and record["source"] is None
    assert record["source_url"].startswith("https://www.aljazeera.com/news/2023/9/4/")
    datetime.fromisoformat(record["ingested_at"])
    text = record["text"]
    assert text.startswith("Le dirigeant nord-coréen Kim Jong Un")
    assert not any(widget in text for widget in WIDGET_TEXT)
    assert "Source:" not in text

    assert record["language"] == "fr"
    assert 0.5 < record["language_confidence"] <= 1.0
    assert record["mixed_language"] is True
    segments = record["segments"]
    assert segments == sorted(segments, key=lambda s: s["start"])
    langs = {text[s["start"] : s["end"]][:30]: s["lang"] for s in segments}
    assert langs["Russian Defence Minister Serge"] == "en"
    assert langs["Les responsables affirment que"] == "fr"
    assert {s["lang"] for s in segments} == {"fr", "en"}

    entities = record["entities"]
    for entity in entities:
        assert text[entity["start"] : entity["end"]] == entity["text"]
        assert entity["label"] in {"PERSON", "ORG", "LOC", "MISC"}
        assert entity["lang"] in {"fr", "en"}
    people = {e["text"] for e in entities if e["label"] == "PERSON"}
    places = {e["text"] for e in entities if e["label"] == "LOC"}
    assert {"Vladimir Poutine", "Vladimir Putin", "Adrienne Watson", "John Kirby"} <= people
    assert {"Vladivostok", "North Korea", "Corée du Nord"} <= places
    english = {e["text"]: e["lang"] for e in entities}
    assert english["Vladimir Putin"] == "en" and english["Vladimir Poutine"] == "fr"
    poutine = [e for e in entities if e["text"] == "Poutine"]
    assert poutine and all(e["canonical"] == "Vladimir Poutine" for e in poutine)

    keys = {e["text"]: e["key"] for e in entities}
    assert keys["Vladimir Poutine"] == keys["Vladimir Putin"] == keys["Poutine"] != ""
    assert keys["Corée du Nord"] == keys["North Korea"]

    assert record["dedup"] == {"status": "unique", "duplicate_of": None, "similarity": None}
    assert record["quality"] == []
    assert record["story"] == {"id": SEED_ID, "similarity": 1.0, "related": []}


def test_seed_resent_as_json_with_another_id_is_a_duplicate(pipeline_run, worker_port):
    copy = {"id": "seed-copy", "text": SEED_PATH.read_text(encoding="utf-8"), "source": "wire"}
    done = pipeline_run.cli("ingest", "-", stdin=orjson.dumps(copy) + b"\n")
    assert done.returncode == 0, done.stderr.decode()

    records = by_id(
        pipeline_run.consume("enriched", lambda rs: {"seed-copy", SEED_ID} <= by_id(rs).keys())
    )
    duplicate = records["seed-copy"]
    assert duplicate["dedup"]["status"] == "exact_duplicate"
    assert duplicate["dedup"]["duplicate_of"] == SEED_ID
    assert duplicate["source"] == "wire"
    assert duplicate["text"] == records[SEED_ID]["text"]
    assert duplicate["story"]["id"] == SEED_ID
    assert duplicate["story"]["related"][0] == {
        "id": SEED_ID, "similarity": duplicate["story"]["similarity"], "language": "fr"
    }


def test_an_english_version_of_the_seed_joins_its_story(pipeline_run, worker_port):
    english = REPO_ROOT / "samples" / "seed-english.txt"
    done = pipeline_run.cli("ingest", str(english))
    assert done.returncode == 0, done.stderr.decode()
    records = by_id(
        pipeline_run.consume("enriched", lambda rs: {english.stem, SEED_ID} <= by_id(rs).keys())
    )
    story = records[english.stem]["story"]
    assert records[english.stem]["language"] == "en"
    assert story["id"] == SEED_ID
    assert SEED_ID in {r["id"] for r in story["related"]}


def test_bad_messages_go_to_the_dlq_and_the_next_good_one_is_enriched(pipeline_run, worker_port):
    bad = [b"", b"\xff\xfe\x00\x01binary", b'{"text": "cut', b"[]", b'{"title": "no body"}',
           b'{"text": 17}']
    good = orjson.dumps({"id": "after-bad", "text": "The Bank of England raised rates in London."})
    pipeline_run.produce([*bad, good], keys=[f"bad-{i}".encode() for i in range(len(bad))] + [b"g"])

    dead = pipeline_run.consume("dlq", lambda rs: len(rs) >= len(bad))
    assert sorted(r["error"] for r in dead) == sorted(
        ["empty_message", "invalid_utf8", "invalid_json", "invalid_record", "invalid_record",
         "invalid_record"]
    )
    for record in dead:
        assert record["stage"] == "parse" and record["detail"]
        assert record["topic"] == pipeline_run.topics["raw"]
        assert isinstance(record["partition"], int) and isinstance(record["offset"], int)
        assert record["key"].startswith("bad-")
    binary = next(r for r in dead if r["error"] == "invalid_utf8")
    assert binary["original_encoding"] == "base64"

    enriched = by_id(pipeline_run.consume("enriched", lambda rs: "after-bad" in by_id(rs)))
    assert enriched["after-bad"]["language"] == "en"


def test_output_read_with_kcat_an_independent_client(pipeline_run, worker_port):
    kcat = shutil.which("kcat") or shutil.which("kafkacat")
    assert kcat, "kcat is required (apt-get install kcat); .ci/run installs it"
    pipeline_run.consume("enriched", lambda rs: SEED_ID in by_id(rs))
    out = subprocess.run(
        [kcat, "-C", "-b", pipeline_run.bootstrap, "-t", pipeline_run.topics["enriched"],
         "-o", "beginning", "-e", "-q", "-f", "%k\t%s\n"],
        capture_output=True, timeout=60, check=True,
    ).stdout.decode()
    rows = dict(line.split("\t", 1) for line in out.splitlines() if "\t" in line)
    assert orjson.loads(rows[SEED_ID])["language"] == "fr"


def test_pipeline_tail_prints_enriched_records(pipeline_run, worker_port):
    pipeline_run.consume("enriched", lambda rs: SEED_ID in by_id(rs))
    done = pipeline_run.cli("tail", "--count", "1", "--timeout", "20")
    assert done.returncode == 0, done.stderr.decode()
    assert orjson.loads(done.stdout.splitlines()[0])["schema_version"] == 1


def test_pipeline_tail_pretty_summarises_any_topic(pipeline_run, worker_port):
    pipeline_run.consume("enriched", lambda rs: {"seed-copy", SEED_ID} <= by_id(rs).keys())
    done = pipeline_run.cli("tail", "--pretty", "--timeout", "10")
    assert done.returncode == 0, done.stderr.decode()
    text = done.stdout.decode()
    assert "\x1b[" not in text  # piped: plain
    seed = text[text.index(f"{SEED_ID}  Le dirigeant nord-coréen") :]
    assert re.search(r"languages +fr \d+%, en \d+% \(mixed\)", seed)
    assert "Vladimir Poutine / Vladimir Putin" in seed and "Vladivostok" in seed
    assert "exact duplicate of " + SEED_ID in text
    dead = pipeline_run.cli("tail", "--pretty", "--topic", pipeline_run.topics["dlq"],
                            "--timeout", "10")  # fmt: skip
    assert "DLQ  invalid_json" in dead.stdout.decode()


def test_pipeline_tail_prints_a_tombstone_as_null(pipeline_run):
    topic = f"tombstones-{pipeline_run.run_id}"
    producer = KafkaProducer(bootstrap_servers=pipeline_run.bootstrap)
    # One key: one partition, so the order holds (the topic is auto-created with several).
    producer.send(topic, key=b"gone", value=None).get(timeout=30)
    producer.send(topic, key=b"gone", value=b'{"id": "after"}').get(timeout=30)
    producer.close()
    plain = pipeline_run.cli("tail", "--topic", topic, "--timeout", "5")
    assert plain.returncode == 0, plain.stderr.decode()
    assert plain.stdout.decode().splitlines() == ["null", '{"id": "after"}']
    pretty = pipeline_run.cli("tail", "--pretty", "--topic", topic, "--timeout", "5")
    assert pretty.returncode == 0 and "(empty message)" in pretty.stdout.decode()


def test_metrics_pass_promtool_and_count_the_stages(pipeline_run, worker_port):
    pipeline_run.consume("enriched", lambda rs: SEED_ID in by_id(rs))
    status, body = pipeline_run.http_get(worker_port, "/metrics")
    assert status == 200
    text = body.decode()
    assert 'pipeline_articles_total{outcome="out",stage="deduplicate"}' in text
    assert "pipeline_stage_duration_seconds_bucket" in text
    assert 'pipeline_dlq_messages_total{error="invalid_json",stage="parse"}' in text
    assert 'pipeline_duplicates_total{kind="exact_duplicate"}' in text
    promtool = shutil.which("promtool")
    assert promtool, "promtool is required (apt-get install prometheus); .ci/run installs it"
    check = subprocess.run(
        [promtool, "check", "metrics"], input=body, capture_output=True, check=False
    )
    assert check.returncode == 0, check.stdout.decode() + check.stderr.decode()


def test_health_and_readiness(pipeline_run, worker_port):
    assert pipeline_run.http_get(worker_port, "/health")[0] == 200
    status, body = pipeline_run.http_get(worker_port, "/ready")
    assert status == 200 and orjson.loads(body)["ready"] is True
