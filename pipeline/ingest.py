"""Turn files and stdin into raw-article records, validated before anything is produced."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO
from xml.sax import SAXException

import feedparser
import lxml.html
import orjson

from pipeline.records import InvalidInput, json_type, parse_raw_article
from pipeline.stages.clean import split_txt_file


class IngestError(Exception):
    """A file that cannot become raw articles; the message names the file and the reason."""


@dataclass(frozen=True)
class RawRecord:
    key: bytes | None
    value: bytes


def records_from_path(
    path: Path, max_bytes: int, warnings: list[str] | None = None
) -> list[RawRecord]:
    """All records of one file, or IngestError: nothing of a bad file is produced.

    A record over ``max_bytes`` (the worker's max_message_bytes) is bad input: the worker
    would dead-letter it. A feed item without a body is no article: it is left out and named in
    ``warnings`` when a list is given (an IngestError otherwise), like a feed read leniently
    past an XML error; a feed with no item left is an IngestError.
    """
    try:
        content = path.read_bytes()
    except OSError as exc:
        raise IngestError(f"{path}: cannot read: {exc.strerror}") from None
    suffix = path.suffix.lower()
    if suffix in {".json", ".jsonl", ".ndjson"}:
        documents = list(_json_documents(content, path, lines=suffix != ".json"))
    elif suffix == ".txt":
        title, body = split_txt_file(_text(content, path))
        documents = [{"id": path.stem, "title": title, "text": body}]
    elif suffix in {".html", ".htm"}:
        # Saved pages are often all called index.html or source.html: the id comes from the
        # content (RawArticle.derived_id), not the file name.
        documents = [{"html": _html_text(content, path)}]
    elif suffix in {".xml", ".rss", ".atom"}:
        documents = list(_feed_documents(content, path, warnings))
    else:
        raise IngestError(
            f"{path}: unknown file type {suffix or '(none)'}; "
            "expected .txt, .json, .jsonl, .html or RSS/Atom .xml"
        )
    return [_validated(doc, f"{path}#{n + 1}", max_bytes) for n, doc in enumerate(documents)]


def records_from_stream(
    stream: IO[bytes], max_bytes: int, name: str = "<stdin>"
) -> Iterator[RawRecord]:
    """JSON lines from a stream, validated one by one."""
    for number, line in enumerate(stream, start=1):
        if line.strip():
            where = f"{name}:{number}"
            yield _validated(_json_object(line, where), where, max_bytes)


def _validated(document: dict, where: str, max_bytes: int) -> RawRecord:
    document = {k: v for k, v in document.items() if v is not None}
    value = orjson.dumps(document)
    if len(value) > max_bytes:
        raise IngestError(
            f"{where}: {len(value):,} bytes as a raw record, more than max_message_bytes "
            f"({max_bytes:,}); the worker would dead-letter it as message_too_large"
        )
    try:
        article = parse_raw_article(value)
    except InvalidInput as exc:
        raise IngestError(f"{where}: {exc.detail}") from None
    return RawRecord(key=article.id.encode() if article.id else None, value=value)


def _text(content: bytes, path: Path) -> str:
    try:
        return content.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise IngestError(f"{path}: not UTF-8 text ({exc})") from None


# <meta charset="iso-8859-1"> or <meta http-equiv="Content-Type" content="text/html; charset=...">
_DECLARED_CHARSET = re.compile(
    rb"<meta[^>]*charset\s*=\s*[\"']?\s*([A-Za-z0-9._:-]+)", re.IGNORECASE
)


def _html_text(content: bytes, path: Path) -> str:
    """A saved page as text: UTF-8, else the charset its <meta> declares (raw records are JSON,
    so the page travels decoded)."""
    try:
        return content.decode("utf-8")
    except UnicodeDecodeError:
        declared = _DECLARED_CHARSET.search(content[:4096])
        if declared is None:
            raise IngestError(f"{path}: not UTF-8 and no charset declared in a <meta>") from None
        charset = declared.group(1).decode("ascii")
        try:
            return content.decode(charset)
        except (LookupError, UnicodeDecodeError) as exc:
            raise IngestError(f"{path}: not {charset} as its <meta> declares ({exc})") from None


def _json_object(raw: bytes, where: str) -> dict:
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise IngestError(f"{where}: invalid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise IngestError(f"{where}: expected a JSON object, got {json_type(data)}")
    return data


def _json_documents(content: bytes, path: Path, *, lines: bool) -> Iterator[dict]:
    if lines:
        for number, line in enumerate(content.splitlines(), start=1):
            if line.strip():
                yield _json_object(line, f"{path}:{number}")
        return
    try:
        data = orjson.loads(content)
    except orjson.JSONDecodeError as exc:
        raise IngestError(f"{path}: invalid JSON: {exc}") from None
    items = data if isinstance(data, list) else [data]
    for number, item in enumerate(items, start=1):
        if not isinstance(item, dict):
            raise IngestError(f"{path}#{number}: expected a JSON object, got {json_type(item)}")
        yield item


def _feed_documents(content: bytes, path: Path, warnings: list[str] | None) -> Iterator[dict]:
    feed = feedparser.parse(content)
    if not feed.entries:
        reason = f": {feed.bozo_exception}" if feed.bozo else " (no item or entry in it)"
        raise IngestError(f"{path}: not an RSS/Atom feed{reason}")

    def warn(note: str) -> None:
        if warnings is None:
            raise IngestError(note)
        warnings.append(note)

    if isinstance(feed.get("bozo_exception"), SAXException):
        # feedparser reads a feed with XML errors leniently: say so, an item may be cut short.
        warn(f"{path}: malformed XML, read leniently: {feed.bozo_exception}")
    source = feed.feed.get("title")
    bodies = 0
    for number, entry in enumerate(feed.entries, start=1):
        body = entry.get("content", [{}])[0].get("value") or entry.get("summary")
        link = entry.get("link")
        if not body:
            name = entry.get("id") or link or entry.get("title") or "untitled"
            warn(f"{path}#{number} ({name}): left out, no content or summary")
            continue
        bodies += 1
        yield {
            "id": entry.get("id") or link or hashlib.sha256(body.encode()).hexdigest()[:16],
            "url": link,
            "title": _feed_title(entry),
            "source": source,
            "published_at": _feed_date(entry),
            "html": body,
        }
    if not bodies:
        raise IngestError(f"{path}: no item of the feed has a content or summary")


def _feed_title(entry: feedparser.FeedParserDict) -> str | None:
    """The item's title as text: an Atom title of type html carries markup and entities."""
    title = entry.get("title")
    if not title or "html" not in entry.get("title_detail", {}).get("type", ""):
        return title
    return lxml.html.fragment_fromstring(title, create_parent="div").text_content().strip() or None


def _feed_date(entry: feedparser.FeedParserDict) -> str | None:
    parsed = entry.get("published_parsed") or entry.get("updated_parsed")
    if not parsed:
        return None
    year, month, day, hour, minute, second = parsed[:6]
    return f"{year:04d}-{month:02d}-{day:02d}T{hour:02d}:{minute:02d}:{second:02d}+00:00"
