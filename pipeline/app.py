"""The Faust app: topics and tables, built from settings. Agents are wired in agents.py."""

from __future__ import annotations

from dataclasses import dataclass

import faust
from faust.sensors.prometheus import setup_prometheus_sensors

from pipeline.settings import Settings


@dataclass(frozen=True)
class Topology:
    app: faust.App
    raw_topic: faust.TopicT
    analyzed_topic: faust.TopicT
    enriched_topic: faust.TopicT
    dlq_topic: faust.TopicT
    fingerprints: faust.Table


def broker_urls(bootstrap_servers: str) -> list[str]:
    return [f"kafka://{server.strip()}" for server in bootstrap_servers.split(",") if server]


def create_app(settings: Settings) -> Topology:
    app = faust.App(
        settings.app_id,
        broker=broker_urls(settings.kafka_bootstrap_servers),
        store=settings.table_store,
        datadir=str(settings.state_dir / settings.app_id),
        topic_partitions=settings.topic_partitions,
        topic_replication_factor=1,
        web_host=settings.web_host,
        web_port=settings.web_port,
        web_in_thread=False,
        # Enriched records carry the text plus annotations: allow them past the 1 MB default.
        producer_max_request_size=4 * settings.max_message_bytes,
        producer_acks=-1,
    )

    def raw_bytes_topic(name: str, *, internal: bool = False) -> faust.TopicT:
        return app.topic(
            name,
            key_type=bytes,
            value_type=bytes,
            key_serializer="raw",
            value_serializer="raw",
            internal=internal,
            partitions=settings.topic_partitions if internal else None,
        )

    # Analysed articles are re-keyed by content fingerprint so that every copy of a story meets
    # the same table partition, whatever raw partition it arrived on.
    analyzed_topic = raw_bytes_topic(f"{settings.app_id}-articles-by-fingerprint", internal=True)
    fingerprints = app.Table(
        "dedup-fingerprints",
        default=None,
        partitions=settings.topic_partitions,
        key_type=str,
        value_serializer="json",
    )
    # The project's counters live in the global registry; Faust serves it with its own metrics.
    setup_prometheus_sensors(app, name_prefix="faust")
    return Topology(
        app=app,
        raw_topic=raw_bytes_topic(settings.topic_raw),
        analyzed_topic=analyzed_topic,
        enriched_topic=raw_bytes_topic(settings.topic_enriched),
        dlq_topic=raw_bytes_topic(settings.topic_dlq),
        fingerprints=fingerprints,
    )
