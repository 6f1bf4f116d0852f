"""Input, output and dead-letter record types (CONTRACT.md), and their JSON codecs.

Records are pydantic models: they validate untrusted input with clear messages and give
downstream consumers a JSON Schema (`pipeline schema`).
"""

from __future__ import annotations

import base64
import hashlib
from datetime import UTC, datetime
from typing import Literal

import orjson
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

SCHEMA_VERSION = 1

EntityLabel = Literal["PERSON", "ORG", "LOC", "MISC"]
DedupStatus = Literal["unique", "exact_duplicate", "near_duplicate"]


class InvalidInput(ValueError):
    """Input that no stage can process; carries the DLQ error code."""

    def __init__(self, code: str, detail: str) -> None:
        super().__init__(detail)
        self.code = code
        self.detail = detail


class RawArticle(BaseModel):
    """A record on the raw topic. Strict types: a number where a string belongs is an error."""

    model_config = ConfigDict(extra="ignore", strict=True, frozen=True)

    id: str | None = Field(None, min_length=1, max_length=512)
    url: str | None = None
    title: str | None = None
    source: str | None = None
    published_at: datetime | None = None
    language: str | None = Field(None, max_length=16)
    text: str | None = None
    html: str | None = None

    @model_validator(mode="before")
    @classmethod
    def _parse_timestamp(cls, data: object) -> object:
        # Strict mode refuses ISO strings for datetimes; JSON has no other way to carry them.
        if isinstance(data, dict) and isinstance(data.get("published_at"), str):
            try:
                data = {**data, "published_at": datetime.fromisoformat(data["published_at"])}
            except ValueError as exc:
                raise ValueError(f"published_at is not ISO 8601: {exc}") from None
        return data

    @model_validator(mode="after")
    def _has_content(self) -> RawArticle:
        if self.text is None and self.html is None:
            raise ValueError("a raw article needs a 'text' or an 'html' field")
        return self

    def derived_id(self) -> str:
        """The given id, else one derived from the URL, else from the content."""
        if self.id:
            return self.id
        basis = self.url or self.html or self.text or ""
        return hashlib.sha256(basis.encode("utf-8")).hexdigest()[:16]


def parse_raw_article(payload: bytes) -> RawArticle:
    """Decode one raw-topic message; raise InvalidInput with a DLQ code on any defect."""
    if not payload or not payload.strip():
        raise InvalidInput("empty_message", "the message body is empty")
    try:
        decoded = payload.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidInput("invalid_utf8", f"the message is not UTF-8 text: {exc}") from None
    try:
        data = orjson.loads(decoded)
    except orjson.JSONDecodeError as exc:
        raise InvalidInput("invalid_json", f"the message is not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise InvalidInput(
            "invalid_record", f"the message must be a JSON object, not {type(data).__name__}"
        )
    try:
        return RawArticle.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or 'record'}: {err['msg']}"
            for err in exc.errors()
        )
        raise InvalidInput("invalid_record", problems) from None


class SegmentOut(BaseModel):
    start: int
    end: int
    lang: str | None
    confidence: float


class EntityOut(BaseModel):
    text: str
    label: EntityLabel
    raw_label: str
    start: int
    end: int
    lang: str
    canonical: str


class DedupOut(BaseModel):
    status: DedupStatus
    duplicate_of: str | None = None
    similarity: float | None = None


class EnrichedArticle(BaseModel):
    schema_version: int = SCHEMA_VERSION
    id: str
    url: str | None
    title: str | None
    source: str | None
    source_url: str | None = None
    published_at: datetime | None
    ingested_at: datetime
    text: str
    language: str | None
    language_confidence: float
    mixed_language: bool
    segments: list[SegmentOut]
    entities: list[EntityOut]
    dedup: DedupOut
    quality: list[str]


class AnalyzedArticle(BaseModel):
    """Internal record between the analysis and dedup agents: everything but the dedup verdict."""

    article: EnrichedArticle
    fingerprint: str
    signature: str  # MinHash, encoded; "" when the text is too short to compare
    band_keys: list[str]
    dedup_eligible: bool
    output_key: str


class DeadLetter(BaseModel):
    error: str
    detail: str
    stage: str
    original: str
    original_encoding: Literal["utf-8", "base64"]
    key: str | None
    topic: str | None
    partition: int | None
    offset: int | None
    failed_at: datetime


def dead_letter(
    *,
    error: str,
    detail: str,
    stage: str,
    original: bytes | None,
    key: bytes | None,
    topic: str | None,
    partition: int | None,
    offset: int | None,
) -> DeadLetter:
    """Build a DLQ record keeping the original bytes: as text when UTF-8, else base64."""
    raw = original or b""
    try:
        text, encoding = raw.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        text, encoding = base64.b64encode(raw).decode("ascii"), "base64"
    return DeadLetter(
        error=error,
        detail=detail,
        stage=stage,
        original=text,
        original_encoding=encoding,  # type: ignore[arg-type]
        key=_key_text(key),
        topic=topic,
        partition=partition,
        offset=offset,
        failed_at=utc_now(),
    )


def _key_text(key: bytes | None) -> str | None:
    if key is None:
        return None
    try:
        return key.decode("utf-8")
    except UnicodeDecodeError:
        return base64.b64encode(key).decode("ascii")


def utc_now() -> datetime:
    return datetime.now(UTC)


def to_json(record: BaseModel) -> bytes:
    return orjson.dumps(record.model_dump(mode="json"))
