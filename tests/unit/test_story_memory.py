"""The story memory over a dict table: verdicts in stream order, redelivery, forgetting, rebuild."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta

import numpy as np

from pipeline.records import AnalyzedArticle, DedupOut, EnrichedArticle, EntityOut
from pipeline.stages.story import (
    ARTICLE_PREFIX,
    HUB_PENALTY,
    HUB_PRIOR,
    KEY_PREFIX,
    MEAN_PRIOR_WEIGHT,
    LanguageMean,
    StoryArticle,
    StoryConfig,
    article_record_key,
    mean_record_key,
)
from pipeline.story_memory import StoryMemory
from tests.unit.test_story import COSINE_MODEL, unit

NOW = datetime(2026, 12, 1, tzinfo=UTC)
# COSINE_MODEL shifted so that its similarity is 0.5 at a cosine of 0.8 between two articles of
# the prior hubness (the memory computes each article's hubness over its window).
MODEL = dataclasses.replace(
    COSINE_MODEL, bias=COSINE_MODEL.bias + COSINE_MODEL.weights[0] * HUB_PENALTY * HUB_PRIOR
)


def items_after(table: dict, after: str | None):
    return ((key, table[key]) for key in sorted(table) if after is None or key > after)


def analyzed(
    article_id: str, vector: np.ndarray | None, at: datetime = NOW, people: tuple[str, ...] = ()
) -> AnalyzedArticle:
    entities = [
        EntityOut(text=p, label="PERSON", raw_label="PER", start=0, end=len(p), lang="fr",
                  canonical=p)
        for p in people
    ]
    article = EnrichedArticle(
        id=article_id, url=None, title=None, source=None, published_at=None, ingested_at=at,
        text="Un texte.", language="fr", language_confidence=1.0, mixed_language=False,
        segments=[], entities=entities, dedup=DedupOut(status="unique"), quality=[],
    )
    return AnalyzedArticle(
        article=article, fingerprint="f" + article_id, signature="", band_keys=[],
        dedup_eligible=True, output_key=article_id,
        story_vector=None if vector is None else vector.tolist(),
    )


def memory(table: dict, retention: timedelta = timedelta(days=7)) -> StoryMemory:
    config = StoryConfig(related_max=3, retention=retention)
    return StoryMemory(table, items_after, sweep_budget=100, config=config, model=MODEL)


def test_stream_links_close_articles_and_lists_related_most_similar_first() -> None:
    table: dict = {}
    stories = memory(table)
    first = stories.link(analyzed("a", unit(1, 0)))
    assert first is not None and (first.id, first.similarity, first.related) == ("a", 1.0, [])
    second = stories.link(analyzed("b", unit(1, 0.1), NOW + timedelta(minutes=1)))
    assert second is not None and second.id == "a" and 0.5 < second.similarity < 1
    far = stories.link(analyzed("c", unit(0, 1), NOW + timedelta(minutes=2)))
    assert far is not None and far.id == "c"
    third = stories.link(analyzed("d", unit(1, 0.05), NOW + timedelta(minutes=3)))
    assert third is not None and third.id == "a"
    assert [r.id for r in third.related][:2] in (["a", "b"], ["b", "a"])
    assert all(r.language == "fr" for r in third.related)
    assert sum(key.startswith(ARTICLE_PREFIX) for key in table) == 4


def test_hubness_is_measured_over_the_window_and_remembered() -> None:
    table: dict = {}
    stories = memory(table)
    for n in range(4):
        stories.link(analyzed(f"a{n}", unit(1, n / 20), NOW + timedelta(minutes=n)))
    lonely = stories.link(analyzed("far", unit(0, 1), NOW + timedelta(minutes=5)))
    assert lonely is not None and lonely.id == "far"
    hubness = {i: table[article_record_key(i)]["h"] for i in ("a0", "a3", "far")}
    assert hubness["a0"] == HUB_PRIOR  # nothing before it: the prior stands for every neighbour
    # a3 has three near copies before it; "far" is orthogonal to everything remembered.
    assert hubness["a3"] > HUB_PRIOR + 0.15 > hubness["far"] + 0.15


def test_a_record_without_vector_gets_no_story_and_teaches_nothing() -> None:
    table: dict = {}
    assert memory(table).link(analyzed("a", None)) is None
    assert table == {}


def test_a_redelivered_article_keeps_its_story_and_writes_nothing() -> None:
    table: dict = {}
    stories = memory(table)
    stories.link(analyzed("a", unit(1, 0)))
    first = stories.link(analyzed("b", unit(1, 0.1), NOW + timedelta(minutes=1)))
    before = dict(table)
    again = stories.link(analyzed("b", unit(1, 0.1), NOW + timedelta(minutes=1)))
    assert again == first
    assert table == before


def test_each_article_moves_its_languages_running_mean_once() -> None:
    table: dict = {}
    stories = memory(table)
    stories.link(analyzed("a", unit(1, 0)))
    mean = LanguageMean.from_record(table[mean_record_key("fr")], "fr")
    assert mean.weight == MEAN_PRIOR_WEIGHT + 1
    assert np.allclose(mean.vector, LanguageMean.prior("fr").updated(unit(1, 0)).vector)
    # The stored story vector is the embedding with the mean the article found taken off.
    stored = StoryArticle.from_record(table[article_record_key("a")]).vector
    assert float(stored @ LanguageMean.prior("fr").neutral(unit(1, 0))) > 0.99
    stories.link(analyzed("b", unit(0, 1), NOW + timedelta(minutes=1)))
    assert table[mean_record_key("fr")]["n"] == MEAN_PRIOR_WEIGHT + 2
    stories.link(analyzed("b", unit(0, 1), NOW + timedelta(minutes=1)))  # redelivered
    assert table[mean_record_key("fr")]["n"] == MEAN_PRIOR_WEIGHT + 2
    # The mean is table state: a memory over the same table (a rebalance) goes on from it.
    memory(table).link(analyzed("c", unit(1, 1), NOW + timedelta(minutes=2)))
    assert table[mean_record_key("fr")]["n"] == MEAN_PRIOR_WEIGHT + 3


def test_an_id_that_comes_back_with_other_content_is_judged_anew() -> None:
    table: dict = {}
    stories = memory(table)
    stories.link(analyzed("a", unit(1, 0)))
    stories.link(analyzed("b", unit(1, 0.1), NOW + timedelta(minutes=1)))
    # "b" updated into another story: it leaves "a"'s story, and its record is the new one.
    updated = stories.link(analyzed("b", unit(0, 1), NOW + timedelta(minutes=2)))
    assert updated is not None and (updated.id, updated.similarity) == ("b", 1.0)
    assert all(r.id != "b" for r in updated.related)
    stored = StoryArticle.from_record(table[article_record_key("b")])
    assert stored.story_id == "b" and float(stored.vector @ unit(0, 1)) > 0.5
    close = stories.link(analyzed("c", unit(0, 1), NOW + timedelta(minutes=3)))
    assert close is not None and close.id == "b"


def test_entity_keys_are_remembered_and_found_across_spellings() -> None:
    table: dict = {}
    stories = memory(table)
    stories.link(analyzed("a", unit(1, 0), people=("Vladimir Poutine",)))
    key_records = [record for key, record in table.items() if key.startswith(KEY_PREFIX)]
    assert len(key_records) == 1 and key_records[0]["n"] == 1
    stories.link(analyzed("b", unit(0, 1), NOW + timedelta(minutes=1), people=("Putin",)))
    [key_record] = [record for key, record in table.items() if key.startswith(KEY_PREFIX)]
    assert key_record["n"] == 2 and len(key_record["a"]) == 2


def test_a_new_memory_over_the_same_table_rebuilds_its_index() -> None:
    table: dict = {}
    memory(table).link(analyzed("a", unit(1, 0)))
    restarted = memory(table)  # another worker, or this one after a rebalance
    verdict = restarted.link(analyzed("b", unit(1, 0.1), NOW + timedelta(minutes=1)))
    assert verdict is not None and verdict.id == "a"
    restarted.forget_index()
    verdict = restarted.link(analyzed("c", unit(1, 0.12), NOW + timedelta(minutes=2)))
    assert verdict is not None and verdict.id == "a"


def test_sweep_forgets_articles_past_the_window_in_table_and_index() -> None:
    table: dict = {}
    stories = memory(table, retention=timedelta(days=1))
    stories.link(analyzed("old", unit(1, 0), people=("Angela Merkel",)))
    later = NOW + timedelta(days=2)
    stories.link(analyzed("new", unit(0, 1), later))
    report = stories.sweep(later)
    assert report.table == "story" and report.swept == 2  # the old article and its key
    assert all(record["t"] >= int(later.timestamp()) for record in table.values())
    verdict = stories.link(analyzed("again", unit(1, 0), later + timedelta(minutes=1)))
    assert verdict is not None and verdict.id == "again" and verdict.related == []


def test_records_written_by_another_worker_are_read_again_after_forget_index() -> None:
    table: dict = {}
    stories = memory(table)
    stories.link(analyzed("a", unit(1, 0)))
    assert stories.link(analyzed("b", unit(1, 0.1), NOW + timedelta(minutes=1))).id == "a"
    # Meanwhile the partition was another worker's, which merged "a" into an older story "z".
    record_key = next(k for k, r in table.items() if k.startswith(ARTICLE_PREFIX) and r["i"] == "a")
    table[record_key] = {**table[record_key], "g": "z"}
    stale = stories.link(analyzed("c", unit(1, 0.01), NOW + timedelta(minutes=2)))
    assert stale.id == "a", "within one ownership, decoded records come from memory"
    stories.forget_index()  # what the worker does when the partition is assigned to it
    fresh = stories.link(analyzed("d", unit(1, -0.01), NOW + timedelta(minutes=3)))
    assert fresh.id == "z"


def test_decoded_records_kept_in_memory_are_bounded() -> None:
    table: dict = {}
    stories = memory(table)
    stories.cached_articles = 2
    for n in range(5):
        stories.link(analyzed(f"a{n}", unit(1, n / 10), NOW + timedelta(minutes=n)))
    assert len(stories._cache) == 2
    verdict = stories.link(analyzed("b", unit(1, 0.01), NOW + timedelta(minutes=9)))
    assert verdict.id == "a0"  # still found: evicted records are read from the table
