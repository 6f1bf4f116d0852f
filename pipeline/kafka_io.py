"""Plain Kafka clients (kafka-python) for the CLI's ingest and tail."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import typer
from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer

from pipeline.ingest import RawRecord
from pipeline.settings import Settings


def produce(settings: Settings, topic: str, records: Sequence[RawRecord], progress: bool) -> int:
    producer = KafkaProducer(
        bootstrap_servers=settings.kafka_bootstrap_servers.split(","),
        acks="all",
        max_request_size=settings.max_message_bytes + 64_000,
        linger_ms=5,
    )
    try:
        futures = []
        with typer.progressbar(records, label="ingesting", hidden=not progress) as bar:
            for record in bar:
                futures.append(producer.send(topic, key=record.key, value=record.value))
        producer.flush()
        for future in futures:
            future.get(timeout=30)  # raises if the broker refused a record
    finally:
        producer.close()
    return len(futures)


def consume(
    settings: Settings, topic: str, count: int | None, timeout: float, from_beginning: bool
) -> Iterator[bytes]:
    consumer = KafkaConsumer(
        topic,
        bootstrap_servers=settings.kafka_bootstrap_servers.split(","),
        group_id=None,
        enable_auto_commit=False,
        auto_offset_reset="earliest" if from_beginning else "latest",
        consumer_timeout_ms=int(timeout * 1000),
    )
    try:
        seen = 0
        for message in consumer:
            yield message.value
            seen += 1
            if count is not None and seen >= count:
                return
    finally:
        consumer.close()


def ensure_topics(settings: Settings) -> list[str]:
    """Create the public topics with the configured partitions; return those it created."""
    admin = KafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap_servers.split(","))
    try:
        existing = set(admin.list_topics())
        wanted = [settings.topic_raw, settings.topic_enriched, settings.topic_dlq]
        missing = [name for name in wanted if name not in existing]
        if missing:
            admin.create_topics(
                {
                    name: {"num_partitions": settings.topic_partitions, "replication_factor": 1}
                    for name in missing
                },
                raise_errors=False,  # another worker may create them at the same moment
                wait_for_metadata=True,
            )
        return missing
    finally:
        admin.close()
