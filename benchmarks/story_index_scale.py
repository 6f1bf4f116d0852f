"""Candidate search at scale: memory and top-k time over synthetic 384-d unit vectors.

    OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 PYTHONPATH=. .venv/bin/python \\
        benchmarks/story_index_scale.py --rows 100000 1000000 --ann-rows 50000

Vectors are clustered like news (one story per ``--story-size`` rows, each a centre plus noise,
normalised), so each query has true near neighbours; queries are noisy copies of stored rows. For each size it prints
the bytes per vector and the time of one top-10 query (median of ``--queries``, one thread):

- exact over a float32 matrix, a float16 one, and int8 codes with a scale per row (the layout
  of ``story.VectorIndex``; the int8 and float16 scans convert blocks of 65,536 rows);
- HNSW indexes (usearch with float16 and int8 storage, hnswlib with float32) at ``--ann-rows``:
  build time, memory, query time and recall@10 against the exact float32 answer.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pipeline.stages.story import VectorIndex

DIM = 384
K = 10


def clustered(rows: int, clusters: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((clusters, DIM), dtype=np.float32)
    out = np.empty((rows, DIM), dtype=np.float32)
    for start in range(0, rows, 100_000):
        end = min(rows, start + 100_000)
        block = centres[rng.integers(0, clusters, end - start)]
        block += 0.6 * rng.standard_normal(block.shape, dtype=np.float32)
        out[start:end] = block / np.linalg.norm(block, axis=1, keepdims=True)
    return out


def queries_of(vectors: np.ndarray, count: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed + 1)
    picked = vectors[rng.integers(0, len(vectors), count)]
    noisy = picked + 0.02 * rng.standard_normal(picked.shape, dtype=np.float32)
    return noisy / np.linalg.norm(noisy, axis=1, keepdims=True)


def timed(search: Callable[[np.ndarray], np.ndarray], queries: np.ndarray) -> tuple[float, list]:
    times, answers = [], []
    for query in queries:
        started = time.perf_counter()
        answers.append(search(query))
        times.append(time.perf_counter() - started)
    return 1000 * statistics.median(times), answers


def exact_float(matrix: np.ndarray) -> Callable[[np.ndarray], np.ndarray]:
    def search(query: np.ndarray) -> np.ndarray:
        scores = np.empty(len(matrix), dtype=np.float32)
        for start in range(0, len(matrix), 65536):
            block = matrix[start : start + 65536]
            # numpy has no float16 BLAS: each block is widened to float32 first.
            scores[start : start + len(block)] = block.astype(np.float32) @ query
        best = np.argpartition(-scores, K)[:K]
        return best[np.argsort(-scores[best])]

    return search


def recall(answers: Sequence[np.ndarray], truth: Sequence[np.ndarray]) -> float:
    return float(
        np.mean([len(set(a.tolist()) & set(t.tolist())) / K for a, t in zip(answers, truth)])
    )


def exact_rows(rows: int, args: argparse.Namespace) -> list[str]:
    vectors = clustered(rows, max(1, rows // args.story_size), args.seed)
    queries = queries_of(vectors, args.queries, args.seed)
    lines = []
    ms, truth = timed(exact_float(vectors), queries)
    lines.append(
        f"| {rows:,} | exact float32 | {DIM * 4} | {rows * DIM * 4 / 2**20:,.0f} | "
        f"- | {ms:.1f} | 1.000 |"
    )
    half = vectors.astype(np.float16)
    ms, answers = timed(exact_float(half), queries)
    lines.append(
        f"| {rows:,} | exact float16 | {DIM * 2} | {half.nbytes / 2**20:,.0f} | - | "
        f"{ms:.1f} | {recall(answers, truth):.3f} |"
    )
    del half
    index = VectorIndex(capacity=rows)
    started = time.perf_counter()
    for row, vector in enumerate(vectors):
        index.add(str(row), vector)
    build = time.perf_counter() - started
    ms, hits = timed(lambda q: np.array([int(i) for i, _ in index.top_k(q, K)]), queries)
    lines.append(
        f"| {rows:,} | exact int8 + scale (VectorIndex) | {DIM + 4} | "
        f"{rows * (DIM + 4) / 2**20:,.0f} | {build:.0f} s | {ms:.1f} | "
        f"{recall(hits, truth):.3f} |"
    )
    return lines


def ann_rows(rows: int, args: argparse.Namespace) -> list[str]:
    vectors = clustered(rows, max(1, rows // args.story_size), args.seed)
    queries = queries_of(vectors, args.queries, args.seed)
    _, truth = timed(exact_float(vectors), queries)
    lines = []
    try:
        from usearch.index import Index
    except ImportError:
        lines.append(f"| {rows:,} | usearch | not installed | | | | |")
    else:
        for dtype in ("f16", "i8"):
            index = Index(ndim=DIM, metric="cos", dtype=dtype, connectivity=16)
            started = time.perf_counter()
            index.add(np.arange(rows), vectors, threads=1)
            build = time.perf_counter() - started
            ms, answers = timed(lambda q, index=index: index.search(q, K, threads=1).keys, queries)
            size = index.memory_usage
            lines.append(
                f"| {rows:,} | usearch HNSW {dtype} (M=16) | {size / rows:.0f} | "
                f"{size / 2**20:,.0f} | {build:.0f} s | {ms:.2f} | "
                f"{recall(answers, truth):.3f} |"
            )
            del index
    try:
        import hnswlib
    except ImportError:
        lines.append(f"| {rows:,} | hnswlib | not installed | | | | |")
    else:
        index = hnswlib.Index(space="ip", dim=DIM)
        index.init_index(max_elements=rows, M=16, ef_construction=100)
        index.set_num_threads(1)
        started = time.perf_counter()
        index.add_items(vectors, np.arange(rows))
        build = time.perf_counter() - started
        index.set_ef(64)
        ms, answers = timed(lambda q: index.knn_query(q, k=K)[0][0], queries)
        # hnswlib reports no size: its layout is the vector, 2M level-0 links and a label.
        per_row = DIM * 4 + 2 * 16 * 4 + 4 + 8
        lines.append(
            f"| {rows:,} | hnswlib HNSW float32 (M=16, ef=64) | "
            f"~{per_row} | ~{rows * per_row / 2**20:,.0f} | {build:.0f} s | "
            f"{ms:.2f} | {recall(answers, truth):.3f} |"
        )
    return lines


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--ann-rows", type=int, nargs="*", default=[50_000])
    parser.add_argument("--story-size", type=int, default=10)
    parser.add_argument("--queries", type=int, default=50)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    print("| rows | index | bytes/vector | MiB | build | top-10 query, ms | recall@10 |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for rows in args.rows:
        for line in exact_rows(rows, args):
            print(line, flush=True)
    for rows in args.ann_rows:
        for line in ann_rows(rows, args):
            print(line, flush=True)


if __name__ == "__main__":
    main()
