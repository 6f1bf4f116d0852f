"""The spaCy models (and the story embedding) in child processes of their own, so the rest of a
worker runs beside them.

spaCy holds the GIL while it tags. In a thread of the worker, parsing, cleaning, language ID,
MinHash, the dedup agent and Kafka I/O all waited for it and it for them (the worker ran at 0.69
of bare NER's rate). In its own processes, one per core, NER has the cores to itself and the
worker prepares the next batches and ships the last ones meanwhile: 0.97 of bare NER on every
core (docs/BENCHMARKS.md, "Throughput and latency").
How the child is kept (respawn, time limit, exit with the worker): `pipeline.child_process`.
"""

from __future__ import annotations

import functools
import queue
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import Any

import numpy as np

from pipeline.child_process import ChildProcess
from pipeline.stages.entities import (
    DEFAULT_ENTITY_SETTINGS,
    EntityRecognizer,
    EntitySettings,
    TaggedBatch,
)
from pipeline.stages.language import Segment
from pipeline.stages.story import Embedder


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
        embeddings: bool = False,
    ) -> None:
        self._models = dict(models)
        self._settings = settings
        self._timeout = timeout_seconds
        self._min_rate = min_chars_per_second
        self._child = ChildProcess(
            "NER", functools.partial(_load_models, self._models, settings, embeddings)
        )

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
        tagged: TaggedBatch = self._child.call(
            (TAG, list(articles)), self._time_limit(sum(len(text) for text, _ in articles))
        )
        return tagged

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """Story embeddings (`pipeline.stages.story.Embedder`); needs `embeddings=True`."""
        vectors: np.ndarray = self._child.call(
            (EMBED, list(texts)), self._time_limit(sum(map(len, texts)))
        )
        return vectors

    def close(self) -> None:
        self._child.close()

    def _time_limit(self, chars: int) -> float | None:
        if self._timeout is None:
            return None
        return self._timeout + (chars / self._min_rate if self._min_rate else 0.0)


class NerPool:
    """Several NER processes behind the `NerProcess` calls; each call goes to a free one.

    One NER process keeps one core busy: with one per core, a worker's batches are tagged on
    every core at once (docs/BENCHMARKS.md, "Throughput and latency"). A call waits while all
    are busy, so callers should run at most `size` calls at a time.
    """

    def __init__(self, processes: Sequence[NerProcess]) -> None:
        if not processes:
            raise ValueError("a NER pool needs at least one process")
        self._processes = list(processes)
        self._free: queue.SimpleQueue[NerProcess] = queue.SimpleQueue()
        for process in self._processes:
            self._free.put(process)

    @property
    def size(self) -> int:
        return len(self._processes)

    @property
    def languages(self) -> frozenset[str]:
        return self._processes[0].languages

    @property
    def settings(self) -> EntitySettings:
        return self._processes[0].settings

    @property
    def pids(self) -> list[int | None]:
        return [process.pid for process in self._processes]

    @property
    def load_seconds(self) -> dict[str, float]:
        return self._processes[0].load_seconds

    def start(self) -> None:
        """Start every process, loading their models side by side."""
        with ThreadPoolExecutor(len(self._processes)) as starter:
            list(starter.map(NerProcess.start, self._processes))

    def tag(self, articles: Sequence[tuple[str, Sequence[Segment]]]) -> TaggedBatch:
        with self._lease() as process:
            return process.tag(articles)

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        with self._lease() as process:
            return process.embed(texts)

    def close(self) -> None:
        for process in self._processes:
            process.close()

    @contextmanager
    def _lease(self) -> Iterator[NerProcess]:
        process = self._free.get()
        try:
            yield process
        finally:
            self._free.put(process)


TAG, EMBED = "tag", "embed"


def _load_models(
    models: Mapping[str, str], settings: EntitySettings, embeddings: bool
) -> tuple[Callable[[tuple[str, Any]], Any], dict[str, float]]:
    recognizer = EntityRecognizer(models, settings=settings)
    recognizer.load_all()
    load_seconds = dict(recognizer.load_seconds)
    embedder = None
    if embeddings:
        started = time.perf_counter()
        embedder = Embedder(num_threads=1)
        embedder.embed(["warm-up"])
        load_seconds["embedding"] = time.perf_counter() - started

    def handle(request: tuple[str, Any]) -> Any:
        kind, payload = request
        if kind == EMBED:
            if embedder is None:
                raise RuntimeError("this NER process was started without embeddings")
            return embedder.embed(payload)
        return recognizer.tag(payload)

    return handle, load_seconds
