from __future__ import annotations

import re
import unicodedata
from collections import Counter
from pathlib import Path

import lxml.html
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.stages.clean import CleanedArticle, clean_html, clean_text, split_txt_file
from tests.conftest import SEED_PATH, TEST_DATA

HTML_PAGES = sorted(p for p in (TEST_DATA / "html").iterdir() if p.is_dir())

WIDGET_PHRASES = [
    "Cette publication vous a-t-elle été utile",
    "Cliquez sur une étoile",
    "Note moyenne",
    "Décompte des voix",
    "Aucun vote pour l'instant",
    "Laisser un commentaire",
    "Source:",
    "aljazeera.com",
]


@pytest.fixture(scope="module")
def seed() -> CleanedArticle:
    title, body = split_txt_file(SEED_PATH.read_text(encoding="utf-8"))
    return clean_text(body, title)


# --- the seed -------------------------------------------------------------------------------


def test_seed_widget_and_comment_prompt_are_gone(seed: CleanedArticle) -> None:
    for phrase in WIDGET_PHRASES:
        assert phrase not in seed.text, phrase
    assert seed.text.endswith("Un deuxième lancement a eu lieu en juillet.")


def test_seed_source_line_becomes_source_url(seed: CleanedArticle) -> None:
    assert seed.source_url == (
        "https://www.aljazeera.com/news/2023/9/4/north-korean-leader-kim-expected-to-meet-russias-putin-us"
    )


def test_seed_keeps_every_article_paragraph(seed: CleanedArticle) -> None:
    raw = SEED_PATH.read_text(encoding="utf-8")
    article = raw[: raw.index("Source: https://")]
    paragraphs = [p.strip() for p in article.split("\n\n") if p.strip()]
    assert seed.text.split("\n\n") == paragraphs
    # Caption pairs keep their single line break.
    assert (
        "Kim Jong Un and Vladimir Putin in profile, side by side.\nRussian President" in seed.text
    )


def test_seed_has_no_title_and_no_flags(seed: CleanedArticle) -> None:
    assert seed.title is None  # its first line is a sentence
    assert seed.quality == ()
    assert unicodedata.is_normalized("NFC", seed.text)


# --- plain-text normalisation ---------------------------------------------------------------


def test_whitespace_is_normalised_and_blank_runs_collapse() -> None:
    body = "  First\u00a0 paragraph\twith   spaces. \r\n\r\n\r\n\n Second\u200b line.\u2028Third.  \n\n\n"
    assert clean_text(body).text == "First paragraph with spaces.\n\nSecond line.\nThird."


def test_text_is_nfc() -> None:
    decomposed = unicodedata.normalize("NFD", "Le président a déclaré à l’AFP qu’il était ému.")
    cleaned = clean_text(decomposed).text
    assert cleaned == unicodedata.normalize("NFC", decomposed)
    assert "e\u0301" not in cleaned


def test_title_is_normalised() -> None:
    assert clean_text("Body text here.", "  Un\u00a0titre\n sur deux lignes ").title == (
        "Un titre sur deux lignes"
    )
    assert clean_text("Body text here.", "   ").title is None


STORY = [
    (
        "The regional council approved the new budget on Monday after a debate that lasted more "
        "than six hours, the council's spokeswoman said."
    ),
    "Opposition members criticised cuts to public transport and announced they would appeal.",
    "The budget will take effect on 1 January.",
]


@pytest.mark.parametrize(
    "tail",
    [
        ["Share this article", "Leave a comment"],
        ["Partager", "Laisser un commentaire", "3 commentaires"],
        [
            "Was this article helpful?",
            "Rate this post",
            "Average rating 4.2 / 5. Vote count: 17",
            "No votes so far! Be the first to rate this post.",
        ],
        ["Abonnez-vous à notre newsletter", "Suivez-nous sur Twitter"],
        ["Related:", "Council leader resigns after budget row", "Tram line delayed again"],
        ["Lire aussi", "Le conseil régional vote son budget", "Les transports en commun en débat"],
        ["Lesen Sie auch: Stadtrat beschließt Haushalt", "Artikel teilen", "Kommentare (12)"],
        ["Compartir en Facebook", "Noticias relacionadas", "El consejo aprueba el presupuesto"],
        ["Udostępnij", "Czytaj też: Rada przyjęła budżet", "Dodaj komentarz"],
        ["Tags: budget, council, transport", "© 2024 Example News. All rights reserved."],
    ],
)
def test_trailing_chrome_is_dropped(tail: list[str]) -> None:
    cleaned = clean_text("\n\n".join(STORY + tail))
    assert cleaned.text == "\n\n".join(STORY)


def test_short_last_sentence_of_the_story_is_kept() -> None:
    body = "\n\n".join([*STORY, "He declined to comment.", "Share this article"])
    assert clean_text(body).text == "\n\n".join([*STORY, "He declined to comment."])


def test_chrome_like_paragraphs_in_the_middle_are_kept() -> None:
    middle = [
        STORY[0],
        "Lire aussi",
        "Readers can leave a comment below, the editor said in a note explaining the change.",
        "Share",
        STORY[1],
        STORY[2],
    ]
    assert clean_text("\n\n".join(middle)).text == "\n\n".join(middle)


def test_leading_chrome_and_standalone_ad_labels_are_dropped() -> None:
    body = "\n\n".join(["Skip to content", "Share", STORY[0], "Advertisement", *STORY[1:]])
    assert clean_text(body).text == "\n\n".join(STORY)


def test_source_line_variants() -> None:
    body = "\n\n".join([*STORY, "Quelle: https://example.org/a/b?c=1", "Teilen"])
    cleaned = clean_text(body)
    assert cleaned.source_url == "https://example.org/a/b?c=1"
    assert cleaned.text == "\n\n".join(STORY)


def test_source_line_in_the_middle_is_left_alone() -> None:
    body = "\n\n".join([STORY[0], "Source: https://example.org/x", *STORY[1:]])
    cleaned = clean_text(body)
    assert cleaned.source_url is None
    assert "Source: https://example.org/x" in cleaned.text


# --- flags ----------------------------------------------------------------------------------


@pytest.mark.parametrize("body", ["", "   \n\n ", "Share this article\n\nLeave a comment"])
def test_empty(body: str) -> None:
    cleaned = clean_text(body)
    assert cleaned.text == ""
    assert cleaned.quality == ("empty",)


def test_truncated_at_a_paragraph_boundary() -> None:
    paragraph = "A sentence of the story that goes on for a while. " * 4
    body = "\n\n".join([paragraph.strip()] * 50)
    cleaned = clean_text(body, max_chars=1000)
    assert cleaned.quality == ("truncated",)
    assert len(cleaned.text) <= 1000
    assert cleaned.text.endswith("for a while.")
    assert body.startswith(cleaned.text)


def test_truncated_at_a_sentence_boundary_inside_a_long_paragraph() -> None:
    body = "This is one sentence of a very long paragraph. " * 100
    cleaned = clean_text(body, max_chars=500)
    assert cleaned.quality == ("truncated",)
    assert len(cleaned.text) <= 500
    assert cleaned.text.endswith("paragraph.")


def test_not_truncated_at_the_limit() -> None:
    assert clean_text("x" * 100, max_chars=100).quality == ()


def test_wall_is_flagged_but_kept() -> None:
    wall = (
        "Cet article est réservé aux abonnés.\n\nPour lire la suite, abonnez-vous : accès illimité "
        "à tous nos contenus, sans engagement.\n\nDéjà abonné ? Se connecter"
    )
    cleaned = clean_text(wall)
    assert "not_an_article" in cleaned.quality


def test_flags_are_sorted() -> None:
    wall = "Access Denied\n\nYou don't have permission to access this page. " + "x " * 60
    cleaned = clean_text(wall, max_chars=80)
    assert cleaned.quality == tuple(sorted(cleaned.quality))
    assert "truncated" in cleaned.quality


@settings(max_examples=80, deadline=None)
@given(
    st.text(alphabet=st.sampled_from(list("ab é.\n\t\u00a0!?")), max_size=400),
    st.integers(min_value=1, max_value=500),
)
def test_clean_text_invariants(body: str, max_chars: int) -> None:
    cleaned = clean_text(body, max_chars=max_chars)
    assert len(cleaned.text) <= max_chars
    assert "\n\n\n" not in cleaned.text
    assert cleaned.text == cleaned.text.strip()
    assert all(line == line.strip() and "  " not in line for line in cleaned.text.split("\n"))
    assert ("empty" in cleaned.quality) == (cleaned.text == "")
    assert cleaned.quality == tuple(sorted(set(cleaned.quality)))


# --- .txt files -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("content", "title", "body"),
    [
        (
            "Kim to meet Putin in Russia\n\nThe North Korean leader is expected.",
            "Kim to meet Putin in Russia",
            "The North Korean leader is expected.",
        ),
        ("Titre : un sous-titre\n\nCorps.", "Titre : un sous-titre", "Corps."),
        ("Il a déclaré :\n\nCorps.", None, "Il a déclaré :\n\nCorps."),
        (
            "Obama admits US gun laws are his 'biggest frustration'\r\n\r\nBody.",
            "Obama admits US gun laws are his 'biggest frustration'",
            "Body.",
        ),
        ("The first line is a sentence.\n\nBody.", None, "The first line is a sentence.\n\nBody."),
        ("Is this a question?\n\nBody.", None, "Is this a question?\n\nBody."),
        (
            "“Pourquoi pas ? Ce sont nos voisins »\n\nBody.",
            None,
            "“Pourquoi pas ? Ce sont nos voisins »\n\nBody.",
        ),
        ("No blank line after\nthe first line.", None, "No blank line after\nthe first line."),
        ("Only a title", None, "Only a title"),
        ("x" * 201 + "\n\nBody.", None, "x" * 201 + "\n\nBody."),
        ("", None, ""),
    ],
)
def test_split_txt_file(content: str, title: str | None, body: str) -> None:
    got_title, got_body = split_txt_file(content)
    assert got_title == title
    if title is None:
        assert got_body == content
    else:
        assert got_body == body


def test_split_txt_file_drops_a_byte_order_mark() -> None:
    assert split_txt_file("\ufeffA headline\n\nBody.") == ("A headline", "Body.")
    assert split_txt_file("\ufeffA sentence.\n\nBody.") == (None, "A sentence.\n\nBody.")


def test_seed_txt_has_no_title() -> None:
    content = SEED_PATH.read_text(encoding="utf-8")
    assert split_txt_file(content) == (None, content)


# --- HTML -----------------------------------------------------------------------------------


def _tokens(text: str) -> Counter[str]:
    # Words, and each CJK character on its own (Chinese has no spaces).
    return Counter(re.findall(r"[\u3400-\u9fff]|[^\W\u3400-\u9fff]+", text.lower()))


def token_f1(got: str, expected: str) -> float:
    a, b = _tokens(got), _tokens(expected)
    overlap = sum((a & b).values())
    if not overlap:
        return 0.0
    precision, recall = overlap / sum(a.values()), overlap / sum(b.values())
    return 2 * precision * recall / (precision + recall)


@pytest.mark.parametrize("page", HTML_PAGES, ids=[p.name for p in HTML_PAGES])
def test_html_pages_extract_the_article(page: Path) -> None:
    html = (page / "source.html").read_text(encoding="utf-8")
    expected = lxml.html.fromstring(
        (page / "expected.html").read_text(encoding="utf-8")
    ).text_content()
    cleaned = clean_html(html)
    assert cleaned.text
    assert cleaned.quality == ()
    assert cleaned.title
    assert "\n\n" in cleaned.text
    assert token_f1(cleaned.text, expected) >= 0.85


def test_html_title_argument_wins() -> None:
    html = (HTML_PAGES[0] / "source.html").read_text(encoding="utf-8")
    assert clean_html(html, title="Given title").title == "Given title"


CONSENT_PAGE = """<!doctype html><html lang="fr"><head><title>Le Monde</title></head><body>
<div id="didomi-host"><div class="didomi-popup">
<h1>Le Monde et ses partenaires utilisent des cookies</h1>
<p>Avec votre accord, nous et nos partenaires utilisons des cookies ou technologies similaires
pour stocker et accéder à des informations personnelles comme votre visite sur ce site.</p>
<p>Vous pouvez retirer votre consentement à tout moment en cliquant sur « Paramétrer les
cookies » ou dans notre politique de confidentialité.</p>
<button>Tout accepter</button><button>Continuer sans accepter</button>
</div></div></body></html>"""

BOT_PAGE = """<html><head><title>Just a moment...</title></head><body>
<div class="main-wrapper"><h1>www.example.com</h1>
<h2>Checking if the site connection is secure</h2>
<p>Verify you are human by completing the action below.</p>
<noscript>Enable JavaScript and cookies to continue</noscript>
<div class="footer">Ray ID: 7d9f1a2b3c4d5e6f · Performance &amp; security by Cloudflare</div>
</div></body></html>"""


@pytest.mark.parametrize("html", [CONSENT_PAGE, BOT_PAGE], ids=["consent", "bot"])
def test_wall_pages_are_flagged(html: str) -> None:
    assert "not_an_article" in clean_html(html).quality


@pytest.mark.parametrize(
    "fragment",
    [
        "<p>Giorgia Meloni met Ursula von der Leyen in Rome on Tuesday, officials said.</p>",
        "<div>Giorgia Meloni met Ursula von der Leyen in Rome on Tuesday, officials said.</div>",
        "<p>Giorgia Meloni met <b>Ursula von der Leyen</b> in Rome on Tuesday, officials said.",
        "Giorgia Meloni met Ursula von der Leyen in Rome on Tuesday, officials said.",
    ],
)
def test_an_html_fragment_of_one_element_keeps_its_text(fragment: str) -> None:
    # The body of an RSS or Atom item: trafilatura alone found nothing in one element.
    cleaned = clean_html(fragment)
    assert cleaned.text == (
        "Giorgia Meloni met Ursula von der Leyen in Rome on Tuesday, officials said."
    )
    assert cleaned.quality == ()


def test_html_without_text_is_empty() -> None:
    cleaned = clean_html("<html><body><div></div></body></html>")
    assert cleaned.text == ""
    assert "empty" in cleaned.quality


def test_html_truncation() -> None:
    html = (HTML_PAGES[0] / "source.html").read_text(encoding="utf-8")
    cleaned = clean_html(html, max_chars=1000)
    assert "truncated" in cleaned.quality
    assert 0 < len(cleaned.text) <= 1000


@pytest.mark.parametrize(
    "last",
    [
        "The newsletter will launch in May, the company said.",
        "Critics gave the film 4/5.",
        "The court ruled the song did not infringe copyright.",
    ],
)
def test_short_last_paragraphs_that_name_chrome_words_are_kept(last: str) -> None:
    body = "\n\n".join([*STORY, last])
    assert clean_text(body).text == body


def test_short_first_paragraph_mentioning_a_newsletter_is_kept() -> None:
    body = "\n\n".join(["Our newsletter reached a million readers this week.", *STORY])
    assert clean_text(body).text == body
