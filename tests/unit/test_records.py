import base64
import hashlib

import orjson
import pytest

from pipeline.records import (
    DLQ_ORIGINAL_CUT_BYTES,
    MAX_KEY_BYTES,
    InvalidInput,
    dead_letter,
    dead_letter_key,
    parse_raw_article,
    to_json,
)


def test_valid_record_keeps_fields_and_parses_the_timestamp():
    article = parse_raw_article(
        orjson.dumps({"id": "a1", "text": "Body", "published_at": "2023-09-04T10:00:00+00:00"})
    )
    assert article.id == "a1"
    assert article.published_at.year == 2023
    assert article.derived_id() == "a1"


def test_id_is_derived_from_url_then_content():
    by_url = parse_raw_article(b'{"url": "https://x.test/a", "text": "Body"}')
    same_url = parse_raw_article(b'{"url": "https://x.test/a", "text": "Other body"}')
    by_text = parse_raw_article(b'{"text": "Body"}')
    assert by_url.derived_id() == same_url.derived_id()
    assert by_text.derived_id() != by_url.derived_id()


@pytest.mark.parametrize(
    ("payload", "code"),
    [
        (b"", "empty_message"),
        (b"   \n", "empty_message"),
        (b"\xff\xfe\x00binary", "invalid_utf8"),
        (b'{"text": "unterminated', "invalid_json"),
        (b"[1, 2]", "invalid_record"),
        (b'{"title": "no body"}', "invalid_record"),
        (b'{"text": 42}', "invalid_record"),
        (b'{"text": "ok", "published_at": "yesterday"}', "invalid_record"),
    ],
)
def test_bad_input_raises_with_a_dlq_code(payload, code):
    with pytest.raises(InvalidInput) as caught:
        parse_raw_article(payload)
    assert caught.value.code == code
    assert caught.value.detail


def test_wrong_type_message_names_the_field():
    with pytest.raises(InvalidInput) as caught:
        parse_raw_article(b'{"text": "ok", "title": ["a"]}')
    assert "title" in caught.value.detail


def test_dead_letter_keeps_binary_originals_as_base64():
    original = b"\xff\xfe\x00binary"
    record = dead_letter(
        error="invalid_utf8", detail="d", stage="parse", original=original,
        key=b"k", topic="t", partition=1, offset=7,
    )
    assert record.original_encoding == "base64"
    assert base64.b64decode(record.original) == original
    assert (record.key, record.topic, record.partition, record.offset) == ("k", "t", 1, 7)


def test_dead_letter_keeps_text_originals_as_text():
    record = dead_letter(
        error="invalid_json", detail="d", stage="parse", original=b"{oops",
        key=None, topic="t", partition=0, offset=0,
    )
    assert (record.original, record.original_encoding, record.key) == ("{oops", "utf-8", None)


@pytest.mark.parametrize(
    "original",
    [
        bytes(range(256)) * 3200,  # ~800 KB of binary: base64 makes it ~1.1 MB
        b'{"text": "' + b'\\"' * 420_000 + b"\x01" * 5,  # ~850 KB that JSON escaping doubles
    ],
    ids=["binary", "escaped-json"],
)
def test_a_dead_letter_over_the_limit_keeps_a_cut_original_with_size_and_hash(original):
    limit = 1_000_000
    record = dead_letter(
        error="invalid_json", detail="d", stage="parse", original=original,
        key=b"k", topic="t", partition=0, offset=3, max_bytes=limit,
    )
    assert len(to_json(record)) <= limit
    assert record.original_truncated
    assert record.original_size == len(original)
    assert record.original_sha256 == hashlib.sha256(original).hexdigest()
    kept = (
        base64.b64decode(record.original)
        if record.original_encoding == "base64"
        else record.original.encode()
    )
    assert kept == original[:DLQ_ORIGINAL_CUT_BYTES]


def test_a_cut_through_a_multibyte_character_stays_text():
    original = ("a" + "é" * DLQ_ORIGINAL_CUT_BYTES).encode()  # the cut falls inside an é
    record = dead_letter(
        error="invalid_json", detail="d", stage="parse", original=original,
        key=None, topic="t", partition=0, offset=0, max_bytes=100_000,
    )
    assert record.original_truncated and record.original_encoding == "utf-8"
    assert record.original == "a" + "é" * (DLQ_ORIGINAL_CUT_BYTES // 2 - 1)


def test_a_dead_letter_that_fits_keeps_the_whole_original():
    record = dead_letter(
        error="invalid_json", detail="d", stage="parse", original=b"{oops",
        key=None, topic="t", partition=0, offset=0, max_bytes=10_000,
    )
    assert not record.original_truncated and record.original == "{oops"
    assert record.original_size == 5


def test_long_keys_are_cut_in_the_record_and_hashed_as_the_kafka_key():
    key = b"k" * 5000
    record = dead_letter(
        error="invalid_key", detail="d", stage="parse", original=b"{}",
        key=key, topic="t", partition=0, offset=0,
    )
    assert record.key == "k" * MAX_KEY_BYTES
    assert dead_letter_key(key) == hashlib.sha256(key).hexdigest().encode()
    assert dead_letter_key(b"short") == b"short"
