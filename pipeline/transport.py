"""Faust's aiokafka transport, with a seek back to the committed offset that also covers
partitions nothing was ever committed on.

Faust drops records it fetched while a rebalance stops the flow, then "seeks back to committed
offsets"; it seeks stream partitions to their committed offsets again when a rebalance ends. Both
go through aiokafka's ``seek_to_committed``, which leaves a partition where it is when its
committed offset is None or 0. On a partition the group never committed, the dropped records
were then skipped: a third worker joining two idle ones left 10 of 24 articles unread, and the
first commit after them would have moved the group past them for good. Here such a partition is
sought to its first offset, where ``auto_offset_reset=earliest`` would have started it. Table
changelogs are left alone: recovery seeks them to the offsets their stores persisted.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition
from faust.transport.drivers import aiokafka as faust_aiokafka


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


class Consumer(faust_aiokafka.Consumer):
    def _new_consumer_thread(self) -> ConsumerThread:
        return ConsumerThread(self, loop=self.loop, beacon=self.beacon)


class Transport(faust_aiokafka.Transport):
    Consumer = Consumer
