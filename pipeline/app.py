"""The Faust app: topics and tables, built from settings. Agents are wired in agents.py."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import faust
from aiohttp import web
from faust.sensors.prometheus import MS_LATENCY_BUCKETS, FaustMetrics, PrometheusMonitor
from faust.stores.memory import Store as MemoryStore
from faust.stores.rocksdb import Store as RocksDBStore
from faust.web import Request, Response, View
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, Histogram, generate_latest

from pipeline.security import faust_credentials
from pipeline.settings import Settings
from pipeline.transport import Transport


@dataclass(frozen=True)
class Topology:
    app: faust.App
    raw_topic: faust.TopicT
    dedup_topic: faust.TopicT
    enriched_topic: faust.TopicT
    dlq_topic: faust.TopicT
    fingerprints: faust.Table
    near_index: faust.Table
    stories: faust.Table


def broker_urls(bootstrap_servers: str) -> list[str]:
    return [f"kafka://{server.strip()}" for server in bootstrap_servers.split(",") if server]


def create_app(settings: Settings, state_dir: Path) -> Topology:
    """The app, its topics and tables; table state (RocksDB) under ``state_dir``, which one
    worker process at a time may use (pipeline.worker.claim_slot)."""
    app = faust.App(
        settings.app_id,
        broker=broker_urls(settings.kafka_bootstrap_servers),
        # SASL (PLAIN/SCRAM) and TLS from PIPELINE_KAFKA_*; None for PLAINTEXT.
        broker_credentials=faust_credentials(settings),
        store=settings.table_store,
        datadir=str(state_dir),
        topic_partitions=settings.topic_partitions,
        topic_replication_factor=1,
        web_host=settings.web_host,
        web_port=settings.web_port,
        web_in_thread=False,
        # Every record the worker writes is at most max_record_bytes (README, "Limits").
        producer_max_request_size=settings.output_topic_max_bytes,
        consumer_max_fetch_size=max(settings.output_topic_max_bytes, 4 * 1024 * 1024),
        producer_acks=-1,
        broker_session_timeout=settings.broker_session_timeout_seconds,
        broker_heartbeat_interval=settings.broker_heartbeat_interval_seconds,
    )
    # Before any topic or table asks for it: a consumer that never skips uncommitted records.
    app.transport = Transport(app.conf.broker_consumer, app)

    def raw_bytes_topic(name: str, *, partitions: int | None = None) -> faust.TopicT:
        return app.topic(
            name,
            key_type=bytes,
            value_type=bytes,
            key_serializer="raw",
            value_serializer="raw",
            internal=partitions is not None,
            partitions=partitions,
            # Applied when Faust creates the (internal) topic; kafka_io creates the public ones.
            config={"max.message.bytes": str(settings.output_topic_max_bytes)},
        )

    # Dedup memory lives on ONE partition, so every copy of a story — exact or near, whatever
    # raw partition it came in on — is judged against everything seen before, in order, with no
    # race between workers. A replicated index (GlobalTable) was tried and measured: updates
    # written on one worker did not reach the other (faust-streaming #283), so half the near
    # copies were missed. Dedup and story linking cost ~13 ms an article against ~340 ms of NER
    # and embedding, so one partition keeps up with ~27 cores of analysis, and it fails over to
    # another worker like any partition.
    dedup_topic = raw_bytes_topic(f"{settings.app_id}-articles-dedup", partitions=1)
    # Kafka drops changelog records older than twice the retention window, so the state a
    # worker restores stays bounded; verdicts ignore entries past the window anyway.
    changelog_retention = {
        "cleanup.policy": "compact,delete",
        "retention.ms": str(int(2 * settings.dedup_retention_days * 86_400_000)),
    }

    def dedup_partition_table(name: str) -> faust.Table:
        return app.Table(
            name, default=None, partitions=1, key_type=str, extra_topic_configs=changelog_retention
        )

    fingerprints = dedup_partition_table("dedup-fingerprints")
    near_index = dedup_partition_table("dedup-near-index")
    # Story memory (pipeline.story_memory) beside the dedup memory, on the same one partition.
    stories = dedup_partition_table("story-memory")
    serve_metrics(app)
    return Topology(
        app=app,
        raw_topic=raw_bytes_topic(settings.topic_raw),
        dedup_topic=dedup_topic,
        enriched_topic=raw_bytes_topic(settings.topic_enriched),
        dlq_topic=raw_bytes_topic(settings.topic_dlq),
        fingerprints=fingerprints,
        near_index=near_index,
        stories=stories,
    )


def table_items_after(table: faust.Table, after: str | None) -> Iterator[tuple[str, Any]]:
    """A one-partition table's (key, value) items after the key ``after`` (all if None).

    For the dedup sweep, which resumes where its last step stopped. Faust's stores only iterate
    from the first key, so this seeks in the store itself (faust-streaming is pinned): rocksdict
    iterates from a key in the order of the encoded keys, over the partition only while this
    worker holds it as active; the memory store is a dict, sorted here (it holds what fits in RAM).
    """
    store = table.data
    if isinstance(store, RocksDBStore):
        seek = None if after is None else store._encode_key(after)
        for db in store._dbs_for_actives():
            for raw_key, raw_value in db.items(from_key=seek):
                if raw_key != seek and raw_key != store.offset_key:
                    yield store._decode_key(raw_key), store._decode_value(raw_value)
    elif isinstance(store, MemoryStore):
        for key in sorted(key for key in store.data if after is None or key > after):
            yield key, store.data[key]
    else:
        raise TypeError(f"no ordered iteration over a {type(store).__name__} table store")


def serve_metrics(app: faust.App) -> None:
    """Faust's transport metrics plus the project's (global registry) on /metrics.

    Like faust.sensors.prometheus.setup_prometheus_sensors, with a fixed `faust_` prefix (the app
    id varies per deployment) and the event runtime histogram in seconds: Faust's
    `faust_events_runtime_ms` fails `promtool check metrics`.
    """
    faust_metrics = FaustMetrics.create(REGISTRY, "faust")
    REGISTRY.unregister(faust_metrics.events_runtime_latency)
    runtime = _SecondsFromMilliseconds(
        Histogram(
            "faust_events_runtime_seconds",
            "Time an event spent in its agent.",
            buckets=tuple(ms / 1000 for ms in MS_LATENCY_BUCKETS),
        )
    )
    app.monitor = PrometheusMonitor(
        metrics=faust_metrics._replace(events_runtime_latency=runtime)
    )

    @app.page("/metrics")
    async def metrics(self: View, request: Request) -> Response:
        return cast(
            Response,
            web.Response(
                body=generate_latest(REGISTRY), headers={"Content-Type": CONTENT_TYPE_LATEST}
            ),
        )


@dataclass(frozen=True)
class _SecondsFromMilliseconds:
    """Faust observes event runtimes in milliseconds; Prometheus wants base units."""

    histogram: Histogram

    def observe(self, milliseconds: float) -> None:
        self.histogram.observe(milliseconds / 1000)
