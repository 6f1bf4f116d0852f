"""`make run`'s pure parts: which articles it sends and how it finds each one's outcome."""

from __future__ import annotations

import orjson

from pipeline.demo import output_keys, sample_records
from pipeline.ingest import RawRecord
from pipeline.records import parse_raw_article
from tests.conftest import REPO_ROOT

SAMPLES = REPO_ROOT / "samples"
MAX_BYTES = 900_000


def test_the_samples_are_sent_in_order_then_a_copy_of_the_first() -> None:
    records = sample_records([SAMPLES / "seed.txt", SAMPLES / "bbc-1.html"], MAX_BYTES)
    assert [r.key for r in records] == [b"seed", None, b"seed-copy"]
    first, copy = orjson.loads(records[0].value), orjson.loads(records[-1].value)
    assert copy == {**first, "id": "seed-copy"}  # same text: its exact duplicate


def test_an_outcome_is_found_by_the_input_key_else_by_the_derived_id() -> None:
    keyed, keyless = sample_records([SAMPLES / "seed.txt", SAMPLES / "lemonde-1.html"], MAX_BYTES)[:2]
    assert output_keys(keyed) == {b"seed"}
    derived = parse_raw_article(keyless.value).derived_id().encode()
    assert output_keys(keyless) == {derived, None}  # enriched: the article id; DLQ: no key
    assert output_keys(RawRecord(b"k", b'{"text": "x"}')) == {b"k"}
