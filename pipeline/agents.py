"""Thin wiring: stream -> stage functions -> metrics -> next topic. No logic lives here.

Delivery is at-least-once. Sends use ``force=True``: Faust would otherwise hold them back until
the next offset commit (its "attachments"), adding up to a commit interval of latency. Nothing is
lost by sending at once, because Faust flushes the producer before it commits an offset, and an
event is acked only after everything it produced was handed to the producer.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from time import perf_counter
from typing import Any, TypeVar

import faust

from pipeline import metrics
from pipeline.analysis import (
    IncomingMessage,
    Rejection,
    assemble_batch,
    prepare_batch,
    tag_batch,
)
from pipeline.app import Topology, table_items_after
from pipeline.lag import register_lag_monitor
from pipeline.ner_process import NerProcess
from pipeline.records import AnalyzedArticle, DedupOut, dead_letter, to_json, utc_now
from pipeline.settings import Settings
from pipeline.stages.dedup import FirstSeen, SweepPosition, decode_signature, judge, sweep_step

log = logging.getLogger("pipeline.agents")

T = TypeVar("T")

# Two batches in flight keep the NER process busy: one is tagged while the next is prepared
# (and the one before is assembled and sent). More would only add latency.
BATCHES_IN_FLIGHT = 2


def register_agents(topology: Topology, settings: Settings, ner: NerProcess) -> None:
    app = topology.app
    register_lag_monitor(app, settings.consumer_lag_interval_seconds)
    retention = timedelta(days=settings.dedup_retention_days)
    # One thread prepares and assembles batches, so the event loop keeps heartbeats and /metrics
    # alive; another waits on the NER process, so a batch is prepared while the last is tagged.
    stage_executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="stages")
    ner_executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="ner")

    async def send_to_dlq(rejection: Rejection) -> None:
        message = rejection.message
        record = dead_letter(
            error=rejection.error,
            detail=rejection.detail,
            stage=rejection.stage,
            original=message.value,
            key=message.key,
            topic=message.topic,
            partition=message.partition,
            offset=message.offset,
        )
        await topology.dlq_topic.send(key=message.key, value=to_json(record), force=True)
        metrics.DLQ_MESSAGES.labels(stage=rejection.stage, error=rejection.error).inc()
        log.warning(
            "message sent to the DLQ",
            extra={
                "error": rejection.error,
                "stage": rejection.stage,
                "topic": message.topic,
                "partition": message.partition,
                "offset": message.offset,
            },
        )

    # Expired dedup keys are deleted inside the deduplicate agent, in an event's context: Faust
    # sends a table delete to the changelog partition of the current event and refuses one made
    # outside an event (faust/tables/base.py partition_for_key), so a timer cannot sweep. Events
    # of the one-partition dedup topic put the tombstones on the tables' one changelog partition
    # (standbys and restores see them), and only the worker holding that partition sweeps.
    dedup_tables = {"fingerprints": topology.fingerprints, "near_index": topology.near_index}
    sweep_positions = {name: SweepPosition() for name in dedup_tables}

    def sweep_dedup_tables() -> None:
        for name, table in dedup_tables.items():
            position = sweep_positions[name]
            step = sweep_step(
                table_items_after(table, position.after),
                position,
                now=utc_now(),
                retention=retention,
                budget=settings.dedup_sweep_batch,
            )
            for key in step.expired:
                del table[key]
            sweep_positions[name] = step.position
            metrics.DEDUP_SWEPT_KEYS.labels(table=name).inc(len(step.expired))
            if step.remembered is not None:
                metrics.DEDUP_REMEMBERED_KEYS.labels(table=name).set(step.remembered)

    prepare = functools.partial(
        prepare_batch,
        max_message_bytes=settings.max_message_bytes,
        max_text_chars=settings.max_text_chars,
    )

    async def run_stage(
        executor: ThreadPoolExecutor, stage: str, articles: int, fn: Callable[..., T], *args: Any
    ) -> T:
        result, seconds = await asyncio.get_running_loop().run_in_executor(
            executor, timed, fn, *args
        )
        histogram = metrics.STAGE_SECONDS.labels(stage=stage)
        for _ in range(articles):
            histogram.observe(seconds / articles)
        return result

    async def analyze_events(
        stream: faust.StreamT, events: Sequence[faust.EventT], previous: asyncio.Future[None] | None
    ) -> None:
        messages = [incoming(event) for event in events]
        metrics.ARTICLES.labels(stage="analyze", outcome="in").inc(len(messages))
        prepared = await run_stage(stage_executor, "prepare", len(messages), prepare, messages)
        tagged = await run_stage(
            ner_executor, "entities", len(prepared.ready), tag_batch, prepared, ner
        )
        outcome = await run_stage(
            stage_executor,
            "assemble",
            len(tagged.articles),
            assemble_batch,
            tagged,
            ner.languages,
            ner.settings,
        )
        if previous is not None:
            await previous  # records go out, and offsets are acked, in the order they came in
        for reason, chars in outcome.skipped.items():
            metrics.ENTITY_SKIPS.labels(reason=reason).inc(chars)
        for rejection in outcome.rejected:
            await send_to_dlq(rejection)
        for _, analyzed in outcome.analyzed:
            await topology.dedup_topic.send(
                key=analyzed.fingerprint.encode(), value=to_json(analyzed), force=True
            )
        metrics.ARTICLES.labels(stage="analyze", outcome="out").inc(len(outcome.analyzed))
        metrics.ARTICLES.labels(stage="analyze", outcome="dlq").inc(len(outcome.rejected))
        # Only now may these offsets be committed: everything they produced is with the producer.
        for event in events:
            await stream.ack(event)

    @app.agent(topology.raw_topic, name="analyze")
    async def analyze(stream: faust.StreamT) -> None:
        in_flight: deque[asyncio.Future[None]] = deque()
        try:
            async for events in stream.noack_take(
                settings.batch_size, settings.batch_window_seconds
            ):
                while len(in_flight) >= BATCHES_IN_FLIGHT:
                    await in_flight.popleft()  # a failed batch fails the agent here
                previous = in_flight[-1] if in_flight else None
                batch = asyncio.ensure_future(analyze_events(stream, events, previous))
                batch.add_done_callback(report_failed_batch)
                in_flight.append(batch)
        finally:
            for batch in in_flight:
                batch.cancel()  # their events stay unacked: the next owner reads them again

    @app.agent(topology.dedup_topic, name="deduplicate")
    async def deduplicate(stream: faust.StreamT) -> None:
        loop = asyncio.get_running_loop()
        next_sweep = loop.time()
        async for event in stream.events():
            if loop.time() >= next_sweep:
                next_sweep = loop.time() + settings.dedup_sweep_interval_seconds
                sweep_dedup_tables()
            metrics.ARTICLES.labels(stage="deduplicate", outcome="in").inc()
            try:
                analyzed = AnalyzedArticle.model_validate_json(event.value)
            except ValueError as exc:
                # Only this app writes the internal topic; a bad record here is a bug or a
                # foreign producer, and it still must not vanish.
                await send_to_dlq(
                    Rejection(incoming(event), "invalid_internal_record", str(exc)[:500], "dedup")
                )
                metrics.ARTICLES.labels(stage="deduplicate", outcome="dlq").inc()
                continue
            started = asyncio.get_running_loop().time()
            stored = topology.fingerprints.get(analyzed.fingerprint)
            minhash = decode_signature(analyzed.signature) if analyzed.signature else ()
            judgement = judge(
                FirstSeen.from_record(stored) if stored else None,
                minhash,
                analyzed.band_keys,
                topology.near_index,
                analyzed.article.id,
                now=utc_now(),
                retention=retention,
                eligible=analyzed.dedup_eligible,
            )
            if judgement.remember_exact is not None:
                topology.fingerprints[analyzed.fingerprint] = judgement.remember_exact.to_record()
            for key, record in judgement.index_writes.items():
                topology.near_index[key] = record
            verdict = judgement.verdict
            article = analyzed.article.model_copy(
                update={
                    "dedup": DedupOut(
                        status=verdict.status,  # type: ignore[arg-type]
                        duplicate_of=verdict.duplicate_of,
                        similarity=verdict.similarity,
                    )
                }
            )
            metrics.STAGE_SECONDS.labels(stage="deduplicate").observe(
                asyncio.get_running_loop().time() - started
            )
            await topology.enriched_topic.send(
                key=analyzed.output_key.encode(), value=to_json(article), force=True
            )
            record_output(article.language, article.quality, len(article.entities), verdict.status)
            metrics.END_TO_END_SECONDS.observe((utc_now() - article.ingested_at).total_seconds())


def record_output(language: str | None, quality: list[str], entities: int, status: str) -> None:
    metrics.ARTICLES.labels(stage="deduplicate", outcome="out").inc()
    metrics.LANGUAGES.labels(language=language or "und").inc()
    metrics.ENTITIES_PER_ARTICLE.observe(entities)
    for flag in quality:
        metrics.QUALITY_FLAGS.labels(flag=flag).inc()
    if status != "unique":
        metrics.DUPLICATES.labels(kind=status).inc()


def incoming(event: faust.EventT) -> IncomingMessage:
    message = event.message
    return IncomingMessage(
        value=message.value,
        key=message.key,
        topic=message.topic,
        partition=message.partition,
        offset=message.offset,
        timestamp=datetime.fromtimestamp(message.timestamp, tz=UTC),
    )


def report_failed_batch(batch: asyncio.Future[None]) -> None:
    """Log a batch's failure when it happens, not when the agent next awaits it."""
    if not batch.cancelled() and batch.exception() is not None:
        log.error(
            "an analyze batch failed: its offsets stay uncommitted and are read again after a "
            "restart or rebalance",
            exc_info=batch.exception(),
        )


def timed(fn: Callable[..., T], *args: Any) -> tuple[T, float]:
    """fn(*args) and its duration, measured in the thread that runs it (not queueing time)."""
    started = perf_counter()
    return fn(*args), perf_counter() - started
