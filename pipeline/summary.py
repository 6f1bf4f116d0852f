"""A record as a person reads it: one compact block per article (`pipeline demo`, `tail --pretty`).

Pure formatting, no Kafka: an enriched record shows its title, languages with their shares, the
people, organisations and places it names (mentions grouped by entity), the dedup verdict, its
story and its quality flags; a DLQ record shows its reason; a raw record its id and size. With
``colour`` the block carries ANSI colours, for a terminal.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import orjson

__all__ = ["entity_groups", "language_shares", "summarize", "summarize_message"]

# Entity labels shown, in this order, with their line's name (MISC is left to the full record).
ENTITY_LINES = (("PERSON", "people"), ("ORG", "organisations"), ("LOC", "places"))
NAMES_SHOWN = 8  # entities listed per kind; the rest are counted
TITLE_CHARS = 90
DETAIL_CHARS = 160
LABEL_WIDTH = 14
LINE_CHARS = 100  # name lists wrap between names to stay within this

_BOLD, _DIM, _RED, _GREEN, _YELLOW, _CYAN = "1", "2", "31", "32", "33", "36"


def summarize_message(value: bytes | None, *, colour: bool = False) -> str:
    """The summary of one topic message, whatever the topic: enriched, DLQ, raw or other."""
    if not value:
        return _paint("(empty message)", _DIM, colour)
    try:
        record = orjson.loads(value)
    except orjson.JSONDecodeError:
        return _paint(f"(not JSON: {len(value):,} bytes)", _DIM, colour)
    if not isinstance(record, dict):
        return _paint(f"(JSON {type(record).__name__}, not a record)", _DIM, colour)
    return summarize(record, colour=colour)


def summarize(record: Mapping[str, Any], *, colour: bool = False) -> str:
    """One block of lines for a decoded record."""
    if "dedup" in record and "segments" in record:
        return _enriched(record, colour)
    if "error" in record and "original_sha256" in record:
        return _dead_letter(record, colour)
    if "text" in record or "html" in record:
        return _raw(record, colour)
    return _cut(orjson.dumps(dict(record)).decode(), DETAIL_CHARS)


def language_shares(segments: Iterable[Mapping[str, Any]]) -> list[tuple[str, float]]:
    """Each detected language with its share of the segments' characters, largest first."""
    chars: Counter[str] = Counter()
    for segment in segments:
        if segment.get("lang"):
            chars[segment["lang"]] += segment["end"] - segment["start"]
    total = sum(chars.values())
    return [(lang, count / total) for lang, count in chars.most_common()] if total else []


def entity_groups(entities: Iterable[Mapping[str, Any]], label: str) -> list[tuple[str, int]]:
    """Entities of one label as (names, mentions), most mentioned first.

    Mentions of one entity share its key across languages ("Vladimir Poutine" and "Vladimir
    Putin" are both ``p:putin``), so a group lists its canonical names, most used first.
    """
    names: defaultdict[str, Counter[str]] = defaultdict(Counter)
    for entity in entities:
        if entity.get("label") == label:
            names[entity.get("key") or entity["canonical"]][entity["canonical"]] += 1
    groups = [(" / ".join(n for n, _ in c.most_common()), c.total()) for c in names.values()]
    return sorted(groups, key=lambda group: -group[1])  # stable: ties keep text order


def _enriched(record: Mapping[str, Any], colour: bool) -> str:
    lines = [_heading(record, colour)]
    lines.append(_line("languages", _languages(record), colour))
    for label, name in ENTITY_LINES:
        groups = entity_groups(record.get("entities") or (), label)
        if groups:
            lines.append(_line(name, _names(groups), colour))
    lines.append(_line("dedup", _verdict(record.get("dedup") or {}, colour), colour))
    if record.get("story"):
        lines.append(_line("story", _story(record["story"], record.get("id"), colour), colour))
    quality = record.get("quality") or []
    lines.append(
        _line("quality", _paint(", ".join(quality), _YELLOW, colour) if quality else "ok", colour)
    )
    return "\n".join(lines)


def _heading(record: Mapping[str, Any], colour: bool) -> str:
    title = record.get("title") or _first_line(record.get("text") or "") or "(no title)"
    heading = _paint(_cut(title, TITLE_CHARS), _BOLD, colour)
    return f"{_paint(str(record.get('id')), _CYAN, colour)}  {heading}"


def _languages(record: Mapping[str, Any]) -> str:
    shares = language_shares(record.get("segments") or ())
    if not shares:
        return "undetermined"
    text = ", ".join(f"{lang} {share:.0%}" for lang, share in shares)
    return f"{text} (mixed)" if record.get("mixed_language") else text


def _names(groups: Sequence[tuple[str, int]]) -> str:
    items = [f"{names} ×{count}" if count > 1 else names for names, count in groups[:NAMES_SHOWN]]
    if len(groups) > NAMES_SHOWN:
        items.append(f"… (+{len(groups) - NAMES_SHOWN})")
    return _wrap_items(items, LINE_CHARS - LABEL_WIDTH - 3)


def _wrap_items(items: Sequence[str], width: int) -> str:
    """Items joined by commas, lines broken between items (never inside a name)."""
    lines: list[str] = []
    for item in items:
        if lines and len(f"{lines[-1]}, {item},") <= width:  # room for a comma after it
            lines[-1] += f", {item}"
        else:
            if lines:
                lines[-1] += ","
            lines.append(item)
    return ("\n" + " " * (LABEL_WIDTH + 3)).join(lines)


def _verdict(dedup: Mapping[str, Any], colour: bool) -> str:
    status = dedup.get("status", "unknown")
    if status == "unique":
        return _paint("unique", _GREEN, colour)
    text = _paint(f"{status.replace('_', ' ')} of", _YELLOW, colour)
    text += f" {_paint(str(dedup.get('duplicate_of')), _CYAN, colour)}"
    if dedup.get("similarity") is not None:
        text += f" (similarity {dedup['similarity']:.2f})"
    return text


def _story(story: Mapping[str, Any], article_id: object, colour: bool) -> str:
    if story.get("id") == article_id:
        text = "starts a story"
    else:
        text = f"in story {_paint(str(story.get('id')), _CYAN, colour)}"
        text += f" (similarity {story.get('similarity', 0):.3f})"
    related = story.get("related") or []
    if related:
        text += "; related: " + ", ".join(
            f"{_paint(str(r['id']), _CYAN, colour)} ({r['similarity']:.3f})" for r in related
        )
    return text


def _dead_letter(record: Mapping[str, Any], colour: bool) -> str:
    where = f"{record.get('topic')} {record.get('partition')}@{record.get('offset')}"
    cut = ", truncated" if record.get("original_truncated") else ""
    return "\n".join(
        [
            (
                f"{_paint('DLQ', _RED, colour)}  {_paint(str(record['error']), _BOLD, colour)}"
                f"  key {record.get('key')}"
            ),
            _line("stage", str(record.get("stage")), colour),
            _line("detail", _cut(str(record.get("detail")), DETAIL_CHARS), colour),
            _line("from", where, colour),
            _line("original", f"{record.get('original_size', 0):,} bytes{cut}", colour),
        ]
    )


def _raw(record: Mapping[str, Any], colour: bool) -> str:
    kind = "html" if record.get("html") is not None else "text"
    body = record.get(kind) or ""
    title = record.get("title") or (_first_line(body) if kind == "text" else "") or "(no title)"
    return "\n".join(
        [
            (
                f"{_paint(str(record.get('id') or '(no id)'), _CYAN, colour)}  "
                f"{_paint(_cut(title, TITLE_CHARS), _BOLD, colour)}"
            ),
            _line("raw", f"{kind}, {len(body):,} characters", colour),
        ]
    )


def _line(name: str, value: str, colour: bool) -> str:
    return f"  {_paint(name.ljust(LABEL_WIDTH), _DIM, colour)} {value}"


def _first_line(text: str) -> str:
    return text.strip().split("\n", 1)[0] if text.strip() else ""


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def _paint(text: str, code: str, colour: bool) -> str:
    return f"\x1b[{code}m{text}\x1b[0m" if colour else text
