"""The delivery protocol: outputs sent, the broker's acknowledgement awaited, then offsets acked.

Every input message ends as exactly one output — an analysed or enriched record, or a DLQ
record — and its offset is acked only once the broker has acknowledged that output. A record
the broker refuses for its size is first sent once on its own (the broker refuses a whole
batch, so a small record batched with a big one, or with enough small ones, is refused too);
a record still refused is replaced by a DLQ record that fits, also sent on its own; if the DLQ
refuses that too, `DeliveryRefused` ends the agent and the worker exits, so nothing is
committed past a message that is not accounted for.

No Faust, Kafka or Prometheus here: sending, acking and committing are injected, so the protocol
is unit-tested with fakes (tests/unit/test_delivery.py) and run by the agents on the real broker.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from pipeline.analysis import IncomingMessage

log = logging.getLogger("pipeline.delivery")

Event = TypeVar("Event")


@dataclass(frozen=True)
class Output:
    """One record to produce, with the input message it accounts for."""

    topic: str
    key: bytes | None
    value: bytes
    origin: IncomingMessage
    stage: str  # the stage that produced it (for metrics and a DLQ record standing in for it)
    error: str | None = None  # the DLQ error code; None for a normal record
    record: Any = None  # what `value` encodes, for the caller's metrics (not sent)

    @property
    def is_dead_letter(self) -> bool:
        return self.error is not None


class DeliveryRefused(RuntimeError):
    """Even the DLQ refused a record: the input message it stands for is unaccounted for."""


# Sends one output; returns the future that resolves once the broker acknowledged it.
Send = Callable[[Output], Awaitable[Awaitable[Any]]]
# The DLQ record standing in for an output the broker refused: (refused, error, detail).
Rescue = Callable[[Output, str, str], Output]


def refusal_code(exc: BaseException) -> str:
    """`output_too_large` when the record was refused for its size, else `delivery_failed`."""
    return "output_too_large" if "TooLarge" in type(exc).__name__ else "delivery_failed"


@dataclass
class Delivery:
    send: Send
    send_alone: Send  # in a record batch of its own, with nothing the producer adds to it
    rescue: Rescue
    on_rescued: Callable[[Output, Output], None] = lambda refused, dead_letter: None

    async def start(self, outputs: Sequence[Output]) -> list[Any]:
        """Hand every output to the producer, in order; a refusal at once is kept as the result."""
        pending: list[Any] = []
        for output in outputs:
            try:
                pending.append(await self.send(output))
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - refused before it left (e.g. its size)
                pending.append(exc)
        return pending

    async def confirm(self, outputs: Sequence[Output], pending: Sequence[Any]) -> list[Output]:
        """Wait for the broker's acknowledgements; refused records go to the DLQ instead.

        Returns the outputs as finally delivered. Raises DeliveryRefused when a stand-in DLQ
        record is refused as well.
        """
        delivered = list(outputs)
        refused: list[tuple[int, BaseException]] = []
        for index, future in enumerate(pending):
            error = await _outcome(future)
            if error is not None and _shared_a_refused_batch(future, error):
                error = await self._send_alone(outputs[index])
            if error is not None:
                refused.append((index, error))
        if not refused:
            return delivered
        stand_ins = []
        for index, error in refused:
            output = outputs[index]
            detail = f"{type(error).__name__}: {error}"[:500]
            log.warning(
                "the broker refused a record; a DLQ record stands in for it",
                extra={"topic": output.topic, "error": refusal_code(error), "detail": detail},
            )
            stand_ins.append(self.rescue(output, refusal_code(error), detail))
        for (index, _), stand_in in zip(refused, stand_ins, strict=True):
            # Alone too: DLQ records batched together may be over the DLQ topic's limit.
            error = await self._send_alone(stand_in)
            if error is not None:
                raise DeliveryRefused(
                    f"the DLQ refused the record standing in for {_position(outputs[index])}: "
                    f"{type(error).__name__}: {error}"
                ) from error
            self.on_rescued(outputs[index], stand_in)
            delivered[index] = stand_in
        return delivered

    async def _send_alone(self, output: Output) -> BaseException | None:
        """Send one output in a batch of its own and wait for its acknowledgement."""
        try:
            future = await self.send_alone(output)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - refused before it left
            return exc
        return await _outcome(future)


def _shared_a_refused_batch(future: Any, error: BaseException) -> bool:
    """Whether a size refusal may be its batch's, not its own: worth one send on its own.

    The broker applies `max.message.bytes` to a whole record batch and refuses every record in
    it, so a small article batched with an oversized one, or with many small ones whose sum is
    over the limit, is refused too. A refusal raised before the record left (the client's own
    size check) is the record's own.
    """
    return not isinstance(future, BaseException) and refusal_code(error) == "output_too_large"


async def _outcome(future: Any) -> BaseException | None:
    if isinstance(future, BaseException):
        return future
    try:
        await future
    except asyncio.CancelledError:
        raise
    except Exception as exc:  # noqa: BLE001 - the caller turns it into a DLQ record
        return exc
    return None


def _position(output: Output) -> str:
    origin = output.origin
    return f"{origin.topic}[{origin.partition}]@{origin.offset}"


@dataclass
class _Flight:
    sent: asyncio.Future[None]
    done: asyncio.Future[None]


@dataclass
class OrderedDelivery(Generic[Event]):
    """Batches of events whose outputs are sent and acked in the order the events came in.

    A batch's outputs may still be computed (`submit` takes an awaitable) while earlier batches
    are sent; up to `in_flight` batches overlap. Sends go out in input order without waiting
    for earlier acknowledgements, so there is no round trip per record; acks follow in input
    order, each after its own batch is confirmed. A batch that fails (a bug outside the
    per-article error handling, or `DeliveryRefused`) fails every later one, unacked, and the
    failure reaches the caller on its next `submit` or `drain`.
    """

    delivery: Delivery
    ack: Callable[[Sequence[Event]], Awaitable[None]]
    in_flight: int = 2
    on_delivered: Callable[[Sequence[Output]], None] = lambda outputs: None
    # Told at once when a batch fails, not only on the next submit: the stream may stay idle.
    on_failure: Callable[[BaseException], None] = lambda exc: None
    _flights: deque[tuple[asyncio.Task[None], _Flight]] = field(default_factory=deque)

    async def submit(
        self, events: Sequence[Event], outputs: Awaitable[list[Output]] | list[Output]
    ) -> None:
        while len(self._flights) >= self.in_flight:
            await self._next()
        loop = asyncio.get_running_loop()
        flight = _Flight(loop.create_future(), loop.create_future())
        previous = self._flights[-1][1] if self._flights else None
        task = asyncio.ensure_future(self._run(list(events), outputs, previous, flight))
        self._flights.append((task, flight))

    async def drain(self) -> None:
        while self._flights:
            await self._next()

    async def _next(self) -> None:
        task, _ = self._flights.popleft()
        try:
            await task  # raises the failure of that batch (or of one before it)
        except BaseException:
            self.cancel()  # the later batches failed with it
            raise

    def cancel(self) -> None:
        """Stop every batch in flight; their events stay unacked and are read again later."""
        for task, flight in self._flights:
            if task.done() and not task.cancelled():
                task.exception()  # retrieved: the caller has the first failure
            task.cancel()
            for future in (flight.sent, flight.done):
                if not future.done():
                    future.cancel()
        self._flights.clear()

    async def _run(
        self,
        events: list[Event],
        outputs: Awaitable[list[Output]] | list[Output],
        previous: _Flight | None,
        flight: _Flight,
    ) -> None:
        try:
            ready = outputs if isinstance(outputs, list) else await outputs
            if previous is not None:
                await previous.sent
            pending = await self.delivery.start(ready)
            flight.sent.set_result(None)
            if previous is not None:
                await previous.done
            delivered = await self.delivery.confirm(ready, pending)
            await self.ack(events)
            flight.done.set_result(None)
        except BaseException as exc:
            for future in (flight.sent, flight.done):
                if future.done():
                    continue
                if isinstance(exc, Exception):
                    future.set_exception(exc)
                    future.exception()  # retrieved: the task itself reports the failure
                else:
                    future.cancel()
            if isinstance(exc, Exception):
                self.on_failure(exc)
            raise
        self.on_delivered(delivered)


@dataclass
class PromptCommit:
    """Commits soon after acks, one commit at a time, at most every `min_interval` seconds.

    Faust commits acked offsets every `broker_commit_interval`; a crash in between makes the
    next owner repeat everything acked since the last commit. Committing as soon as a batch is
    confirmed keeps that window to the batches in flight.

    Before it commits, Faust flushes its producer buffer until the buffer is *empty*, and table
    changelog writes go through that buffer (43 per deduplicated article). Under a steady stream
    the dedup agent refills it as fast as it drains, so a commit waited as long as the stream
    flowed (measured: no commit of the dedup partition for 40 s; a SIGKILL then repeated 450
    articles). Table writers therefore hold still while a commit runs: `await quiet()` before
    writing.
    """

    commit: Callable[[], Awaitable[Any]]
    min_interval: float = 0.0
    _task: asyncio.Task[None] | None = None
    _wanted: bool = False
    _idle: asyncio.Event = field(default_factory=asyncio.Event)

    def __post_init__(self) -> None:
        self._idle.set()

    def request(self) -> None:
        self._wanted = True
        if self._task is None or self._task.done():
            self._task = asyncio.ensure_future(self._loop())

    async def quiet(self) -> None:
        """Return when no commit is running (at once, mostly)."""
        await self._idle.wait()

    async def _loop(self) -> None:
        while self._wanted:
            self._wanted = False
            self._idle.clear()
            try:
                await self.commit()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.warning("an offset commit failed; the periodic commit retries", exc_info=True)
                return
            finally:
                self._idle.set()
            await asyncio.sleep(self.min_interval)
