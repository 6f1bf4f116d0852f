"""HTML extraction quality: token F1 of clean_html against the readable article of each page.

    .venv/bin/python benchmarks/extraction_quality.py
    .venv/bin/python benchmarks/extraction_quality.py --variants   # also other trafilatura settings

Pages: tests/data/html/*/source.html (``--pages`` names another directory laid out the same),
reference text: expected.html with tags stripped (mozilla readability's test suite). Token F1 is on a bag of lower-cased words; CJK characters count one
token each, since Chinese has no spaces between words. Time is CPU time per page
(`time.process_time`), best of --repeat.
"""

from __future__ import annotations

import argparse
import re
import sys
import time
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import lxml.html
import trafilatura

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from pipeline.stages.clean import clean_html

PAGES = ROOT / "tests" / "data" / "html"
_TOKEN = re.compile(r"[\u3400-\u9fff]|[^\W\u3400-\u9fff]+")


def tokens(text: str) -> Counter[str]:
    return Counter(_TOKEN.findall(text.lower()))


def token_f1(got: str, expected: str) -> float:
    a, b = tokens(got), tokens(expected)
    overlap = sum((a & b).values())
    if not overlap:
        return 0.0
    precision, recall = overlap / sum(a.values()), overlap / sum(b.values())
    return 2 * precision * recall / (precision + recall)


def trafilatura_with(**options: Any) -> Callable[[str], str]:
    return lambda html: trafilatura.extract(html, **options) or ""


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--pages", type=Path, default=PAGES, help="<page>/source.html and expected.html per page"
    )
    parser.add_argument("--variants", action="store_true", help="also other trafilatura settings")
    parser.add_argument("--repeat", type=int, default=2, help="timing passes (best is kept)")
    args = parser.parse_args(argv)

    pages = sorted(p for p in args.pages.iterdir() if p.is_dir())
    sources = {p.name: (p / "source.html").read_text(encoding="utf-8") for p in pages}
    expected = {
        p.name: lxml.html.fromstring(
            (p / "expected.html").read_text(encoding="utf-8")
        ).text_content()
        for p in pages
    }
    methods: dict[str, Callable[[str], str]] = {
        "clean_html": lambda html: clean_html(html).text,
        "trafilatura defaults": trafilatura_with(),
    }
    if args.variants:
        methods |= {
            "traf. favor_recall": trafilatura_with(favor_recall=True, include_comments=False),
            "traf. favor_precision": trafilatura_with(favor_precision=True, include_comments=False),
            "traf. no comments": trafilatura_with(include_comments=False),
            "traf. no comments/tables": trafilatura_with(
                include_comments=False, include_tables=False
            ),
        }
    for method in methods.values():  # warm-up (imports, lazy tables)
        method(sources[pages[0].name])

    scores: dict[str, dict[str, float]] = {}
    timings: dict[str, float] = {}
    for name, method in methods.items():
        best = float("inf")
        for _ in range(args.repeat):
            start = time.process_time()  # CPU time: stable on a busy host
            outputs = {page: method(html) for page, html in sources.items()}
            best = min(best, time.process_time() - start)
        scores[name] = {page: token_f1(outputs[page], expected[page]) for page in sources}
        timings[name] = best / len(sources) * 1000

    names = list(methods)
    print("| page | " + " | ".join(names) + " |")
    print("|---" * (len(names) + 1) + "|")
    for page in sources:
        print(f"| {page} | " + " | ".join(f"{scores[n][page]:.3f}" for n in names) + " |")
    means = " | ".join(f"**{sum(scores[n].values()) / len(sources):.3f}**" for n in names)
    print(f"| **mean** | {means} |")
    print("| ms/page | " + " | ".join(f"{timings[n]:.0f}" for n in names) + " |")


if __name__ == "__main__":
    main()
