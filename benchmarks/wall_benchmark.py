"""Wall detection per language: walls flagged (recall) and real articles flagged (false positives).

Reads labelled JSONL sets ({"lang", "label": "wall"|"article", "kind", "title", "text"}), such as
the project's own tests/data/walls/dev.jsonl and holdout.jsonl, and judges each page as a crawler
delivers it: the headline on the first line, the body after it (--body-only judges the body
alone). --unlabelled takes JSONL of real crawled texts ({"lang", "text"}, e.g. the SemEval-2022
task 8 dev articles, which may not be copied here) and lists what is flagged,
for reading by eye. --sentences takes a directory of per-language sentence files (lingua-py's
language-ID test sentences) and counts false alarms on six-sentence pseudo-articles.

    .venv/bin/python benchmarks/wall_benchmark.py tests/data/walls/dev.jsonl tests/data/walls/holdout.jsonl
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from pipeline.stages.quality import wall_kind

SENTENCES_PER_ARTICLE = 6


def load(path: Path) -> list[dict[str, str]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]


def page_text(record: dict[str, str], body_only: bool) -> str:
    title = record.get("title")
    return record["text"] if body_only or not title else f"{title}\n{record['text']}"


def print_table(name: str, records: list[dict[str, str]], body_only: bool) -> list[str]:
    """The per-language table of one set; returns the lines describing each error."""
    rows: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0, 0])
    errors = []
    for record in records:
        flagged = wall_kind(page_text(record, body_only)) is not None
        row = rows[record["lang"]]
        if record["label"] == "wall":
            row[0] += 1
            row[1] += flagged
            if not flagged:
                errors.append(f"missed wall   {record['lang']} {record['kind']}: {record['title']}")
        else:
            row[2] += 1
            row[3] += flagged
            if flagged:
                errors.append(
                    f"false positive {record['lang']} {record['kind']}: {record['title']}"
                )
    print(f"## {name}\n")
    print("| lang | walls | flagged | recall | articles | false positives | FP rate |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    total = [0, 0, 0, 0]
    for lang in sorted(rows):
        row = rows[lang]
        total = [a + b for a, b in zip(total, row, strict=True)]
        print(_row(lang, row))
    print(_row("**all**", total))
    print()
    return errors


def _row(lang: str, row: list[int]) -> str:
    walls, flagged, articles, false_positives = row
    recall = flagged / walls if walls else 0.0
    rate = false_positives / articles if articles else 0.0
    return (
        f"| {lang} | {walls} | {flagged} | {recall:.1%} | {articles} | {false_positives} "
        f"| {rate:.1%} |"
    )


def print_unlabelled(path: Path) -> None:
    records = load(path)
    flagged = [(r, kind) for r in records if (kind := wall_kind(r["text"])) is not None]
    print(f"## {path.name}: {len(flagged)} of {len(records)} texts flagged (unlabelled)\n")
    for record, kind in flagged:
        snippet = " ".join(record["text"].split())[:140]
        print(f"- {record['lang']} {kind}: {snippet}")
    print()


def print_sentence_articles(directory: Path, languages: list[str], size: int) -> None:
    """False alarms on natural text: consecutive sentences of a per-language file, `size` at a
    time, judged as articles."""
    print(f"## {directory}: pseudo-articles of {size} sentences\n")
    print("| lang | articles | flagged |")
    print("|---|---:|---:|")
    for lang in languages:
        sentences = (directory / f"{lang}.txt").read_text(encoding="utf-8").splitlines()
        texts = ["\n".join(sentences[i : i + size]) for i in range(0, len(sentences), size)]
        print(f"| {lang} | {len(texts)} | {sum(wall_kind(t) is not None for t in texts)} |")
    print()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("sets", nargs="+", type=Path, help="labelled JSONL wall sets")
    parser.add_argument("--body-only", action="store_true", help="judge the body without title")
    parser.add_argument("--errors", action="store_true", help="list missed walls and false alarms")
    parser.add_argument(
        "--unlabelled",
        type=Path,
        action="append",
        default=[],
        help="JSONL of real crawled texts ({lang, text}): list what is flagged",
    )
    parser.add_argument(
        "--sentences",
        type=Path,
        help="directory of <lang>.txt sentence files (e.g. LANGID_SENTENCES_DIR)",
    )
    parser.add_argument("--languages", default="en,de,fr,es,it,pl,ru,zh")
    args = parser.parse_args()
    for path in args.sets:
        errors = print_table(path.name, load(path), args.body_only)
        if args.errors and errors:
            print("\n".join(errors) + "\n")
    for path in args.unlabelled:
        print_unlabelled(path)
    if args.sentences is not None:
        print_sentence_articles(args.sentences, args.languages.split(","), SENTENCES_PER_ARTICLE)
    return 0


if __name__ == "__main__":
    sys.exit(main())
