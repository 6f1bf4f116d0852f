"""Consumer lag per partition and a stuck-partition signal, refreshed by a Faust timer.

Faust's own sensor updates a partition's end offset only when a fetch returns messages for it,
so a partition that silently stops being fetched (faust-streaming issue #629) looks healthy
there. Here every worker asks the broker for the end offsets of the partitions it holds, every
``interval`` seconds, and exports

- ``pipeline_consumer_lag{topic,partition}``: end offset - committed offset (the partition's
  first offset until the group's first commit on it);
- ``pipeline_partition_last_progress_timestamp_seconds{topic,partition}``: when the committed
  offset last advanced, or the partition was caught up. Lag > 0 with an old timestamp = stuck.

Table changelog partitions and Faust's leader-election topic are left out: the worker writes
or merely holds them and never commits them.

Wiring (one line where the agents are registered)::

    register_lag_monitor(topology.app, settings.consumer_lag_interval_seconds)
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import faust
from faust.exceptions import ConsumerNotStarted
from faust.types import TP

from pipeline import metrics

log = logging.getLogger("pipeline.lag")

DEFAULT_INTERVAL_SECONDS = 10.0

#: Faust's leader-election topic (``<app id>-__assignor-__leader``): assigned, never consumed.
LEADER_TOPIC_SUFFIX = "-__assignor-__leader"


@dataclass(frozen=True)
class PartitionOffsets:
    topic: str
    partition: int
    end: int  # the partition's log end offset (the next offset to be written)
    committed: int  # the next offset the group will process


class LagTracker:
    """Turns periodic offset snapshots into the lag and progress gauges. No Faust, no broker."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        self._last_committed: dict[tuple[str, int], int] = {}

    def update(self, snapshot: Iterable[PartitionOffsets]) -> None:
        """Record one snapshot of every held partition; series of partitions absent from it
        (revoked) are removed, so a former owner never reports a frozen lag."""
        now = self._clock()
        held: dict[tuple[str, int], int] = {}
        for p in snapshot:
            key = (p.topic, p.partition)
            labels = (p.topic, str(p.partition))
            lag = max(0, p.end - p.committed)
            metrics.CONSUMER_LAG.labels(*labels).set(lag)
            previous = self._last_committed.get(key)
            if previous is None or p.committed > previous or lag == 0:
                metrics.PARTITION_LAST_PROGRESS.labels(*labels).set(now)
            held[key] = p.committed
        for topic, partition in self._last_committed.keys() - held.keys():
            for gauge in (metrics.CONSUMER_LAG, metrics.PARTITION_LAST_PROGRESS):
                try:
                    gauge.remove(topic, str(partition))
                except KeyError:
                    pass
        self._last_committed = held


async def partition_offsets(app: faust.App) -> list[PartitionOffsets]:
    """End and committed offsets of the partitions this worker holds (changelogs excluded)."""
    consumer = app.consumer
    changelogs = set(app.tables.changelog_topics)
    held = sorted(
        tp
        for tp in consumer.assignment()
        if tp.topic not in changelogs and not tp.topic.endswith(LEADER_TOPIC_SUFFIX)
    )
    if not held:
        return []
    ends = await consumer.highwaters(*held)  # a ListOffsets request, not the fetch state
    # Faust's record of committed offsets: set from the broker at assignment, updated on each
    # commit, dropped on revocation (private, hence the fallbacks; faust-streaming is pinned).
    known: dict[TP, int | None] = dict(getattr(consumer, "_committed_offset", {}) or {})
    committed_offsets = {tp: known.get(tp) or app.monitor.tp_committed_offsets.get(tp) for tp in held}
    # Before the group's first commit on a partition, everything in it is still to be processed.
    never_committed = [tp for tp, offset in committed_offsets.items() if offset is None]
    firsts = await consumer.earliest_offsets(*never_committed) if never_committed else {}
    snapshot = []
    for tp in held:
        end = ends.get(tp)
        committed = committed_offsets[tp]
        if committed is None:
            committed = firsts.get(tp)
        if end is None or committed is None:
            continue
        snapshot.append(PartitionOffsets(tp.topic, tp.partition, int(end), int(committed)))
    return snapshot


async def refresh(app: faust.App, tracker: LagTracker, timeout: float) -> None:
    """One refresh; never raises (a failed one is counted and the gauges keep their values)."""
    if app.rebalancing:
        return
    try:
        snapshot = await asyncio.wait_for(partition_offsets(app), timeout=timeout)
    except ConsumerNotStarted:
        return
    except Exception as exc:  # noqa: BLE001 - a metrics timer must never take the worker down
        metrics.LAG_REFRESH_ERRORS.inc()
        log.warning("consumer lag refresh failed", extra={"error": f"{type(exc).__name__}: {exc}"})
        return
    tracker.update(snapshot)


def register_lag_monitor(
    app: faust.App, interval: float = DEFAULT_INTERVAL_SECONDS
) -> LagTracker:
    """Refresh the lag gauges every ``interval`` seconds on every worker (not only the leader)."""
    tracker = LagTracker()

    @app.timer(interval, name="pipeline.consumer_lag")
    async def refresh_consumer_lag() -> None:
        await refresh(app, tracker, timeout=max(1.0, interval))

    return tracker
