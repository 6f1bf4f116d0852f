"""The story benchmarks' data: human-rated pairs and their articles, through the project's stages.

Pairs and documents are JSON lines in the SemEval-2022 task 8 format, in files the caller names
(the repository does not keep them): pairs ``{"a", "b", "overall", "l1", "l2"}`` (1 = same
story ... 4 = unrelated), documents ``{"id", "text", "lang"}`` whose first line is the title.
Each document goes through ``analysis.process_batch`` with the configured spaCy models, so
cleaning, language, entities and MinHash are what the worker would produce; the ``lang`` field
is never given to the pipeline. Nothing of these articles is written into the repository:
caches go where ``--cache`` says.
"""

from __future__ import annotations

import hashlib
import json
import pickle
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from pipeline.analysis import IncomingMessage, process_batch
from pipeline.settings import load_settings
from pipeline.stages.dedup import decode_signature, estimate_similarity
from pipeline.stages.entities import EntityRecognizer
from pipeline.stages.story import Embedder, LanguageMean, NamedEntity, embedding_text

MAX_TITLE_CHARS = 300


@dataclass(frozen=True)
class Pair:
    a: str
    b: str
    overall: float  # 1 = same story ... 4 = unrelated
    l1: str
    l2: str

    @property
    def cross_language(self) -> bool:
        return self.l1 != self.l2


@dataclass(frozen=True)
class Doc:
    """One dev article as the pipeline sees it."""

    id: str
    title: str | None
    text: str
    language: str | None
    entities: tuple[NamedEntity, ...]
    signature: tuple[int, ...]


def read_pairs(path: Path) -> list[Pair]:
    with path.open(encoding="utf-8") as lines:
        return [Pair(**json.loads(line)) for line in lines if line.strip()]


def raw_record(doc: dict[str, str]) -> bytes:
    """The raw-topic record a producer would send for a document."""
    # The SemEval texts are "title\nbody": the first line is the title when short enough.
    first, _, rest = doc["text"].partition("\n")
    record = {"id": doc["id"], "text": doc["text"]}
    if rest.strip() and len(first) <= MAX_TITLE_CHARS:
        record = {"id": doc["id"], "title": first.strip(), "text": rest}
    return json.dumps(record).encode()


def read_docs(path: Path) -> list[dict[str, str]]:
    """The documents, in file order (the order of the simulated stream)."""
    with path.open(encoding="utf-8") as lines:
        return [json.loads(line) for line in lines if line.strip()]


def _digest(*paths: Path) -> str:
    sha = hashlib.sha256()
    for path in paths:
        sha.update(path.read_bytes())
    return sha.hexdigest()[:16]


def analyse_docs(path: Path, cache: Path | None) -> dict[str, Doc]:
    """Every document through the pipeline's stages (NER included); cached by file content."""
    cached = cache / f"docs-{_digest(path)}.pickle" if cache else None
    if cached and cached.exists():
        return pickle.loads(cached.read_bytes())
    raw = read_docs(path)
    settings = load_settings()
    recognizer = EntityRecognizer(settings.spacy_models)
    now = datetime(2026, 1, 1, tzinfo=UTC)
    messages = [
        IncomingMessage(raw_record(d), None, "dev", 0, offset, now) for offset, d in enumerate(raw)
    ]
    docs: dict[str, Doc] = {}
    for start in range(0, len(messages), 32):
        outcome = process_batch(
            messages[start : start + 32],
            recognizer,
            max_message_bytes=settings.max_message_bytes,
            max_text_chars=settings.max_text_chars,
            max_record_bytes=settings.max_record_bytes,
        )
        for _, analysed in outcome.analyzed:
            article = analysed.article
            docs[article.id] = Doc(
                id=article.id,
                title=article.title,
                text=article.text,
                language=article.language,
                entities=tuple(NamedEntity(e.canonical, e.label, e.lang) for e in article.entities),
                signature=decode_signature(analysed.signature) if analysed.signature else (),
            )
    if cached:
        cached.parent.mkdir(parents=True, exist_ok=True)
        cached.write_bytes(pickle.dumps(docs))
    return docs


def embed_docs(
    docs: Sequence[Doc], lead_chars: int, cache: Path | None, embedder: Embedder | None = None
) -> np.ndarray:
    """Story vectors of each document's title and lead, in ``docs`` order, as the story memory
    makes them when the documents arrive in that order (each language's running mean taken
    off: ``LanguageMean``); the embeddings are cached by content."""
    texts = [embedding_text(d.title, d.text, lead_chars) for d in docs]
    key = hashlib.sha256("\x00".join(texts).encode()).hexdigest()[:16]
    cached = cache / f"embeddings-{lead_chars}-{key}.npy" if cache else None
    if cached and cached.exists():
        embeddings = np.load(cached)
    else:
        embeddings = (embedder or Embedder(num_threads=1)).embed(texts)
        if cached:
            cached.parent.mkdir(parents=True, exist_ok=True)
            np.save(cached, embeddings)
    means: dict[str | None, LanguageMean] = {}
    vectors = []
    for embedding, doc in zip(embeddings, docs, strict=True):
        mean = means.get(doc.language) or LanguageMean.prior(doc.language)
        vectors.append(mean.neutral(embedding))
        means[doc.language] = mean.updated(embedding)
    return np.vstack(vectors)


def doc_order(path: Path) -> list[str]:
    """Document ids in file order: the order of the simulated stream."""
    return [doc["id"] for doc in read_docs(path)]


def minhash_similarity(a: Doc, b: Doc) -> float:
    """The dedup stage's MinHash similarity of two documents; 0 when either is too short."""
    return estimate_similarity(a.signature, b.signature) if a.signature and b.signature else 0.0
