"""The stages composed: raw bytes -> an analysed article awaiting its dedup verdict.

Pure: no Faust, Kafka or Prometheus here, so the whole chain is unit-testable. The agents call
`prepare` per message and `analyze_batch` per batch (NER is batched across articles).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from pipeline.records import (
    AnalyzedArticle,
    DedupOut,
    EnrichedArticle,
    EntityOut,
    InvalidInput,
    RawArticle,
    SegmentOut,
    parse_raw_article,
)
from pipeline.stages.clean import CleanedArticle, clean_html, clean_text
from pipeline.stages.dedup import band_keys, encode_signature, fingerprint, signature
from pipeline.stages.entities import EntityBatchResult, EntityRecognizer
from pipeline.stages.language import LanguageProfile, detect_languages

# Flags that make an article unfit to be anyone's original or duplicate.
NOT_DEDUPLICATED = frozenset({"not_an_article", "empty"})


@dataclass(frozen=True)
class PreparedArticle:
    raw: RawArticle
    article_id: str
    output_key: str
    cleaned: CleanedArticle
    profile: LanguageProfile
    ingested_at: datetime


def prepare(
    payload: bytes,
    key: bytes | None,
    ingested_at: datetime,
    *,
    max_message_bytes: int,
    max_text_chars: int,
) -> PreparedArticle:
    """Parse, clean and language-tag one raw message; raise InvalidInput for the DLQ."""
    if len(payload) > max_message_bytes:
        raise InvalidInput(
            "message_too_large",
            f"the message has {len(payload)} bytes, more than the limit of {max_message_bytes}",
        )
    raw = parse_raw_article(payload)
    if raw.text is not None:
        cleaned = clean_text(raw.text, raw.title, max_chars=max_text_chars)
    else:
        assert raw.html is not None  # guaranteed by RawArticle validation
        cleaned = clean_html(raw.html, raw.url, raw.title, max_chars=max_text_chars)
    article_id = raw.derived_id()
    return PreparedArticle(
        raw=raw,
        article_id=article_id,
        output_key=key.decode("utf-8", "replace") if key else article_id,
        cleaned=cleaned,
        profile=detect_languages(cleaned.text, hint=raw.language),
        ingested_at=ingested_at,
    )


def recognize_entities(
    prepared: Sequence[PreparedArticle], recognizer: EntityRecognizer
) -> EntityBatchResult:
    return recognizer.recognize([(p.cleaned.text, p.profile.segments) for p in prepared])


def assemble(prepared: PreparedArticle, entities: Sequence[EntityOut]) -> AnalyzedArticle:
    raw, cleaned, profile = prepared.raw, prepared.cleaned, prepared.profile
    article = EnrichedArticle(
        id=prepared.article_id,
        url=raw.url,
        title=cleaned.title or raw.title,
        source=raw.source,
        source_url=cleaned.source_url,
        published_at=raw.published_at,
        ingested_at=prepared.ingested_at,
        text=cleaned.text,
        language=profile.language,
        language_confidence=profile.confidence,
        mixed_language=profile.mixed,
        segments=[
            SegmentOut(start=s.start, end=s.end, lang=s.lang, confidence=s.confidence)
            for s in profile.segments
        ],
        entities=list(entities),
        dedup=DedupOut(status="unique"),
        quality=list(cleaned.quality),
    )
    eligible = not NOT_DEDUPLICATED.intersection(cleaned.quality)
    # The MinHash is computed here, in the stage thread, not in the dedup agent's event loop.
    minhash = signature(cleaned.text) if eligible else ()
    return AnalyzedArticle(
        article=article,
        fingerprint=fingerprint(cleaned.text),
        signature=encode_signature(minhash) if minhash else "",
        band_keys=band_keys(minhash) if minhash else [],
        dedup_eligible=eligible,
        output_key=prepared.output_key,
    )


def analyze_batch(
    prepared: Sequence[PreparedArticle], recognizer: EntityRecognizer
) -> tuple[list[AnalyzedArticle], EntityBatchResult]:
    result = recognize_entities(prepared, recognizer)
    analyzed = [
        assemble(p, [EntityOut(**vars(e)) for e in ents])
        for p, ents in zip(prepared, result.entities, strict=True)
    ]
    return analyzed, result


@dataclass(frozen=True)
class IncomingMessage:
    """A raw-topic message with its position, kept for the DLQ."""

    value: bytes | None
    key: bytes | None
    topic: str
    partition: int
    offset: int
    timestamp: datetime


@dataclass(frozen=True)
class Rejection:
    message: IncomingMessage
    error: str
    detail: str
    stage: str


@dataclass(frozen=True)
class BatchOutcome:
    analyzed: list[tuple[IncomingMessage, AnalyzedArticle]]
    rejected: list[Rejection]
    entity_result: EntityBatchResult | None


def process_batch(
    messages: Sequence[IncomingMessage],
    recognizer: EntityRecognizer,
    *,
    max_message_bytes: int,
    max_text_chars: int,
) -> BatchOutcome:
    """Analyse a batch of raw messages; each one ends analysed or rejected, never lost.

    A failure inside the batched NER call is retried article by article, so one poison
    article goes to the DLQ without taking its batch-mates with it.
    """
    rejected: list[Rejection] = []
    ready: list[tuple[IncomingMessage, PreparedArticle]] = []
    for message in messages:
        try:
            ready.append(
                (
                    message,
                    prepare(
                        message.value or b"",
                        message.key,
                        message.timestamp,
                        max_message_bytes=max_message_bytes,
                        max_text_chars=max_text_chars,
                    ),
                )
            )
        except InvalidInput as exc:
            rejected.append(Rejection(message, exc.code, exc.detail, "parse"))
        except Exception as exc:  # noqa: BLE001 - a stage bug must not kill the worker: DLQ it
            rejected.append(Rejection(message, "stage_failed", _describe(exc), "clean"))
    if not ready:
        return BatchOutcome([], rejected, None)
    try:
        analyzed, result = analyze_batch([p for _, p in ready], recognizer)
    except Exception:  # noqa: BLE001 - isolate the failing article, one by one
        return _analyze_one_by_one(ready, rejected, recognizer)
    return BatchOutcome(list(zip([m for m, _ in ready], analyzed)), rejected, result)


def _analyze_one_by_one(
    ready: Sequence[tuple[IncomingMessage, PreparedArticle]],
    rejected: list[Rejection],
    recognizer: EntityRecognizer,
) -> BatchOutcome:
    outcome: list[tuple[IncomingMessage, AnalyzedArticle]] = []
    for message, prepared in ready:
        try:
            outcome.append((message, analyze_batch([prepared], recognizer)[0][0]))
        except Exception as exc:  # noqa: BLE001 - this article alone goes to the DLQ
            rejected.append(Rejection(message, "stage_failed", _describe(exc), "entities"))
    return BatchOutcome(outcome, rejected, None)


def _describe(exc: Exception) -> str:
    return f"{type(exc).__name__}: {exc}"[:500]
