"""Input, output and dead-letter record types (docs/CONTRACT.md), and their JSON codecs.

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


def json_type(value: object) -> str:
    """The JSON name of a decoded value's type, for messages about the input."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    return "an array" if isinstance(value, list) else "an object"


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
            "invalid_record", f"the message must be a JSON object, not {json_type(data)}"
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
    # Language-independent identity: "Vladimir Poutine", "Putin" and "Путин" share "p:putin"
    # within and across articles ("" when the name has no letters or digits).
    key: str = ""


class RelatedOut(BaseModel):
    id: str
    similarity: float
    language: str | None


class StoryOut(BaseModel):
    """The story an article belongs to, across outlets and languages, within the window."""

    id: str  # the first article of the story (the article's own id when it starts one)
    similarity: float  # to the article that put it in the story; 1.0 when it starts one
    related: list[RelatedOut]  # most similar earlier articles, most similar first


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
    story: StoryOut | None = None  # None when story linking is off or the page is no article


class AnalyzedArticle(BaseModel):
    """Internal record between the analysis and dedup agents: everything but the verdicts."""

    article: EnrichedArticle
    fingerprint: str
    signature: str  # MinHash, encoded; "" when the text is too short to compare
    band_keys: list[str]
    dedup_eligible: bool
    output_key: str
    story_vector: list[float] | None = None  # title-and-lead embedding; None: no story linking


class DeadLetter(BaseModel):
    error: str
    detail: str
    stage: str
    original: str
    original_encoding: Literal["utf-8", "base64"]
    original_size: int  # bytes of the whole original message
    original_sha256: str  # of the whole original, so a cut one can still be matched
    original_truncated: bool = False  # original holds its first DLQ_ORIGINAL_CUT_BYTES only
    key: str | None
    topic: str | None
    partition: int | None
    offset: int | None
    failed_at: datetime


# Keys longer than this are refused (error invalid_key): no sane article id is that long, and
# every record's key must fit the topics' overhead allowance (settings.RECORD_OVERHEAD_BYTES).
MAX_KEY_BYTES = 1024

# A DLQ record whose whole original would not fit keeps this many of its first bytes: even
# escaped at 6 JSON bytes a byte (control characters) it stays far below any record limit.
DLQ_ORIGINAL_CUT_BYTES = 65_536


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
    max_bytes: int | None = None,
) -> DeadLetter:
    """Build a DLQ record keeping the original bytes: as text when UTF-8, else base64.

    With ``max_bytes``, a record that would be larger (base64 and JSON escaping can double an
    original, or more) keeps only the original's first DLQ_ORIGINAL_CUT_BYTES, marked truncated;
    its full size and SHA-256 are always there.
    """
    raw = original or b""
    record = DeadLetter(
        error=error,
        detail=detail[:2000],
        stage=stage,
        **_original_fields(raw),
        original_size=len(raw),
        original_sha256=hashlib.sha256(raw).hexdigest(),
        key=_key_text(key),
        topic=topic,
        partition=partition,
        offset=offset,
        failed_at=utc_now(),
    )
    if max_bytes is not None and len(to_json(record)) > max_bytes:
        cut = raw[:DLQ_ORIGINAL_CUT_BYTES]
        record = record.model_copy(
            update={**_original_fields(cut, was_cut=True), "original_truncated": True}
        )
    return record


def _original_fields(raw: bytes, was_cut: bool = False) -> dict[str, str]:
    try:
        return {"original": raw.decode("utf-8"), "original_encoding": "utf-8"}
    except UnicodeDecodeError as exc:
        if was_cut and exc.reason == "unexpected end of data":
            # A cut through a multi-byte character: keep the text up to it.
            return {"original": raw[: exc.start].decode("utf-8"), "original_encoding": "utf-8"}
        return {"original": base64.b64encode(raw).decode("ascii"), "original_encoding": "base64"}


def _key_text(key: bytes | None) -> str | None:
    if key is None:
        return None
    key = key[:MAX_KEY_BYTES]
    try:
        return key.decode("utf-8")
    except UnicodeDecodeError:
        return base64.b64encode(key).decode("ascii")


def dead_letter_key(key: bytes | None) -> bytes | None:
    """The DLQ record's Kafka key: the input's, or its SHA-256 when it is over MAX_KEY_BYTES."""
    if key is not None and len(key) > MAX_KEY_BYTES:
        return hashlib.sha256(key).hexdigest().encode()
    return key


def json_schemas() -> dict[str, dict]:
    """The JSON Schemas of the public records, as `pipeline schema` prints them."""
    return {
        "input": RawArticle.model_json_schema(),
        "output": EnrichedArticle.model_json_schema(),
        "dlq": DeadLetter.model_json_schema(),
    }


def utc_now() -> datetime:
    return datetime.now(UTC)


def to_json(record: BaseModel) -> bytes:
    return orjson.dumps(record.model_dump(mode="json"))
