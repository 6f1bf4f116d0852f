"""The summary a person reads (`make run`, `pipeline tail --pretty`): pure formatting."""

from __future__ import annotations

import re
from typing import Any

import orjson

from pipeline.summary import entity_groups, language_shares, summarize, summarize_message

ANSI = re.compile(r"\x1b\[[0-9;]*m")


def entity(canonical: str, label: str, key: str, lang: str = "fr") -> dict[str, Any]:
    return {"text": canonical, "label": label, "raw_label": label, "start": 0, "end": 1,
            "lang": lang, "canonical": canonical, "key": key}  # fmt: skip


def enriched(**fields: Any) -> dict[str, Any]:
    record: dict[str, Any] = {
        "schema_version": 1, "id": "seed", "url": None, "title": None, "source": None,
        "source_url": None, "published_at": None, "ingested_at": "2026-01-01T00:00:00Z",
        "text": "Le dirigeant nord-coréen Kim Jong Un devrait rencontrer Poutine.\n\nMore text.",
        "language": "fr", "language_confidence": 0.98, "mixed_language": True,
        "segments": [
            {"start": 0, "end": 75, "lang": "fr", "confidence": 0.98},
            {"start": 77, "end": 102, "lang": "en", "confidence": 0.95},
            {"start": 102, "end": 110, "lang": None, "confidence": 0.0},
        ],
        "entities": [
            entity("Kim Jong Un", "PERSON", "p:kimjongun"),
            entity("Vladimir Poutine", "PERSON", "p:putin"),
            entity("Vladimir Putin", "PERSON", "p:putin", "en"),
            entity("Vladimir Poutine", "PERSON", "p:putin"),
            entity("Maison Blanche", "ORG", "n:maison blanche"),
            entity("Corée du Nord", "LOC", "c:KP"),
            entity("North Korea", "LOC", "c:KP", "en"),
            entity("Russian", "MISC", "c:RU", "en"),
        ],
        "dedup": {"status": "unique", "duplicate_of": None, "similarity": None},
        "quality": [],
        "story": {"id": "seed", "similarity": 1.0, "related": []},
    }  # fmt: skip
    return {**record, **fields}


def test_language_shares_are_by_characters_and_skip_undecided_segments() -> None:
    shares = language_shares(enriched()["segments"])
    assert [lang for lang, _ in shares] == ["fr", "en"]
    assert shares[0][1] == 75 / 100 and shares[1][1] == 25 / 100
    assert language_shares([]) == []


def test_entities_group_by_key_across_languages_most_mentioned_first() -> None:
    entities = enriched()["entities"]
    assert entity_groups(entities, "PERSON") == [
        ("Vladimir Poutine / Vladimir Putin", 3),
        ("Kim Jong Un", 1),
    ]
    assert entity_groups(entities, "LOC") == [("Corée du Nord / North Korea", 2)]
    # Without a key (a name without letters or digits), the canonical name groups mentions.
    keyless = [entity("X-1", "ORG", ""), entity("X-1", "ORG", "")]
    assert entity_groups(keyless, "ORG") == [("X-1", 2)]


def test_an_enriched_record_shows_languages_names_verdict_story_quality() -> None:
    text = summarize(enriched())
    lines = text.splitlines()
    assert lines[0] == "seed  Le dirigeant nord-coréen Kim Jong Un devrait rencontrer Poutine."
    assert "languages      fr 75%, en 25% (mixed)" in text
    assert "people         Vladimir Poutine / Vladimir Putin ×3, Kim Jong Un" in text
    assert "organisations  Maison Blanche" in text
    assert "places         Corée du Nord / North Korea ×2" in text
    assert "Russian" not in text  # MISC stays in the full record
    assert "dedup          unique" in text
    assert "story          starts a story" in text
    assert "quality        ok" in text


def test_a_duplicate_names_what_it_duplicates_and_its_story() -> None:
    record = enriched(
        id="seed-copy",
        title="A title",
        dedup={"status": "near_duplicate", "duplicate_of": "seed", "similarity": 0.875},
        story={"id": "seed", "similarity": 0.99,
               "related": [{"id": "seed", "similarity": 0.99, "language": "fr"}]},
        quality=["truncated"],
    )  # fmt: skip
    text = summarize(record)
    assert text.splitlines()[0] == "seed-copy  A title"
    assert "dedup          near duplicate of seed (similarity 0.88)" in text
    assert "story          in story seed (similarity 0.990); related: seed (0.990)" in text
    assert "quality        truncated" in text


def test_long_name_lists_wrap_between_names_and_count_the_rest() -> None:
    people = [entity(f"Person Number {n}", "PERSON", f"p:{n}") for n in range(12)]
    text = summarize(enriched(entities=people, story=None))
    block = text[text.index("people") : text.index("  dedup")]
    assert "… (+4)" in block
    assert all(len(line) <= 100 for line in text.splitlines())
    assert "Person Number 7" in block and "Person Number 8" not in block
    for line in block.splitlines()[1:]:
        assert line.startswith(" " * 17 + "Person Number")  # continuation under the values
    assert "story" not in text  # no story line when linking is off


def test_colour_only_when_asked_and_the_text_is_the_same() -> None:
    plain = summarize(enriched())
    coloured = summarize(enriched(), colour=True)
    assert "\x1b[" not in plain
    assert "\x1b[" in coloured
    assert ANSI.sub("", coloured) == plain


def test_a_dead_letter_shows_its_reason() -> None:
    record = {
        "error": "invalid_json", "detail": "the message is not valid JSON: unexpected character",
        "stage": "parse", "original": "{oops", "original_encoding": "utf-8", "original_size": 5,
        "original_sha256": "ab" * 32, "original_truncated": False, "key": "k1",
        "topic": "articles.raw", "partition": 2, "offset": 17, "failed_at": "2026-01-01T00:00:00Z",
    }  # fmt: skip
    text = summarize(record)
    assert text.splitlines()[0] == "DLQ  invalid_json  key k1"
    assert "stage          parse" in text
    assert "from           articles.raw 2@17" in text
    assert "original       5 bytes" in text


def test_any_message_has_a_summary() -> None:
    raw = orjson.dumps({"id": "a1", "title": "Headline", "text": "Body text."})
    assert summarize_message(raw) == "a1  Headline\n  raw            text, 10 characters"
    assert summarize_message(b"\xff\xfe") == "(not JSON: 2 bytes)"
    assert summarize_message(b"[1, 2]") == "(JSON list, not a record)"
    assert summarize_message(None) == "(empty message)"
    assert summarize_message(orjson.dumps(enriched())) == summarize(enriched())
