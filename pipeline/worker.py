"""Build and run the Faust worker: app, agents, health and readiness pages."""

from __future__ import annotations

import logging

import faust
from faust.web import Request, Response, View

from pipeline import metrics
from pipeline.agents import register_agents
from pipeline.app import Topology, create_app
from pipeline.kafka_io import ensure_topics
from pipeline.logs import logging_config
from pipeline.ner_process import NerProcess
from pipeline.settings import Settings

log = logging.getLogger("pipeline.worker")


def build(settings: Settings, ner: NerProcess) -> Topology:
    topology = create_app(settings)
    register_agents(topology, settings, ner)
    app = topology.app

    @app.page("/health")
    async def health(self: View, request: Request) -> Response:
        return self.json({"status": "ok"})

    @app.page("/ready")
    async def ready(self: View, request: Request) -> Response:
        # Ready once the consumer holds partitions and table recovery is over: before that,
        # messages are accepted by Kafka but nobody processes them yet.
        assigned = sorted(f"{tp.topic}:{tp.partition}" for tp in app.consumer.assignment())
        recovered = app.tables.recovery.completed.is_set()
        body = {"ready": bool(assigned) and recovered, "assigned": assigned, "recovered": recovered}
        return self.json(body, status=200 if body["ready"] else 503)

    return topology


def run_worker(settings: Settings) -> None:
    settings.state_dir.mkdir(parents=True, exist_ok=True)
    # Topics first: bad credentials or an unreachable broker fail in seconds, not after models.
    created = ensure_topics(settings)
    if created:
        log.info("created topics", extra={"topics": created})
    ner = NerProcess(settings.spacy_models)
    ner.start()  # models load before joining the group: a load must not stall a rebalance
    for lang, seconds in ner.load_seconds.items():
        metrics.MODEL_LOAD_SECONDS.labels(language=lang).set(seconds)
    topology = build(settings, ner)
    worker = faust.Worker(
        topology.app,
        loglevel=settings.log_level,
        logging_config=logging_config(settings.log_level),
    )
    worker.execute_from_commandline()
