"""Build and run the Faust worker: app, agents, health and readiness pages.

Several workers may run on one host with the same settings: each takes the first free *slot*
(an exclusive lock on ``<state dir>/worker/<app id>/slot-N``), which gives it its own table
state (RocksDB allows one process per directory) and the web port ``web_port + N``. A worker
restarted on its own takes its slot back, so its state is still there.
"""

from __future__ import annotations

import errno
import fcntl
import logging
import socket
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import faust
from faust.web import Request, Response, View

from pipeline import metrics
from pipeline.agents import register_agents
from pipeline.analysis import FaultInjection
from pipeline.app import Topology, create_app
from pipeline.cleaning_process import HtmlCleaningProcess
from pipeline.kafka_io import ensure_topics
from pipeline.logs import logging_config
from pipeline.ner_process import NerPool, NerProcess
from pipeline.settings import Settings
from pipeline.stages.entities import EntitySettings
from pipeline.stages.story import load_key_tables

log = logging.getLogger("pipeline.worker")

# Workers one host can hold with the same settings (slots, and web ports above the configured one).
MAX_SLOTS = 64


class WorkerStartError(RuntimeError):
    """The worker cannot start as configured; the message names the setting to change."""


@dataclass
class Slot:
    number: int
    state_dir: Path
    lock: IO[str]  # held open for the life of the process: the lock is the slot


def claim_slot(settings: Settings) -> Slot:
    """The first slot of this app id on this host that no running worker holds."""
    base = settings.state_dir / "worker" / settings.app_id
    for number in range(MAX_SLOTS):
        state_dir = base / f"slot-{number}"
        state_dir.mkdir(parents=True, exist_ok=True)
        lock = (state_dir / "worker.lock").open("a+")
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            lock.close()
            if exc.errno in (errno.EAGAIN, errno.EACCES):
                continue
            raise
        return Slot(number, state_dir, lock)
    raise WorkerStartError(
        f"{MAX_SLOTS} workers of {settings.app_id} already run with state in {base}: "
        "set PIPELINE_STATE_DIR (or PIPELINE_APP_ID) to start another"
    )


def web_port_for(settings: Settings, slot: Slot) -> int:
    """web_port + slot; a port another program holds stops the start with the setting named."""
    port = settings.web_port + slot.number
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((settings.web_host, port))
        except OSError as exc:
            raise WorkerStartError(
                f"web port {port} ({settings.web_host}) for worker slot {slot.number} is in use "
                f"({exc.strerror}): set PIPELINE_WEB_PORT to a free range"
            ) from None
    return port


def build(
    settings: Settings,
    state_dir: Path,
    ner: NerPool,
    cleaner: HtmlCleaningProcess,
    faults: FaultInjection,
) -> Topology:
    topology = create_app(settings, state_dir)
    register_agents(topology, settings, ner, cleaner, faults)
    app = topology.app

    @app.page("/health")
    async def health(self: View, request: Request) -> Response:
        return self.json({"status": "ok"})

    @app.page("/ready")
    async def ready(self: View, request: Request) -> Response:
        # Ready once the worker has joined the group and table recovery is over: before that,
        # messages are accepted by Kafka but nobody processes them yet. A member holding no
        # partition (more workers than partitions) is ready too: it takes over when one leaves.
        assigned = sorted(f"{tp.topic}:{tp.partition}" for tp in app.consumer.assignment())
        recovered = app.tables.recovery.completed.is_set()
        ready = recovered and not app.rebalancing
        body = {"ready": ready, "assigned": assigned, "recovered": recovered}
        return self.json(body, status=200 if body["ready"] else 503)

    return topology


def run_worker(settings: Settings) -> None:
    slot = claim_slot(settings)
    port = web_port_for(settings, slot)
    log.info(
        "worker slot claimed",
        extra={"slot": slot.number, "state_dir": str(slot.state_dir), "web_port": port},
    )
    settings = settings.model_copy(update={"web_port": port})
    # Topics first: bad credentials or an unreachable broker fail in seconds, not after models.
    created = ensure_topics(settings)
    if created:
        log.info("created topics", extra={"topics": created})
    entity_settings = EntitySettings(
        off_by_language={
            lang: frozenset(names) for lang, names in settings.entity_refinements_off.items()
        }
    )
    ner = NerPool(
        [
            NerProcess(
                settings.spacy_models,
                entity_settings,
                timeout_seconds=settings.ner_timeout_seconds,
                min_chars_per_second=settings.ner_min_chars_per_second,
                embeddings=settings.story_linking,
            )
            for _ in range(settings.ner_process_count)
        ]
    )
    ner.start()  # models load before joining the group: a load must not stall a rebalance
    load_key_tables()  # the entity keys' country and city names, likewise (~1 s)
    for lang, seconds in ner.load_seconds.items():
        metrics.MODEL_LOAD_SECONDS.labels(language=lang).set(seconds)
    cleaner = HtmlCleaningProcess(settings.clean_timeout_seconds)
    cleaner.start()
    faults = FaultInjection(settings.test_faults)
    topology = build(settings, slot.state_dir, ner, cleaner, faults)
    worker = faust.Worker(
        topology.app,
        loglevel=settings.log_level,
        logging_config=logging_config(settings.log_level),
    )
    worker.execute_from_commandline()
