"""Article cleaning: plain text or HTML in, normalised article text with quality flags out.

Pure stage. HTML goes through trafilatura (article extraction); plain text and trafilatura's
output then share one cleanup: Unicode NFC, whitespace normalised inside lines, blank-line runs
collapsed into paragraph breaks, and the chrome that surrounds an article (share buttons, rating
widgets, comment prompts, newsletter boxes, "related stories") dropped from its head and tail
only, so no real paragraph in the middle is ever lost (a standalone "Advertisement" label goes
wherever it stands: it is never a paragraph). A trailing "Source: https://..." line becomes
`source_url`. Wall pages (consent, bot check, paywall) are flagged by `quality.py`.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from typing import Any

from pipeline.stages.quality import is_not_an_article

__all__ = ["CleanedArticle", "clean_html", "clean_text", "split_txt_file"]

EMPTY = "empty"
NOT_AN_ARTICLE = "not_an_article"
TRUNCATED = "truncated"

MAX_TITLE_CHARS = 200  # a first line longer than this is a paragraph, not a title
MAX_CHROME_CHARS = 120  # widget, share and "related" lines are short; longer lines are content
# After a "related stories" heading or between two chrome lines, short lines are link titles.
MAX_LINK_TITLE_CHARS = 150
# When trafilatura keeps less than this, the whole page's text is checked for a wall too: walls
# sit in overlays that extraction drops, leaving only a teaser.
SHORT_EXTRACT_WORDS = 200


@dataclass(frozen=True)
class CleanedArticle:
    text: str  # paragraphs separated by "\n\n"; NFC; offsets downstream index into this
    title: str | None
    source_url: str | None  # from a trailing "Source: https://..." line, removed from text
    quality: tuple[str, ...]  # sorted flags: "empty", "not_an_article", "truncated"


# --- chrome: lines that frame an article but are not part of it (data, many languages) -------
# Each pattern must match a whole line (case-insensitive, trailing punctuation ignored).
_SHARE = (
    r"share(?: this(?: article| story| post| page)?)?(?: on \w+)?",
    r"(?:partager|partagez)(?: cet article| sur \w+| l'article)?",
    r"(?:teilen|diesen artikel teilen|artikel teilen)(?: auf \w+)?",
    r"compartir(?: en \w+| este artículo| esta noticia)?",
    r"(?:udostępnij|podziel się)(?: na \w+| artykułem)?",
    r"compartilhe(?: este artigo)?|condividi(?: su \w+)?|delen|deel dit artikel",
    (
        r"tweet|email|e-mail|print|imprimer|drucken|imprimir|drukuj|whatsapp|facebook|twitter|x|"
        r"linkedin|pinterest|telegram|reddit|copy link|copier le lien|link kopieren|copiar enlace|"
        r"kopiuj link"
    ),
)
_COMMENTS = (
    (
        r"(?:leave|post|add|write) a (?:comment|reply)|comments?(?: \(\d+\))?|\d+ comments?|"
        r"view comments|show comments|join the (?:conversation|discussion)"
    ),
    (
        r"laisser un commentaire|laisser une réponse|ajouter un commentaire|commentaires?(?: \(\d+\))?|"
        r"\d+ commentaires?|réagir|réagissez"
    ),
    r"kommentar(?:e)?(?: schreiben| \(\d+\))?|\d+ kommentare?|diskutieren sie mit",
    r"(?:deja|dejar|escribe) (?:un|tu) comentario|comentarios?(?: \(\d+\))?|\d+ comentarios?",
    r"(?:dodaj|napisz) komentarz|skomentuj|komentarze?(?: \(\d+\))?|\d+ komentarzy",
    r"deixe (?:um|seu) comentário|lascia un commento|reageer|reacties?",
)
_RATING = (
    (
        r"(?:was this (?:article|post|page) (?:helpful|useful)|how useful was this post|"
        r"rate this (?:post|article)|click on a star to rate it|no votes so far.*|"
        r"average rating.*|vote count.*|we are sorry that this post was not useful for you|"
        r"let us improve this post|tell us how we can improve this post)\??"
    ),
    (
        r"(?:cette publication vous a-t-elle été utile|cet article vous a-t-il été utile|"
        r"cliquez sur une étoile pour la noter|aucun vote pour l'instant.*|note moyenne.*|"
        r"notez cet article|nous sommes désolés que cet article ne vous ait pas été utile|"
        r"améliorons cet article|dites-nous comment nous pouvons améliorer cet article)\s*\??"
    ),
    (
        r"(?:war dieser (?:artikel|beitrag) hilfreich|wie hilfreich war dieser beitrag|"
        r"klicken sie auf einen stern,? um (?:ihn )?zu bewerten|bisher keine bewertungen.*|"
        r"durchschnittliche bewertung.*|beitrag bewerten)\s*\??"
    ),
    (
        r"(?:¿?(?:te ha resultado|fue) útil (?:este artículo|esta publicación)|"
        r"¿?qué tan útil fue esta publicación|haz clic en una estrella para puntuarlo|"
        r"¡?no hay votos hasta ahora.*|puntuación media.*|valora este artículo)\s*\??"
    ),
    (
        r"(?:czy ten (?:artykuł|wpis) był (?:pomocny|przydatny)|kliknij (?:na )?gwiazdkę,? "
        r"aby (?:ją )?ocenić|brak głosów.*|średnia ocena.*|oceń (?:ten )?(?:artykuł|wpis))\s*\??"
    ),
    # Rating counters: "Note moyenne 0 / 5. Décompte des voix : 0", "Rating: 4.5/5 (12 votes)".
    (
        r".{0,30}\b(?:note|rating|bewertung|puntuación|valoración|ocena|score)\b.{0,20}"
        r"\d(?:[.,]\d+)?\s*/\s*(?:5|10)\b.{0,50}"
    ),
    (
        r".{0,40}\b(?:vote count|décompte des voix|anzahl (?:der )?(?:bewertungen|stimmen)|"
        r"recuento de votos|liczba głosów)\b.{0,20}"
    ),
)
_NEWSLETTER = (
    # A call to action about a newsletter, not any line that names one.
    (
        r".{0,40}\b(?:subscribe|sign up|sign-up|get|receive|abonnez-vous|inscrivez-vous|recevez|"
        r"abonnieren|bestellen|erhalten|suscríbete|recibe|zapisz się|zasubskrybuj|otrzymuj)\b.{0,60}"
        r"\b(?:newsletters?|boletín|biuletyn|nieuwsbrief)\b.{0,40}"
    ),
    (
        r"(?:(?:our|notre|unser|nuestro|nasz) )?(?:newsletters?|boletín|biuletyn)(?:\s*:.*)?|"
        r".{0,30}newsletter (?:abonnieren|bestellen)"
    ),
    (
        r"(?:subscribe|sign up|abonnez-vous|inscrivez-vous|abonnieren|suscríbete|zapisz się|"
        r"zasubskrybuj)(?: (?:to|à|a|do) .{0,50})?"
    ),
    (
        r"follow us(?: on .{0,30})?|suivez-nous(?: sur .{0,30})?|folgen sie uns(?: auf .{0,30})?|"
        r"síguenos(?: en .{0,30})?|obserwuj nas(?: na .{0,30})?"
    ),
)
# Headings after which the rest of the tail is links to other stories.
_RELATED = (
    (
        r"(?:related(?: articles| stories| posts| coverage| content)?|read (?:more|also|next)|"
        r"see also|more (?:from|on|stories|news).{0,40}|you (?:may|might) also like|"
        r"recommended(?: for you)?|most (?:read|popular)|trending(?: now)?|latest news)(?:\s*:.*)?"
    ),
    (
        r"(?:(?:à )?lire aussi|lire la suite|voir aussi|sur le même sujet|dans la même rubrique|"
        r"à voir aussi|les plus lus|articles similaires|ces articles peuvent vous intéresser)"
        r"(?:\s*:.*)?"
    ),
    (
        r"(?:mehr zum thema|lesen sie auch|auch interessant|weitere artikel|das könnte sie auch "
        r"interessieren|meistgelesen|ähnliche artikel)(?:\s*:.*)?"
    ),
    (
        r"(?:te puede interesar|lee también|le puede interesar|noticias relacionadas|"
        r"artículos relacionados|más noticias|lo más leído)(?:\s*:.*)?"
    ),
    (
        r"(?:czytaj (?:też|także|również|więcej)|zobacz (?:też|także|również)|przeczytaj (?:też|także|"
        r"również)|powiązane artykuły|najczęściej czytane)(?:\s*:.*)?"
    ),
    r"(?:leia (?:também|mais)|leggi anche|lees ook|gerelateerd)(?:\s*:.*)?",
)
_NAVIGATION = (
    (
        r"advertisement|publicité|anzeige|publicidad|reklama|pubblicità|advertentie|sponsored|"
        r"werbung|annonce|scroll to continue with content|skip to (?:main )?content|"
        r"aller au contenu(?: principal)?|zum inhalt springen|saltar al contenido|"
        r"back to top|retour en haut|nach oben|volver arriba|do góry"
    ),
)
_MISC = (
    r"(?:tags|mots-clés|mots clés|schlagwörter|schlagworte|etiquetas|tagi|temas|thèmes)\s*:.*",
    (
        r"continue reading(?: the main story| below)?|lire la suite|weiterlesen|seguir leyendo|"
        r"czytaj dalej"
    ),
    # Copyright notices, e.g. "© 2023 Example Media. All rights reserved."
    (
        r"(?:©|copyright\b).{0,100}|.{0,80}(?:all rights reserved|tous droits réservés|alle rechte "
        r"vorbehalten|todos los derechos reservados|wszelkie prawa zastrzeżone|版权所有|"
        r"未经授权.{0,10}不得转载).{0,40}"
    ),
    r"精彩视频推荐|相关阅读|推荐阅读|延伸阅读|责任编辑.{0,20}",
    (
        r"(?:image|photo|foto|bild|zdjęcie) ?(?:source|credit|crédit)?\s*:?\s*(?:getty images|afp|"
        r"reuters|ap|epa|dpa|pap)"
    ),
)
_TRAILING_PUNCT = " \t.:!?,;…|·•–—-»«›‹→>【】[]"
# The head of an article only loses navigation, share bars and ad labels: a short first
# paragraph that mentions a newsletter or a rating is still the story.
_HEAD_CHROME = re.compile("|".join(f"(?:{p})" for p in (*_SHARE, *_NAVIGATION)), re.IGNORECASE)
_CHROME = re.compile(
    "|".join(
        f"(?:{p})" for p in (*_SHARE, *_COMMENTS, *_RATING, *_NEWSLETTER, *_NAVIGATION, *_MISC)
    ),
    re.IGNORECASE,
)
_RELATED_HEADING = re.compile("|".join(f"(?:{p})" for p in _RELATED), re.IGNORECASE)
# Standalone ad labels are dropped anywhere: they are never a paragraph of the story.
_AD_LABEL = re.compile(
    r"advertisement|publicité|anzeige|publicidad|reklama|pubblicità|advertentie|werbung|"
    r"scroll to continue with content",
    re.IGNORECASE,
)
_SOURCE_LINE = re.compile(
    r"(?:source|sources|source originale|quelle|fuente|fonte|źródło|bron|kilde|källa|источник)"
    r"\s*:\s*<?(https?://\S+?)>?",
    re.IGNORECASE,
)

# --- normalisation -------------------------------------------------------------------------
# Invisible characters with no meaning in article text (ZWNJ/ZWJ stay: Persian and Indic need
# them); C0/C1 controls other than newline and tab.
_INVISIBLE = re.compile(
    r"[\u00ad\u200b\u2060\ufeff\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f-\u009f]"
)
_LINE_BREAKS = re.compile(r"\r\n?|[\u0085\u2028]")
_INLINE_SPACE = re.compile(r"[^\S\n]+")
_BLANK_RUNS = re.compile(r"\n{3,}")
_SENTENCE_END = re.compile(r"[.!?…。！？][\"'”’»)\]]*\s")
_TITLE_END = ".!?…:;,。！？：；，"
_CLOSING_QUOTES = "\"'”’»)]）」』"
_OPENING_QUOTES = "\"'“‘«„([—–-"


def _normalise(text: str) -> str:
    """NFC, one space between words, stripped lines, one blank line between paragraphs."""
    text = unicodedata.normalize("NFC", text)
    text = _LINE_BREAKS.sub("\n", text).replace("\u2029", "\n\n")
    text = _INVISIBLE.sub("", text)
    lines = [_INLINE_SPACE.sub(" ", line).strip() for line in text.split("\n")]
    return _BLANK_RUNS.sub("\n\n", "\n".join(lines)).strip("\n")


def _truncate(text: str, max_chars: int) -> str:
    """Cut at the last paragraph end, else sentence end, else space, at or before max_chars."""
    head = text[:max_chars]
    floor = max_chars // 2  # a boundary in the first half would throw too much away
    paragraph = head.rfind("\n\n")
    if paragraph >= floor:
        return head[:paragraph]
    sentences = [m.end() for m in _SENTENCE_END.finditer(head)]
    if sentences and sentences[-1] >= floor:
        return head[: sentences[-1]]
    space = max(head.rfind(" "), head.rfind("\n"))
    return head[:space] if space >= floor else head


def _bare(line: str) -> str:
    return line.strip(_TRAILING_PUNCT)


def _is_chrome(line: str) -> bool:
    bare = _bare(line)
    return len(line) <= MAX_CHROME_CHARS and bool(
        not bare or _CHROME.fullmatch(bare) or _RELATED_HEADING.fullmatch(bare)
    )


def _is_head_chrome(line: str) -> bool:
    bare = _bare(line)
    return len(line) <= MAX_CHROME_CHARS and bool(not bare or _HEAD_CHROME.fullmatch(bare))


def _source_url(paragraph: str) -> str | None:
    match = _SOURCE_LINE.fullmatch(paragraph.strip())
    return match.group(1).rstrip(".,;)") if match else None


def _strip_chrome(paragraphs: list[str]) -> tuple[list[str], str | None]:
    """Drop chrome paragraphs from the head and the tail; return the rest and a source URL.

    Tail, walking back from the end: chrome lines go; short lines that are not chrome are held
    and go only if a chrome line above claims them (a "Related" heading over link titles, a
    share bar over a comment prompt); the first real paragraph ends the walk and keeps the
    held lines.
    """
    source_url: str | None = None
    end = len(paragraphs)
    for index in range(len(paragraphs) - 1, -1, -1):
        paragraph = paragraphs[index]
        url = _source_url(paragraph)
        if url is not None:
            source_url = source_url or url
            end = index
            continue
        lines = paragraph.split("\n")
        if all(_is_chrome(line) for line in lines):
            end = index  # also drops the link titles held below it
            continue
        if index > 0 and all(
            len(line) <= MAX_LINK_TITLE_CHARS and not _ends_like_sentence(line) for line in lines
        ):
            continue  # maybe a link title: held, kept unless a chrome line above claims it
        break
    kept = paragraphs[:end]
    start = 0
    while start < len(kept) and all(_is_head_chrome(line) for line in kept[start].split("\n")):
        start += 1
    body = [p for p in kept[start:] if not _AD_LABEL.fullmatch(_bare(p))]
    return body, source_url


def clean_text(body: str, title: str | None = None, *, max_chars: int = 200_000) -> CleanedArticle:
    """Clean a plain-text article body (and its title)."""
    flags: set[str] = set()
    if len(body) > max_chars:
        body = _truncate(body, max_chars)
        flags.add(TRUNCATED)
    normalised = _normalise(body)
    # Walls are judged before chrome removal: "Abonnez-vous" is both chrome and paywall.
    if normalised and is_not_an_article(normalised):
        flags.add(NOT_AN_ARTICLE)
    paragraphs, source_url = _strip_chrome(normalised.split("\n\n") if normalised else [])
    text = "\n\n".join(paragraphs)
    if not text:
        flags.add(EMPTY)
    return CleanedArticle(text, _clean_title(title), source_url, tuple(sorted(flags)))


def _clean_title(title: str | None) -> str | None:
    if title is None:
        return None
    cleaned = _INLINE_SPACE.sub(" ", _normalise(title).replace("\n", " ")).strip()
    return cleaned or None


# --- HTML ----------------------------------------------------------------------------------
# trafilatura settings measured on the shared pages (docs/BENCHMARKS.md, "HTML extraction"):
# favor_precision drops the Telegraph's live-blog chrome; comments are never article text;
# tables stay (they are part of some stories and cost nothing on the others).
_EXTRACT_OPTIONS: dict[str, Any] = {
    "include_comments": False,
    "favor_precision": True,
    "include_tables": True,
    "include_images": False,
    "include_links": False,
    "deduplicate": False,
}
# Metadata only serves the title here; htmldate's extensive date search made one page 10x slower.
_TITLE_OPTIONS: dict[str, Any] = {
    "with_metadata": True,
    "date_extraction_params": {"extensive_search": False, "original_date": False},
}


_PAGE = re.compile(r"<(?:html|body)[\s>/]", re.IGNORECASE)


def clean_html(
    html: str, url: str | None = None, title: str | None = None, *, max_chars: int = 200_000
) -> CleanedArticle:
    """Extract the article from an HTML page with trafilatura, then clean it like plain text."""
    import trafilatura  # deferred: importing trafilatura costs ~0.5 s, plain-text users skip it

    if not _PAGE.search(html):
        # A fragment (an RSS item's body, "<p>...</p>"): parsed alone, one element becomes the
        # document root and trafilatura finds nothing in it. Inside a body it is the article.
        html = f"<html><body>{html}</body></html>"
    options = _EXTRACT_OPTIONS if title is not None else {**_EXTRACT_OPTIONS, **_TITLE_OPTIONS}
    document = trafilatura.bare_extraction(html, url=url, **options)
    extracted = (getattr(document, "text", None) or "") if document is not None else ""
    if title is None and document is not None:
        title = getattr(document, "title", None)
    page_text: str | None = None
    if len(extracted.split()) < SHORT_EXTRACT_WORDS:
        page_text = trafilatura.html2txt(html) or ""
    # trafilatura puts one block (paragraph, heading, list item) on each line.
    body = extracted.replace("\n", "\n\n") if extracted.strip() else (page_text or "")
    article = clean_text(body, title, max_chars=max_chars)
    if page_text and NOT_AN_ARTICLE not in article.quality and is_not_an_article(page_text):
        flags = tuple(sorted({*article.quality, NOT_AN_ARTICLE}))
        return CleanedArticle(article.text, article.title, article.source_url, flags)
    return article


# --- .txt files ----------------------------------------------------------------------------


def split_txt_file(content: str) -> tuple[str | None, str]:
    """Split a .txt article into (title, body).

    The first line is a title when it is short, a blank line follows it, and it does not end
    like a sentence; otherwise the whole file (less a byte-order mark) is the body.
    """
    content = content.lstrip("\ufeff")
    lines = _LINE_BREAKS.sub("\n", content).lstrip("\n").split("\n")
    first = lines[0].strip()
    rest = lines[1:]
    if (
        not first
        or len(first) > MAX_TITLE_CHARS
        or not rest
        or rest[0].strip()
        or not "\n".join(rest).strip()
        or _ends_like_sentence(first)
    ):
        return None, content
    return first, "\n".join(rest).strip("\n")


def _ends_like_sentence(line: str) -> bool:
    """A sentence ends in . ! ? … : ; , or is a quotation ("... », “...”)."""
    core = line.rstrip(_CLOSING_QUOTES + " ")
    if core != line.rstrip() and line.lstrip()[:1] in _OPENING_QUOTES:
        return True  # a quoted sentence, not a headline that ends on a quoted phrase
    return not core or core[-1] in _TITLE_END
