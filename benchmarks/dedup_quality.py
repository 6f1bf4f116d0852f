"""Near-duplicate detection quality, throughput and state size; prints markdown tables.

    .venv/bin/python benchmarks/dedup_quality.py --sentences-dir DIR    # the tuned defaults
    .venv/bin/python benchmarks/dedup_quality.py --sentences-dir DIR --threshold 0.5 --rows 4
    .venv/bin/python benchmarks/dedup_quality.py --sentences-dir DIR --sweep  # configurations

DIR holds lingua-py's test sentences (``<iso639-1>.txt``, 75 languages, 1,000 lines each), which
the repository does not keep in full.

What it does (see benchmarks/dedup_corpus.py for the articles and the kinds of copy):
1. streams every distinct article (12 real pages + seed + ~4,900 sentence pseudo-articles) through
   ``judge`` into an in-memory index: any duplicate verdict there is a false duplicate
   ("distinct vs index"); timed end to end (text -> signature -> band keys -> verdict -> writes);
2. compares every pair of distinct articles' signatures ("distinct pairs");
3. judges hard negatives: two distinct articles in the same site chrome, or one quoting a whole
   paragraph of the other;
4. judges copies of the real pages (``--variants`` per kind) and of ``--sentence-originals``
   pseudo-articles (one per kind), in shuffled order, writing them to the index as the agent
   would: a copy is found when its verdict names its original.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import random
import statistics
import subprocess
import sys
import time
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from typing import Self

import dedup_corpus as corpus

from pipeline.stages.dedup import (
    ARTICLE_PREFIX,
    DedupVerdict,
    FirstSeen,
    NearDupConfig,
    band_keys,
    estimate_similarity,
    fingerprint,
    judge,
    shingles,
    signature,
    signature_of_shingles,
)

START = datetime(2026, 11, 23, tzinfo=UTC)
RETENTION = timedelta(days=7)
KINDS = list(corpus.COPY_KINDS)


@dataclass
class Memory:
    """The agent's two stores, in memory: fingerprint -> FirstSeen, and the near-dup index.

    Articles get ids like the pipeline derives (16 hex characters) so state sizes are realistic.
    """

    exact: dict[str, FirstSeen] = field(default_factory=dict)
    index: dict[str, dict] = field(default_factory=dict)
    names: dict[str, str] = field(default_factory=dict)
    count_bytes: bool = False  # bookkeeping, off while timing
    written_bytes: int = 0
    clock: int = 0

    def judge(self, name: str, text: str, config: NearDupConfig, sig=None) -> DedupVerdict:
        self.clock += 1
        now = START + timedelta(seconds=self.clock)
        article_id = hashlib.sha256(name.encode()).hexdigest()[:16]
        self.names[article_id] = name
        key = fingerprint(text)
        if sig is None:
            sig = signature(text, config)
        result = judge(
            self.exact.get(key),
            sig,
            band_keys(sig, config),
            self.index,
            article_id,
            now,
            RETENTION,
            config,
        )
        if result.remember_exact is not None:
            self.exact[key] = result.remember_exact
        for index_key, value in result.index_writes.items():
            self.index[index_key] = value
            if self.count_bytes:
                self.written_bytes += len(index_key) + len(_json(value))
        original = result.verdict.duplicate_of
        return replace(result.verdict, duplicate_of=self.names.get(original or "", original))


def _json(value: object) -> bytes:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()


def _percentile(values: Sequence[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))] if ordered else float("nan")


def _jaccard(a: set[bytes], b: set[bytes]) -> float:
    union = len(a | b)
    return len(a & b) / union if union else 0.0


class Timer:
    """Milliseconds per item, wall clock and process CPU."""

    def __init__(self, items: int) -> None:
        self.items = items
        self.result = (0.0, 0.0)

    def __enter__(self) -> Self:
        self._wall, self._cpu = time.perf_counter(), time.process_time()
        return self

    def __exit__(self, *exc: object) -> None:
        wall = (time.perf_counter() - self._wall) * 1e3 / self.items
        cpu = (time.process_time() - self._cpu) * 1e3 / self.items
        self.result = (wall, cpu)


class Signatures:
    """Shingle sets and signatures, cached per (shingle size, num_perm, seed, bits)."""

    def __init__(self) -> None:
        self._shingles: dict[tuple[int, str], set[bytes]] = {}
        self._signatures: dict[tuple, tuple[int, ...]] = {}

    def shingles(self, article: corpus.Article, size: int) -> set[bytes]:
        key = (size, article.id)
        if key not in self._shingles:
            self._shingles[key] = shingles(article.text, size)
        return self._shingles[key]

    def signature(self, article: corpus.Article, config: NearDupConfig) -> tuple[int, ...]:
        key = (config.shingle_size, config.num_perm, config.seed, config.hash_bits, article.id)
        if key not in self._signatures:
            self._signatures[key] = signature_of_shingles(
                self.shingles(article, config.shingle_size), config
            )
        return self._signatures[key]


@dataclass
class Report:
    config: NearDupConfig
    show: int = 5
    distinct: int = 0
    false_in_stream: list[tuple[str, str, float]] = field(default_factory=list)
    pairs: int = 0
    pairs_over: list[tuple[float, str, str]] = field(default_factory=list)
    pair_estimates: np.ndarray | None = None
    articles_in_pairs: int = 0
    hard: dict[str, list[bool]] = field(default_factory=lambda: defaultdict(list))
    hard_similarity: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    found: dict[tuple[str, str], list[bool]] = field(default_factory=lambda: defaultdict(list))
    wrong: dict[tuple[str, str], int] = field(default_factory=lambda: defaultdict(int))
    true_j: dict[tuple[str, str], list[float]] = field(default_factory=lambda: defaultdict(list))
    estimate: dict[tuple[str, str], list[float]] = field(default_factory=lambda: defaultdict(list))
    estimate_error: list[float] = field(default_factory=list)
    state_bytes: int = 0
    state_articles: int = 0
    article_record_bytes: list[int] = field(default_factory=list)
    band_records: int = 0
    band_ids: list[int] = field(default_factory=list)
    written_bytes: int = 0
    stream_timing: list[tuple[float, float]] = field(default_factory=list)  # ms/article
    signature_timing: list[tuple[float, float]] = field(default_factory=list)
    copies_timing: list[tuple[float, float]] = field(default_factory=list)

    def recall(self, kind: str, source: str | None = None) -> float:
        runs = [
            hit
            for (k, s), hits in self.found.items()
            if k == kind and source in (None, s)
            for hit in hits
        ]
        return sum(runs) / len(runs) if runs else float("nan")


def evaluate(
    config: NearDupConfig,
    real: list[corpus.Article],
    sentences: list[corpus.Article],
    cache: Signatures,
    args: argparse.Namespace,
    timing_runs: int,
) -> Report:
    report = Report(config)
    distinct = real + sentences
    order = list(distinct)
    random.Random(11).shuffle(order)
    report.distinct = len(order)

    # 1. distinct articles streamed into the index; timed end to end from the text, in wall
    #    time and in this process's CPU time (the machine is shared: CPU time is the steadier).
    for _ in range(timing_runs):
        memory = Memory()
        with Timer(len(order)) as timer:
            for article in order:
                memory.judge(article.id, article.text, config)
        report.stream_timing.append(timer.result)
        with Timer(len(order)) as timer:
            for article in order:
                signature(article.text, config)
        report.signature_timing.append(timer.result)
    memory = Memory(count_bytes=True)
    for article in order:
        verdict = memory.judge(article.id, article.text, config, cache.signature(article, config))
        if verdict.status != "unique":
            report.false_in_stream.append(
                (article.id, verdict.duplicate_of or "", verdict.similarity or 0.0)
            )
    report.written_bytes = memory.written_bytes
    report.state_articles = len(order)
    for key, value in memory.index.items():
        size = len(key.encode()) + len(_json(value))
        report.state_bytes += size
        if key.startswith(ARTICLE_PREFIX):
            report.article_record_bytes.append(size)
        else:
            report.band_records += 1
            report.band_ids.append(len(value["a"]))
    stream_index = memory

    # 2. every pair of distinct articles.
    sigs = [cache.signature(a, config) for a in distinct]
    ids = [a.id for a in distinct]
    usable = [i for i, s in enumerate(sigs) if s]
    matrix = np.array([sigs[i] for i in usable], dtype=np.uint32)
    histogram = np.zeros(config.num_perm + 1, dtype=np.int64)
    involved: set[int] = set()
    block = 48
    for start in range(0, len(matrix), block):
        rows = matrix[start : start + block]
        equal = (rows[:, None, :] == matrix[None, start:, :]).sum(axis=2)
        for r in range(len(rows)):
            counts = equal[r, r + 1 :]
            histogram += np.bincount(counts, minlength=config.num_perm + 1)
            for offset in np.nonzero(counts >= config.threshold * config.num_perm)[0]:
                a, b = usable[start + r], usable[start + r + 1 + offset]
                report.pairs_over.append((counts[offset] / config.num_perm, ids[a], ids[b]))
                involved.update((a, b))
    report.pairs = int(histogram.sum())
    report.pair_estimates = histogram
    report.articles_in_pairs = len(involved)

    # 3. hard negatives, each pair in a fresh index.
    for kind, first, second in corpus.hard_negatives(distinct, args.hard_pairs, seed=5):
        memory = Memory()
        memory.judge(first.id, first.text, config)
        verdict = memory.judge(second.id, second.text, config)
        report.hard[kind].append(verdict.status != "unique")
        sim = estimate_similarity(signature(first.text, config), signature(second.text, config))
        report.hard_similarity[kind].append(sim)

    # 4. copies, judged in shuffled order against (and written into) the distinct index.
    ctx = corpus.CopyContext(tuple(a.title for a in distinct if a.title))
    rng = random.Random(13)
    sample = rng.sample(sentences, min(args.sentence_originals, len(sentences)))
    copies = [("real", *c) for c in corpus.make_copies(real, KINDS, args.variants, ctx, seed=3)]
    copies += [("sentences", *c) for c in corpus.make_copies(sample, KINDS, 1, ctx, seed=3)]
    rng.shuffle(copies)
    for _ in range(timing_runs):
        memory = Memory(exact=dict(stream_index.exact), index=dict(stream_index.index))
        with Timer(len(copies)) as timer:
            for _source, _kind, _original, copy in copies:
                memory.judge(copy.id, copy.text, config)
        report.copies_timing.append(timer.result)
    memory = stream_index
    for source, kind, original, copy in copies:
        copy_sig = signature(copy.text, config)
        verdict = memory.judge(copy.id, copy.text, config, copy_sig)
        hit = verdict.status != "unique" and verdict.duplicate_of == original.id
        report.found[(kind, source)].append(hit)
        if verdict.status != "unique" and not hit:
            report.wrong[(kind, source)] += 1
        size = config.shingle_size
        report.true_j[(kind, source)].append(
            _jaccard(cache.shingles(original, size), shingles(copy.text, size))
        )
        direct = estimate_similarity(copy_sig, cache.signature(original, config)) if copy_sig else 0
        report.estimate[(kind, source)].append(direct)
        report.estimate_error.append(direct - report.true_j[(kind, source)][-1])
    return report


# --- printing -------------------------------------------------------------------------------


def table(title: str, header: Sequence[str], rows: Sequence[Sequence[object]]) -> None:
    print(f"\n**{title}**\n")
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    for row in rows:
        print("| " + " | ".join(str(cell) for cell in row) + " |")


def _spread(values: Sequence[float]) -> str:
    return f"{min(values):.2f} / {_percentile(values, 0.05):.2f} / {statistics.median(values):.2f}"


def _timings(timings: Sequence[tuple[float, float]]) -> list[str]:
    wall = [t[0] for t in timings]
    cpu = [t[1] for t in timings]
    return [
        f"{statistics.median(wall):.2f} ({min(wall):.2f})",
        f"{statistics.median(cpu):.2f} ({min(cpu):.2f})",
        f"{1e3 / statistics.median(cpu):,.0f} ({1e3 / min(cpu):,.0f})",
    ]


def print_report(report: Report) -> None:
    c = report.config
    n = report.distinct
    print(
        f"\nConfiguration: num_perm={c.num_perm} bands={c.bands} rows={c.rows} "
        f"threshold={c.threshold} shingle_size={c.shingle_size} hash_bits={c.hash_bits} "
        f"max_ids_per_band={c.max_ids_per_band}"
    )
    candidate = ", ".join(
        f"s={s:.2f}: {1 - (1 - s**c.rows) ** c.bands:.3f}"
        for s in (0.2, 0.3, c.threshold - 0.05, c.threshold, 0.6, 0.7)
    )
    print(f"LSH candidate probability 1-(1-s^r)^b: {candidate}")

    rows = []
    for kind in KINDS:
        row: list[object] = [kind]
        for source in ("real", "sentences"):
            hits = report.found[(kind, source)]
            row += [
                f"{sum(hits) / len(hits):.3f} ({sum(hits)}/{len(hits)})",
                report.wrong[(kind, source)],
                _spread(report.true_j[(kind, source)]),
            ]
        rows.append(row)
    table(
        "Recall per kind of copy (found: the verdict names the original; wrong: another article)",
        ["kind", "real pages: recall", "wrong", "true J min / p5 / median"]
        + ["sentence articles: recall", "wrong", "true J min / p5 / median"],
        rows,
    )
    errors = np.abs(np.array(report.estimate_error))
    print(
        f"\nMinHash estimate vs true Jaccard over all copies: mean |error| {errors.mean():.3f}, "
        f"p99 {np.percentile(errors, 99):.3f}, max {errors.max():.3f}"
    )

    false_stream = len(report.false_in_stream)
    rows = [
        [
            "distinct vs index: every distinct article judged against all before it",
            f"{n} articles",
            false_stream,
            f"{false_stream / n:.3%} of articles",
        ],
        [
            "distinct pairs: estimate >= threshold",
            f"{report.pairs:,} pairs",
            f"{len(report.pairs_over)} pairs ({report.articles_in_pairs} articles)",
            (
                f"{len(report.pairs_over) / report.pairs:.5%} of pairs, "
                f"{report.articles_in_pairs / n:.3%} of articles"
            ),
        ],
    ]
    for kind, flags in report.hard.items():
        sims = report.hard_similarity[kind]
        rows.append(
            [
                (
                    f"hard negatives, {kind} (estimate p99 {_percentile(sims, 0.99):.2f}, "
                    f"max {max(sims):.2f})"
                ),
                f"{len(flags)} pairs",
                sum(flags),
                f"{sum(flags) / len(flags):.3%} of pairs",
            ]
        )
    table("False duplicates among distinct articles", ["test", "size", "false", "rate"], rows)
    for article_id, duplicate_of, sim in report.false_in_stream[: report.show]:
        print(f"  stream false duplicate: {article_id} -> {duplicate_of} ({sim})")
    for sim, a, b in sorted(report.pairs_over, reverse=True)[: report.show]:
        print(f"  pair over threshold: {a} ~ {b} ({sim:.3f})")

    hist = report.pair_estimates
    assert hist is not None
    values = np.arange(len(hist)) / c.num_perm
    cumulative = np.cumsum(hist) / hist.sum()

    def pct(q: float) -> str:
        return f"{values[np.searchsorted(cumulative, q)]:.2f}"

    top = f"{values[np.nonzero(hist)[0][-1]]:.2f}"
    rows = [
        ["distinct pairs", "0.00", pct(0.05), pct(0.5), pct(0.99), pct(0.999), pct(0.9999), top]
    ]
    for kind in KINDS:
        est = report.estimate[(kind, "real")] + report.estimate[(kind, "sentences")]
        rows.append(
            [f"copies: {kind}", f"{min(est):.2f}", f"{_percentile(est, 0.05):.2f}"]
            + [f"{statistics.median(est):.2f}", f"{_percentile(est, 0.99):.2f}", "", ""]
            + [f"{max(est):.2f}"]
        )
    table(
        "Similarity distribution (MinHash estimates; copies against their own original)",
        ["population", "min", "p5", "median", "p99", "p99.9", "p99.99", "max"],
        rows,
    )

    rows = []
    for label, timings in (
        (f"stream of the {n} distinct articles into a growing index", report.stream_timing),
        ("copies judged against that index (candidates found)", report.copies_timing),
        ("signature alone (normalise, shingle, MinHash)", report.signature_timing),
    ):
        if timings:
            rows.append([label, *_timings(timings)])
    if report.stream_timing:
        rest = [
            (a[0] - b[0], a[1] - b[1])
            for a, b in zip(report.stream_timing, report.signature_timing, strict=True)
        ]
        label = "stream minus signature: fingerprint, band keys, lookups, verdict, writes"
        rows.append([label, *_timings(rest)])
    if rows:
        table(
            f"Throughput: one process, one thread, {len(report.stream_timing)} runs, median (best)",
            ["work", "ms/article wall", "ms/article CPU", "articles/s CPU"],
            rows,
        )
    rows = []
    rows += [
        [
            (
                "state bytes per remembered article (UTF-8 keys + compact JSON values, whole index "
                "/ articles; 16-hex-character ids)"
            ),
            f"{report.state_bytes / report.state_articles:,.0f}",
        ],
        [
            "of which its article record (key, id, signature, time)",
            f"{statistics.mean(report.article_record_bytes):,.0f}",
        ],
        [
            "band records per article; ids per band record (mean, max)",
            (
                f"{report.band_records / report.state_articles:.1f}; "
                f"{statistics.mean(report.band_ids):.2f}, {max(report.band_ids)}"
            ),
        ],
        [
            "bytes written per article (changelog traffic)",
            f"{report.written_bytes / report.state_articles:,.0f}",
        ],
    ]
    table("State", ["measure", "value"], rows)


def print_sweep_row(report: Report) -> None:
    c = report.config
    core = ["chrome", "headline", "cut_tail", "edits", "reorder"]
    combos = ["headline+chrome", "cut+edits", "reorder+edits"]
    hard = [f for flags in report.hard.values() for f in flags]
    cells = [
        c.shingle_size,
        c.num_perm,
        f"{c.bands}x{c.rows}",
        f"{c.threshold:.2f}",
        f"{min(report.recall(k) for k in core):.3f}",
        f"{min(report.recall(k) for k in combos):.3f}",
        f"{report.recall('all'):.3f}",
        f"{len(report.false_in_stream) / report.distinct:.3%}",
        f"{report.articles_in_pairs / report.distinct:.3%}",
        f"{sum(hard) / len(hard):.2%}",
        f"{report.state_bytes / report.state_articles:,.0f}",
    ]
    print("| " + " | ".join(str(cell) for cell in cells) + " |", flush=True)


SWEEP_HEADER = [
    "shingle",
    "num_perm",
    "bands x rows",
    "threshold",
    "recall, worst of 5 kinds",
    "recall, worst of 3 pairs",
    "recall, all",
    "false dup: stream",
    "false dup: articles in pairs",
    "false dup: hard negatives",
    "bytes/article",
]


SWEEP = [
    # (shingle_size, num_perm, bands, rows, threshold)
    (2, 128, 42, 3, 0.50),
    (3, 128, 32, 4, 0.50),
    (3, 128, 42, 3, 0.40),
    (3, 128, 42, 3, 0.45),
    (3, 128, 42, 3, 0.50),
    (3, 128, 64, 2, 0.45),
    (3, 256, 64, 4, 0.45),
    (3, 256, 85, 3, 0.45),
    (4, 128, 42, 3, 0.40),
    (4, 128, 42, 3, 0.45),
    (5, 128, 42, 3, 0.40),
]


def machine() -> str:
    model = ""
    try:
        lscpu = subprocess.run(["lscpu"], capture_output=True, text=True, check=False).stdout
        model = next(
            (line.split(":", 1)[1].strip() for line in lscpu.splitlines() if "Model name" in line),
            "",
        )
    except OSError:
        pass
    return f"{os.cpu_count()} CPUs (nproc), {model or platform.processor()}, Python " + (
        platform.python_version()
    )


def main(argv: list[str] | None = None) -> int:
    defaults = NearDupConfig()
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--sentences-dir",
        type=Path,
        required=True,
        help="required: the lingua-py test sentences, one <iso639-1>.txt per language (75 "
        "languages, 1,000 lines each; Apache-2.0), not kept in the repository",
    )
    parser.add_argument("--num-perm", type=int, default=defaults.num_perm)
    parser.add_argument("--bands", type=int, default=defaults.bands)
    parser.add_argument("--rows", type=int, default=defaults.rows)
    parser.add_argument("--threshold", type=float, default=defaults.threshold)
    parser.add_argument("--shingle-size", type=int, default=defaults.shingle_size)
    parser.add_argument("--hash-bits", type=int, default=defaults.hash_bits)
    parser.add_argument("--variants", type=int, default=20, help="copies per kind per real page")
    parser.add_argument(
        "--sentence-originals",
        type=int,
        default=300,
        help="pseudo-articles copied (one copy per kind each)",
    )
    parser.add_argument("--hard-pairs", type=int, default=500, help="pairs per hard-negative kind")
    parser.add_argument("--timing-runs", type=int, default=3)
    parser.add_argument("--show", type=int, default=5, help="false duplicates to list")
    parser.add_argument("--sweep", action="store_true", help="one summary row per configuration")
    parser.add_argument(
        "--configs",
        default="",
        help="configurations for --sweep, e.g. 3/128/42x3/0.45,4/128/42x3/0.4 "
        "(shingle/num_perm/bands x rows/threshold); default: a built-in grid",
    )
    args = parser.parse_args(argv)

    print(f"Machine: {machine()}")
    real = corpus.real_articles()
    sentences = corpus.sentence_articles(args.sentences_dir)
    cache = Signatures()
    if args.sweep:
        table("Sweep", SWEEP_HEADER, [])
        grid = SWEEP
        if args.configs:
            grid = []
            for spec in args.configs.split(","):
                size, num_perm, shape, threshold = spec.split("/")
                bands, rows = shape.split("x")
                grid.append((int(size), int(num_perm), int(bands), int(rows), float(threshold)))
        for size, num_perm, bands, rows, threshold in grid:
            config = replace(
                defaults,
                shingle_size=size,
                num_perm=num_perm,
                bands=bands,
                rows=rows,
                threshold=threshold,
            )
            print_sweep_row(evaluate(config, real, sentences, cache, args, timing_runs=0))
        return 0
    config = replace(
        defaults,
        num_perm=args.num_perm,
        bands=args.bands,
        rows=args.rows,
        threshold=args.threshold,
        shingle_size=args.shingle_size,
        hash_bits=args.hash_bits,
    )
    report = evaluate(config, real, sentences, cache, args, timing_runs=args.timing_runs)
    print(
        f"Corpus: {len(real)} real articles + {len(sentences)} sentence pseudo-articles; "
        f"copies: {args.variants} per kind per real page, 1 per kind for "
        f"{args.sentence_originals} pseudo-articles"
    )
    report.show = args.show
    print_report(report)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
