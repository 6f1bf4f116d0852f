"""The stages composed: raw bytes -> an analysed article awaiting its dedup verdict.

Pure: no Faust, Kafka or Prometheus here, so the whole chain is unit-testable. A batch goes
through three phases, which the worker runs in a pipeline (NER of one batch in its own process
while the next is prepared): `prepare_batch` (parse, clean, language), `tag_batch` (the NER
models, batched across articles) and `assemble_batch` (entity refinement, records, fingerprint,
MinHash). `process_batch` chains them in one call.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any, Protocol

from pipeline.records import (
    MAX_KEY_BYTES,
    AnalyzedArticle,
    DedupOut,
    EnrichedArticle,
    EntityOut,
    InvalidInput,
    RawArticle,
    SegmentOut,
    parse_raw_article,
    to_json,
)
from pipeline.stages.clean import CleanedArticle, clean_html, clean_text
from pipeline.stages.dedup import band_keys, encode_signature, fingerprint, signature
from pipeline.stages.entities import (
    Entity,
    EntitySettings,
    Mention,
    TaggedBatch,
    refine_tagged,
)
from pipeline.stages.language import LanguageProfile, Segment, detect_languages
from pipeline.stages.story import embedding_text, entity_key

# Flags that make an article unfit to be anyone's original or duplicate.
NOT_DEDUPLICATED = frozenset({"not_an_article", "empty"})


class StageTimeout(RuntimeError):
    """A stage gave no answer within its time limit (and was stopped)."""


class InjectedFault(RuntimeError):
    """Raised on purpose by FaultInjection (tests of the failure paths)."""


@dataclass(frozen=True)
class FaultInjection:
    """Test-only: a phase raises for an article whose text contains the phase's marker.

    Set through PIPELINE_TEST_FAULTS (JSON, phase -> marker) so the failure paths of a real
    worker on a real broker can be exercised without mocks; empty in production.
    Phases: prepare, tag, assemble, deduplicate; and drop: the analyze agent loses a message
    whose bytes contain the marker, once per position, as a consumer dropping a fetched record
    around a rebalance does.
    """

    markers: Mapping[str, str] = field(default_factory=dict)
    _dropped: set[tuple[str, int, int]] = field(default_factory=set)

    def check(self, phase: str, text: str) -> None:
        marker = self.markers.get(phase)
        if marker and marker in text:
            raise InjectedFault(f"fault injected in {phase}")

    def drops(self, message: IncomingMessage) -> bool:
        marker = self.markers.get("drop")
        position = (message.topic, message.partition, message.offset)
        if not marker or marker.encode() not in (message.value or b"") or position in self._dropped:
            return False
        self._dropped.add(position)
        return True


NO_FAULTS = FaultInjection()


@dataclass(frozen=True)
class PreparedArticle:
    raw: RawArticle
    article_id: str
    output_key: str
    cleaned: CleanedArticle
    profile: LanguageProfile
    ingested_at: datetime


class HtmlCleaner(Protocol):
    """`pipeline.stages.clean.clean_html`, or the worker's `HtmlCleaningProcess.clean_html`."""

    def __call__(
        self, html: str, url: str | None, title: str | None, *, max_chars: int
    ) -> CleanedArticle: ...


def prepare(
    payload: bytes,
    key: bytes | None,
    ingested_at: datetime,
    *,
    max_message_bytes: int,
    max_text_chars: int,
    html_cleaner: HtmlCleaner = clean_html,
) -> PreparedArticle:
    """Parse, clean and language-tag one raw message; raise InvalidInput for the DLQ."""
    if key is not None and len(key) > MAX_KEY_BYTES:
        raise InvalidInput(
            "invalid_key", f"the message key has {len(key)} bytes, more than {MAX_KEY_BYTES}"
        )
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
        cleaned = html_cleaner(raw.html, raw.url, raw.title, max_chars=max_text_chars)
    article_id = raw.derived_id()
    return PreparedArticle(
        raw=raw,
        article_id=article_id,
        output_key=key.decode("utf-8", "replace") if key else article_id,
        cleaned=cleaned,
        profile=detect_languages(cleaned.text, hint=raw.language),
        ingested_at=ingested_at,
    )


def assemble(
    prepared: PreparedArticle, entities: Sequence[EntityOut], vector: Any = None
) -> AnalyzedArticle:
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
        # The raw embedding: the story memory takes its language's running mean off.
        story_vector=[round(float(x), 5) for x in vector] if vector is not None else None,
    )


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


class Tagger(Protocol):
    """What runs the NER models: an `EntityRecognizer`, or the worker's `NerPool`."""

    @property
    def languages(self) -> frozenset[str]: ...

    @property
    def settings(self) -> EntitySettings: ...

    def tag(self, articles: Sequence[tuple[str, Sequence[Segment]]]) -> TaggedBatch: ...


class Embedder(Protocol):
    """What embeds title and lead for story linking: `stages.story.Embedder`, `NerPool`."""

    def embed(self, texts: Sequence[str]) -> Any: ...


@dataclass(frozen=True)
class PreparedBatch:
    ready: list[tuple[IncomingMessage, PreparedArticle]]
    rejected: list[Rejection]


@dataclass(frozen=True)
class TaggedArticles:
    articles: list[tuple[IncomingMessage, PreparedArticle, list[Mention]]]
    rejected: list[Rejection]
    skipped: Mapping[str, int]  # characters that got no entities, by reason
    vectors: Mapping[int, Any] = field(default_factory=dict)  # story embedding by article index


@dataclass(frozen=True)
class BatchOutcome:
    analyzed: list[tuple[IncomingMessage, AnalyzedArticle]]
    rejected: list[Rejection]
    skipped: Mapping[str, int]


def prepare_batch(
    messages: Sequence[IncomingMessage],
    *,
    max_message_bytes: int,
    max_text_chars: int,
    faults: FaultInjection = NO_FAULTS,
    html_cleaner: HtmlCleaner = clean_html,
) -> PreparedBatch:
    """Parse, clean and language-tag each message; the unfit ones are rejected for the DLQ."""
    ready: list[tuple[IncomingMessage, PreparedArticle]] = []
    rejected: list[Rejection] = []
    for message in messages:
        try:
            faults.check("prepare", (message.value or b"").decode("utf-8", "replace"))
            prepared = prepare(
                message.value or b"",
                message.key,
                message.timestamp,
                max_message_bytes=max_message_bytes,
                max_text_chars=max_text_chars,
                html_cleaner=html_cleaner,
            )
        except InvalidInput as exc:
            rejected.append(Rejection(message, exc.code, exc.detail, "parse"))
        except StageTimeout as exc:
            rejected.append(Rejection(message, "stage_timeout", str(exc), "clean"))
        except Exception as exc:  # noqa: BLE001 - a stage bug must not kill the worker: DLQ it
            rejected.append(Rejection(message, "stage_failed", _describe(exc), "prepare"))
        else:
            ready.append((message, prepared))
    return PreparedBatch(ready, rejected)


def tag_batch(
    batch: PreparedBatch, tagger: Tagger, faults: FaultInjection = NO_FAULTS
) -> TaggedArticles:
    """The models' mentions in every prepared article, the batch in one call.

    A failed or timed-out call is retried article by article, so one poison article goes to
    the DLQ without taking its batch-mates with it.
    """
    if not batch.ready:
        return TaggedArticles([], list(batch.rejected), {})
    try:
        for _, prepared in batch.ready:
            faults.check("tag", prepared.cleaned.text)
        tagged = tagger.tag([_ner_input(p) for _, p in batch.ready])
    except Exception:  # noqa: BLE001 - isolate the failing article, one by one
        return _tag_one_by_one(batch, tagger, faults)
    articles = [
        (message, prepared, mentions)
        for (message, prepared), mentions in zip(batch.ready, tagged.mentions, strict=True)
    ]
    return TaggedArticles(articles, list(batch.rejected), dict(tagged.skipped))


def _tag_one_by_one(
    batch: PreparedBatch, tagger: Tagger, faults: FaultInjection
) -> TaggedArticles:
    articles: list[tuple[IncomingMessage, PreparedArticle, list[Mention]]] = []
    rejected = list(batch.rejected)
    skipped: Counter[str] = Counter()
    for message, prepared in batch.ready:
        try:
            faults.check("tag", prepared.cleaned.text)
            tagged = tagger.tag([_ner_input(prepared)])
        except StageTimeout as exc:
            rejected.append(Rejection(message, "stage_timeout", str(exc), "entities"))
            continue
        except Exception as exc:  # noqa: BLE001 - this article alone goes to the DLQ
            rejected.append(Rejection(message, "stage_failed", _describe(exc), "entities"))
            continue
        articles.append((message, prepared, tagged.mentions[0]))
        skipped.update(tagged.skipped)
    return TaggedArticles(articles, rejected, dict(skipped))


def embed_batch(batch: TaggedArticles, embedder: Embedder) -> TaggedArticles:
    """Story embeddings of the batch's articles that can be in a story (articles with text, not
    walls or empty pages), one call for the batch; a failed call is retried article by article
    and an article that fails alone goes to the DLQ (stage "story")."""
    linkable = [
        index
        for index, (_, prepared, _) in enumerate(batch.articles)
        if prepared.cleaned.text.strip() and not NOT_DEDUPLICATED & set(prepared.cleaned.quality)
    ]
    texts = {index: _embedding_input(batch.articles[index][1]) for index in linkable}
    vectors: dict[int, Any] = {}
    failed: dict[int, Rejection] = {}
    try:
        vectors = dict(zip(linkable, embedder.embed([texts[i] for i in linkable]), strict=True))
    except Exception:  # noqa: BLE001 - isolate the failing article, one by one
        for index in linkable:
            message = batch.articles[index][0]
            try:
                vectors[index] = embedder.embed([texts[index]])[0]
            except StageTimeout as exc:
                failed[index] = Rejection(message, "stage_timeout", str(exc), "story")
            except Exception as exc:  # noqa: BLE001 - this article alone goes to the DLQ
                failed[index] = Rejection(message, "stage_failed", _describe(exc), "story")
    if not failed:
        return replace(batch, vectors=vectors)
    kept = [i for i in range(len(batch.articles)) if i not in failed]
    return TaggedArticles(
        [batch.articles[i] for i in kept],
        [*batch.rejected, *failed.values()],
        batch.skipped,
        {new: vectors[old] for new, old in enumerate(kept) if old in vectors},
    )


def _embedding_input(prepared: PreparedArticle) -> str:
    return embedding_text(prepared.cleaned.title or prepared.raw.title, prepared.cleaned.text)


def _ner_input(prepared: PreparedArticle) -> tuple[str, Sequence[Segment]]:
    return prepared.cleaned.text, prepared.profile.segments


def assemble_batch(
    batch: TaggedArticles,
    languages: Iterable[str],
    settings: EntitySettings,
    *,
    max_record_bytes: int,
    faults: FaultInjection = NO_FAULTS,
) -> BatchOutcome:
    """Refined entities, output records, fingerprints and MinHash signatures of tagged articles.

    Each article is assembled on its own: one that fails goes to the DLQ (stage "assemble")
    and its batch-mates go on.
    """
    analyzed: list[tuple[IncomingMessage, AnalyzedArticle]] = []
    rejected = list(batch.rejected)
    for index, (message, prepared, mentions) in enumerate(batch.articles):
        try:
            faults.check("assemble", prepared.cleaned.text)
            text, segments = _ner_input(prepared)
            entities = [
                EntityOut(**vars(e), key=entity_key(e.canonical, e.label, e.lang))
                for e in refine_entities(text, segments, mentions, languages, settings)
            ]
            record = fit_record(
                assemble(prepared, entities, batch.vectors.get(index)), max_record_bytes
            )
        except InvalidInput as exc:
            rejected.append(Rejection(message, exc.code, exc.detail, "assemble"))
        except Exception as exc:  # noqa: BLE001 - this article alone goes to the DLQ
            rejected.append(Rejection(message, "stage_failed", _describe(exc), "assemble"))
        else:
            analyzed.append((message, record))
    return BatchOutcome(analyzed, rejected, batch.skipped)


# Refinement compares an article's names with one another (document-level consistency), so its
# cost grows faster than the article: 4,000 lines of a results table with 5,500 names took
# 1.8 s, 20,000 lines about a minute. An article with more mentions than this is refined in
# blocks of whole lines, each with about this many, so the cost stays linear in its size;
# consistency then holds within a block.
REFINE_BLOCK_MENTIONS = 1_000


def refine_entities(
    text: str,
    segments: Sequence[Segment],
    mentions: Sequence[Mention],
    languages: Iterable[str],
    settings: EntitySettings,
) -> list[Entity]:
    """The refined entities of one article's mentions, in blocks when there are very many."""
    languages = frozenset(languages)
    ordered = sorted(mentions, key=lambda m: m.start)
    entities: list[Entity] = []
    for start, end in mention_blocks(text, ordered, REFINE_BLOCK_MENTIONS):
        block_segments = [
            Segment(max(s.start, start) - start, min(s.end, end) - start, s.lang, s.confidence)
            for s in segments
            if s.start < end and s.end > start
        ]
        block_mentions = [
            m._replace(start=m.start - start, end=m.end - start)
            for m in ordered
            if start <= m.start and m.end <= end
        ]
        refined = refine_tagged(
            [(text[start:end], block_segments)], TaggedBatch([block_mentions]), languages, settings
        )
        entities += [
            replace(e, start=e.start + start, end=e.end + start) for e in refined.entities[0]
        ]
    return entities


def mention_blocks(
    text: str, mentions: Sequence[Mention], per_block: int
) -> list[tuple[int, int]]:
    """[start, end) ranges covering the text, cut at line ends (else at a space) after every
    ``per_block`` mentions (sorted by start), never through a mention."""
    blocks: list[tuple[int, int]] = []
    start = 0
    index = per_block - 1
    while index < len(mentions) - 1:
        cut = _break_after(text, mentions[index].end)
        while index + 1 < len(mentions) and mentions[index + 1].start < cut:
            index += 1  # a mention on the same line stays in this block
            cut = max(cut, _break_after(text, mentions[index].end))
        if cut >= len(text):
            break
        blocks.append((start, cut))
        start = cut
        index += per_block
    blocks.append((start, len(text)))
    return blocks


def _break_after(text: str, position: int) -> int:
    line_end = text.find("\n", position)
    if line_end != -1:
        return line_end + 1
    space = _SPACE.search(text, position)
    return space.end() if space else len(text)


_SPACE = re.compile(r"\s")


def fit_record(analyzed: AnalyzedArticle, max_bytes: int) -> AnalyzedArticle:
    """The record itself when it fits in max_bytes of JSON; else with as many of its entities
    (in text order) as fit, flagged "entities_truncated"; InvalidInput when even none fit.

    The enriched record is this one less its MinHash fields, so it fits too.
    """
    if len(to_json(analyzed)) <= max_bytes:
        return analyzed
    entities = analyzed.article.entities

    def with_entities(count: int) -> AnalyzedArticle:
        article = analyzed.article.model_copy(
            update={
                "entities": entities[:count],
                "quality": [*analyzed.article.quality, "entities_truncated"],
            }
        )
        return analyzed.model_copy(update={"article": article})

    if len(to_json(with_entities(0))) > max_bytes:
        raise InvalidInput(
            "output_too_large",
            f"the enriched record is over {max_bytes} bytes even without entities "
            f"({len(analyzed.article.text)} characters, {len(analyzed.article.segments)} segments)",
        )
    fits, too_many = 0, len(entities)  # binary search: with_entities(fits) fits
    while too_many - fits > 1:
        middle = (fits + too_many) // 2
        if len(to_json(with_entities(middle))) <= max_bytes:
            fits = middle
        else:
            too_many = middle
    return with_entities(fits)


def process_batch(
    messages: Sequence[IncomingMessage],
    tagger: Tagger,
    *,
    max_message_bytes: int,
    max_text_chars: int,
    max_record_bytes: int,
) -> BatchOutcome:
    """The whole analysis of a batch in one call; each message ends analysed or rejected."""
    prepared = prepare_batch(
        messages, max_message_bytes=max_message_bytes, max_text_chars=max_text_chars
    )
    return assemble_batch(
        tag_batch(prepared, tagger),
        tagger.languages,
        tagger.settings,
        max_record_bytes=max_record_bytes,
    )


def _describe(exc: Exception) -> str:
    return f"{type(exc).__name__}: {exc}"[:500]
