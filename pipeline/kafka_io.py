"""Plain Kafka clients (kafka-python) for the CLI's ingest and tail, and topic creation.

Every client gets the security settings (SASL/TLS) of `pipeline.security`, after a start-up
access check that fails fast, with a clear message, on wrong credentials.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import typer
from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer

from pipeline.ingest import RawRecord
from pipeline.security import KafkaAccessError, check_access, kafka_python_options
from pipeline.settings import Settings


def require_access(settings: Settings) -> None:
    """check_access for the commands: on refusal, print the reason and exit 1 (no traceback)."""
    try:
        check_access(settings)
    except KafkaAccessError as exc:
        typer.echo(f"kafka: {exc}", err=True)
        raise typer.Exit(1) from None


def client_options(settings: Settings) -> dict:
    """Bootstrap servers and security options shared by every kafka-python client here."""
    return {
        "bootstrap_servers": settings.kafka_bootstrap_servers.split(","),
        **kafka_python_options(settings),
    }


def produce(settings: Settings, topic: str, records: Sequence[RawRecord], progress: bool) -> int:
    require_access(settings)
    producer = KafkaProducer(
        **client_options(settings),
        acks="all",
        max_request_size=settings.raw_topic_max_bytes,
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
) -> Iterator[bytes | None]:
    """Values of a topic's messages (None for a tombstone)."""
    require_access(settings)
    consumer = KafkaConsumer(
        topic,
        **client_options(settings),
        group_id=None,
        enable_auto_commit=False,
        auto_offset_reset="earliest" if from_beginning else "latest",
        consumer_timeout_ms=int(timeout * 1000),
        max_partition_fetch_bytes=settings.output_topic_max_bytes,
    )
    try:
        for seen, message in enumerate(consumer, start=1):
            yield message.value
            if count is not None and seen >= count:
                return
    finally:
        consumer.close()


def topic_configs(settings: Settings) -> dict[str, dict[str, str]]:
    """The public topics and the configs they are created with: limits that match the worker's."""
    raw = {"max.message.bytes": str(settings.raw_topic_max_bytes)}
    written = {"max.message.bytes": str(settings.output_topic_max_bytes)}
    return {settings.topic_raw: raw, settings.topic_enriched: written, settings.topic_dlq: written}


def ensure_topics(settings: Settings) -> list[str]:
    """Create the public topics with the configured partitions; return those it created."""
    require_access(settings)
    admin = KafkaAdminClient(**client_options(settings))
    try:
        existing = set(admin.list_topics())
        wanted = topic_configs(settings)
        missing = [name for name in wanted if name not in existing]
        if missing:
            admin.create_topics(
                {
                    name: {
                        "num_partitions": settings.topic_partitions,
                        "replication_factor": 1,
                        "configs": wanted[name],
                    }
                    for name in missing
                },
                raise_errors=False,  # another worker may create them at the same moment
                wait_for_metadata=True,
            )
        return missing
    finally:
        admin.close()
