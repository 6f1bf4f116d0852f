"""Entity quality and cost per language: the bare spaCy model against the pipeline's refinements.

Quality is exact-span F1 over PERSON, ORG and LOC (MISC apart), per language, on development
sets given as arguments: --en and --fr take single-language JSONL ({"id", "text", "gold":
[[start, end, label], ...]} with PER/ORG/LOC/MISC), such as DEV_EN.jsonl
(CoNLL-2003 validation) and dev_fr.jsonl (WikiNEuRal validation), which may not be copied into
the repository. --testset takes the project's own mixed-language set
(benchmarks/data/ner/testset.jsonl: "segments" and "entities").

For each language the table gives the bare model (the recognizer with no refinement, i.e. the
model as shipped), every refinement on, each refinement off in turn (ablation), and the
configured choice (config/pipeline.toml's entity_refinements_off: what each language keeps). The models
run once per input variant (apostrophes and capitals lines change what they read); the
refinements, which need no model, run on their output.

Cost (--cost fr=fr_core_news_sm,fr_core_news_md) is CPU milliseconds per document, runs
interleaved: each model's tagging and the configured refinements, so the throughput lost to
refinement and the price of a larger model read directly.

    .venv/bin/python benchmarks/ner_benchmark.py --en DEV_EN.jsonl \\
        --fr DEV_FR.jsonl [--model fr=fr_core_news_md] [--errors en] \\
        [--cost fr=fr_core_news_sm,fr_core_news_md --runs 5]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from time import process_time

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from pipeline.settings import load_settings
from pipeline.stages.entities import (
    BARE_SETTINGS,
    REFINEMENTS,
    EntityRecognizer,
    EntitySettings,
    TaggedBatch,
    refine_tagged,
)
from pipeline.stages.language import Segment

MAIN_LABELS = frozenset({"PERSON", "ORG", "LOC"})
GOLD_LABELS = {"PER": "PERSON", "PERSON": "PERSON", "ORG": "ORG", "LOC": "LOC", "MISC": "MISC"}
# Refinements that change what the model reads: each on/off combination is tagged apart.
INPUT_REFINEMENTS = ("normalise_apostrophes", "recase_caps_lines")

Span = tuple[str, int, int, str]  # (doc id, start, end, label)
Article = tuple[str, Sequence[Segment]]


@dataclass
class Doc:
    id: str
    text: str
    segments: list[Segment]
    gold: list[Span]


def load_single_language(path: Path, lang: str) -> list[Doc]:
    docs = []
    for line in path.read_text(encoding="utf-8").splitlines():
        raw = json.loads(line)
        text = raw["text"]
        gold = [(raw["id"], s, e, GOLD_LABELS[label]) for s, e, label in raw["gold"]]
        docs.append(Doc(raw["id"], text, [Segment(0, len(text), lang, 1.0)], gold))
    return docs


def load_testset(path: Path) -> dict[str, list[Doc]]:
    """The project's mixed-language set, cut into one document list per language."""
    by_lang: dict[str, list[Doc]] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        raw = json.loads(line)
        segments = [Segment(s, e, lang, 1.0) for s, e, lang in raw["segments"]]
        for lang in sorted({s.lang for s in segments if s.lang}):
            own = [s for s in segments if s.lang == lang]
            gold = [
                (raw["id"], s, e, GOLD_LABELS[label])
                for s, e, label in raw["entities"]
                if any(seg.start <= s < seg.end for seg in own)
            ]
            by_lang.setdefault(f"testset {lang}", []).append(Doc(raw["id"], raw["text"], own, gold))
    return by_lang


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

    def __str__(self) -> str:
        return f"{self.precision:.3f} / {self.recall:.3f} / **{self.f1:.3f}**"


def score(gold: Iterable[Span], predicted: Iterable[Span], labels: frozenset[str]) -> Score:
    g = {s for s in gold if s[3] in labels}
    p = {s for s in predicted if s[3] in labels}
    return Score(len(g & p), len(p - g), len(g - p))


def spans(docs: Sequence[Doc], entities: Sequence[Sequence[object]]) -> list[Span]:
    return [
        (doc.id, e.start, e.end, e.label)  # type: ignore[attr-defined]
        for doc, found in zip(docs, entities, strict=True)
        for e in found
    ]


class Tagger:
    """The model's raw output per input variant, tagged once and timed (CPU seconds)."""

    def __init__(self, models: dict[str, str], docs: Sequence[Doc]) -> None:
        self._models = models
        self._articles: list[Article] = [(d.text, d.segments) for d in docs]
        self._tagged: dict[tuple[bool, ...], TaggedBatch] = {}
        self.seconds: dict[tuple[bool, ...], float] = {}
        self._loaded: dict[tuple[bool, ...], EntityRecognizer] = {}

    def tagged(self, settings: EntitySettings) -> TaggedBatch:
        key = tuple(getattr(settings, name) for name in INPUT_REFINEMENTS)
        if key not in self._tagged:
            recognizer = EntityRecognizer(self._models, settings=settings)
            recognizer.load_all()
            started = process_time()
            self._tagged[key] = recognizer.tag(self._articles)
            self.seconds[key] = process_time() - started
        return self._tagged[key]

    def refined(self, settings: EntitySettings) -> tuple[list[list[object]], float]:
        tagged = self.tagged(settings)
        started = process_time()
        result = refine_tagged(self._articles, tagged, self._models, settings)
        return result.entities, process_time() - started  # type: ignore[return-value]


def configurations(configured: EntitySettings) -> list[tuple[str, EntitySettings]]:
    """Bare, all on, all but each one, and the configured choice."""
    every = EntitySettings(**dict.fromkeys(REFINEMENTS, True))
    rows = [("bare model (no refinement)", BARE_SETTINGS), ("all refinements", every)]
    rows += [(f"all but {name}", replace(every, **{name: False})) for name in REFINEMENTS]
    rows.append(("**configured** (entity_refinements_off)", configured))
    return rows


def print_language(
    name: str, docs: list[Doc], models: dict[str, str], configured: EntitySettings
) -> list[Span]:
    """One language's table; returns the configured choice's spans for --errors."""
    gold = [g for d in docs for g in d.gold]
    n_main = sum(1 for g in gold if g[3] in MAIN_LABELS)
    n_misc = sum(1 for g in gold if g[3] == "MISC")
    tagger = Tagger(models, docs)
    print(
        f"## {name}: {len(docs)} documents, {n_main} PER/ORG/LOC and {n_misc} MISC gold "
        f"entities; models {models}\n"
    )
    print("| settings | PER/ORG/LOC P / R / F1 | Δ F1 vs bare | MISC F1 | refine ms/doc CPU |")
    print("|---|---|---:|---:|---:|")
    bare_f1 = 0.0
    chosen: list[Span] = []
    for title, settings in configurations(configured):
        entities, seconds = tagger.refined(settings)
        predicted = spans(docs, entities)
        main = score(gold, predicted, MAIN_LABELS)
        misc = score(gold, predicted, frozenset({"MISC"}))
        if settings is BARE_SETTINGS:
            bare_f1 = main.f1
        if settings is configured:
            chosen = predicted
        print(
            f"| {title} | {main} | {main.f1 - bare_f1:+.3f} | {misc.f1:.3f} "
            f"| {1000 * seconds / len(docs):.2f} |"
        )
    print()
    print(
        "| model CPU per document (tagging, ms) | "
        + " | ".join(
            f"apostrophes {'on' if a else 'off'}, caps {'on' if c else 'off'}: "
            f"{1000 * s / len(docs):.1f}"
            for (a, c), s in tagger.seconds.items()
        )
        + " |\n"
    )
    return chosen


def print_cost(
    name: str, docs: list[Doc], packages: list[str], configured: EntitySettings, runs: int
) -> None:
    """CPU ms per document of each model's tagging and of the configured refinements, runs
    interleaved so that load on the shared machine hits all alike; median and best."""
    lang = str(docs[0].segments[0].lang)
    articles: list[Article] = [(d.text, d.segments) for d in docs]
    recognizers = {}
    for package in packages:
        recognizers[package] = EntityRecognizer({lang: package}, settings=configured)
        recognizers[package].load_all()
    tagged = recognizers[packages[0]].tag(articles)
    samples: dict[str, list[float]] = {package: [] for package in packages}
    samples["refinements (configured)"] = []
    for _ in range(runs):
        for package, recognizer in recognizers.items():
            started = process_time()
            recognizer.tag(articles)
            samples[package].append(process_time() - started)
        started = process_time()
        refine_tagged(articles, tagged, [lang], configured)
        samples["refinements (configured)"].append(process_time() - started)
    words = sum(len(d.text.split()) for d in docs)
    print(f"## {name}: CPU per document ({len(docs)} documents, {words:,} words, {runs} runs)\n")
    print("| work | ms/doc CPU median | best |")
    print("|---|---:|---:|")
    for work, seconds in samples.items():
        label = f"tagging with {work}" if work in recognizers else work
        per_doc = [1000 * x / len(docs) for x in seconds]
        print(f"| {label} | {statistics.median(per_doc):.2f} | {min(per_doc):.2f} |")
    base = statistics.median(samples[packages[0]])
    refine = statistics.median(samples["refinements (configured)"])
    print(
        f"| refinements / ({packages[0]} tagging + refinements) | {refine / (base + refine):.1%} | |"
    )
    print()


def print_errors(docs: Sequence[Doc], predicted: list[Span]) -> None:
    by_id = {d.id: d for d in docs}
    gold = {g for d in docs for g in d.gold if g[3] in MAIN_LABELS}
    pred = {p for p in predicted if p[3] in MAIN_LABELS}
    counts: Counter[str] = Counter()
    for kind, chosen in (("FP", pred - gold), ("FN", gold - pred)):
        for doc_id, s, e, label in sorted(chosen):
            print(f"{kind} {doc_id:14} {label:6} {by_id[doc_id].text[s:e]!r}")
            counts[kind] += 1
    print(dict(counts), "\n")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--en", type=Path, help="English JSONL, e.g. CoNLL-2003 validation (not kept in the repository)")
    parser.add_argument("--fr", type=Path, help="French JSONL, e.g. WikiNEuRal validation (not kept in the repository)")
    parser.add_argument("--testset", type=Path, help="mixed-language set with segments")
    parser.add_argument(
        "--model",
        action="append",
        default=[],
        metavar="LANG=PACKAGE",
        help="use this spaCy model for a language instead of config/pipeline.toml's",
    )
    parser.add_argument(
        "--cost",
        action="append",
        default=[],
        metavar="LANG=PACKAGE[,PACKAGE...]",
        help="time these models' tagging and the refinements on that language's set",
    )
    parser.add_argument("--runs", type=int, default=5, help="timed runs for --cost")
    parser.add_argument(
        "--errors",
        action="append",
        default=[],
        metavar="NAME",
        help="list the configured choice's errors for this table (en, fr, ...)",
    )
    args = parser.parse_args()

    settings = load_settings()
    models = dict(settings.spacy_models)
    configured = EntitySettings(
        off_by_language={
            lang: frozenset(names) for lang, names in settings.entity_refinements_off.items()
        }
    )
    models.update(dict(pair.split("=", 1) for pair in args.model))
    datasets: dict[str, list[Doc]] = {}
    for lang in ("en", "fr"):
        path = getattr(args, lang)
        if path is not None:
            datasets[lang] = load_single_language(path, lang)
    if args.testset is not None:
        datasets.update(load_testset(args.testset))
    if not datasets:
        parser.error("give at least one of --en, --fr, --testset")
    for name, docs in datasets.items():
        lang = docs[0].segments[0].lang
        chosen = print_language(name, docs, {str(lang): models[str(lang)]}, configured)
        if name in args.errors:
            print_errors(docs, chosen)
    for spec in args.cost:
        lang, packages = spec.split("=", 1)
        print_cost(lang, datasets[lang], packages.split(","), configured, args.runs)
    return 0


if __name__ == "__main__":
    sys.exit(main())
