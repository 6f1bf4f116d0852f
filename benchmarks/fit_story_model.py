"""Fit the story similarity model on human-rated pairs; write pipeline/stages/story_model.json.

    PYTHONPATH=. .venv/bin/python benchmarks/fit_story_model.py \\
        --pairs PAIRS.jsonl --docs DOCS.jsonl

PAIRS and DOCS are human-rated article pairs and their texts (SemEval-2022 task 8 dev data; the
articles belong to their publishers, so the repository does not keep them): see _story_data.py.

Every document goes through the project's stages (cleaning, language, NER, MinHash) and the
embedder, in file order as one stream, so each pair's features are the ones the stream computes
when its second article arrives (entity-key weights from the counts seen so far). The model is a
logistic regression of the target (4 - score) / 3 (cross-entropy with soft labels, L2, the
weights of the similarity signals bounded at >= 0 so the similarity never falls when a signal
rises), fitted with scipy's L-BFGS-B. The link threshold is the lowest similarity at which at
most ``--max-false-links`` of the pairs rated >= 3 would share a story. It prints 5-fold
cross-validated numbers (by pair, fixed seed): each fold's pairs are scored by a model and a
threshold fitted on the other folds only.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
from scipy.optimize import minimize

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import _story_data as data

from pipeline.stages.story import (
    FEATURES,
    LEAD_CHARS,
    StoryArticle,
    VectorIndex,
    entity_keys,
    key_hash,
    key_record_key,
    key_writes,
    pair_features,
    story_article,
)

MODEL_PATH = Path(__file__).resolve().parents[1] / "pipeline" / "stages" / "story_model.json"
# Signals whose rise must never lower the similarity (weights bounded at >= 0).
MONOTONE = frozenset({"scaled_cosine", "entities", "numbers", "names"})
SAME_STORY = 1.5  # pairs rated at most this are the same story
UNRELATED = 3.0  # pairs rated at least this must not share a story
STREAM_START = datetime(2026, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class Fitted:
    """The parameters of a ``StoryModel`` (the JSON written beside the code)."""

    mean: np.ndarray
    scale: np.ndarray
    weights: np.ndarray
    bias: float
    link_threshold: float
    floor: float

    def similarity(self, x: np.ndarray) -> np.ndarray:
        return 1.0 / (1.0 + np.exp(-(((x - self.mean) / self.scale) @ self.weights + self.bias)))

    def to_json(self) -> dict[str, object]:
        return {
            "features": list(FEATURES),
            "mean": self.mean.round(6).tolist(),
            "scale": self.scale.round(6).tolist(),
            "weights": self.weights.round(6).tolist(),
            "bias": round(self.bias, 6),
            "link_threshold": round(self.link_threshold, 4),
            "floor": self.floor,
        }


def stream_articles(docs: Sequence[data.Doc], vectors: np.ndarray) -> dict[str, StoryArticle]:
    """Each document's ``StoryArticle`` as the stream builds it, in ``docs`` order, one second
    apart: entity-key weights from the key records written by the articles before it, hubness
    over the vectors before it."""
    records: dict[str, dict[str, object]] = {}
    articles: dict[str, StoryArticle] = {}
    window = VectorIndex()
    for offset, (doc, vector) in enumerate(zip(docs, vectors, strict=True)):
        now = STREAM_START + timedelta(seconds=offset)
        keys = entity_keys(doc.entities)
        mine = {key_record_key(key_hash(k)): records.get(key_record_key(key_hash(k))) for k in keys}
        hubness = window.hubness(vector)
        article = story_article(doc.id, vector, keys, mine, doc.text, doc.language, now, hubness)
        records.update(key_writes(article, mine, now))
        window.add(doc.id, vector)
        articles[doc.id] = article
    return articles


def ordered(pair: data.Pair, position: dict[str, int]) -> tuple[str, str]:
    """(first, second) of a pair in stream order."""
    return (pair.a, pair.b) if position[pair.a] < position[pair.b] else (pair.b, pair.a)


def pair_matrix(
    pairs: Sequence[data.Pair], articles: dict[str, StoryArticle], position: dict[str, int]
) -> np.ndarray:
    rows = []
    for pair in pairs:
        first, second = ordered(pair, position)
        rows.append(pair_features(articles[second], articles[first]))
    return np.vstack(rows)


def link_threshold(scores: np.ndarray, overall: np.ndarray, max_false: float) -> float:
    """The lowest score at which at most ``max_false`` of the unrelated pairs score as high."""
    negatives = np.sort(scores[overall >= UNRELATED])[::-1]
    allowed = int(np.floor(max_false * len(negatives)))
    # Just above the (allowed + 1)-th highest unrelated score.
    return float(np.nextafter(negatives[allowed], np.inf)) if allowed < len(negatives) else 0.0


def fit(x: np.ndarray, overall: np.ndarray, *, l2: float, max_false: float, floor: float) -> Fitted:
    target = (4.0 - overall) / 3.0
    mean, scale = x.mean(axis=0), x.std(axis=0) + 1e-9
    z = (x - mean) / scale

    def loss(params: np.ndarray) -> tuple[float, np.ndarray]:
        w, b = params[:-1], params[-1]
        p = np.clip(1.0 / (1.0 + np.exp(-(z @ w + b))), 1e-9, 1 - 1e-9)
        value = -np.sum(target * np.log(p) + (1 - target) * np.log(1 - p)) + l2 * w @ w
        gradient = np.r_[z.T @ (p - target) + 2 * l2 * w, np.sum(p - target)]
        return float(value), gradient

    bounds = [(0.0, None) if name in MONOTONE else (None, None) for name in FEATURES]
    result = minimize(
        loss,
        np.zeros(len(FEATURES) + 1),
        jac=True,
        method="L-BFGS-B",
        bounds=[*bounds, (None, None)],
    )
    weights, bias = result.x[:-1], float(result.x[-1])
    fitted = Fitted(mean, scale, weights, bias, 1.0, floor)
    threshold = link_threshold(fitted.similarity(x), overall, max_false)
    return Fitted(mean, scale, weights, bias, threshold, floor)


def folds(count: int, k: int, seed: int) -> list[np.ndarray]:
    order = np.random.default_rng(seed).permutation(count)
    return np.array_split(order, k)


@dataclass(frozen=True)
class PairMetrics:
    pearson: float
    recall: float  # same-story pairs (<= 1.5) linked
    false_links: float  # unrelated pairs (>= 3) linked
    same_story: int
    unrelated: int


def pair_metrics(scores: np.ndarray, linked: np.ndarray, overall: np.ndarray) -> PairMetrics:
    same, unrelated = overall <= SAME_STORY, overall >= UNRELATED
    pearson = float(np.corrcoef(scores, -overall)[0, 1]) if len(scores) > 2 else float("nan")
    return PairMetrics(
        pearson,
        float(linked[same].mean()) if same.any() else float("nan"),
        float(linked[unrelated].mean()) if unrelated.any() else float("nan"),
        int(same.sum()),
        int(unrelated.sum()),
    )


def cross_validate(
    x: np.ndarray, overall: np.ndarray, *, k: int, seed: int, **options: float
) -> tuple[np.ndarray, np.ndarray, list[tuple[np.ndarray, Fitted]]]:
    """Held-out similarity and link decision of every pair, and each fold's (pairs, model)."""
    scores, linked = np.zeros(len(overall)), np.zeros(len(overall), dtype=bool)
    models = []
    for held_out in folds(len(overall), k, seed):
        train = np.setdiff1d(np.arange(len(overall)), held_out)
        model = fit(x[train], overall[train], **options)
        scores[held_out] = model.similarity(x[held_out])
        linked[held_out] = scores[held_out] >= model.link_threshold
        models.append((held_out, model))
    return scores, linked, models


def load(args: argparse.Namespace) -> tuple[list[data.Pair], list[data.Doc], np.ndarray]:
    pairs = data.read_pairs(args.pairs)
    analysed = data.analyse_docs(args.docs, args.cache)
    docs = [analysed[i] for i in data.doc_order(args.docs) if i in analysed]
    vectors = data.embed_docs(docs, args.lead_chars, args.cache)
    known = {d.id for d in docs}
    return [p for p in pairs if p.a in known and p.b in known], docs, vectors


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--pairs",
        type=Path,
        required=True,
        help="required: rated pairs, JSON lines (SemEval-2022 "
        "task 8 format, see benchmarks/_story_data.py); not kept in the repository",
    )
    parser.add_argument(
        "--docs",
        type=Path,
        required=True,
        help="required: the pairs' articles, JSON lines; not kept in the repository",
    )
    parser.add_argument(
        "--cache", type=Path, default=Path("/tmp/story-cache"), help="analysed docs, embeddings"
    )
    parser.add_argument("--lead-chars", type=int, default=LEAD_CHARS)
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--l2", type=float, default=1.0)
    parser.add_argument("--max-false-links", type=float, default=0.015)
    parser.add_argument("--floor", type=float, default=0.2, help="similarity of 'related'")


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    add_arguments(parser)
    parser.add_argument("--out", type=Path, default=MODEL_PATH)
    args = parser.parse_args(argv)
    pairs, docs, vectors = load(args)
    position = {d.id: i for i, d in enumerate(docs)}
    articles = stream_articles(docs, vectors)
    x = pair_matrix(pairs, articles, position)
    overall = np.array([p.overall for p in pairs])
    cross = np.array([p.cross_language for p in pairs])
    options = {"l2": args.l2, "max_false": args.max_false_links, "floor": args.floor}
    scores, linked, _ = cross_validate(x, overall, k=args.folds, seed=args.seed, **options)
    print(f"{args.folds}-fold cross-validation by pair, {len(pairs)} pairs")
    print("| pairs | Pearson | same-story recall | false links |\n| --- | --- | --- | --- |")
    for name, mask in (("all", np.ones(len(pairs), bool)), ("across languages", cross)):
        m = pair_metrics(scores[mask], linked[mask], overall[mask])
        print(
            f"| {name} | {m.pearson:.3f} | {m.recall:.2f} ({m.same_story}) | "
            f"{m.false_links:.3f} ({m.unrelated}) |"
        )
    hubness = [a.hubness for a in articles.values()]
    late = np.mean(hubness[len(hubness) // 2 :])
    print(f"\nmean hubness over the second half of the stream (HUB_PRIOR): {late:.3f}")
    final = fit(x, overall, **options)
    args.out.write_text(json.dumps(final.to_json(), indent=1) + "\n")
    print(f"\nfitted on all pairs: {dict(zip(FEATURES, final.weights.round(3), strict=True))}")
    print(f"link threshold {final.link_threshold:.4f}, written to {args.out}")


if __name__ == "__main__":
    main()
