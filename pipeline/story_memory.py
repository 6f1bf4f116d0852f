"""The story memory: one table, the vector index over it, verdicts and the sweep.

Like the dedup memory, the table is anything with `get`, item assignment and `del` (a Faust
table on the dedup partition in the worker, a dict in tests), iterated in key order by
`items_after`. It holds three kinds of records (`pipeline.stages.story`): an article's story
features under ``"s" + short id``, an entity key's newest article ids under ``"k" + hash`` and
a language's running mean embedding under ``"m" + language``.

The vector index lives in memory only: it is rebuilt from the article records the first time it
is needed after `forget_index` (the worker calls it when it is given the partition, since another
worker may have written the table meanwhile). Verdicts are taken at the article's
`ingested_at`, so replaying a topic links the same way.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import MutableMapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import numpy as np

from pipeline.dedup_memory import ItemsAfter, SweepReport
from pipeline.records import AnalyzedArticle, RelatedOut, StoryOut
from pipeline.stages.dedup import SweepPosition, short_id, sweep_step
from pipeline.stages.story import (
    ARTICLE_PREFIX,
    DEFAULT_STORY,
    LanguageMean,
    NamedEntity,
    StoryArticle,
    StoryConfig,
    StoryModel,
    VectorIndex,
    article_record_key,
    entity_keys,
    key_hash,
    key_record_key,
    link,
    mean_record_key,
    story_article,
)

Table = MutableMapping[str, Any]

# Decoded article records kept in memory, least recently used dropped first (~3 kB each). A
# verdict reads ~100 candidates; from the worker's table each read is a RocksDB get, JSON and
# base64 decoding, ~34 ms an article on the one dedup partition of the cluster (docs/BENCHMARKS.md,
# "Throughput and latency"). Consecutive articles share most of their candidates.
CACHED_ARTICLES = 20_000
# A redelivered article's story vector against its stored one: 0.97 at least on the dev stream
# of docs/BENCHMARKS.md (int8 codes, its language's mean moved meanwhile), while two different
# articles of one story reach 0.88 at most. Below this, the id came back with other content.
REDELIVERY_MIN_COSINE = 0.95


@dataclass
class StoryMemory:
    table: Table
    items_after: ItemsAfter
    sweep_budget: int
    config: StoryConfig = DEFAULT_STORY
    model: StoryModel = field(default_factory=StoryModel.default)
    _index: VectorIndex | None = None
    _ids: dict[str, str] = field(default_factory=dict)  # short id -> article id, in the index
    _position: SweepPosition = field(default_factory=SweepPosition)
    cached_articles: int = CACHED_ARTICLES
    _cache: OrderedDict[str, StoryArticle] = field(default_factory=OrderedDict)

    def link(self, analyzed: AnalyzedArticle) -> StoryOut | None:
        """The article's story among the articles remembered in the window; what it teaches is
        written to the table. None for a record without a story vector (linking off, no text,
        a wall)."""
        if analyzed.story_vector is None:
            return None
        article = analyzed.article
        index = self._vectors()
        embedding = np.asarray(analyzed.story_vector, dtype=np.float32)
        mean_key = mean_record_key(article.language)
        mean = LanguageMean.from_record(self.table.get(mean_key), article.language)
        vector = mean.neutral(embedding)
        keys = entity_keys(NamedEntity(e.canonical, e.label, e.lang) for e in article.entities)
        key_records = {
            key_record_key(key_hash(key)): self.table.get(key_record_key(key_hash(key)))
            for key in keys
        }
        shorts = {s for record in key_records.values() if record for s in record["a"]}
        ids = {self._ids[s] for s in shorts if s in self._ids}
        ids |= {i for i, _ in index.top_k(vector, self.config.vector_candidates)}
        ids.add(article.id)  # its own record, when this is a redelivery
        candidates = [c for i in sorted(ids) if (c := self._remembered(i)) is not None]
        previous = next((c for c in candidates if c.article_id == article.id), None)
        if previous is not None and float(previous.vector @ vector) < REDELIVERY_MIN_COSINE:
            # The same id with other content: an updated article, judged anew in place of its
            # old record (dedup re-judges it the same way).
            candidates = [c for c in candidates if c.article_id != article.id]
            index.remove(article.id)
            self._cache.pop(article.id, None)
            previous = None
        # A redelivery keeps the hubness it was judged with (the index now holds the article).
        hubness = previous.hubness if previous is not None else index.hubness(vector)
        features = story_article(
            article.id, vector, keys, key_records, article.text, article.language,
            article.ingested_at, hubness,
        )
        judgement = link(
            features, candidates, key_records, self.model, article.ingested_at, self.config,
            previous=previous,
        )
        for key, record in judgement.writes.items():
            self.table[key] = record
        if judgement.writes:  # not a redelivery: the article moves its language's mean
            self.table[mean_key] = mean.updated(embedding).record(article.ingested_at)
            index.add(article.id, judgement.article.vector)
            self._ids[short_id(article.id)] = article.id
            self._keep(judgement.article)
        verdict = judgement.verdict
        return StoryOut(
            id=verdict.id,
            similarity=verdict.similarity,
            related=[RelatedOut(id=r.id, similarity=r.similarity, language=r.language)
                     for r in verdict.related],
        )

    def forget_index(self) -> None:
        """Rebuild the vector index from the table before the next verdict, and read every
        article record from the table again."""
        self._index = None
        self._ids = {}
        self._cache.clear()

    def sweep(self, now: datetime) -> SweepReport:
        """One bounded step over the table: delete up to `sweep_budget` examined records past
        the retention window (articles leave the vector index with them)."""
        step = sweep_step(
            self.items_after(self.table, self._position.after),
            self._position,
            now=now,
            retention=self.config.retention,
            budget=self.sweep_budget,
        )
        for key in step.expired:
            del self.table[key]
            if key.startswith(ARTICLE_PREFIX):
                article_id = self._ids.pop(key[len(ARTICLE_PREFIX) :], None)
                if article_id is not None and self._index is not None:
                    self._index.remove(article_id)
                if article_id is not None:
                    self._cache.pop(article_id, None)
        self._position = step.position
        return SweepReport("story", len(step.expired), step.remembered)

    def _remembered(self, article_id: str) -> StoryArticle | None:
        cached = self._cache.get(article_id)
        if cached is not None:
            self._cache.move_to_end(article_id)
            return cached
        record = self.table.get(article_record_key(article_id))
        if record is None:
            return None
        remembered = StoryArticle.from_record(record)
        self._keep(remembered)
        return remembered

    def _keep(self, remembered: StoryArticle) -> None:
        self._cache[remembered.article_id] = remembered
        self._cache.move_to_end(remembered.article_id)
        while len(self._cache) > self.cached_articles:
            self._cache.popitem(last=False)

    def _vectors(self) -> VectorIndex:
        if self._index is None:
            index = VectorIndex()
            self._ids = {}
            for key, record in self.items_after(self.table, None):
                if key.startswith(ARTICLE_PREFIX):
                    remembered = StoryArticle.from_record(record)
                    index.add(remembered.article_id, remembered.vector)
                    self._ids[key[len(ARTICLE_PREFIX) :]] = remembered.article_id
            self._index = index
        return self._index
