"""Story linking quality on human-rated pairs: pairs, and the stream as a consumer sees it.

    PYTHONPATH=. .venv/bin/python benchmarks/story_linking.py \\
        --pairs PAIRS.jsonl --docs DOCS.jsonl

PAIRS and DOCS are human-rated article pairs and their texts (SemEval-2022 task 8 dev data; the
articles belong to their publishers, so the repository does not keep them): see _story_data.py.

Documents go through the project's stages (cleaning, language, NER, MinHash: ``_story_data``)
and the embedder. Every number is cross-validated (5 folds by pair, fixed seed): a pair is
scored by the model and threshold fitted without its fold (benchmarks/fit_story_model.py).

1. Pairs: Pearson correlation of the similarity with the negated human score (1 = same story),
   same-story recall (pairs rated <= 1.5 linked) and false links (pairs rated >= 3 linked),
   overall and across languages; beside embedding cosine alone and MinHash alone (each with a
   link threshold fitted the same way on the other folds).
2. Stream: all documents in file order through ``story.link`` with the real candidate search
   (entity-key records + exact vector top-k), once per fold with that fold's model; a pair's
   similarity is read from ``related`` of whichever article came second (not listed: 0), and it
   is linked when both articles got the same story id.
3. Cost: embedding time per article (one thread) for ``--lead-chars``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import _story_data as data
import fit_story_model as fitting

from pipeline.stages.dedup import short_id
from pipeline.stages.story import (
    ARTICLE_PREFIX,
    DEFAULT_STORY,
    KEY_PREFIX,
    Embedder,
    StoryArticle,
    StoryConfig,
    StoryModel,
    VectorIndex,
    article_record_key,
    embedding_text,
    key_record_key,
    link,
)


def stream(
    docs: Sequence[data.Doc],
    articles: dict[str, StoryArticle],
    model: StoryModel,
    config: StoryConfig = DEFAULT_STORY,
) -> tuple[dict[str, str], dict[str, dict[str, float]], dict[str, dict[str, object]]]:
    """Story id and related (id -> similarity) of every document, streamed in ``docs`` order,
    and the story table at the end."""
    table: dict[str, dict[str, object]] = {}
    vectors = VectorIndex()
    by_short: dict[str, str] = {}
    story_ids: dict[str, str] = {}
    related: dict[str, dict[str, float]] = {}
    for doc in docs:
        article = articles[doc.id]
        key_records = {key_record_key(k): table.get(key_record_key(k)) for k in article.keys}
        ids = {by_short[s] for r in key_records.values() if r for s in r["a"]}  # type: ignore[union-attr]
        ids |= {i for i, _ in vectors.top_k(article.vector, config.vector_candidates)}
        candidates = [StoryArticle.from_record(table[article_record_key(i)]) for i in sorted(ids)]
        judgement = link(article, candidates, key_records, model, article.seen_at, config)
        table.update(judgement.writes)
        vectors.add(doc.id, article.vector)
        by_short[short_id(doc.id)] = doc.id
        story_ids[doc.id] = judgement.verdict.id
        related[doc.id] = {r.id: r.similarity for r in judgement.verdict.related}
    return story_ids, related, table


def state_size(table: dict[str, dict[str, object]]) -> str:
    """Bytes of the story table's JSON values (keys included) per remembered article."""
    sizes = {ARTICLE_PREFIX: [], KEY_PREFIX: []}
    for key, record in table.items():
        sizes[key[0]].append(len(key) + len(json.dumps(record, separators=(",", ":"))))
    articles, keys = sizes[ARTICLE_PREFIX], sizes[KEY_PREFIX]
    return (
        f"state: {len(articles)} article records, mean {statistics.mean(articles):.0f} B "
        f"(p95 {np.percentile(articles, 95):.0f} B); {len(keys)} entity-key records, "
        f"{sum(keys) / len(articles):.0f} B per article; total "
        f"{(sum(articles) + sum(keys)) / len(articles):.0f} B per article"
    )


def as_model(fitted: fitting.Fitted) -> StoryModel:
    return StoryModel.from_json(fitted.to_json())


def table(rows: list[tuple[str, fitting.PairMetrics, fitting.PairMetrics]]) -> str:
    lines = [
        (
            "| signal | Pearson | recall | false links | Pearson across | recall across "
            "| false links across |"
        ),
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for name, a, c in rows:
        lines.append(
            f"| {name} | {a.pearson:.3f} | {a.recall:.2f} | {a.false_links:.3f} | "
            f"{c.pearson:.3f} | {c.recall:.2f} | {c.false_links:.3f} |"
        )
    return "\n".join(lines)


def single_signal(
    values: np.ndarray, overall: np.ndarray, k: int, seed: int, max_false: float
) -> np.ndarray:
    """Links by one raw signal, its threshold fitted on the other folds."""
    linked = np.zeros(len(overall), dtype=bool)
    for held_out in fitting.folds(len(overall), k, seed):
        train = np.setdiff1d(np.arange(len(overall)), held_out)
        threshold = fitting.link_threshold(values[train], overall[train], max_false)
        linked[held_out] = values[held_out] >= threshold
    return linked


def embedding_cost(docs: Sequence[data.Doc], lead_chars: int, count: int) -> float:
    """Milliseconds per article to embed title + lead, one thread, batches of 16."""
    embedder = Embedder(num_threads=1)
    texts = [embedding_text(d.title, d.text, lead_chars) for d in docs[:count]]
    started = time.perf_counter()
    embedder.embed(texts)
    return 1000 * (time.perf_counter() - started) / len(texts)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    fitting.add_arguments(parser)
    parser.add_argument("--cost-docs", type=int, default=64, help="articles timed; 0: skip")
    parser.add_argument(
        "--vector-candidates", type=int, default=DEFAULT_STORY.vector_candidates, help="top-k"
    )
    args = parser.parse_args(argv)
    pairs, docs, vectors = fitting.load(args)
    position = {d.id: i for i, d in enumerate(docs)}
    docs_by_id = {d.id: d for d in docs}
    articles = fitting.stream_articles(docs, vectors)
    x = fitting.pair_matrix(pairs, articles, position)
    overall = np.array([p.overall for p in pairs])
    cross = np.array([p.cross_language for p in pairs])
    everything = np.ones(len(pairs), dtype=bool)
    options = {"l2": args.l2, "max_false": args.max_false_links, "floor": args.floor}
    scores, linked, models = fitting.cross_validate(
        x, overall, k=args.folds, seed=args.seed, **options
    )

    def both(name: str, s: np.ndarray, link_: np.ndarray) -> tuple[str, ...]:
        return (
            name,
            fitting.pair_metrics(s[everything], link_[everything], overall[everything]),
            fitting.pair_metrics(s[cross], link_[cross], overall[cross]),
        )

    rows = [both("model (all signals)", scores, linked)]
    minhash = np.array([data.minhash_similarity(docs_by_id[p.a], docs_by_id[p.b]) for p in pairs])
    cosine = np.array([np.dot(articles[p.a].vector, articles[p.b].vector) for p in pairs])
    for name, values in (("cosine", cosine), ("minhash", minhash)):
        rows.append(
            both(
                f"{name} alone",
                values,
                single_signal(values, overall, args.folds, args.seed, args.max_false_links),
            )
        )
    print(f"## Pairs ({len(pairs)}, {int(cross.sum())} across languages; lead {args.lead_chars})")
    print(table(rows))

    stream_scores = np.zeros(len(pairs))
    stream_linked = np.zeros(len(pairs), dtype=bool)
    for held_out, fitted in models:
        config = StoryConfig(vector_candidates=args.vector_candidates)
        story_ids, related, state = stream(docs, articles, as_model(fitted), config)
        for i in held_out:
            first, second = fitting.ordered(pairs[i], position)
            stream_scores[i] = related[second].get(first, 0.0)
            stream_linked[i] = story_ids[first] == story_ids[second]
    print(
        "\n## Stream (story.related and story.id, candidates from keys and vector top-"
        f"{args.vector_candidates})"
    )
    print(table([both("model, stream", stream_scores, stream_linked)]))
    print(state_size(state))

    if args.cost_docs:
        cost = embedding_cost(docs, args.lead_chars, args.cost_docs)
        print(f"\nembedding: {cost:.0f} ms an article (title + {args.lead_chars} chars, 1 thread)")
    print(f"window: {DEFAULT_STORY.retention.days} days; related max {DEFAULT_STORY.related_max}")


if __name__ == "__main__":
    main()
