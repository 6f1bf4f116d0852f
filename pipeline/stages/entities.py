"""Named entities per segment language, with labels normalised and mentions grouped.

Each segment goes to the spaCy model of its own language (a French model over English text
tags "North Korea" as a person); segments in a language without a model get no entities and a
counted reason. Models load once per process and run batched across articles.
"""

from __future__ import annotations

import unicodedata
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from time import perf_counter
from typing import TYPE_CHECKING

from pipeline.stages.language import Segment

if TYPE_CHECKING:
    from spacy.language import Language

# Model label -> contract label. Numeric and date types are dropped: desks subscribe to
# people, organisations and places, not to "2019".
LABEL_MAP: Mapping[str, str] = {
    "PERSON": "PERSON",
    "PER": "PERSON",
    "ORG": "ORG",
    "GPE": "LOC",
    "LOC": "LOC",
    "FAC": "LOC",
    "NORP": "MISC",
    "EVENT": "MISC",
    "WORK_OF_ART": "MISC",
    "LAW": "MISC",
    "LANGUAGE": "MISC",
    "PRODUCT": "MISC",
    "MISC": "MISC",
}

# The small models learned elision from the ASCII apostrophe: with "qu’" they tag "qu’" as a
# person. Swapping one character for one keeps every offset valid.
_NER_INPUT = str.maketrans({"\u2019": "'", "\u02bc": "'"})


@dataclass(frozen=True)
class Entity:
    text: str
    label: str
    raw_label: str
    start: int
    end: int
    lang: str
    canonical: str


@dataclass(frozen=True)
class EntityBatchResult:
    entities: list[list[Entity]]
    # Characters of text per reason they got no entities, e.g. {"no_model:de": 1200}.
    skipped: Counter[str] = field(default_factory=Counter)
    # Seconds spent in each model, for the per-stage metrics.
    model_seconds: dict[str, float] = field(default_factory=dict)


class EntityRecognizer:
    """Holds one loaded spaCy pipeline per language, loaded on first use."""

    def __init__(self, models: Mapping[str, str], batch_size: int = 64) -> None:
        self._model_names = dict(models)
        self._models: dict[str, Language] = {}
        self._batch_size = batch_size
        self.load_seconds: dict[str, float] = {}

    @property
    def languages(self) -> frozenset[str]:
        return frozenset(self._model_names)

    def model(self, lang: str) -> Language:
        if lang not in self._models:
            import spacy  # imported lazily: unit tests of other stages need not pay for it

            started = perf_counter()
            # NER in the small models carries its own tok2vec, so every other component can go.
            probe = spacy.load(self._model_names[lang], exclude=[])
            keep = {"ner"} | _components_listened_to(probe)
            exclude = [name for name in probe.pipe_names if name not in keep]
            self._models[lang] = spacy.load(self._model_names[lang], exclude=exclude)
            self.load_seconds[lang] = perf_counter() - started
        return self._models[lang]

    def load_all(self) -> None:
        for lang in self._model_names:
            self.model(lang)

    def recognize(self, articles: Sequence[tuple[str, Sequence[Segment]]]) -> EntityBatchResult:
        """Entities for each (text, segments) article, in article order.

        Segments of all articles are grouped by language so each model sees one long batch.
        """
        by_lang: dict[str, list[tuple[int, Segment]]] = {}
        skipped: Counter[str] = Counter()
        for index, (_, segments) in enumerate(articles):
            for segment in segments:
                if segment.lang is None:
                    skipped["undetermined_language"] += segment.end - segment.start
                elif segment.lang not in self._model_names:
                    skipped[f"no_model:{segment.lang}"] += segment.end - segment.start
                else:
                    by_lang.setdefault(segment.lang, []).append((index, segment))

        found: list[list[Entity]] = [[] for _ in articles]
        model_seconds: dict[str, float] = {}
        for lang, items in by_lang.items():
            nlp = self.model(lang)
            started = perf_counter()
            texts = [
                articles[index][0][seg.start : seg.end].translate(_NER_INPUT)
                for index, seg in items
            ]
            for (index, segment), doc in zip(
                items, nlp.pipe(texts, batch_size=self._batch_size), strict=True
            ):
                for ent in doc.ents:
                    label = LABEL_MAP.get(ent.label_)
                    if label is None:
                        continue
                    start = segment.start + ent.start_char
                    end = segment.start + ent.end_char
                    found[index].append(
                        Entity(
                            text=articles[index][0][start:end],
                            label=label,
                            raw_label=ent.label_,
                            start=start,
                            end=end,
                            lang=lang,
                            canonical=ent.text,
                        )
                    )
            model_seconds[lang] = perf_counter() - started

        return EntityBatchResult(
            entities=[group_mentions(sorted(ents, key=lambda e: e.start)) for ents in found],
            skipped=skipped,
            model_seconds=model_seconds,
        )


def _components_listened_to(nlp: Language) -> set[str]:
    """Components (e.g. a shared tok2vec) whose output NER listens to, so must stay."""
    needed: set[str] = set()
    for name, component in nlp.pipeline:
        listeners = getattr(component, "listening_components", None)
        if listeners and "ner" in listeners:
            needed.add(name)
    return needed


def fold(text: str) -> str:
    """Case- and accent-folded form used to match mentions of one entity."""
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch))


def group_mentions(entities: Sequence[Entity]) -> list[Entity]:
    """Give each mention the canonical (longest) form of its entity within one article.

    A mention is the same entity as a longer one of the same label whose folded tokens contain
    its own tokens as a contiguous run: "Poutine" -> "Vladimir Poutine", "Kim" -> "Kim Jong Un".
    Of several candidates the most frequent wins, then the longest, so the choice is stable.
    """
    counts = Counter((e.label, fold(e.text)) for e in entities)
    forms: dict[tuple[str, str], str] = {}
    for entity in entities:
        forms.setdefault((entity.label, fold(entity.text)), entity.text)

    def canonical_of(entity: Entity) -> str:
        tokens = fold(entity.text).split()
        candidates = [
            (counts[key], len(key[1]), key)
            for key in forms
            if key[0] == entity.label and _contains_run(key[1].split(), tokens)
        ]
        if not candidates:
            return entity.text
        best = max(candidates, key=lambda c: (len(c[2][1].split()) > 1, c[0], c[1]))
        return forms[best[2]]

    return [
        Entity(
            text=e.text,
            label=e.label,
            raw_label=e.raw_label,
            start=e.start,
            end=e.end,
            lang=e.lang,
            canonical=canonical_of(e),
        )
        for e in entities
    ]


def _contains_run(haystack: list[str], needle: list[str]) -> bool:
    width = len(needle)
    return width > 0 and any(
        haystack[i : i + width] == needle for i in range(len(haystack) - width + 1)
    )
