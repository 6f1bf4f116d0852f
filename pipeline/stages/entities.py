"""Named entities per segment language, with labels normalised and mentions grouped.

Each segment goes to the spaCy model of its own language (a French model over English text
tags "North Korea" as a person); segments in a language without a model get no entities and a
counted reason. Models load once per process and run batched across articles.

The small models' raw output is then refined with what the article itself says (each step is
measured, on and off, per language in docs/BENCHMARKS.md "Named entities"; `EntitySettings`
turns each off everywhere, or per language: config/pipeline.toml's entity_refinements_off):

1. Before NER: curly apostrophes become ASCII ones and ALL-CAPS lines are re-cased (words the
   article writes in lower case elsewhere become lower case), both without changing an offset.
2. Spans are cut at line breaks and spaced dashes and lose trailing scores ("Derbyshire 471"),
   then trimmed to the name: no leading "la"/"de"/"the"/"l'", no trailing "also"/"'s"/"qu'"
   (French keeps the lower-case noun that begins a name: "mer Rouge", "guerre de Crimée"); a
   span left without a capital letter is dropped, and so are weekday names, caption words and,
   in French, a participle opening a sentence ("Porté par ...").
3. A capitalised single word that the article also writes in lower case ("Defence" beside
   "defence minister") is a common noun, not a name.
4. A club named after its town ("Yankees de New York") is one organisation; boundaries are
   repaired with the article's own names: "Kim Jong" where "Kim Jong Un" is known becomes "Kim
   Jong Un"; "Kim Jong Un de Corée du Nord" splits into its two names.
5. Labels agree across the article: a word of a person's full name is that person ("Kim" MISC ->
   PERSON); an acronym takes the label of its expansion (RPDC -> République populaire
   démocratique de Corée). A plain majority vote per name lost on French and is off.
6. Names the model tagged somewhere are tagged everywhere in the article, and so are the
   surnames of people named in full.
"""

from __future__ import annotations

import dataclasses
import functools
import re
import unicodedata
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from time import perf_counter
from typing import TYPE_CHECKING, NamedTuple

from pipeline.stages.language import Segment

if TYPE_CHECKING:
    from spacy.language import Language

__all__ = [
    "BARE_SETTINGS",
    "DEFAULT_ENTITY_SETTINGS",
    "LABEL_MAP",
    "REFINEMENTS",
    "Entity",
    "EntityBatchResult",
    "EntityRecognizer",
    "EntitySettings",
    "Mention",
    "TaggedBatch",
    "fold",
    "group_mentions",
    "recase_caps_lines",
    "refine",
    "refine_tagged",
]

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
class EntitySettings:
    """Which refinements run. A switch turns a refinement on for every language; a language's
    entry in `off_by_language` turns refinements off there: config/pipeline.toml's
    entity_refinements_off, read from the per-language ablation (docs/BENCHMARKS.md, "Named
    entities")."""

    normalise_apostrophes: bool = True
    recase_caps_lines: bool = True
    trim: bool = True
    drop_non_names: bool = True
    case_evidence: bool = True
    repair_boundaries: bool = True
    acronyms: bool = True
    person_consistency: bool = True
    label_vote: bool = False  # measured: -0.006 F1 on French, no gain elsewhere
    propagate: bool = True
    split_at_breaks: bool = True
    split_credits: bool = True
    results_tables: bool = True
    club_names: bool = True
    drop_opening_participles: bool = True
    # Language -> refinements turned off there (config: entity_refinements_off).
    off_by_language: Mapping[str, frozenset[str]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        unknown = {name for off in self.off_by_language.values() for name in off} - set(REFINEMENTS)
        if unknown:
            raise ValueError(f"unknown entity refinements: {sorted(unknown)}")
        # Asked for every mention: the answers are worked out once.
        everywhere = frozenset(name for name in REFINEMENTS if getattr(self, name))
        by_language = {lang: everywhere - off for lang, off in self.off_by_language.items()}
        object.__setattr__(self, "_everywhere", everywhere)
        object.__setattr__(self, "_by_language", by_language)

    def on(self, refinement: str, lang: str | None) -> bool:
        """Whether `refinement` runs on text in `lang`."""
        enabled = self._by_language.get(lang, self._everywhere)  # type: ignore[attr-defined]
        return refinement in enabled


REFINEMENTS: tuple[str, ...] = tuple(
    f.name for f in dataclasses.fields(EntitySettings) if f.type == "bool"
)
DEFAULT_ENTITY_SETTINGS = EntitySettings()
BARE_SETTINGS = EntitySettings(**{name: False for name in REFINEMENTS})


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


class Mention(NamedTuple):
    """A model's mention before refinement: [start, end) into the article text."""

    start: int
    end: int
    label: str
    raw_label: str
    lang: str


@dataclass(frozen=True)
class TaggedBatch:
    """What the models said, per article, before refinement."""

    mentions: list[list[Mention]]
    skipped: Counter[str] = field(default_factory=Counter)
    model_seconds: dict[str, float] = field(default_factory=dict)


class EntityRecognizer:
    """Holds one loaded spaCy pipeline per language, loaded on first use."""

    def __init__(
        self,
        models: Mapping[str, str],
        batch_size: int = 64,
        *,
        settings: EntitySettings = DEFAULT_ENTITY_SETTINGS,
    ) -> None:
        self._model_names = dict(models)
        self._models: dict[str, Language] = {}
        self._batch_size = batch_size
        self.settings = settings
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
            nlp = spacy.load(self._model_names[lang], exclude=exclude)
            self._models[lang] = nlp
            self.load_seconds[lang] = perf_counter() - started
        return self._models[lang]

    def load_all(self) -> None:
        for lang in self._model_names:
            self.model(lang)

    def recognize(self, articles: Sequence[tuple[str, Sequence[Segment]]]) -> EntityBatchResult:
        """Entities for each (text, segments) article, in article order: `tag`, then refine."""
        return refine_tagged(articles, self.tag(articles), self.languages, self.settings)

    def tag(self, articles: Sequence[tuple[str, Sequence[Segment]]]) -> TaggedBatch:
        """The models' raw mentions for each (text, segments) article, in article order.

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

        found: list[list[Mention]] = [[] for _ in articles]
        model_seconds: dict[str, float] = {}
        # The text as the model reads it: capitals lines re-cased, offsets unchanged.
        casings = [_casing(text, segments, self.settings) for text, segments in articles]
        for lang, items in by_lang.items():
            nlp = self.model(lang)
            started = perf_counter()
            texts = [self._ner_input(casings[i][s.start : s.end], lang) for i, s in items]
            for (index, segment), doc in zip(
                items, nlp.pipe(texts, batch_size=self._batch_size), strict=True
            ):
                mentions = found[index]
                for ent in doc.ents:
                    label = LABEL_MAP.get(ent.label_)
                    if label is not None:
                        start = segment.start + ent.start_char
                        end = segment.start + ent.end_char
                        mentions.append(Mention(start, end, label, ent.label_, lang))
            model_seconds[lang] = perf_counter() - started
        return TaggedBatch(found, skipped, model_seconds)

    def _ner_input(self, text: str, lang: str) -> str:
        normalise = self.settings.on("normalise_apostrophes", lang)
        return text.translate(_NER_INPUT) if normalise else text


def refine_tagged(
    articles: Sequence[tuple[str, Sequence[Segment]]],
    tagged: TaggedBatch,
    languages: Iterable[str],
    settings: EntitySettings = DEFAULT_ENTITY_SETTINGS,
) -> EntityBatchResult:
    """The refined, grouped entities of tagged articles. Needs no model, so the worker runs it
    while its NER process tags the next batch."""
    with_model = frozenset(languages)
    entities = []
    for (text, segments), found in zip(articles, tagged.mentions, strict=True):
        mentions = sorted(found, key=lambda m: m.start)
        read = [s for s in segments if s.lang in with_model]
        # The re-cased text is made again here rather than shipped back from the NER process:
        # it costs well under a millisecond and would double the reply's size.
        casing = _casing(text, segments, settings)
        refined, aliases = refine(text, mentions, read, settings, casing)
        entities.append(
            group_mentions(
                [
                    Entity(
                        text[m.start : m.end],
                        m.label,
                        m.raw_label,
                        m.start,
                        m.end,
                        m.lang,
                        text[m.start : m.end],
                    )
                    for m in refined
                ],
                aliases=aliases,
            )
        )
    return EntityBatchResult(entities, tagged.skipped, tagged.model_seconds)


def _casing(text: str, segments: Sequence[Segment], settings: EntitySettings) -> str:
    """The text with capitals lines re-cased in the segments whose language wants it."""
    if not any(settings.on("recase_caps_lines", s.lang) for s in segments):
        return text
    recased = recase_caps_lines(text)
    if recased is text:
        return text
    for s in segments:  # same length: the original goes back where re-casing is off
        if not settings.on("recase_caps_lines", s.lang):
            recased = recased[: s.start] + text[s.start : s.end] + recased[s.end :]
    return recased


def _components_listened_to(nlp: Language) -> set[str]:
    """Components (e.g. a shared tok2vec) whose output NER listens to, so must stay."""
    needed: set[str] = set()
    for name, component in nlp.pipeline:
        listeners = getattr(component, "listening_components", None)
        if listeners and "ner" in listeners:
            needed.add(name)
    return needed


# --- 1. input ------------------------------------------------------------------------------

_WORD = re.compile(r"[^\W\d_]+", re.UNICODE)


def recase_caps_lines(text: str, stop_words: frozenset[str] | None = None) -> str:
    """Headline-case every line written in capitals; the result has the same length.

    Small models read "LAURIE OAKES IS THE NINE NETWORK POLITICAL EDITOR" as one organisation.
    Words become Capitalised, except stop words and the words the article's other lines write
    in lower case more often than capitalised inside a sentence ("TAKE OVER AT TOP" -> "take
    over at top"), which become lower case (the first word stays Capitalised); words of up to
    three letters otherwise stay in capitals: they are usually acronyms (BBC, USA).
    """
    stop_words = _CAPS_LOWER if stop_words is None else stop_words
    lines = text.split("\n")
    caps_lines = [
        i
        for i, line in enumerate(lines)
        # no lower-case letter and some capital: rare, so checked first
        if line.isupper() and len(words := _WORD.findall(line)) >= 2 and sum(map(len, words)) >= 6
    ]
    if not caps_lines:
        return text
    common = stop_words | _common_words(line for line in lines if not line.isupper())
    for i in caps_lines:
        lines[i] = _recase_line(lines[i], common)
    return "\n".join(lines)


# A capitalised word inside a sentence (after a lower-case word or a comma), or a lower-case
# word.
_CASED_WORD = re.compile(r"(?<=[a-zà-ÿ,;] )([A-ZÀ-Þ][a-zà-ÿ]+)|(?<![\w-])([a-zà-ÿ]+)(?![\w-])")


def _common_words(lines: Iterable[str]) -> frozenset[str]:
    capitalised: Counter[str] = Counter()
    lower: Counter[str] = Counter()
    for line in lines:
        for match in _CASED_WORD.finditer(line):
            if match.group(1):
                capitalised[match.group(1).lower()] += 1
            else:
                lower[match.group(2)] += 1
    return frozenset(word for word, n in lower.items() if n > capitalised[word])


def _recase_line(line: str, lower_case: frozenset[str]) -> str:
    out, pos = [], 0
    for n, match in enumerate(_WORD.finditer(line)):
        word = match.group()
        lower = "".join(_same_length(ch, ch.lower()) for ch in word)
        if n and lower in lower_case:
            new = lower
        elif len(word) <= 3 and lower not in lower_case:
            new = word
        else:
            new = _same_length(word[0], word[0].upper()) + lower[1:]
        out += [line[pos : match.start()], new]
        pos = match.end()
    out.append(line[pos:])
    return "".join(out)


def _same_length(original: str, changed: str) -> str:
    return changed if len(changed) == 1 else original


# --- 2.-6. refinement ----------------------------------------------------------------------


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


# Words that start a name in lower case ("Charles de Gaulle", "Ursula von der Leyen").
_PARTICLES = _words(
    "de du des la le d' d’ di da dos das van von der den ter ten bin ben ibn al el abu"
)
# Function words that never end a name ("Kim Jong Un de", "Russie et").
_FUNCTION_WORDS = _PARTICLES | _words(
    "à au aux en et ou les l' l’ qu' qu’ s' s’ n' n’ the of and or in on at to for a an"
)
# Calendar words are tagged as places and people ("Lundi", "Samedi"); caption and boilerplate
# words as people ("[File: ...]", "Lire aussi").
_WEEKDAYS = _words(
    "lundi mardi mercredi jeudi vendredi samedi dimanche "
    "monday tuesday wednesday thursday friday saturday sunday"
)
_MONTHS = _words(
    "janvier fevrier mars avril mai juin juillet aout septembre octobre novembre decembre "
    "january february march april may june july august september october november december"
)
# Lower-cased inside a re-cased capitals line: "LAURIE OAKES IS THE NINE NETWORK ...".
_CAPS_LOWER = _FUNCTION_WORDS | _words(
    "is are was were be been has have had will by with from as into over after before "
    "est sont a été par pour sur dans avec sans sous chez un une"
)
# Lower-case nouns that begin French names of places, events and institutions even before
# "de": "mer de Béring", "baie d'Hudson", "comté de Milwaukee", "guerre de Crimée".
_FRENCH_NAME_NOUNS = _words(
    "mer baie golfe detroit comte province canal col prefecture voivodie voblast isthme massif "
    "lac cap mont monts parc foret bois chateau gare cimetiere place rue boulevard "
    "pont bataille guerre traite universite ordre dynastie prix festival republique "
    "communaute canton region grotte glacier desert plateau peninsule fleuve riviere"
)
_BOILERPLATE = _words("file photo photos source credit lire voir read watch")
_STRIP = set(" \t\n\r,;:!?.«»\"“”„'’‘()[]{}–—-/|*•·")
# Never the last word of a name either, in lower case: elided articles cut from their
# apostrophe ("Conseil ministériel de l"), prepositions ("Kingston dans"); "Vico C" keeps its C.
_TRAILING_WORDS = _words("l d j m n s t c qu dans sur par pour avec sans sous chez vers entre")
_ABBREVIATIONS = _words("bros corp corps ltda cie")
_LEADING_ELISION = re.compile(
    r"(?:[LlDdSsNnMmTtCcJj]|[Qq]u|[Jj]usqu|[Pp]uisqu|[Ll]orsqu|[Qq]uoiqu)['’] ?(?=\w)"
)
_POSSESSIVE = re.compile(r"\w['’]s$")
_ARTICLE = re.compile(r"(?:(?:[Tt]he|THE|L[ae]s?) |L['’])(?=\w)")
_ACRONYM = re.compile(r"^[A-ZÀ-Þ][A-ZÀ-Þ0-9&]{1,7}$")


def refine(
    text: str,
    mentions: Sequence[Mention],
    segments: Sequence[Segment],
    settings: EntitySettings = DEFAULT_ENTITY_SETTINGS,
    casing: str | None = None,
) -> tuple[list[Mention], dict[str, str]]:
    """The model's mentions of one article, corrected with what the article says.

    `segments` are those a model read: only they get new mentions.
    `casing` is the text as the model read it (capitals lines re-cased, same length): where a
    word is lower case is decided on it. Returns the mentions in text order and the acronyms the
    article defines (folded acronym -> expansion) for grouping.
    """
    casing = text if casing is None else casing

    def on(refinement: str, m: Mention) -> bool:
        return settings.on(refinement, m.lang)

    def segments_for(refinement: str) -> list[Segment]:
        return [s for s in segments if settings.on(refinement, s.lang)]

    out = list(mentions)
    out = [
        piece
        for m in out
        for piece in (_split_at_breaks(casing, m) if on("split_at_breaks", m) else [m])
    ]
    out = [
        piece for m in out for piece in (_split_credits(text, m) if on("split_credits", m) else [m])
    ]
    out = [t for m in out if (t := _trim(casing, m) if on("trim", m) else m) is not None]
    out = [
        m
        for m in out
        if not (on("drop_non_names", m) and _is_non_name(text[m.start : m.end], m.label))
        and not (on("case_evidence", m) and _common_noun(text, text[m.start : m.end], m.label))
        and not (on("drop_opening_participles", m) and _opening_participle(text, m))
    ]
    out = _by_language(
        out,
        "results_tables",
        settings,
        lambda ms: _results_tables(text, ms, segments_for("results_tables")),
    )
    out = _by_language(out, "club_names", settings, lambda ms: _club_names(text, ms))
    out = _by_language(
        out, "repair_boundaries", settings, lambda ms: _repair_boundaries(text, ms, casing)
    )
    aliases: dict[str, str] = {}
    if any(on("acronyms", m) for m in out):
        chosen, aliases = _acronyms(
            text, [m for m in out if on("acronyms", m)], segments_for("acronyms")
        )
        out = sorted(chosen + [m for m in out if not on("acronyms", m)], key=lambda m: m.start)
    out = _by_language(
        out, "person_consistency", settings, lambda ms: _person_consistency(text, ms)
    )
    out = _by_language(out, "label_vote", settings, lambda ms: _label_vote(text, ms))
    out = _by_language(
        out, "propagate", settings, lambda ms: _propagate(text, ms, segments_for("propagate"))
    )
    return _without_overlaps(out), aliases


def _by_language(
    mentions: list[Mention],
    refinement: str,
    settings: EntitySettings,
    step: Callable[[list[Mention]], list[Mention]],
) -> list[Mention]:
    """`step` applied to the mentions in languages where `refinement` is on; the rest kept."""
    chosen = [m for m in mentions if settings.on(refinement, m.lang)]
    if len(chosen) == len(mentions):
        return step(mentions)
    if not chosen:
        return mentions
    kept = [m for m in mentions if not settings.on(refinement, m.lang)]
    return sorted(step(chosen) + kept, key=lambda m: m.start)


def _tokens(span: str) -> list[str]:
    return span.split()


def _has_upper(word: str) -> bool:
    return word.lower() != word


def _is_lower_word(word: str) -> bool:
    return word.islower()  # some cased letter, none upper


def _trim(text: str, m: Mention) -> Mention | None:
    """The span cut down to the name, or None when no name is left."""
    s, e = m.start, m.end
    span = text[s:e]
    if (  # the usual case, a clean name: nothing to cut
        " " not in span
        and span[0] not in _STRIP
        and span[-1] not in _STRIP
        and not _POSSESSIVE.search(span)
        and not _LEADING_ELISION.match(span)
    ):
        return m if _has_upper(span) else None
    while True:
        before = (s, e)
        while s < e and text[s] in _STRIP:
            s += 1
        while e > s and text[e - 1] in _STRIP and not _keeps_final_dot(text, s, e):
            e -= 1
        span = text[s:e]
        if _POSSESSIVE.search(span):
            e -= 2
            continue
        if elision := _LEADING_ELISION.match(span):
            s += elision.end()
            continue
        words = span.split()
        if len(words) > 1:
            first, second, last = words[0], words[1], words[-1]
            if (
                _is_lower_word(first)
                and (m.lang != "fr" or _not_part_of_french_name(first, second))
                and not (
                    m.label == "PERSON" and first.casefold() in _PARTICLES and _has_upper(second)
                )
            ):
                s += span.index(first) + len(first)
                continue
            # "The Commerce Department", not "The Hague": the article of a longer name goes.
            if first == "The" and len(words) >= 3 and m.label in ("ORG", "LOC") and m.lang == "en":
                s += span.index(first) + len(first)
                continue
            if (
                last.casefold() in _FUNCTION_WORDS
                or last in _TRAILING_WORDS
                or last.endswith(("'", "’"))
                or (m.lang != "fr" and _is_lower_word(last))
            ):
                e = s + span.rindex(last)
                continue
        if (s, e) == before:
            break
    if s >= e or not _has_upper(text[s:e]):
        return None
    return m._replace(start=s, end=e)


def _not_part_of_french_name(first: str, second: str) -> bool:
    """French names may start with a lower-case noun: "mer Rouge", "lac Michigan", "mer de
    Béring", "guerre de Sept Ans"; "vallée du Rhône" and "roi d'Italie" are not names. Articles
    and prepositions always go."""
    if fold(first) in _FUNCTION_WORDS:
        return True
    return fold(second) in _FUNCTION_WORDS and fold(first) not in _FRENCH_NAME_NOUNS


# A name never runs over a line break, a spaced dash ("CRICKET - ESSEX"), or a score.
_BREAK = re.compile(r"\s*\n\s*| [-–—] ")
_NUMBER = re.compile(r"[\d.,:/-]*\d[\d.,:/-]*")
_MAY_BREAK = re.compile(r"\n| [-–—] | \S*\d\S*$")


def _is_score(word: str, label: str) -> bool:
    """A number ending a mention is a score or a count, not part of the name, unless a short
    plain number ends a name that is not a person's ("France 3", "G 7")."""
    if not _NUMBER.fullmatch(word):
        return False
    return label == "PERSON" or len(word) >= 3 or not word.isdigit()


def _split_at_breaks(text: str, m: Mention) -> list[Mention]:
    """The parts of a mention between line breaks and spaced dashes, without trailing numbers
    ("Derbyshire 471", "D. Blenkiron 4-43"): what stays of a name among table cells and
    "SPORT - HEADLINE" lines."""
    span = text[m.start : m.end]
    if not _MAY_BREAK.search(span):
        return [m]
    parts: list[Mention] = []
    start = 0
    for cut in [*_BREAK.finditer(span), None]:
        end = cut.start() if cut else len(span)
        words = span[start:end].split(" ")
        while len(words) > 1 and _is_score(words[-1], m.label):
            words.pop()
        piece = " ".join(words).strip()
        if piece and not _NUMBER.fullmatch(piece):
            s = m.start + start + span[start:end].index(piece)
            parts.append(m._replace(start=s, end=s + len(piece)))
        start = cut.end() if cut else len(span)
    if len(parts) == 1 and (parts[0].start, parts[0].end) == (m.start, m.end):
        return [m]
    return parts


# Photo and wire agencies as credit lines write them: "(AP Photo/Evan Vucci)", "REUTERS/Tyrone
# Siu", "Michael Kappeler/dpa", "[File: KCNA/Reuters pool]". The models read a credit as one
# name ("AP Photo/Evan Vucci", ORG) or the agency as a person ("AP Photo", PERSON). A list,
# because the shape alone ("A/B") is also a band (AC/DC) or a pair of names.
_AGENCIES = _words(
    "ap afp reuters epa efe epa-efe dpa getty anp ansa xinhua tass sputnik anadolu pap kcna "
    "yonhap aap belga keystone shutterstock sipa abaca bloomberg nurphoto zuma alamy imago "
    "kyodo wireimage handout ntb upi ians pti"
) | {
    "getty images",
    "agence france-presse",
    "associated press",
    "anadolu agency",
    "picture alliance",
    "sopa images",
    "zuma press",
    "europa press",
    "ria novosti",
}
_CREDIT_WORD = re.compile(r"[ -](?:photos?|fotos?|pool)$", re.IGNORECASE)


def _split_credits(text: str, m: Mention) -> list[Mention]:
    """A photo credit read as one name, as its agencies (ORG) and photographers (PERSON):
    "AP Photo/Evan Vucci" -> "AP", "Evan Vucci"; "AFP Photo" -> "AFP". A mention with no
    agency in it is left alone."""
    span = text[m.start : m.end]
    if "/" not in span and not _CREDIT_WORD.search(span):
        return [m]
    parts: list[tuple[int, int, bool]] = []
    start = m.start
    for piece in span.split("/"):
        s, e = start, start + len(piece)
        start = e + 1
        while s < e and text[s].isspace():
            s += 1
        while e > s and text[e - 1].isspace():
            e -= 1
        credit_word = _CREDIT_WORD.search(text[s:e])
        if credit_word:
            e = s + credit_word.start()
        name = text[s:e]
        agency = name.casefold() in _AGENCIES or bool(credit_word and _ACRONYM.match(name))
        if e > s:
            parts.append((s, e, agency))
    if not any(agency for _, _, agency in parts):
        return [m]
    return [
        m._replace(start=s, end=e, label="ORG" if agency else "PERSON") for s, e, agency in parts
    ]


# A French sentence opening with a participle or an adverb ("Porté par ...", "Profondément
# ...") gets it tagged as a name.
_FRENCH_PARTICIPLE = re.compile(r"\w+(?:é|ée|és|ées|ment)")


def _opening_participle(text: str, m: Mention) -> bool:
    span = text[m.start : m.end]
    if " " in span or not _FRENCH_PARTICIPLE.fullmatch(span):
        return False
    before = text[: m.start].rstrip(' «"(')
    return not before or before.endswith((".", "!", "?", "\n", ":"))


# Sports results in wire copy, one per line: a score ("Wigan 4 Chester 2"), a standings row
# ("Hull 4 2 2 0 4 2 8") or a fixture ("Postponed : Walsall v Wrexham"). The names are teams.
_TEAM = r"[A-ZÀ-Þ][\w.'&-]*(?: (?:[A-ZÀ-Þ][\w.'&-]*|\( ?[A-Z] ?\)))*"
_RESULT_LINES = (
    re.compile(rf"({_TEAM}) \d+ ({_TEAM}) \d+(?: .*)?"),
    re.compile(rf"({_TEAM})(?: \d+| \d*\.\d+| \d+-\d+){{3,}}.*"),
    re.compile(rf"(?:\w+ : )?({_TEAM}) v ({_TEAM})"),
)


def _results_tables(
    text: str, mentions: list[Mention], segments: Sequence[Segment]
) -> list[Mention]:
    """The teams of results lines are organisations, whatever the model said of them."""
    teams: list[Mention] = []
    offset = 0
    for line in text.split("\n"):
        for pattern in _RESULT_LINES:
            if match := pattern.fullmatch(line):
                for group in range(1, pattern.groups + 1):
                    name = match.group(group)
                    start = offset + match.start(group)
                    lang = _lang_at(segments, start)
                    if lang is None or any(ch.isdigit() for ch in name):
                        continue
                    if _is_non_name(name, "ORG") or _common_noun(text, name, "ORG"):
                        continue  # "June 4.5 4.7 4.9", "Sales 12 15 18"
                    teams.append(Mention(start, start + len(name), "ORG", "ORG", lang))
                break
        offset += len(line) + 1
    if not teams:
        return mentions
    names = {text[t.start : t.end] for t in teams}
    kept = [
        m._replace(label="ORG") if text[m.start : m.end] in names else m  # the team in the story
        for m in mentions
        if not any(t.start < m.end and m.start < t.end for t in teams)
    ]
    return sorted(kept + teams, key=lambda m: m.start)


# French names sports clubs after their town: "Yankees de New York", "Sénateurs d'Ottawa".
_CLUB_NICKNAME = r"(?:[A-ZÀ-Þ][\w-]* )*[A-ZÀ-Þ][\w-]*s"
_CLUB_LINK = r" (?:de |du |des |d['’] ?)"
_CLUB = re.compile(r"(?!Les |États )" + _CLUB_NICKNAME + _CLUB_LINK + r"[A-ZÀ-Þ].*")


def _club_names(text: str, mentions: list[Mention]) -> list[Mention]:
    """A plural nickname followed by "de" and a place is one club, an organisation."""
    out: list[Mention] = []
    skip = False
    for m, after in zip(mentions, [*mentions[1:], None][: len(mentions)], strict=True):
        if skip:
            skip = False
            continue
        span = text[m.start : m.end]
        if (
            after is not None
            and after.label == "LOC"
            and m.label in ("ORG", "MISC")
            and re.fullmatch(_CLUB_NICKNAME, span)
            and re.fullmatch(_CLUB_LINK, text[m.end : after.start])
        ):
            out.append(m._replace(end=after.end, label="ORG"))
            skip = True
            continue
        if m.label in ("LOC", "MISC") and _CLUB.fullmatch(span):
            m = m._replace(label="ORG")
        out.append(m)
    return out


def _keeps_final_dot(text: str, s: int, e: int) -> bool:
    """ "Donald J.", "Inc." and "Warner Bros." end with their dot."""
    if text[e - 1] != ".":
        return False
    last = text[s : e - 1].split()[-1:] or [""]
    return _has_upper(last[0][:1]) and (len(last[0]) <= 3 or fold(last[0]) in _ABBREVIATIONS)


def _is_non_name(span: str, label: str) -> bool:
    if len(span.split()) != 1:
        return False
    key = fold(span)
    if key in _WEEKDAYS or key in _BOILERPLATE:
        return True
    # "May" and "June" are people too.
    return key in _MONTHS and label != "PERSON"


def _common_noun(text: str, span: str, label: str) -> bool:
    # MISC is exempt: French writes peoples with a capital and their adjective without one
    # ("les Français", "français").
    if label in ("PERSON", "MISC") or len(span) < 3 or not span[:1].isupper():
        return False
    if not span[1:].islower():
        return False
    return next(iter(_occurrences(text, span.lower())), None) is not None


def _occurrences(text: str, needle: str) -> Iterable[tuple[int, int]]:
    """Where `needle` stands as whole words in `text` (not inside "post-Mugabe" either)."""
    start = text.find(needle)
    while start >= 0:
        end = start + len(needle)
        before = text[start - 1] if start else " "
        after = text[end] if end < len(text) else " "
        if not (before.isalnum() or before in "_-" or after.isalnum() or after in "_-"):
            yield start, end
        start = text.find(needle, start + 1)


def _repair_boundaries(text: str, mentions: list[Mention], casing: str) -> list[Mention]:
    """Fix spans with the names the model found elsewhere in the same article.

    A mention inside or across a known multi-word name gives way to it ("Kim Jong" -> "Kim Jong
    Un"; "Un de Corée du Nord" -> "Corée du Nord" once "Kim Jong Un" claims "Un"). A mention
    seen once that holds known names and nothing but lower-case words besides splits into them.
    "The Press Council" loses its article where "Press Council" is known.
    """
    counts = Counter(text[m.start : m.end] for m in mentions)
    mentions = [_drop_known_article(text, m, counts) for m in mentions]
    counts = Counter(text[m.start : m.end] for m in mentions)
    labels: dict[str, Counter[str]] = defaultdict(Counter)
    first_of: dict[str, Mention] = {}
    for m in mentions:
        labels[text[m.start : m.end]][m.label] += 1
        first_of.setdefault(text[m.start : m.end], m)
    known = sorted((k for k in counts if len(k.split()) > 1), key=len, reverse=True)
    out = list(mentions)
    exact = {(m.start, m.end) for m in mentions}
    for name in known:
        label = labels[name].most_common(1)[0][0]
        for s, e in _occurrences(text, name):
            if (s, e) in exact:
                continue
            inside = [m for m in out if s <= m.start and m.end <= e]
            if any(m.start == s and m.end == e for m in inside):
                continue
            crossing = [m for m in out if m.start < e and s < m.end and m not in inside]
            if not inside and not crossing:
                continue  # an untagged occurrence: propagation's business
            if any(m.start <= s and e <= m.end for m in crossing):
                continue  # inside a longer mention: splitting is decided below
            if any(
                len(text[m.start : m.end].split()) > 1 and counts[text[m.start : m.end]] > 1
                for m in crossing
            ):
                continue  # crosses a name that is itself known: leave both
            lang = (inside or crossing)[0].lang
            out = [m for m in out if m not in inside and m not in crossing]
            out.append(Mention(s, e, label, first_of[name].raw_label, lang))
            exact.add((s, e))
            for m in crossing:  # keep what lies outside the known name, trimmed
                for part in ((m.start, s), (e, m.end)):
                    if part[0] < part[1]:
                        rest = _trim(casing, m._replace(start=part[0], end=part[1]))
                        if rest is not None and _name_like(text[rest.start : rest.end]):
                            out.append(rest)
    out.sort(key=lambda m: m.start)
    counts = Counter(text[m.start : m.end] for m in out)
    known_labels = {
        name: (label, first_of[name].raw_label if name in first_of else label)
        for name, votes in labels.items()
        for label in [votes.most_common(1)[0][0]]
    }
    split: list[Mention] = []
    for m in out:
        span = text[m.start : m.end]
        parts = _known_parts(text, m, counts, known_labels) if counts[span] == 1 else None
        split.extend(parts or [m])
    return split


def _name_like(span: str) -> bool:
    """A leftover piece worth keeping: some capitalised word that is not a function word."""
    return any(
        _has_upper(word[:1]) and fold(word) not in _FUNCTION_WORDS and len(word) > 1
        for word in span.split()
    )


def _drop_known_article(text: str, m: Mention, counts: Counter[str]) -> Mention:
    span = text[m.start : m.end]
    article = _ARTICLE.match(span)
    if article and counts[span[article.end() :]]:
        return m._replace(start=m.start + article.end())
    return m


def _known_parts(
    text: str, m: Mention, counts: Counter[str], known: Mapping[str, tuple[str, str]]
) -> list[Mention] | None:
    """`m` cut into the known names it holds, when all else in it is lower case."""
    span = text[m.start : m.end]
    if " " not in span:
        return None
    candidates = sorted(
        (
            k
            for k, n in counts.items()
            if n >= 2 and k in known and len(k) < len(span) and k in span
        ),
        key=len,
        reverse=True,
    )
    taken = [False] * len(span)
    parts: list[tuple[int, int, str]] = []
    for name in candidates:
        for s, e in _occurrences(span, name):
            if not any(taken[s:e]):
                taken[s:e] = [True] * (e - s)
                parts.append((s, e, name))
    if not parts:
        return None
    rest = "".join(" " if t else ch for ch, t in zip(span, taken, strict=True))
    rest = re.sub(r"['’]s\b", " ", rest)
    if any(_has_upper(word) for word in rest.split()):
        return None
    return [Mention(m.start + s, m.start + e, *known[name], m.lang) for s, e, name in sorted(parts)]


def _acronyms(
    text: str, mentions: list[Mention], segments: Sequence[Segment]
) -> tuple[list[Mention], dict[str, str]]:
    """Acronyms the article spells out take their expansion's label, and are tagged throughout.

    "RPDC" is "République populaire démocratique de Corée" when the article names both: the
    acronym's letters are the initials of the expansion's words other than function words.
    """
    expansions: dict[str, tuple[str, Mention]] = {}
    for m in mentions:
        span = text[m.start : m.end]
        if m.label == "PERSON" or span.count(" ") + span.count("-") < 2:
            continue
        words = [w for w in re.split(r"[\s\-]+", span) if w and fold(w) not in _FUNCTION_WORDS]
        if len(words) >= 3 and m.label != "PERSON":
            initials = fold("".join(w[0] for w in words if w[0].isalpha())).upper()
            expansions.setdefault(initials, (span, m))
    if not expansions:
        return mentions, {}
    aliases: dict[str, str] = {}
    out = list(mentions)
    tagged = {(m.start, m.end): m for m in mentions}
    for match in re.finditer(r"(?<!\w)[A-ZÀ-Þ]{3,8}(?!\w)", text):
        acronym = match.group()
        expansion = expansions.get(fold(acronym).upper())
        if expansion is None or not _ACRONYM.match(acronym):
            continue
        span, source = expansion
        aliases[fold(acronym)] = span
        s, e = match.span()
        if (s, e) in tagged:
            out[out.index(tagged[(s, e)])] = tagged[(s, e)]._replace(label=source.label)
        elif not any(m.start < e and s < m.end for m in out):
            lang = _lang_at(segments, s)
            if lang is not None:
                out.append(Mention(s, e, source.label, source.raw_label, lang))
    out.sort(key=lambda m: m.start)
    return out, aliases


def _person_consistency(text: str, mentions: list[Mention]) -> list[Mention]:
    """A mention made of words of a person's full name is that person ("Kim" -> PERSON)."""
    names = [
        fold(text[m.start : m.end]).split()
        for m in mentions
        if m.label == "PERSON" and len(text[m.start : m.end].split()) > 1
    ]
    if not names:
        return mentions
    runs = {
        tuple(name[i:j])
        for name in names
        for i in range(len(name))
        for j in range(i + 1, len(name) + 1)
    }
    return [
        m._replace(label="PERSON")
        if m.label != "PERSON" and tuple(fold(text[m.start : m.end]).split()) in runs
        else m
        for m in mentions
    ]


def _label_vote(text: str, mentions: list[Mention]) -> list[Mention]:
    """Every mention of one name gets the label most of its mentions have (ties unchanged)."""
    votes: dict[str, Counter[str]] = defaultdict(Counter)
    for m in mentions:
        votes[fold(text[m.start : m.end])][m.label] += 1
    out = []
    for m in mentions:
        ranked = votes[fold(text[m.start : m.end])].most_common()
        if len(ranked) > 1 and ranked[0][1] > ranked[1][1]:
            m = m._replace(label=ranked[0][0])
        out.append(m)
    return out


def _propagate(text: str, mentions: list[Mention], segments: Sequence[Segment]) -> list[Mention]:
    """Tag the article's other occurrences of names the model tagged at least once.

    Surnames of people named in full count too ("Conroy" after "Stephen Conroy"). Only segments
    in a language with a model get new mentions.
    """
    names: dict[str, Mention] = {}
    for m in mentions:
        span = text[m.start : m.end]
        names.setdefault(span, m)
        words = span.split()
        if m.label == "PERSON" and len(words) > 1:
            surname = words[-1]
            if len(surname) > 2 and surname[:1].isupper() and fold(surname) not in _PARTICLES:
                names.setdefault(surname, m)
    out = list(mentions)
    taken = bytearray(len(text))
    for m in mentions:
        taken[m.start : m.end] = b"\x01" * (m.end - m.start)
    for name in sorted(names, key=len, reverse=True):
        if len(name) < 2 or not _has_upper(name) or _is_non_name(name, names[name].label):
            continue
        source = names[name]
        for s, e in _occurrences(text, name):
            if taken.find(1, s, e) >= 0:
                continue
            lang = _lang_at(segments, s)
            if lang is None:
                continue
            out.append(Mention(s, e, source.label, source.raw_label, lang))
            taken[s:e] = b"\x01" * (e - s)
    out.sort(key=lambda m: m.start)
    return out


def _lang_at(segments: Sequence[Segment], offset: int) -> str | None:
    for segment in segments:
        if segment.start <= offset < segment.end:
            return segment.lang
    return None


def _without_overlaps(mentions: list[Mention]) -> list[Mention]:
    kept: list[Mention] = []
    for m in sorted(mentions, key=lambda m: (m.start, -(m.end - m.start))):
        if kept and m.start < kept[-1].end:
            continue
        kept.append(m)
    return kept


# --- grouping --------------------------------------------------------------------------------


@functools.lru_cache(maxsize=65536)
def fold(text: str) -> str:
    """Case- and accent-folded form used to match mentions of one entity."""
    if text.isascii():
        return text.casefold()
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch))


def group_mentions(
    entities: Sequence[Entity], aliases: Mapping[str, str] | None = None
) -> list[Entity]:
    """Give each mention the canonical (longest) form of its entity within one article.

    A mention is the same entity as a longer one of the same label whose folded tokens contain
    its own tokens as a contiguous run: "Poutine" -> "Vladimir Poutine", "Kim" -> "Kim Jong Un".
    An acronym the article defines takes its expansion (`aliases`: folded acronym -> expansion).
    When a mention fits several unrelated longer names ("Corée" in "Corée du Nord" and "Corée
    du Sud") it stays itself; among nested candidates the most frequent, then longest, wins.
    """
    aliases = aliases or {}
    keys = [(e.label, fold(e.text)) for e in entities]
    counts = Counter(keys)
    forms: dict[tuple[str, str], str] = {}
    for key, entity in zip(keys, entities, strict=True):
        forms.setdefault(key, entity.text)
    split = {key: key[1].split() for key in forms}
    # Multi-word forms by label and word: the only candidates a shorter form can belong to.
    by_word: dict[tuple[str, str], list[tuple[str, str]]] = defaultdict(list)
    for key, words in split.items():
        if len(words) > 1:
            for word in set(words):
                by_word[(key[0], word)].append(key)

    def canonical_of(key: tuple[str, str]) -> str:
        if key[1] in aliases:
            return aliases[key[1]]
        tokens = split[key]
        if not tokens:
            return forms[key]
        longer = [
            other
            for other in by_word.get((key[0], tokens[0]), ())
            if len(split[other]) > len(tokens) and _contains_run(split[other], tokens)
        ]
        if not longer:
            return forms[key]
        # Unrelated readings (neither contains the other) make the short form ambiguous.
        maximal = [
            a
            for a in longer
            if not any(b != a and _contains_run(split[b], split[a]) for b in longer)
        ]
        if len(maximal) > 1:
            return forms[key]
        return forms[max(longer, key=lambda other: (counts[other], len(other[1])))]

    canonical = {key: canonical_of(key) for key in forms}
    return [
        Entity(
            text=e.text,
            label=e.label,
            raw_label=e.raw_label,
            start=e.start,
            end=e.end,
            lang=e.lang,
            canonical=e.text if canonical[key] == forms[key] else canonical[key],
        )
        for key, e in zip(keys, entities, strict=True)
    ]


def _contains_run(haystack: list[str], needle: list[str]) -> bool:
    width = len(needle)
    return width > 0 and any(
        haystack[i : i + width] == needle for i in range(len(haystack) - width + 1)
    )
