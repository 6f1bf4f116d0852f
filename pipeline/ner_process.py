"""The spaCy models in a child process of their own, so the rest of a worker runs beside them.

spaCy holds the GIL while it tags. In a thread of the worker, parsing, cleaning, language ID,
MinHash, the dedup agent and Kafka I/O all waited for it and it for them: the worker ran at
0.69 of bare NER's rate (docs/BENCHMARKS.md, "Throughput and latency"). In its own process NER
has a core to itself and the worker prepares the next batch and ships the last one meanwhile.

Hand-written over `concurrent.futures.ProcessPoolExecutor` because its worker process holds both
ends of its call queue, so it outlives a SIGKILLed worker (400 MB of models left behind). Here
the child holds only its end of a pipe: when the worker dies, the child reads EOF and exits.
A child that dies mid-call (OOM killer, a crash in native code) fails that call and is respawned
on the next one, which waits until the new child has loaded its models. A child that gives no
answer within the time limit (a hang, a pathological text) is killed the same way, so a
partition never waits on it for longer than that.
"""

from __future__ import annotations

import logging
import multiprocessing
import signal
import threading
import time
from collections.abc import Mapping, Sequence
from multiprocessing.connection import Connection
from typing import Any

from pipeline.analysis import StageTimeout
from pipeline.stages.entities import (
    DEFAULT_ENTITY_SETTINGS,
    EntityRecognizer,
    EntitySettings,
    TaggedBatch,
)
from pipeline.stages.language import Segment

log = logging.getLogger("pipeline.ner_process")

# A fresh interpreter: forking a worker that already runs threads (Kafka clients, executors)
# may copy a lock held by one of them.
_CONTEXT = multiprocessing.get_context("spawn")

RESPAWN_FIRST_DELAY_SECONDS = 1.0
RESPAWN_MAX_DELAY_SECONDS = 30.0


class NerProcessError(RuntimeError):
    """The NER process failed on a request, or died while serving it."""


class NerProcess:
    """`tag` as `EntityRecognizer.tag`, run by a child process; thread-safe.

    Only the models run there: refinement needs none, so the worker does it beside them.
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
        # A call may take timeout_seconds plus its characters at min_chars_per_second.
        self._timeout = timeout_seconds
        self._min_rate = min_chars_per_second
        self._lock = threading.Lock()
        self._process: Any = None
        self._conn: Connection | None = None
        self.load_seconds: dict[str, float] = {}
        self.starts = 0

    @property
    def languages(self) -> frozenset[str]:
        return frozenset(self._models)

    @property
    def settings(self) -> EntitySettings:
        return self._settings

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    def start(self) -> None:
        """Spawn the child and wait until every model is loaded (what a worker does first)."""
        with self._lock:
            if self._conn is None:
                self._spawn()

    def tag(self, articles: Sequence[tuple[str, Sequence[Segment]]]) -> TaggedBatch:
        """The models' mentions; StageTimeout when the child gave no answer in time (it is
        killed then, and respawned on the next call)."""
        with self._lock:
            if self._conn is None:
                self._respawn()
            assert self._conn is not None
            # The watchdog kills a child that hangs, which ends a send blocked on a full pipe
            # as well as a recv waiting for an answer.
            fired = threading.Event()
            limit = self._time_limit(articles)
            watchdog = (
                threading.Timer(limit, _kill, (self._process, fired)) if limit is not None else None
            )
            if watchdog is not None:
                watchdog.daemon = True
                watchdog.start()
            try:
                self._conn.send(list(articles))
                status, payload = self._conn.recv()
            except (EOFError, OSError) as exc:
                timed_out = fired.is_set()
                code = self._reap(timed_out)
                if timed_out:
                    raise StageTimeout(
                        f"NER gave no answer in {limit:.0f} s: its process was stopped"
                    ) from exc
                raise NerProcessError(f"the NER process died (exit code {code})") from exc
            finally:
                if watchdog is not None:
                    watchdog.cancel()
        if status == "error":
            raise NerProcessError(payload)
        tagged: TaggedBatch = payload
        return tagged

    def _time_limit(self, articles: Sequence[tuple[str, Sequence[Segment]]]) -> float | None:
        if self._timeout is None:
            return None
        chars = sum(len(text) for text, _ in articles)
        return self._timeout + (chars / self._min_rate if self._min_rate else 0.0)

    def close(self, timeout: float = 10.0) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()  # the child reads EOF and exits
                self._conn = None
            if self._process is not None:
                self._process.join(timeout)
                if self._process.is_alive():
                    self._process.kill()
                    self._process.join()
                self._process = None

    def _spawn(self) -> None:
        parent_end, child_end = _CONTEXT.Pipe()
        process = _CONTEXT.Process(
            target=_serve,
            args=(child_end, self._models, self._settings),
            name="pipeline-ner",
            daemon=True,  # multiprocessing stops it when the worker exits normally
        )
        process.start()
        child_end.close()  # only the child may hold it, or its EOF never comes
        try:
            status, payload = parent_end.recv()
        except EOFError as exc:
            process.join()
            raise NerProcessError(
                f"the NER process exited while loading models (exit code {process.exitcode})"
            ) from exc
        if status == "error":
            process.join()
            raise NerProcessError(f"the NER process could not load models: {payload}")
        self._process, self._conn = process, parent_end
        self.load_seconds = payload
        self.starts += 1
        log.info(
            "NER process ready",
            extra={"pid": process.pid, "load_seconds": payload, "starts": self.starts},
        )

    def _respawn(self) -> None:
        """Start a child in place of one that died, retrying until its models load.

        The models loaded at start, so failing now means the machine lacks memory for a while:
        the batch waits (lag and this log show it) rather than go to the DLQ for no fault of its own.
        """
        delay = RESPAWN_FIRST_DELAY_SECONDS
        while True:
            try:
                self._spawn()
                return
            except NerProcessError as exc:
                log.error(
                    "the NER process could not be restarted; retrying",
                    extra={"error": str(exc), "retry_in_seconds": delay},
                )
                time.sleep(delay)
                delay = min(2 * delay, RESPAWN_MAX_DELAY_SECONDS)

    def _reap(self, timed_out: bool = False) -> int | None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None
        code = None
        if self._process is not None:
            self._process.join(5)
            code = self._process.exitcode
            self._process = None
        log.error(
            "the NER process was stopped after its time limit; it is respawned on the next batch"
            if timed_out
            else "the NER process died; it is respawned on the next batch",
            extra={"exit_code": code, "timeout_seconds": self._timeout if timed_out else None},
        )
        return code


def _kill(process: Any, fired: threading.Event) -> None:
    fired.set()
    process.kill()


def _serve(conn: Connection, models: Mapping[str, str], settings: EntitySettings) -> None:
    # Ctrl-C reaches the whole process group; the worker decides when this process ends.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    recognizer = EntityRecognizer(models, settings=settings)
    try:
        recognizer.load_all()
    except Exception as exc:  # noqa: BLE001 - reported to the worker, which fails its start
        conn.send(("error", f"{type(exc).__name__}: {exc}"))
        return
    conn.send(("ready", dict(recognizer.load_seconds)))
    while True:
        try:
            articles = conn.recv()
        except (EOFError, OSError):
            return  # the worker is gone
        try:
            reply: tuple[str, object] = ("ok", recognizer.tag(articles))
        except Exception as exc:  # noqa: BLE001 - the worker isolates the failing article
            reply = ("error", f"{type(exc).__name__}: {exc}"[:500])
        conn.send(reply)
