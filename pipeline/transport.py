"""Faust's aiokafka transport, with a seek back to the committed offset that also covers
partitions nothing was ever committed on, and no commit past a message no agent acked.

Faust drops records it fetched while a rebalance stops the flow, then "seeks back to committed
offsets"; it seeks stream partitions to their committed offsets again when a rebalance ends. Both
go through aiokafka's ``seek_to_committed``, which leaves a partition where it is when its
committed offset is None or 0. On a partition the group never committed, the dropped records
were then skipped: a third worker joining two idle ones left 10 of 24 articles unread, and the
first commit after them would have moved the group past them for good. Here such a partition is
sought to its first offset, where ``auto_offset_reset=earliest`` would have started it. Table
changelogs are left alone: recovery seeks them to the offsets their stores persisted.

Faust also drops a fetched record now and then around a rebalance (the stream skips a record of
the previous generation, or the fetcher skips one below an offset it read before a seek) without
any seek after it. Its commit then takes the first run of acked offsets as done, even when it
starts past the committed offset (and with no committed offset, wherever it starts): one of 24
articles produced as a third worker joined was committed past and never read. Here a commit
stops short of such a hole, and the partition is read again from the hole (the agents ack in
order, so a later ack means the record at the hole is not in flight).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Collection, Iterable, Mapping
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition
from faust.transport.drivers import aiokafka as faust_aiokafka
from faust.types import TP

from pipeline import metrics

log = logging.getLogger("pipeline.transport")

# A hole still there this long after the partition was read again from it is read again (the
# fetcher may have dropped the re-read too); re-reads repeat work, so not sooner.
REREAD_RETRY_SECONDS = 30.0


async def seek_to_committed_or_first(
    consumer: AIOKafkaConsumer, skip_topics: Collection[str]
) -> Mapping[TopicPartition, int | None]:
    """Seek every assigned partition to its committed offset, or to its first offset when it has
    none (partitions of ``skip_topics`` only when they have one); return the committed offsets."""
    committed = await consumer.seek_to_committed()
    never_committed = [
        tp for tp, offset in committed.items() if not offset and tp.topic not in skip_topics
    ]
    if never_committed:
        await consumer.seek_to_beginning(*never_committed)
    return committed


class ConsumerThread(faust_aiokafka.AIOKafkaConsumerThread):
    async def seek_to_committed(self) -> Mapping[Any, int]:
        changelogs = set(self.app.tables.changelog_topics)
        return await self.call_thread(
            seek_to_committed_or_first, self._ensure_consumer(), changelogs
        )


def unread_hole(
    next_offset: int | None, acked: Iterable[int], gap_starts: Iterable[int]
) -> int | None:
    """The offset to read again when a partition's acks start past its next offset to commit.

    ``next_offset`` is the committed offset (or, before the first commit, the partition's first
    offset); ``gap_starts`` begin runs of offsets Faust knows hold no record. None when the
    acked offsets (with the gaps) start at ``next_offset``, or nothing is acked.
    """
    starts = [*acked, *gap_starts]
    if next_offset is None or not starts or min(starts) <= next_offset:
        return None
    return next_offset


class Consumer(faust_aiokafka.Consumer):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self._first_offsets: dict[TP, int] = {}  # before a partition's first commit
        self._reread_at: dict[TP, float] = {}
        super().__init__(*args, **kwargs)

    def _new_consumer_thread(self) -> ConsumerThread:
        return ConsumerThread(self, loop=self.loop, beacon=self.beacon)

    async def perform_seek(self) -> None:
        await super().perform_seek()
        uncommitted = [
            tp
            for tp in self.assignment()
            if self._committed_offset[tp] is None and not self._is_changelog_tp(tp)
        ]
        if uncommitted:
            self._first_offsets.update(await self.earliest_offsets(*uncommitted))

    def _new_offset(self, tp: TP) -> int | None:
        next_offset = self._committed_offset[tp]
        if next_offset is None:
            next_offset = self._first_offsets.get(tp)
        gaps = self._gap.get(tp)
        hole = unread_hole(next_offset, self._acked[tp], [g.begin for g in gaps or ()])
        if hole is None:
            return super()._new_offset(tp)
        last = self._reread_at.get(tp)
        if last is None or time.monotonic() - last >= REREAD_RETRY_SECONDS:
            self._reread_at[tp] = time.monotonic()
            asyncio.ensure_future(self._read_again(tp, hole))
        return None

    async def _read_again(self, tp: TP, offset: int) -> None:
        # A task of its own (commits are synchronous here): a failure is logged, not lost, and
        # the next commit after REREAD_RETRY_SECONDS tries again.
        try:
            await self._seek_to_hole(tp, offset)
        except Exception:  # e.g. the partition moved in a rebalance meanwhile
            log.warning(
                "reading a partition again failed",
                exc_info=True,
                extra={"topic": tp.topic, "partition": tp.partition, "offset": offset},
            )

    async def _seek_to_hole(self, tp: TP, offset: int) -> None:
        # Retention may have deleted the hole: then nothing is missing below the first offset.
        first = (await self.earliest_offsets(tp)).get(tp)
        if first is not None and first > offset:
            self._first_offsets[tp] = first
            if self._committed_offset[tp] is not None:
                self._committed_offset[tp] = first
            return
        log.warning(
            "a fetched message was never handed to an agent; reading the partition again from it",
            extra={"topic": tp.topic, "partition": tp.partition, "offset": offset},
        )
        metrics.UNREAD_REREADS.labels(topic=tp.topic, partition=str(tp.partition)).inc()
        await self.seek(tp, offset)


async def send_alone(
    producer: faust_aiokafka.Producer, topic: str, key: bytes | None, value: bytes
) -> asyncio.Future[Any]:
    """Send one record in a record batch of its own; return the future of its acknowledgement.

    The producer adds a record to the batch open for its partition, and the broker applies the
    topic's ``max.message.bytes`` to a whole batch: a record resent after its batch was refused
    could be refused again for the records sent beside it. Faust has no batch API, so this uses
    aiokafka's, on the producer Faust runs (Faust's send sensors do not see these rare sends).
    """
    client = producer._ensure_producer()
    batch = client.create_batch()
    batch.append(key=key, value=value, timestamp=None)  # a batch's first record always fits
    batch.close()  # else the producer adds the records sent next to it while it waits
    await client.partitions_for(topic)  # a DLQ stand-in may be the first record to its topic
    partition = producer.key_partition(topic, key).partition  # where a plain send puts it
    return await client.send_batch(batch, topic, partition=partition)


class Transport(faust_aiokafka.Transport):
    Consumer = Consumer
