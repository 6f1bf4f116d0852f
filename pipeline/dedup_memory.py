"""The dedup memory: the two tables, their verdicts and their sweep, in one place.

The tables are anything with `get`, item assignment and `del` (Faust tables in the worker,
dicts in tests); `items_after` iterates a table from a key (`pipeline.app.table_items_after`
for Faust tables). Verdicts are taken at the article's `ingested_at` (its raw message's
timestamp), not at the clock: replaying a topic gives the same verdicts.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, MutableMapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from pipeline.records import AnalyzedArticle, DedupOut
from pipeline.stages.dedup import FirstSeen, SweepPosition, decode_signature, judge, sweep_step

Table = MutableMapping[str, Any]
ItemsAfter = Callable[[Any, str | None], Iterator[tuple[str, Any]]]


@dataclass(frozen=True)
class SweepReport:
    table: str
    swept: int
    remembered: int | None  # live keys counted by a pass that just ended; None mid-pass


@dataclass
class DedupMemory:
    fingerprints: Table
    near_index: Table
    items_after: ItemsAfter
    retention: timedelta
    sweep_budget: int
    _positions: dict[str, SweepPosition] = field(default_factory=dict)

    def judge(self, analyzed: AnalyzedArticle) -> DedupOut:
        """The article's verdict; what it teaches is written to the tables."""
        stored = self.fingerprints.get(analyzed.fingerprint)
        judgement = judge(
            FirstSeen.from_record(stored) if stored else None,
            decode_signature(analyzed.signature) if analyzed.signature else (),
            analyzed.band_keys,
            self.near_index,
            analyzed.article.id,
            now=analyzed.article.ingested_at,
            retention=self.retention,
            eligible=analyzed.dedup_eligible,
        )
        if judgement.remember_exact is not None:
            self.fingerprints[analyzed.fingerprint] = judgement.remember_exact.to_record()
        for key, record in judgement.index_writes.items():
            self.near_index[key] = record
        verdict = judgement.verdict
        return DedupOut(
            status=verdict.status,  # type: ignore[arg-type]
            duplicate_of=verdict.duplicate_of,
            similarity=verdict.similarity,
        )

    def sweep(self, now: datetime) -> list[SweepReport]:
        """One bounded step over each table: delete up to `sweep_budget` examined keys that are
        past the retention window, resuming where the last step stopped."""
        reports = []
        for name, table in (("fingerprints", self.fingerprints), ("near_index", self.near_index)):
            position = self._positions.get(name, SweepPosition())
            step = sweep_step(
                self.items_after(table, position.after),
                position,
                now=now,
                retention=self.retention,
                budget=self.sweep_budget,
            )
            for key in step.expired:
                del table[key]
            self._positions[name] = step.position
            reports.append(SweepReport(name, len(step.expired), step.remembered))
        return reports
