"""The two agents: raw articles -> analysis -> dedup topic -> verdict -> enriched topic.

Thin wiring. The stages live in `analysis.py` and `dedup_memory.py`; the delivery protocol
(outputs confirmed by the broker before offsets are acked, refused records to the DLQ) in
`delivery.py`. Every input message ends as exactly one output record, analysed, enriched or
dead-lettered. A failure outside the per-article error handling ends the worker (exit code
`EXIT_UNACCOUNTED`) rather than restart an agent past unacked offsets.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import os
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from time import perf_counter
from typing import Any, TypeVar

import faust

from pipeline import metrics, transport
from pipeline.analysis import (
    FaultInjection,
    IncomingMessage,
    Rejection,
    assemble_batch,
    embed_batch,
    prepare_batch,
    tag_batch,
)
from pipeline.app import Topology, table_items_after
from pipeline.cleaning_process import HtmlCleaningProcess
from pipeline.dedup_memory import DedupMemory
from pipeline.delivery import Delivery, DeliveryRefused, OrderedDelivery, Output, PromptCommit
from pipeline.lag import register_lag_monitor
from pipeline.ner_process import NerPool
from pipeline.records import (
    AnalyzedArticle,
    EnrichedArticle,
    dead_letter,
    dead_letter_key,
    to_json,
    utc_now,
)
from pipeline.settings import Settings
from pipeline.stages.story import StoryConfig
from pipeline.story_memory import StoryMemory

log = logging.getLogger("pipeline.agents")

T = TypeVar("T")

# Batches in flight beyond one per NER process: every NER process tags a batch while the next is
# prepared (and the one before is assembled and sent). More would only add latency.
SPARE_BATCHES_IN_FLIGHT = 1
# Dedup records whose delivery may be pending at once: sends are not serialised on round trips.
DEDUP_RECORDS_IN_FLIGHT = 16
# Offsets are committed this often while articles flow: a crash repeats about this much work
# (plus the batches in flight), and the dedup agent pauses for each commit (see PromptCommit).
COMMIT_INTERVAL_SECONDS = 0.1
# The worker's exit code when a message could not be accounted for (even the DLQ refused it,
# or the protocol itself failed): its offsets stay uncommitted and its partitions move.
EXIT_UNACCOUNTED = 70

DEDUP, ENRICHED, DLQ = "dedup", "enriched", "dlq"


def register_agents(
    topology: Topology,
    settings: Settings,
    ner: NerPool,
    cleaner: HtmlCleaningProcess,
    faults: FaultInjection,
) -> None:
    app = topology.app
    register_lag_monitor(app, settings.consumer_lag_interval_seconds)
    topics = {DEDUP: topology.dedup_topic, ENRICHED: topology.enriched_topic, DLQ: topology.dlq_topic}

    async def send(output: Output) -> Any:
        # Topic.send would return the producer's future and leave Faust's own, which holds the
        # same outcome, unawaited: each refused record then logged an "exception was never
        # retrieved" error. Awaiting Faust's future keeps its sensors and retrieves it.
        topic = topics[output.topic]
        message = topic.as_future_message(key=output.key, value=output.value)
        await topic.publish_message(message, wait=False)
        return message

    async def send_alone(output: Output) -> Any:
        topic = topics[output.topic].get_topic_name()
        return await transport.send_alone(app.producer, topic, output.key, output.value)

    def rescue(refused: Output, error: str, detail: str) -> Output:
        origin = refused.origin
        if refused.topic == ENRICHED:  # keyed as the enriched record, not by its fingerprint
            origin = replace(origin, key=refused.key)
        return dead_letter_output(
            Rejection(origin, error, detail, refused.stage), settings.max_record_bytes
        )

    delivery = Delivery(send, send_alone, rescue, on_rescued=count_rescued)
    commits = PromptCommit(lambda: app.consumer.commit(), COMMIT_INTERVAL_SECONDS)
    analysis = BatchAnalysis(settings, ner, cleaner, faults)

    def acker(stream: faust.StreamT) -> Callable[[Sequence[faust.EventT]], Any]:
        async def ack(events: Sequence[faust.EventT]) -> None:
            for event in events:
                await stream.ack(event)
            commits.request()

        return ack

    @app.agent(topology.raw_topic, name="analyze")
    async def analyze(stream: faust.StreamT) -> None:
        batches: OrderedDelivery[faust.EventT] = OrderedDelivery(
            delivery,
            acker(stream),
            ner.size + SPARE_BATCHES_IN_FLIGHT,
            on_delivered=count_delivered("analyze"),
            on_failure=functools.partial(stop_unaccounted, "analyze"),
        )
        async with accounted_for(batches, "analyze"):
            async for events in stream.noack_take(
                settings.batch_size, settings.batch_window_seconds
            ):
                if faults.markers and not (events := drop_injected(app, events, faults)):
                    continue
                messages = [incoming(event) for event in events]
                metrics.ARTICLES.labels(stage="analyze", outcome="in").inc(len(messages))
                await batches.submit(events, analysis.outputs(messages))

    memory = DedupMemory(
        topology.fingerprints,
        topology.near_index,
        table_items_after,
        timedelta(days=settings.dedup_retention_days),
        settings.dedup_sweep_batch,
    )
    stories = StoryMemory(
        topology.stories,
        table_items_after,
        settings.dedup_sweep_batch,
        StoryConfig(
            related_max=settings.story_related_max,
            retention=timedelta(days=settings.dedup_retention_days),
        ),
    )

    @app.on_partitions_assigned.connect
    async def story_partition_assigned(sender: Any, assigned: Any, **kwargs: Any) -> None:
        # Another worker may have written the story table while it was theirs.
        stories.forget_index()

    @app.agent(topology.dedup_topic, name="deduplicate")
    async def deduplicate(stream: faust.StreamT) -> None:
        manual = stream.noack()
        records: OrderedDelivery[faust.EventT] = OrderedDelivery(
            delivery,
            acker(manual),
            DEDUP_RECORDS_IN_FLIGHT,
            on_delivered=count_delivered("deduplicate"),
            on_failure=functools.partial(stop_unaccounted, "deduplicate"),
        )
        loop = asyncio.get_running_loop()
        next_sweep = loop.time()
        async with accounted_for(records, "deduplicate"):
            # One event at a time: table writes and sweep deletes must happen inside an event
            # (Faust sends them to the changelog partition of the current event).
            async for event in manual.events():
                await commits.quiet()  # no table writes while a commit flushes them
                if loop.time() >= next_sweep:
                    next_sweep = loop.time() + settings.dedup_sweep_interval_seconds
                    sweep(memory, stories)
                metrics.ARTICLES.labels(stage="deduplicate", outcome="in").inc()
                message = incoming(event)
                await records.submit([event], [verdict_output(message, memory, stories, settings, faults)])


class BatchAnalysis:
    """The three analysis phases of a batch, each on its own thread so the event loop stays free:
    prepare and assemble on the stage thread, NER on threads that wait for the NER processes,
    one thread each (a batch is prepared while the previous ones are tagged)."""

    def __init__(
        self,
        settings: Settings,
        ner: NerPool,
        cleaner: HtmlCleaningProcess,
        faults: FaultInjection,
    ) -> None:
        self._settings = settings
        self._ner = ner
        self._cleaner = cleaner
        self._faults = faults
        self._stage_thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="stages")
        self._ner_threads = ThreadPoolExecutor(max_workers=ner.size, thread_name_prefix="ner")

    async def outputs(self, messages: list[IncomingMessage]) -> list[Output]:
        settings, faults = self._settings, self._faults
        prepare = functools.partial(
            prepare_batch,
            max_message_bytes=settings.max_message_bytes,
            max_text_chars=settings.max_text_chars,
            faults=faults,
            html_cleaner=self._cleaner.clean_html,
        )
        prepared = await self._run(self._stage_thread, "prepare", len(messages), prepare, messages)
        tagged = await self._run(
            self._ner_threads, "entities", len(prepared.ready), tag_batch, prepared, self._ner, faults
        )
        if settings.story_linking:
            tagged = await self._run(
                self._ner_threads, "story", len(tagged.articles), embed_batch, tagged, self._ner
            )
        assemble = functools.partial(
            assemble_batch, max_record_bytes=settings.max_record_bytes, faults=faults
        )
        outcome = await self._run(
            self._stage_thread,
            "assemble",
            len(tagged.articles),
            assemble,
            tagged,
            self._ner.languages,
            self._ner.settings,
        )
        for reason, chars in outcome.skipped.items():
            metrics.ENTITY_SKIPS.labels(reason=reason).inc(chars)
        outputs = [
            Output(DEDUP, analyzed.fingerprint.encode(), to_json(analyzed), message, "analyze")
            for message, analyzed in outcome.analyzed
        ]
        outputs += [
            dead_letter_output(rejection, settings.max_record_bytes)
            for rejection in outcome.rejected
        ]
        return outputs

    @staticmethod
    async def _run(
        executor: ThreadPoolExecutor, stage: str, articles: int, fn: Callable[..., T], *args: Any
    ) -> T:
        result, seconds = await asyncio.get_running_loop().run_in_executor(
            executor, timed, fn, *args
        )
        histogram = metrics.STAGE_SECONDS.labels(stage=stage)
        for _ in range(articles):
            histogram.observe(seconds / articles)
        return result


def verdict_output(
    message: IncomingMessage,
    memory: DedupMemory,
    stories: StoryMemory,
    settings: Settings,
    faults: FaultInjection,
) -> Output:
    """The enriched record of one analysed article (dedup verdict and story), or its DLQ record."""
    started = perf_counter()
    try:
        analyzed = AnalyzedArticle.model_validate_json(message.value or b"")
    except ValueError as exc:
        # Only this app writes the internal topic; a bad record here is a bug or a foreign
        # producer, and it still must not vanish.
        rejection = Rejection(message, "invalid_internal_record", str(exc)[:500], "deduplicate")
        return dead_letter_output(rejection, settings.max_record_bytes)
    try:
        faults.check("deduplicate", analyzed.article.text)
        dedup = memory.judge(analyzed)
        article = analyzed.article.model_copy(update={"dedup": dedup, "story": stories.link(analyzed)})
    except Exception as exc:  # noqa: BLE001 - this article alone goes to the DLQ
        # Keyed as its enriched record would be (the internal record's key is a fingerprint).
        rejection = Rejection(
            replace(message, key=analyzed.output_key.encode()),
            "stage_failed",
            f"{type(exc).__name__}: {exc}"[:500],
            "deduplicate",
        )
        return dead_letter_output(rejection, settings.max_record_bytes)
    metrics.STAGE_SECONDS.labels(stage="deduplicate").observe(perf_counter() - started)
    return Output(
        ENRICHED,
        analyzed.output_key.encode(),
        to_json(article),
        message,
        "deduplicate",
        record=article,
    )


def sweep(memory: DedupMemory, stories: StoryMemory) -> None:
    now = utc_now()
    for report in [*memory.sweep(now), stories.sweep(now)]:
        metrics.DEDUP_SWEPT_KEYS.labels(table=report.table).inc(report.swept)
        if report.remembered is not None:
            metrics.DEDUP_REMEMBERED_KEYS.labels(table=report.table).set(report.remembered)


def dead_letter_output(rejection: Rejection, max_record_bytes: int) -> Output:
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
        max_bytes=max_record_bytes,
    )
    return Output(
        DLQ, dead_letter_key(message.key), to_json(record), message, rejection.stage, rejection.error
    )


def count_delivered(stage: str) -> Callable[[Sequence[Output]], None]:
    def count(outputs: Sequence[Output]) -> None:
        for output in outputs:
            if output.is_dead_letter:
                metrics.ARTICLES.labels(stage=stage, outcome="dlq").inc()
                metrics.DLQ_MESSAGES.labels(stage=output.stage, error=output.error).inc()
                origin = output.origin
                log.warning(
                    "message sent to the DLQ",
                    extra={
                        "error": output.error,
                        "stage": output.stage,
                        "topic": origin.topic,
                        "partition": origin.partition,
                        "offset": origin.offset,
                    },
                )
            else:
                metrics.ARTICLES.labels(stage=stage, outcome="out").inc()
                if output.topic == ENRICHED:
                    record_output(output.record)

    return count


def count_rescued(refused: Output, stand_in: Output) -> None:
    metrics.DELIVERY_REFUSED.labels(topic=refused.topic, error=stand_in.error).inc()


def record_output(article: EnrichedArticle) -> None:
    metrics.LANGUAGES.labels(language=article.language or "und").inc()
    metrics.ENTITIES_PER_ARTICLE.observe(len(article.entities))
    for flag in article.quality:
        metrics.QUALITY_FLAGS.labels(flag=flag).inc()
    if article.dedup.status != "unique":
        metrics.DUPLICATES.labels(kind=article.dedup.status).inc()
    metrics.END_TO_END_SECONDS.observe((utc_now() - article.ingested_at).total_seconds())


class accounted_for:
    """Around an agent's loop: in-flight batches are cancelled when the agent stops (their
    events stay unacked and are read again); any other failure ends the worker at once, so no
    restarted agent can read past offsets that were never accounted for."""

    def __init__(self, batches: OrderedDelivery[Any], agent: str) -> None:
        self._batches = batches
        self._agent = agent

    async def __aenter__(self) -> None:
        return None

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: object
    ) -> bool:
        if exc is None:
            await self._batches.drain()
            return False
        self._batches.cancel()
        if isinstance(exc, asyncio.CancelledError | GeneratorExit):
            return False
        stop_unaccounted(self._agent, exc)
        return False


def stop_unaccounted(agent: str, exc: BaseException) -> None:
    """End the worker at once, without a commit: a message could not be accounted for."""
    log.critical(
        "a message could not be accounted for; the worker stops without committing past it",
        extra={"agent": agent, "refused": isinstance(exc, DeliveryRefused)},
        exc_info=exc,
    )
    for handler in logging.getLogger().handlers:
        handler.flush()
    # Not a graceful stop: that would commit the offsets acked so far, which is safe, but also
    # run Faust's shutdown, which may block on the very producer that just failed.
    os._exit(EXIT_UNACCOUNTED)


def drop_injected(
    app: faust.App, events: Sequence[faust.EventT], faults: FaultInjection
) -> list[faust.EventT]:
    """Test-only: the events left once the `drop` fault lost its messages, unacked and untracked
    (as Faust's own drops are, so a rebalance does not wait for them)."""
    kept = []
    for event in events:
        if faults.drops(incoming(event)):
            app.consumer._unacked_messages.discard(event.message)  # private: faust is pinned
        else:
            kept.append(event)
    return kept


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


def timed(fn: Callable[..., T], *args: Any) -> tuple[T, float]:
    """fn(*args) and its duration, measured in the thread that runs it (not queueing time)."""
    started = perf_counter()
    return fn(*args), perf_counter() - started
