"""The delivery protocol with fakes: order, refusals, failures in each phase, cancellation."""

from __future__ import annotations

import asyncio
import gc
from datetime import UTC, datetime

import pytest

from pipeline.analysis import IncomingMessage
from pipeline.delivery import (
    Delivery,
    DeliveryRefused,
    OrderedDelivery,
    Output,
    PromptCommit,
    refusal_code,
)


class MessageSizeTooLargeError(Exception):
    """Named like the Kafka clients' error for a record over the limit."""


def origin(offset: int) -> IncomingMessage:
    return IncomingMessage(b"raw", None, "raw", 0, offset, datetime(2026, 12, 1, tzinfo=UTC))


def output(offset: int, topic: str = "enriched") -> Output:
    return Output(topic, None, f"record-{offset}".encode(), origin(offset), "analyze")


class FakeBroker:
    """Acknowledges sends when told to; refuses what `refuse` says, at send or at ack time."""

    def __init__(self) -> None:
        self.log: list[tuple[str, object]] = []
        self.pending: list[tuple[Output, asyncio.Future[None]]] = []
        self.refuse_at_send: set[tuple[str, int]] = set()
        self.refuse_at_ack: dict[tuple[str, int], Exception] = {}
        self.refuse_once_at_ack: dict[tuple[str, int], Exception] = {}
        self.auto_ack = True

    async def send(self, out: Output, kind: str = "send") -> asyncio.Future[None]:
        where = (out.topic, out.origin.offset)
        if where in self.refuse_at_send:
            raise MessageSizeTooLargeError("over max_request_size")
        self.log.append((kind, where))
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.pending.append((out, future))
        if self.auto_ack:
            self.confirm_all()
        return future

    async def send_alone(self, out: Output) -> asyncio.Future[None]:
        return await self.send(out, "alone")

    def confirm_all(self) -> None:
        for out, future in self.pending:
            where = (out.topic, out.origin.offset)
            if not future.done():
                if where in self.refuse_at_ack:
                    future.set_exception(self.refuse_at_ack[where])
                elif where in self.refuse_once_at_ack:
                    future.set_exception(self.refuse_once_at_ack.pop(where))
                else:
                    future.set_result(None)
        self.pending.clear()


def rescue(refused: Output, error: str, detail: str) -> Output:
    return Output("dlq", None, detail.encode(), refused.origin, refused.stage, error)


def delivery_on(broker: FakeBroker) -> Delivery:
    return Delivery(broker.send, broker.send_alone, rescue)


def protocol(broker: FakeBroker, in_flight: int = 2) -> tuple[OrderedDelivery[int], list]:
    acked: list[object] = []
    delivered: list[Output] = []

    async def ack(events):
        acked.append(list(events))
        broker.log.append(("ack", list(events)))

    ordered = OrderedDelivery(
        delivery_on(broker), ack, in_flight, on_delivered=delivered.extend
    )
    return ordered, [acked, delivered]


async def later(outputs: list[Output], seconds: float) -> list[Output]:
    await asyncio.sleep(seconds)
    return outputs


def test_batches_finishing_out_of_order_are_sent_and_acked_in_input_order() -> None:
    async def scenario():
        broker = FakeBroker()
        ordered, (acked, _) = protocol(broker, in_flight=3)
        await ordered.submit([0, 1], later([output(0), output(1)], 0.05))
        await ordered.submit([2], later([output(2)], 0.0))  # ready first
        await ordered.submit([3], [output(3)])
        await ordered.drain()
        return broker.log, acked

    log, acked = asyncio.run(scenario())
    assert acked == [[0, 1], [2], [3]]
    sends = [where[1] for kind, where in log if kind == "send"]
    assert sends == [0, 1, 2, 3]


def test_no_ack_before_the_broker_acknowledged_every_output_of_the_batch() -> None:
    async def scenario():
        broker = FakeBroker()
        broker.auto_ack = False
        ordered, (acked, _) = protocol(broker)
        await ordered.submit([0], [output(0), output(0, "dlq")])
        await asyncio.sleep(0.05)
        before = list(acked)
        broker.confirm_all()
        await ordered.drain()
        return before, acked

    before, acked = asyncio.run(scenario())
    assert before == [] and acked == [[0]]


def test_sends_of_later_batches_do_not_wait_for_earlier_acknowledgements() -> None:
    async def scenario():
        broker = FakeBroker()
        broker.auto_ack = False
        ordered, (acked, _) = protocol(broker, in_flight=10)
        for offset in range(5):
            await ordered.submit([offset], [output(offset)])
        await asyncio.sleep(0.05)
        sent_before_any_ack = len(broker.pending)
        broker.confirm_all()
        await ordered.drain()
        return sent_before_any_ack, acked

    sent, acked = asyncio.run(scenario())
    assert sent == 5  # no round trip per record
    assert acked == [[0], [1], [2], [3], [4]]


@pytest.mark.parametrize("when", ["send", "ack"])
def test_a_refused_record_is_replaced_by_a_dlq_record_and_its_batch_acked(when: str) -> None:
    async def scenario():
        broker = FakeBroker()
        if when == "send":
            broker.refuse_at_send.add(("enriched", 1))
        else:
            broker.refuse_at_ack[("enriched", 1)] = MessageSizeTooLargeError("RecordTooLarge")
        ordered, (acked, delivered) = protocol(broker)
        await ordered.submit([0, 1, 2], [output(0), output(1), output(2)])
        await ordered.drain()
        return acked, delivered

    acked, delivered = asyncio.run(scenario())
    assert acked == [[0, 1, 2]]
    assert [(o.topic, o.origin.offset, o.error) for o in delivered] == [
        ("enriched", 0, None),
        ("dlq", 1, "output_too_large"),
        ("enriched", 2, None),
    ]


def test_records_refused_with_an_oversized_batch_mate_are_delivered_when_sent_alone() -> None:
    async def scenario():
        broker = FakeBroker()
        batch_too_large = MessageSizeTooLargeError("[Error 10] MessageSizeTooLargeError")
        broker.refuse_at_ack[("enriched", 1)] = batch_too_large
        for offset in (0, 2):  # refused with the batch they shared with offset 1
            broker.refuse_once_at_ack[("enriched", offset)] = batch_too_large
        ordered, (acked, delivered) = protocol(broker)
        await ordered.submit([0, 1, 2], [output(0), output(1), output(2)])
        await ordered.drain()
        return acked, delivered, broker.log

    acked, delivered, log = asyncio.run(scenario())
    assert acked == [[0, 1, 2]]
    assert [(o.topic, o.origin.offset, o.error) for o in delivered] == [
        ("enriched", 0, None),
        ("dlq", 1, "output_too_large"),
        ("enriched", 2, None),
    ]
    sends = [(kind, where) for kind, where in log if kind != "ack"]
    assert sends == (
        [("send", ("enriched", n)) for n in (0, 1, 2)]
        + [("alone", ("enriched", n)) for n in (0, 1, 2)]
        + [("alone", ("dlq", 1))]
    )


def test_a_record_the_client_refused_before_sending_is_not_sent_again() -> None:
    async def scenario():
        broker = FakeBroker()
        broker.refuse_at_send.add(("enriched", 0))
        ordered, (_, delivered) = protocol(broker)
        await ordered.submit([0], [output(0)])
        await ordered.drain()
        return delivered, broker.log

    delivered, log = asyncio.run(scenario())
    assert [(o.topic, o.error) for o in delivered] == [("dlq", "output_too_large")]
    assert log == [("alone", ("dlq", 0)), ("ack", [0])]


def test_a_refused_dlq_record_fails_the_batch_and_every_later_one_unacked() -> None:
    async def scenario():
        broker = FakeBroker()
        broker.refuse_at_ack[("enriched", 1)] = ConnectionError("not authorised")
        broker.refuse_at_ack[("dlq", 1)] = ConnectionError("not authorised")
        ordered, (acked, _) = protocol(broker, in_flight=3)
        await ordered.submit([0], [output(0)])
        await ordered.submit([1], [output(1)])
        await ordered.submit([2], [output(2)])
        unretrieved: list[dict] = []
        asyncio.get_running_loop().set_exception_handler(lambda _, context: unretrieved.append(context))
        with pytest.raises(DeliveryRefused, match="raw\\[0\\]@1"):
            await ordered.drain()
        del ordered
        gc.collect()  # a failed task nobody awaited reports itself when collected
        return acked, unretrieved

    acked, unretrieved = asyncio.run(scenario())
    assert acked == [[0]]
    assert unretrieved == []  # the later batches' failures went with the first one


def test_a_failure_while_computing_outputs_fails_that_batch_and_later_ones_unacked() -> None:
    async def broken() -> list[Output]:
        raise RuntimeError("a bug outside the per-article handling")

    async def scenario():
        broker = FakeBroker()
        ordered, (acked, _) = protocol(broker, in_flight=3)
        await ordered.submit([0], [output(0)])
        await ordered.submit([1], broken())
        await ordered.submit([2], [output(2)])
        with pytest.raises(RuntimeError, match="a bug"):
            await ordered.drain()
        return acked, broker.log

    acked, log = asyncio.run(scenario())
    assert acked == [[0]]
    assert ("send", ("enriched", 2)) not in log  # nothing after the failed batch left


def test_a_failing_ack_surfaces_on_the_next_submit() -> None:
    async def scenario():
        broker = FakeBroker()

        async def ack(events):
            raise OSError("commit lost")

        ordered = OrderedDelivery(delivery_on(broker), ack, in_flight=1)
        await ordered.submit([0], [output(0)])
        with pytest.raises(OSError, match="commit lost"):
            await ordered.submit([1], [output(1)])

    asyncio.run(scenario())


def test_cancel_leaves_batches_in_flight_unacked() -> None:
    async def scenario():
        broker = FakeBroker()
        broker.auto_ack = False
        ordered, (acked, _) = protocol(broker)
        await ordered.submit([0], [output(0)])
        await ordered.submit([1], later([output(1)], 10))
        await asyncio.sleep(0.05)
        ordered.cancel()
        broker.confirm_all()
        await asyncio.sleep(0.05)
        return acked

    assert asyncio.run(scenario()) == []


def test_refusal_codes() -> None:
    assert refusal_code(MessageSizeTooLargeError()) == "output_too_large"
    assert refusal_code(TimeoutError()) == "delivery_failed"


def test_prompt_commit_coalesces_requests_made_while_a_commit_runs() -> None:
    async def scenario():
        commits: list[int] = []
        gate = asyncio.Event()

        async def commit() -> None:
            commits.append(len(commits))
            await gate.wait()

        prompt = PromptCommit(commit)
        prompt.request()
        await asyncio.sleep(0.01)
        prompt.request()
        prompt.request()  # both covered by one more commit
        gate.set()
        await asyncio.sleep(0.05)
        return commits

    assert asyncio.run(scenario()) == [0, 1]


def test_a_failed_batch_is_reported_at_once_even_if_nothing_more_is_submitted() -> None:
    async def scenario():
        broker = FakeBroker()
        broker.refuse_at_ack[("enriched", 0)] = ConnectionError("not authorised")
        broker.refuse_at_ack[("dlq", 0)] = ConnectionError("not authorised")
        failures: list[BaseException] = []
        ordered = OrderedDelivery(
            delivery_on(broker), lambda events: asyncio.sleep(0), 2,
            on_failure=failures.append,
        )
        await ordered.submit([0], [output(0)])
        await asyncio.sleep(0.05)  # no drain, no further submit
        ordered.cancel()
        return failures

    [failure] = asyncio.run(scenario())
    assert isinstance(failure, DeliveryRefused)


def test_prompt_commit_holds_writers_while_a_commit_runs_and_spaces_commits() -> None:
    async def scenario():
        started: list[float] = []
        release = asyncio.Event()
        loop = asyncio.get_running_loop()

        async def commit() -> None:
            started.append(loop.time())
            await release.wait()

        prompt = PromptCommit(commit, min_interval=0.1)
        await asyncio.wait_for(prompt.quiet(), 0.01)  # nothing running: no wait
        prompt.request()
        await asyncio.sleep(0.01)
        writer = asyncio.ensure_future(prompt.quiet())
        await asyncio.sleep(0.02)
        held = not writer.done()
        release.set()
        await asyncio.wait_for(writer, 0.05)
        prompt.request()  # during the pause after the first commit
        await asyncio.sleep(0.2)
        return held, started

    held, started = asyncio.run(scenario())
    assert held
    assert len(started) == 2 and started[1] - started[0] >= 0.1
