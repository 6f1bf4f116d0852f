"""pipeline.transport against the real broker and aiokafka: the seek back to committed offsets,
and a record sent in a batch of its own."""

from __future__ import annotations

import asyncio
import uuid

import faust
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.structs import OffsetAndMetadata
from kafka import KafkaAdminClient, KafkaProducer

from pipeline.transport import seek_to_committed_or_first, send_alone


def make_topics(bootstrap: str, *names: str) -> None:
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    try:
        admin.create_topics(
            {name: {"num_partitions": 1, "replication_factor": 1} for name in names},
            wait_for_metadata=True,
        )
    finally:
        admin.close()
    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all")
    for name in names:
        for i in range(3):
            producer.send(name, value=f"record {i}".encode())
    producer.flush()
    producer.close()


async def positions_after_seek(bootstrap: str, topics: list[str], commit: dict[str, int]) -> dict:
    """Read each topic to its end, commit `commit`, seek back; the positions and a re-read."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap,
        group_id=f"seek-{uuid.uuid4().hex[:8]}",
        enable_auto_commit=False,
        auto_offset_reset="earliest",
    )
    await consumer.start()
    try:
        tps = [TopicPartition(topic, 0) for topic in topics]
        consumer.assign(tps)
        read = 0
        while read < 3 * len(tps):
            batches = await consumer.getmany(timeout_ms=2000)
            read += sum(len(records) for records in batches.values())
        if commit:
            await consumer.commit(
                {TopicPartition(t, 0): OffsetAndMetadata(o, "") for t, o in commit.items()}
            )
        plain = {tp.topic: await consumer.position(tp) for tp in tps}
        await consumer.seek_to_committed()
        after_plain = {tp.topic: await consumer.position(tp) for tp in tps}
        committed = await seek_to_committed_or_first(consumer, skip_topics={topics[-1]})
        after = {tp.topic: await consumer.position(tp) for tp in tps}
        reread = await consumer.getmany(tps[0], timeout_ms=2000)
        return {
            "before": plain,
            "aiokafka": after_plain,
            "ours": after,
            "committed": {tp.topic: offset for tp, offset in committed.items()},
            "reread": [r.offset for r in reread.get(tps[0], [])],
        }
    finally:
        await consumer.stop()


def test_a_never_committed_partition_is_sought_to_its_first_record(bootstrap):
    run = uuid.uuid4().hex[:8]
    stream, changelog = f"seek-stream-{run}", f"seek-changelog-{run}"
    make_topics(bootstrap, stream, changelog)
    seen = asyncio.run(positions_after_seek(bootstrap, [stream, changelog], commit={}))
    assert seen["before"] == {stream: 3, changelog: 3}
    # What makes pipeline.transport necessary: aiokafka leaves an uncommitted partition as is.
    assert seen["aiokafka"] == {stream: 3, changelog: 3}
    assert seen["committed"] == {stream: None, changelog: None}
    # The stream partition goes back to its first record; a skipped (changelog) topic stays.
    assert seen["ours"] == {stream: 0, changelog: 3}
    assert seen["reread"] == [0, 1, 2]


def test_a_committed_partition_is_sought_to_its_committed_offset(bootstrap):
    run = uuid.uuid4().hex[:8]
    stream, changelog = f"seek-stream-{run}", f"seek-changelog-{run}"
    make_topics(bootstrap, stream, changelog)
    seen = asyncio.run(positions_after_seek(bootstrap, [stream, changelog], commit={stream: 1}))
    assert seen["committed"] == {stream: 1, changelog: None}
    assert seen["ours"] == {stream: 1, changelog: 3}
    assert seen["reread"] == [1, 2]


async def send_alone_between_others(bootstrap: str, crowded: str, fresh: str) -> dict:
    """On `crowded`, four records sent before and four after one sent alone; on `fresh`, a record
    sent alone as the producer's first to that topic."""
    app = faust.App(f"send-alone-{uuid.uuid4().hex[:8]}", broker=f"kafka://{bootstrap}")
    producer = app.producer
    await producer.start()
    try:
        value = b"x" * 700  # one fits the 1,500-byte limit, two in a batch do not

        async def plain(key: bytes) -> asyncio.Future:
            return await producer.send(crowded, key, value, None, None, None)

        before = [await plain(f"before-{i}".encode()) for i in range(4)]
        alone = await send_alone(producer, crowded, b"alone", value)
        after = [await plain(f"after-{i}".encode()) for i in range(4)]
        outcomes = await asyncio.gather(alone, *before, *after, return_exceptions=True)
        first = await (await send_alone(producer, fresh, b"first", b"first record"))
        return {
            "alone": outcomes[0],
            "batched": [type(o).__name__ for o in outcomes[1:]],
            "fresh": (first.topic, first.offset),
        }
    finally:
        await producer.stop()


def test_a_record_sent_alone_is_a_batch_of_its_own_on_the_real_broker(bootstrap):
    run = uuid.uuid4().hex[:8]
    crowded, fresh = f"send-alone-crowded-{run}", f"send-alone-fresh-{run}"
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    try:
        admin.create_topics(
            {
                crowded: {"num_partitions": 1, "replication_factor": 1,
                          "configs": {"max.message.bytes": "1500"}},
                fresh: {"num_partitions": 1, "replication_factor": 1},
            },
            wait_for_metadata=True,
        )
    finally:
        admin.close()
    seen = asyncio.run(send_alone_between_others(bootstrap, crowded, fresh))
    # The records around it share batches the broker refuses (the case a resend alone is for);
    # nothing sent after it joins its batch.
    assert seen["batched"].count("MessageSizeTooLargeError") >= 4, seen
    assert not isinstance(seen["alone"], BaseException), seen
    assert seen["alone"].topic == crowded
    assert seen["fresh"] == (fresh, 0)
