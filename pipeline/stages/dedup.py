"""Duplicate detection: a content fingerprint and the verdict against what was seen before.

The memory itself (a Faust table keyed by fingerprint) lives in the agent; these functions only
decide, so they are testable without a broker.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from dataclasses import dataclass
from datetime import datetime, timedelta

# Letters and digits only: whitespace, quotes, dashes and punctuation variants between copies of
# one story (curly vs straight quotes, NBSP, em dash) must not change the fingerprint.
_NON_WORD = re.compile(r"[\W_]+", re.UNICODE)


def normalise_for_fingerprint(text: str) -> str:
    folded = unicodedata.normalize("NFKC", text).casefold()
    return _NON_WORD.sub(" ", folded).strip()


def fingerprint(text: str) -> str:
    """Exact-duplicate key of an article's cleaned text."""
    return hashlib.sha256(normalise_for_fingerprint(text).encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class FirstSeen:
    """What the dedup memory keeps per fingerprint: the original's id and when it was seen."""

    article_id: str
    seen_at: datetime


@dataclass(frozen=True)
class DedupVerdict:
    status: str
    duplicate_of: str | None
    similarity: float | None
    remember: FirstSeen | None  # what to store under the fingerprint, None to leave memory as is


def judge_exact(
    previous: FirstSeen | None,
    article_id: str,
    now: datetime,
    retention: timedelta,
    eligible: bool = True,
) -> DedupVerdict:
    """Decide whether an article is an exact duplicate of the first one seen with its content.

    Ineligible articles (walls, empty pages) are never duplicates and never become originals.
    A redelivery of the original itself (same id) is not its own duplicate.
    Memory older than the retention window is forgotten.
    """
    if not eligible:
        return DedupVerdict("unique", None, None, None)
    if previous is not None and now - previous.seen_at > retention:
        previous = None
    if previous is None:
        return DedupVerdict("unique", None, None, FirstSeen(article_id, now))
    if previous.article_id == article_id:
        return DedupVerdict("unique", None, None, None)
    return DedupVerdict("exact_duplicate", previous.article_id, 1.0, None)
