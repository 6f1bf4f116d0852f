"""A function served by a child process, with a time limit: what may hang or hog the GIL runs
where it can be stopped.

Hand-written over `concurrent.futures.ProcessPoolExecutor` and `multiprocessing.Pool`, whose
worker processes hold both ends of their call queue, so they outlive a SIGKILLed worker (400 MB
of NER models left behind) and cannot be stopped mid-call. Here the child holds only its end of
a pipe: when the worker dies, the child reads EOF and exits. A child that dies mid-call (OOM
killer, a crash in native code) fails that call and is respawned on the next one, which waits
until the new child is ready. A call over its time limit kills the child (a watchdog thread),
fails with `StageTimeout`, and the next call gets a new child, so a partition never waits on a
hang for longer than the limit.
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import signal
import threading
import time
from collections.abc import Callable
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from pipeline.analysis import StageTimeout

log = logging.getLogger("pipeline.child_process")

# A fresh interpreter: forking a worker that already runs threads (Kafka clients, executors)
# may copy a lock held by one of them.
_CONTEXT = multiprocessing.get_context("spawn")

RESPAWN_FIRST_DELAY_SECONDS = 1.0
RESPAWN_MAX_DELAY_SECONDS = 30.0

# Runs in the child: sets up (e.g. loads models) and returns the request handler and what the
# parent learns once the child is ready. Must be picklable (a module-level function or partial).
Setup = Callable[[], tuple[Callable[[Any], Any], Any]]


class ChildCallError(RuntimeError):
    """The child failed on a request, could not start, or died while serving it."""


class ChildProcess:
    """`call(request)` answered by `handler(request)` in a child process; thread-safe."""

    def __init__(self, name: str, setup: Setup) -> None:
        self.name = name
        self._setup = setup
        self._lock = threading.Lock()
        self._process: Any = None
        self._conn: Connection | None = None
        self.ready_info: Any = None
        self.starts = 0

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    def start(self) -> Any:
        """Spawn the child and wait until it is ready; return what its setup reported."""
        with self._lock:
            if self._conn is None:
                self._spawn()
            return self.ready_info

    def call(self, request: Any, time_limit: float | None = None) -> Any:
        with self._lock:
            if self._conn is None:
                self._respawn()
            assert self._conn is not None
            # The watchdog kills a child that hangs, which ends a send blocked on a full pipe
            # as well as a recv waiting for an answer.
            fired = threading.Event()
            watchdog = None
            if time_limit is not None:
                watchdog = threading.Timer(time_limit, _kill, (self._process, fired))
                watchdog.daemon = True
                watchdog.start()
            try:
                self._conn.send(request)
                status, payload = self._conn.recv()
            except (EOFError, OSError) as exc:
                timed_out = fired.is_set()
                code = self._reap(time_limit if timed_out else None)
                if timed_out:
                    raise StageTimeout(
                        f"{self.name} gave no answer in {time_limit:.0f} s: its process was stopped"
                    ) from exc
                raise ChildCallError(f"the {self.name} process died (exit code {code})") from exc
            finally:
                if watchdog is not None:
                    watchdog.cancel()
        if status == "error":
            raise ChildCallError(payload)
        return payload

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
            args=(child_end, self._setup),
            name=f"pipeline-{self.name.split()[0].lower()}",  # "pipeline-ner": see _serve
            daemon=True,  # multiprocessing stops it when the worker exits normally
        )
        process.start()
        child_end.close()  # only the child may hold it, or its EOF never comes
        try:
            status, payload = parent_end.recv()
        except EOFError as exc:
            process.join()
            raise ChildCallError(
                f"the {self.name} process exited while starting (exit code {process.exitcode})"
            ) from exc
        if status == "error":
            process.join()
            raise ChildCallError(f"the {self.name} process could not start: {payload}")
        self._process, self._conn = process, parent_end
        self.ready_info = payload
        self.starts += 1
        log.info(
            f"{self.name} process ready",
            extra={"pid": process.pid, "ready": payload, "starts": self.starts},
        )

    def _respawn(self) -> None:
        """Start a child in place of one that died, retrying until it is ready.

        It started once, so failing now means the machine lacks memory for a while: the call
        waits (lag and this log show it) rather than fail an article for no fault of its own.
        """
        delay = RESPAWN_FIRST_DELAY_SECONDS
        while True:
            try:
                self._spawn()
                return
            except ChildCallError as exc:
                log.error(
                    f"the {self.name} process could not be restarted; retrying",
                    extra={"error": str(exc), "retry_in_seconds": delay},
                )
                time.sleep(delay)
                delay = min(2 * delay, RESPAWN_MAX_DELAY_SECONDS)

    def _reap(self, time_limit: float | None) -> int | None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None
        code = None
        if self._process is not None:
            self._process.join(5)
            code = self._process.exitcode
            self._process = None
        log.error(
            f"the {self.name} process was stopped after its time limit; it is respawned on the "
            "next call"
            if time_limit is not None
            else f"the {self.name} process died; it is respawned on the next call",
            extra={"exit_code": code, "time_limit_seconds": time_limit},
        )
        return code


def _kill(process: Any, fired: threading.Event) -> None:
    fired.set()
    process.kill()


def _serve(conn: Connection, setup: Setup) -> None:
    # Ctrl-C reaches the whole process group; the worker decides when this process ends.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    # Named in ps and top (all spawned children are "python -c ..." otherwise): an operator
    # sees which process holds the models, and tests find them.
    with contextlib.suppress(OSError):
        Path("/proc/self/comm").write_text(multiprocessing.current_process().name[:15])
    try:
        handler, ready_info = setup()
    except Exception as exc:  # noqa: BLE001 - reported to the worker, which fails its start
        conn.send(("error", f"{type(exc).__name__}: {exc}"))
        return
    conn.send(("ready", ready_info))
    while True:
        try:
            request = conn.recv()
        except (EOFError, OSError):
            return  # the worker is gone
        try:
            reply: tuple[str, object] = ("ok", handler(request))
        except Exception as exc:  # noqa: BLE001 - the worker isolates the failing article
            reply = ("error", f"{type(exc).__name__}: {exc}"[:500])
        conn.send(reply)
