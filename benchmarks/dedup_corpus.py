"""Articles and their copies for the deduplication benchmark.

Originals: the readable text of the 12 real pages (``tests/data/html/*/expected.html`` with the
page title as headline) and the seed article (``tests/data/seed``); distinct pseudo-articles cut
from the 75-language sentence files of lingua-py's test data, a directory given by the caller
(the repository keeps only the lines its tests use) (10-20 consecutive sentences, paragraphs of
2-4 sentences, first sentence as headline).

Copies, each built with its own seeded random generator:
  chrome    residual site chrome around the text (nav, share, newsletter, copyright lines)
  headline  a different headline
  cut_tail  the last 20-30 % of the words removed
  edits     1-3 small edits per paragraph (word replaced, typo, word dropped or added)
  reorder   paragraphs shuffled (headline kept first)
  headline+chrome, cut+edits, reorder+edits, all (chrome, headline, cut, edits, reorder at once)
Hard negatives (distinct articles that share text): two articles wrapped in the same site chrome;
an article that quotes one whole paragraph of another.
"""

from __future__ import annotations

import html
import json
import random
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from html.parser import HTMLParser
from pathlib import Path

# The real pages and the seed, as the tests use them.
DATA = Path(__file__).resolve().parents[1] / "tests" / "data"

_BLOCKS = {
    "p", "div", "li", "ul", "ol", "h1", "h2", "h3", "h4", "h5", "h6", "blockquote", "figcaption",
    "br", "tr", "table", "section", "article", "pre", "figure", "header", "footer", "dd", "dt",
}  # fmt: skip


@dataclass(frozen=True)
class Article:
    id: str
    title: str
    paragraphs: tuple[str, ...]
    lang: str

    @property
    def text(self) -> str:
        head = [self.title] if self.title else []
        return "\n\n".join(head + list(self.paragraphs))


class _TextExtractor(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.paragraphs: list[str] = []
        self._current: list[str] = []
        self._skip = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in ("script", "style"):
            self._skip += 1
        elif tag in _BLOCKS:
            self._flush()

    def handle_endtag(self, tag: str) -> None:
        if tag in ("script", "style"):
            self._skip -= 1
        elif tag in _BLOCKS:
            self._flush()

    def handle_data(self, data: str) -> None:
        if not self._skip:
            self._current.append(data)

    def _flush(self) -> None:
        text = " ".join("".join(self._current).split())
        if text:
            self.paragraphs.append(text)
        self._current = []

    def close(self) -> None:
        super().close()
        self._flush()


def html_paragraphs(markup: str) -> list[str]:
    parser = _TextExtractor()
    parser.feed(markup)
    parser.close()
    return parser.paragraphs


def real_articles() -> list[Article]:
    """The 12 readable pages and the seed."""
    articles = []
    for page in sorted((DATA / "html").iterdir()):
        expected = page / "expected.html"
        if not expected.exists():
            continue
        meta = json.loads((page / "expected-metadata.json").read_text(encoding="utf-8"))
        paragraphs = html_paragraphs(expected.read_text(encoding="utf-8"))
        title = html.unescape(meta.get("title") or "")
        articles.append(
            Article(f"page-{page.name}", title, tuple(paragraphs), meta.get("lang", ""))
        )
    for seed in sorted((DATA / "seed").glob("*.txt")):
        blocks = [" ".join(b.split()) for b in seed.read_text(encoding="utf-8").split("\n\n")]
        blocks = [b for b in blocks if b]
        articles.append(Article(f"seed-{seed.stem}", blocks[0], tuple(blocks[1:]), "fr"))
    return articles


def sentence_articles(sentences_dir: Path, seed: int = 7) -> list[Article]:
    """Distinct pseudo-articles: consecutive runs of 10-20 sentences of one language, from
    ``sentences_dir/<iso639-1>.txt``."""
    rng = random.Random(seed)
    articles = []
    for path in sorted(sentences_dir.glob("*.txt")):
        lang = path.stem
        joiner = "" if lang in ("zh", "ja", "th") else " "
        sentences = [s.strip() for s in path.read_text(encoding="utf-8").splitlines() if s.strip()]
        start, number = 0, 0
        while start + 10 <= len(sentences):
            run = sentences[start : start + rng.randint(10, 20)]
            start += len(run)
            paragraphs, i = [], 1
            while i < len(run):
                size = rng.randint(2, 4)
                paragraphs.append(joiner.join(run[i : i + size]))
                i += size
            articles.append(Article(f"{lang}-{number:03d}", run[0], tuple(paragraphs), lang))
            number += 1
    return articles


# --- copy makers ----------------------------------------------------------------------------

_HEADER_LINES = [
    "Home | World | Politics | Business | Tech | Sport | Culture | Opinion",
    "Accueil International Politique Économie Sport Culture Idées",
    "Inicio Mundo Política Economía Deportes Cultura Opinión",
    "Subscribe for €1 a month",
    "Sign in", "Menu", "Search", "Live", "Breaking news",
    "Share this article on Facebook, Twitter, WhatsApp or by email",
    "Partager sur Facebook Partager sur Twitter Envoyer par e-mail",
    "Listen to this article 4 min",
    "By our staff reporter, with agencies",
    "Published 12 March 2026, 09:14 Updated 12 March 2026, 11:02",
    "Publié le 12 mars 2026 à 09h14 - Mis à jour le 12 mars 2026 à 11h02",
    "Advertisement", "Publicité",
]  # fmt: skip
_FOOTER_LINES = [
    "Read more: the latest news from our correspondents",
    "Related articles", "Most read", "Lire aussi", "Más noticias",
    "Sign up to our morning newsletter and get the day's top stories in your inbox",
    "Inscrivez-vous à notre newsletter quotidienne",
    "© 2026 Newsroom Media Group. All rights reserved.",
    "Terms of use | Privacy policy | Cookie settings | Contact us",
    "This article was originally published by a wire agency and has been edited for length.",
    "Comments are closed on this article.",
    "Did you find this article useful? Rate it: 1 2 3 4 5",
    "Follow us on Facebook, Instagram, X and YouTube",
    "Topics: World, Politics, Diplomacy",
]  # fmt: skip
_HEADLINE_FRAMES = [
    "{0}", "BREAKING: {0}", "{0} - live updates", "Exclusive: {0}", "What we know about {0}",
    "{0}, officials say", "Analysis: {0}",
]  # fmt: skip
_FILLER = ["also", "very", "now", "new", "major", "reportedly", "still", "however", "indeed"]

Copier = Callable[[Article, random.Random, "CopyContext"], Article]


@dataclass(frozen=True)
class CopyContext:
    other_titles: tuple[str, ...]


def _unspaced(text: str) -> bool:
    return len(text.split()) < len(text) / 20


def add_chrome(article: Article, rng: random.Random, ctx: CopyContext) -> Article:
    header = rng.sample(_HEADER_LINES, rng.randint(3, 6))
    footer = rng.sample(_FOOTER_LINES, rng.randint(3, 6))
    return replace(article, paragraphs=tuple(header) + article.paragraphs + tuple(footer))


def new_headline(article: Article, rng: random.Random, ctx: CopyContext) -> Article:
    other = rng.choice(ctx.other_titles)
    words = other.split()
    if len(words) > 14:
        other = " ".join(words[:14])
    return replace(article, title=rng.choice(_HEADLINE_FRAMES).format(other))


def cut_tail(article: Article, rng: random.Random, ctx: CopyContext) -> Article:
    keep_share = 1.0 - rng.uniform(0.20, 0.30)
    unspaced = _unspaced(" ".join(article.paragraphs))
    sizes = [len(p) if unspaced else len(p.split()) for p in article.paragraphs]
    budget = round(sum(sizes) * keep_share)
    kept: list[str] = []
    for paragraph, size in zip(article.paragraphs, sizes):
        if budget <= 0:
            break
        if size <= budget:
            kept.append(paragraph)
        elif unspaced:
            kept.append(paragraph[:budget])
        else:
            kept.append(" ".join(paragraph.split()[:budget]))
        budget -= size
    return replace(article, paragraphs=tuple(kept))


def _edit_words(words: list[str], rng: random.Random, vocabulary: list[str]) -> None:
    position = rng.randrange(len(words))
    kind = rng.choice(("replace", "typo", "drop", "add"))
    if kind == "replace":
        words[position] = rng.choice(vocabulary)
    elif kind == "typo" and len(words[position]) > 3:
        word = words[position]
        i = rng.randrange(len(word) - 1)
        words[position] = word[:i] + word[i + 1] + word[i] + word[i + 2 :]
    elif kind == "drop" and len(words) > 3:
        del words[position]
    else:
        words.insert(position, rng.choice(_FILLER))


def small_edits(article: Article, rng: random.Random, ctx: CopyContext) -> Article:
    """1-3 edits per paragraph: a word (or, in unspaced scripts, a character) replaced, a typo,
    a word dropped, a word added."""
    unspaced = _unspaced(" ".join(article.paragraphs))
    vocabulary = " ".join(article.paragraphs).split() or _FILLER
    edited = []
    for paragraph in article.paragraphs:
        units = list(paragraph) if unspaced else paragraph.split()
        pool = list(paragraph) if unspaced else vocabulary
        for _ in range(rng.randint(1, 3)):
            if units:
                _edit_words(units, rng, pool)
        edited.append(("" if unspaced else " ").join(units))
    return replace(article, paragraphs=tuple(edited))


def reorder(article: Article, rng: random.Random, ctx: CopyContext) -> Article:
    paragraphs = list(article.paragraphs)
    if len(set(paragraphs)) < 2:
        return article
    original = list(paragraphs)
    while paragraphs == original:
        rng.shuffle(paragraphs)
    return replace(article, paragraphs=tuple(paragraphs))


def _chain(*steps: Copier) -> Copier:
    def copy(article: Article, rng: random.Random, ctx: CopyContext) -> Article:
        for step in steps:
            article = step(article, rng, ctx)
        return article

    return copy


COPY_KINDS: dict[str, Copier] = {
    "chrome": add_chrome,
    "headline": new_headline,
    "cut_tail": cut_tail,
    "edits": small_edits,
    "reorder": reorder,
    "headline+chrome": _chain(new_headline, add_chrome),
    "cut+edits": _chain(cut_tail, small_edits),
    "reorder+edits": _chain(reorder, small_edits),
    "all": _chain(cut_tail, small_edits, reorder, new_headline, add_chrome),
}


def make_copies(
    originals: list[Article], kinds: list[str], variants: int, ctx: CopyContext, seed: int
) -> Iterator[tuple[str, Article, Article]]:
    """(kind, original, copy) for every original, kind and variant; copy ids are unique."""
    for original in originals:
        for kind in kinds:
            for variant in range(variants):
                rng = random.Random(f"{seed}/{original.id}/{kind}/{variant}")
                copy = COPY_KINDS[kind](original, rng, ctx)
                yield kind, original, replace(copy, id=f"{original.id}~{kind}~{variant}")


def hard_negatives(
    articles: list[Article], pairs: int, seed: int
) -> Iterator[tuple[str, Article, Article]]:
    """(kind, first, second): distinct articles made to share text."""
    rng = random.Random(seed)
    for number in range(pairs):
        first, second = rng.sample(articles, 2)
        header = tuple(rng.sample(_HEADER_LINES, 6))
        footer = tuple(rng.sample(_FOOTER_LINES, 6))
        yield (
            "same_chrome",
            replace(first, id=f"sc{number}a", paragraphs=header + first.paragraphs + footer),
            replace(second, id=f"sc{number}b", paragraphs=header + second.paragraphs + footer),
        )
        first, second = rng.sample(articles, 2)
        quoted = rng.choice(first.paragraphs)
        spot = rng.randrange(len(second.paragraphs) + 1)
        quoting = second.paragraphs[:spot] + (quoted,) + second.paragraphs[spot:]
        yield (
            "shared_paragraph",
            replace(first, id=f"sp{number}a"),
            replace(second, id=f"sp{number}b", paragraphs=quoting),
        )


_WORDLIKE = re.compile(r"\w")


def word_count(text: str) -> int:
    return len(text.split()) if not _unspaced(text) else len(_WORDLIKE.findall(text)) // 2
