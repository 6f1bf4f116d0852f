"""Story linking as a consumer sees it: rated pairs' articles through a real worker and Kafka.

    PYTHONPATH=. .venv/bin/python benchmarks/story_stream.py --pairs PAIRS.jsonl --docs DOCS.jsonl

PAIRS and DOCS as for benchmarks/story_linking.py (SemEval-2022 task 8 format, not kept in the
repository). Needs the broker (`pipeline kafka start`). One `pipeline worker` with the default
settings (story linking on, the committed model) on topics of its own with one raw partition,
so the articles reach the story memory in file order; every document is sent as the raw record
a producer would send (title on the first line), then each pair's similarity is read from
`story.related` of whichever article came second (not listed: 0) and the pair counts as linked
when both records carry the same `story.id`.

The committed model was fitted on these same pairs (benchmarks/fit_story_model.py), so these
numbers are not held out: story_linking.py gives the cross-validated ones. What this adds is
the whole path: cleaning, language, NER and embedding in the worker, the story table, the
candidate search and the output records, as a subscriber reads them.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import orjson
from kafka import KafkaConsumer, KafkaProducer

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import _story_data as data
import fit_story_model as fitting
from story_linking import table

from pipeline.launch import Deployment

ROOT = Path(__file__).resolve().parents[1]


def send_all(bootstrap: str, topic: str, records: Sequence[tuple[str, bytes]]) -> None:
    producer = KafkaProducer(bootstrap_servers=bootstrap, max_request_size=1_000_000)
    for key, value in records:
        producer.send(topic, key=key.encode(), value=value)
    producer.flush()
    producer.close()


def read_outputs(
    bootstrap: str, topics: dict[str, str], wanted: set[str], timeout: float
) -> tuple[dict[str, dict], dict[str, dict]]:
    """Enriched and DLQ records by key, until every wanted key is on one of them."""
    consumer = KafkaConsumer(
        topics["enriched"], topics["dlq"], bootstrap_servers=bootstrap, group_id=None,
        auto_offset_reset="earliest", enable_auto_commit=False,
    )
    enriched: dict[str, dict] = {}
    dead: dict[str, dict] = {}
    deadline = time.monotonic() + timeout
    try:
        while not wanted <= enriched.keys() | dead.keys():
            if time.monotonic() > deadline:
                missing = len(wanted - enriched.keys() - dead.keys())
                raise SystemExit(f"{missing} articles neither enriched nor on the DLQ after {timeout} s")
            for messages in consumer.poll(timeout_ms=1000).values():
                for message in messages:
                    record = orjson.loads(message.value)
                    key = message.key.decode()
                    (dead if message.topic == topics["dlq"] else enriched)[key] = record
    finally:
        consumer.close()
    return enriched, dead


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--pairs", type=Path, required=True,
                        help="required: rated pairs, JSON lines; not kept in the repository")
    parser.add_argument("--docs", type=Path, required=True,
                        help="required: the pairs' articles, JSON lines; not kept in the repository")
    parser.add_argument("--bootstrap", default="127.0.0.1:9092")
    parser.add_argument("--timeout", type=float, default=1800.0, help="seconds for all outputs")
    args = parser.parse_args(argv)

    raw = data.read_docs(args.docs)
    pairs = data.read_pairs(args.pairs)
    position = {doc["id"]: i for i, doc in enumerate(raw)}
    with tempfile.TemporaryDirectory(prefix="story-stream-") as workdir:
        deployment = Deployment(
            bootstrap=args.bootstrap, workdir=Path(workdir), cwd=ROOT,
            settings={"PIPELINE_TOPIC_PARTITIONS": "1"},
        )
        try:
            deployment.start_worker()
            started = time.monotonic()
            send_all(args.bootstrap, deployment.topics["raw"],
                     [(doc["id"], data.raw_record(doc)) for doc in raw])
            enriched, dead = read_outputs(
                args.bootstrap, deployment.topics, set(position), args.timeout
            )
            seconds = time.monotonic() - started
        finally:
            deployment.stop_workers()
            deployment.delete_topics()

    known = [p for p in pairs if p.a in enriched and p.b in enriched]
    scores = np.zeros(len(known))
    linked = np.zeros(len(known), dtype=bool)
    # Pairs the worker judged two articles: the raters read the pages, the crawl sometimes got
    # a bot check or a cookie wall instead, which no text signal can link.
    both_articles = np.zeros(len(known), dtype=bool)
    for i, pair in enumerate(known):
        first, second = fitting.ordered(pair, position)
        story_first, story_second = enriched[first]["story"], enriched[second]["story"]
        if story_first is None or story_second is None:
            continue  # no story: a wall or an empty page
        both_articles[i] = True
        related = {r["id"]: r["similarity"] for r in story_second["related"]}
        scores[i] = related.get(first, 0.0)
        linked[i] = story_first["id"] == story_second["id"]
    overall = np.array([p.overall for p in known])
    cross = np.array([p.cross_language for p in known])
    without_story = sum(r["story"] is None for r in enriched.values())
    print(
        f"{len(raw)} articles through one worker in {seconds:.0f} s: {len(enriched)} enriched "
        f"({without_story} without a story), {len(dead)} on the DLQ; {len(known)} pairs "
        f"({int(cross.sum())} across languages)"
    )
    rows = []
    for name, mask in (
        ("worker, committed model (not held out)", np.ones(len(known), dtype=bool)),
        (f"the same, the {int(both_articles.sum())} pairs of two articles (no wall)", both_articles),
    ):
        rows.append((
            name,
            fitting.pair_metrics(scores[mask], linked[mask], overall[mask]),
            fitting.pair_metrics(scores[mask & cross], linked[mask & cross], overall[mask & cross]),
        ))
    print(table(rows))


if __name__ == "__main__":
    main()
