"""The throughput benchmark's articles: real pages and the seed, copied into distinct records.

Base articles: the readable text of ``<pages>/<page>/expected.html`` (tags stripped, one
paragraph per block element, the title from ``expected-metadata.json``) for the five English and
two French pages of PAGES, and a seed article (a French text file, first line the title). By
default the repository's copies: ``tests/data/html`` and the seed in ``tests/data/seed``.

Copies: copy ``i`` of the corpus is base article ``i % len(bases)`` with a unique id and one
added sentence naming its serial number and the run, so every copy has its own content
fingerprint (exact dedup sees distinct articles) while the NER work stays that of a real article.
"""

from __future__ import annotations

import html
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import orjson
from dedup_corpus import DATA, html_paragraphs

PAGES = {
    "bbc-1": "en",
    "guardian-1": "en",
    "nytimes-1": "en",
    "telegraph": "en",
    "herald-sun-1": "en",
    "lemonde-1": "fr",
    "liberation-1": "fr",
}

_SERIAL_SENTENCE = {
    "en": "This is copy number {n} of the benchmark run {run}.",
    "fr": "Ceci est la copie numéro {n} de la série de mesures {run}.",
}


@dataclass(frozen=True)
class BaseArticle:
    name: str
    lang: str
    title: str
    body: str

    @property
    def words(self) -> int:
        return len(self.body.split())


def strip_tags(markup: str) -> str:
    return "\n\n".join(html_paragraphs(markup))


PAGES_DIR = DATA / "html"
SEED = DATA / "seed" / "000_1a9e3e07799cbb39.txt"


def base_articles(pages: Path = PAGES_DIR, seed: Path | None = SEED) -> list[BaseArticle]:
    """The pages of PAGES under ``pages`` (``<page>/expected.html``), then the seed if given."""
    bases = []
    for name, lang in PAGES.items():
        page = pages / name
        meta = json.loads((page / "expected-metadata.json").read_text(encoding="utf-8"))
        body = strip_tags((page / "expected.html").read_text(encoding="utf-8"))
        bases.append(BaseArticle(name, lang, html.unescape(meta.get("title") or ""), body))
    if seed is not None:
        title, _, body = seed.read_text(encoding="utf-8").strip().partition("\n")
        bases.append(BaseArticle(f"seed-{seed.stem}", "fr", title.strip(), body.strip()))
    return bases


@dataclass(frozen=True)
class Copy:
    id: str
    base: BaseArticle
    payload: bytes  # the raw-topic JSON record

    @property
    def key(self) -> bytes:
        return self.id.encode()


def make_copies(bases: Sequence[BaseArticle], count: int, run: str, start: int = 0) -> list[Copy]:
    """`count` distinct raw records, cycling through `bases`; serials from `start`."""
    copies = []
    for n in range(start, start + count):
        base = bases[n % len(bases)]
        article_id = f"bench-{run}-{n:06d}"
        sentence = _SERIAL_SENTENCE[base.lang].format(n=n, run=run)
        record = {
            "id": article_id,
            "title": base.title,
            "source": base.name,
            "text": f"{base.body}\n\n{sentence}",
        }
        copies.append(Copy(article_id, base, orjson.dumps(record)))
    return copies
