"""The spaCy models in a child process of their own, so the rest of a worker runs beside them.

spaCy holds the GIL while it tags. In a thread of the worker, parsing, cleaning, language ID,
MinHash, the dedup agent and Kafka I/O all waited for it and it for them: the worker ran at
0.69 of bare NER's rate (docs/BENCHMARKS.md, "Throughput and latency"). In its own process NER
has a core to itself and the worker prepares the next batch and ships the last one meanwhile.
How the child is kept (respawn, time limit, exit with the worker): `pipeline.child_process`.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from pipeline.child_process import ChildProcess
from pipeline.stages.entities import (
    DEFAULT_ENTITY_SETTINGS,
    EntityRecognizer,
    EntitySettings,
    TaggedBatch,
)
from pipeline.stages.language import Segment


class NerProcess:
    """`tag` as `EntityRecognizer.tag`, run by a child process; thread-safe.

    Only the models run there: refinement needs none, so the worker does it beside them. A call
    may take `timeout_seconds` plus its characters at `min_chars_per_second`; past that the
    child is killed and the call raises StageTimeout.
    """

    def __init__(
        self,
        models: Mapping[str, str],
        settings: EntitySettings = DEFAULT_ENTITY_SETTINGS,
        timeout_seconds: float | None = None,
        min_chars_per_second: float | None = None,
    ) -> None:
        self._models = dict(models)
        self._settings = settings
        self._timeout = timeout_seconds
        self._min_rate = min_chars_per_second
        self._child = ChildProcess("NER", functools.partial(_load_models, self._models, settings))

    @property
    def languages(self) -> frozenset[str]:
        return frozenset(self._models)

    @property
    def settings(self) -> EntitySettings:
        return self._settings

    @property
    def pid(self) -> int | None:
        return self._child.pid

    @property
    def starts(self) -> int:
        return self._child.starts

    @property
    def load_seconds(self) -> dict[str, float]:
        return dict(self._child.ready_info or {})

    def start(self) -> None:
        """Spawn the child and wait until every model is loaded (what a worker does first)."""
        self._child.start()

    def tag(self, articles: Sequence[tuple[str, Sequence[Segment]]]) -> TaggedBatch:
        tagged: TaggedBatch = self._child.call(list(articles), self._time_limit(articles))
        return tagged

    def close(self) -> None:
        self._child.close()

    def _time_limit(self, articles: Sequence[tuple[str, Sequence[Segment]]]) -> float | None:
        if self._timeout is None:
            return None
        chars = sum(len(text) for text, _ in articles)
        return self._timeout + (chars / self._min_rate if self._min_rate else 0.0)


def _load_models(
    models: Mapping[str, str], settings: EntitySettings
) -> tuple[Callable[[Any], TaggedBatch], dict[str, float]]:
    recognizer = EntityRecognizer(models, settings=settings)
    recognizer.load_all()
    return recognizer.tag, dict(recognizer.load_seconds)
