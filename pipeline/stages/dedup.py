"""Duplicate detection, decided purely: exact fingerprints and MinHash-LSH near duplicates.

The memory itself lives in the agent (Faust tables); these functions only compute keys and
decide, so they are testable without a broker.

Exact duplicates
    ``fingerprint(text)`` is the SHA-256 of the normalised text. The agent keys a table by it and
    asks ``judge_exact``.

Near duplicates (MinHash-LSH over word shingles)
    ``signature(text)`` is a MinHash of the article's word shingles (``shingle_size`` tokens of the
    normalised text; scripts written without spaces - Chinese, Japanese, Thai, ... - count each
    character as a token). ``band_keys(sig)`` cuts the signature into ``bands`` bands of ``rows``
    values and names each band by a short hash: two articles whose estimated Jaccard similarity is
    s share at least one band key with probability 1 - (1 - s**rows)**bands.

    The index is any ``Mapping[str, dict]`` (a dict in tests, a Faust GlobalTable with the JSON
    serializer in the worker). It holds two kinds of JSON records:

    ``"a<short id>" -> {"i": id, "s": signature, "t": seen_at, "o": original id, "m": similarity}``
        one per remembered article; ``o``/``m`` only for duplicates. The signature is stored once.
    ``"b<8 chars>" -> {"a": [short ids], "t": last write}``
        one per band key: the (few, usually one) remembered articles having that band.

    A short id is an 11-character hash of the article id, so keys and band records stay small
    whatever the ids look like (URLs). Storing the signature once and only short ids per band
    keeps the state near ``bands * 45 + 400`` bytes per article (2.3 KB with the defaults)
    instead of ``bands`` copies of the signature. A near duplicate writes its article record and
    only the bands that do not already lead to its story.

    ``judge_near`` reads the band records, then the candidates' article records, compares
    signatures and returns the verdict plus the records to write. ``judge`` composes it with
    ``judge_exact`` in the order the agent needs.

Forgetting
    Verdicts ignore what is past the retention window, but the tables keep it until it is deleted.
    ``sweep_step`` walks a table a bounded slice at a time, in key order, and names the keys
    ``is_expired`` says are past the window (records of both tables carry their write time), so
    the agent can delete them and the live state stays bounded.
"""

from __future__ import annotations

import base64
import hashlib
import itertools
import operator
import re
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Any, NamedTuple

import numpy as np
import xxhash

# --- normalisation --------------------------------------------------------------------------


def _mark_class() -> str:
    """Regex class body of every combining mark (Unicode category M) in the BMP.

    Marks are parts of words (Devanagari vowel signs, Thai tone marks, Arabic harakat): the
    normalisation must keep them, not cut words apart at them. (BMP only: a class reaching
    beyond it makes the regex several times slower, and the marks there are of historic scripts.)
    """
    ranges: list[tuple[int, int]] = []
    for code in range(0x10000):
        if unicodedata.category(chr(code))[0] == "M":
            if ranges and ranges[-1][1] == code - 1:
                ranges[-1] = (ranges[-1][0], code)
            else:
                ranges.append((code, code))
    return "".join(
        re.escape(chr(lo)) if lo == hi else f"{re.escape(chr(lo))}-{re.escape(chr(hi))}"
        for lo, hi in ranges
    )


_MARKS = _mark_class()
# Letters, digits and marks only: whitespace, quotes, dashes and punctuation variants between
# copies of one story (curly vs straight quotes, NBSP, em dash) must not change the fingerprint.
_NON_WORD = re.compile(rf"[^\w{_MARKS}]+")
# Invisible format characters (soft hyphen, zero-width space/joiners, direction marks, BOM) are
# dropped, so "infor\u00admation" stays one word.
_INVISIBLE = re.compile("[\u00ad\u200b-\u200f\u2060\ufeff]")
# Scripts written without spaces between words: each character (with its marks) is a token.
_UNSPACED_BMP = (
    "\u0e00-\u0eff"  # Thai, Lao
    "\u1000-\u109f"  # Myanmar
    "\u1780-\u17ff"  # Khmer
    "\u3040-\u30ff\u31f0-\u31ff"  # Hiragana, Katakana
    "\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"  # Han
)
_UNSPACED = _UNSPACED_BMP + "\U00020000-\U0003134f"  # + Han extensions
_HAS_UNSPACED = re.compile(rf"[{_UNSPACED_BMP}]")  # BMP only: fast, and enough to notice
_TOKEN = re.compile(rf"[{_UNSPACED}][{_MARKS}]*|[^\s{_UNSPACED}]+")


def normalise_for_fingerprint(text: str) -> str:
    folded = unicodedata.normalize("NFKC", text).casefold()
    folded = _INVISIBLE.sub("", folded).replace("_", " ")
    return _NON_WORD.sub(" ", folded).strip()


def fingerprint(text: str) -> str:
    """Exact-duplicate key of an article's cleaned text."""
    return hashlib.sha256(normalise_for_fingerprint(text).encode("utf-8")).hexdigest()


def tokens(text: str) -> list[str]:
    """Words of the normalised text; characters for scripts written without spaces."""
    normalised = normalise_for_fingerprint(text)
    if _HAS_UNSPACED.search(normalised) is None:
        return normalised.split()
    return _TOKEN.findall(normalised)


# --- exact duplicates -----------------------------------------------------------------------


@dataclass(frozen=True)
class FirstSeen:
    """What the dedup memory keeps per fingerprint: the original's id and when it was seen;
    ``similarity`` when the text first came as a near duplicate of that original."""

    article_id: str
    seen_at: datetime
    similarity: float | None = None

    def to_record(self) -> dict[str, Any]:
        """The JSON value stored in the fingerprint table."""
        record: dict[str, Any] = {"article_id": self.article_id, "seen_at": self.seen_at.isoformat()}
        if self.similarity is not None:
            record["similarity"] = self.similarity
        return record

    @classmethod
    def from_record(cls, record: Mapping[str, Any]) -> FirstSeen:
        return cls(
            record["article_id"], datetime.fromisoformat(record["seen_at"]), record.get("similarity")
        )


@dataclass(frozen=True)
class DedupVerdict:
    status: str
    duplicate_of: str | None
    similarity: float | None
    remember: FirstSeen | None  # what to store under the fingerprint, None to leave memory as is


UNIQUE = DedupVerdict("unique", None, None, None)


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
        return UNIQUE
    if previous is not None and now - previous.seen_at > retention:
        previous = None
    if previous is None:
        return DedupVerdict("unique", None, None, FirstSeen(article_id, now))
    if previous.article_id == article_id:
        return UNIQUE
    if previous.similarity is not None:  # this text was a near copy: so is every copy of it
        return DedupVerdict("near_duplicate", previous.article_id, previous.similarity, None)
    return DedupVerdict("exact_duplicate", previous.article_id, 1.0, None)


# --- near duplicates: signatures and band keys ----------------------------------------------


@dataclass(frozen=True)
class NearDupConfig:
    """MinHash-LSH parameters; the defaults are the ones tuned in docs/BENCHMARKS.md."""

    num_perm: int = 128  # MinHash permutations (signature length)
    bands: int = 42  # LSH bands; bands * rows <= num_perm
    rows: int = 3  # signature values per band
    threshold: float = 0.45  # estimated Jaccard at or above which an article is a near duplicate
    shingle_size: int = 3  # tokens per shingle
    seed: int = 1  # MinHash permutation seed: changing it (or any field above) starts a new index
    hash_bits: int = 16  # bits kept per signature value (b-bit MinHash): 16 or 32
    min_shingles: int = 5  # texts with fewer shingles get no signature (never near duplicates)
    max_ids_per_band: int = 4  # ids kept per band record, newest last

    def __post_init__(self) -> None:
        if self.num_perm < 1 or self.bands < 1 or self.rows < 1:
            raise ValueError("num_perm, bands and rows must be positive")
        if self.bands * self.rows > self.num_perm:
            raise ValueError("bands * rows must not exceed num_perm")
        if not 0.0 < self.threshold <= 1.0:
            raise ValueError("threshold must be in (0, 1]")
        if self.shingle_size < 1 or self.min_shingles < 1 or self.max_ids_per_band < 1:
            raise ValueError("shingle_size, min_shingles and max_ids_per_band must be positive")
        if self.hash_bits not in (16, 32):
            raise ValueError("hash_bits must be 16 or 32")

    @property
    def tag(self) -> int:
        """Seed of the band-key hash: signatures of two configurations never share a band key."""
        spec = f"v1/{self.num_perm}/{self.rows}/{self.shingle_size}/{self.seed}/{self.hash_bits}"
        return xxhash.xxh64_intdigest(spec.encode())

    @property
    def dtype(self) -> str:
        return "<u2" if self.hash_bits == 16 else "<u4"


DEFAULT_NEAR_DUP = NearDupConfig()


def shingles(text: str, size: int) -> set[bytes]:
    """Word shingles (``size`` consecutive tokens) of the normalised text, UTF-8 encoded.

    A text shorter than ``size`` tokens is one shingle; an empty one has none.
    """
    words = tokens(text)
    if len(words) <= size:
        return {" ".join(words).encode()} if words else set()
    return {" ".join(words[i : i + size]).encode() for i in range(len(words) - size + 1)}


@lru_cache(maxsize=8)
def _permutations(num_perm: int, seed: int) -> Any:
    from datasketch import MinHash  # imported here: datasketch pulls scipy, ~0.7 s

    return MinHash(num_perm=num_perm, seed=seed, scheme="affine32").permutations


def signature_of_shingles(
    shingle_set: set[bytes], config: NearDupConfig = DEFAULT_NEAR_DUP
) -> tuple[int, ...]:
    """MinHash of a shingle set (datasketch, affine32 scheme, xxh32 as the input hash).

    Each value keeps its low ``hash_bits`` bits (b-bit MinHash: two different minima agree by
    chance with probability 2**-hash_bits, a negligible bias at 16 bits). Too small a set gives
    the empty signature, which never matches anything.
    """
    if len(shingle_set) < config.min_shingles:
        return ()
    from datasketch import MinHash

    minhash = MinHash(
        num_perm=config.num_perm,
        seed=config.seed,
        hashfunc=xxhash.xxh32_intdigest,
        permutations=_permutations(config.num_perm, config.seed),
        scheme="affine32",
    )
    minhash.update_batch(shingle_set)
    values = minhash.hashvalues & np.uint32((1 << config.hash_bits) - 1)
    return tuple(values.tolist())


def signature(text: str, config: NearDupConfig = DEFAULT_NEAR_DUP) -> tuple[int, ...]:
    """MinHash signature of an article's text; ``()`` for texts too short to compare."""
    return signature_of_shingles(shingles(text, config.shingle_size), config)


def band_keys(sig: Sequence[int], config: NearDupConfig = DEFAULT_NEAR_DUP) -> list[str]:
    """One short, stable index key per LSH band: ``"b"`` + 8 base64url characters.

    The key is a 48-bit hash of (configuration, band number, the band's values). Two different
    bands meeting on one key by chance (about one pair among tens of millions of keys) only add
    a candidate, which the similarity estimate then rejects.
    """
    if not sig:
        return []
    if len(sig) != config.num_perm:
        raise ValueError(f"signature has {len(sig)} values, the config expects {config.num_perm}")
    width = config.rows * (config.hash_bits // 8)
    raw = np.asarray(sig[: config.bands * config.rows], dtype=config.dtype).tobytes()
    tag = config.tag
    digests = b"".join(
        xxhash.xxh3_64_digest(
            raw[band * width : (band + 1) * width], seed=(tag + band) & 0xFFFF_FFFF_FFFF_FFFF
        )[:6]
        for band in range(config.bands)
    )
    text = base64.urlsafe_b64encode(digests).decode()
    return ["b" + text[i : i + 8] for i in range(0, len(text), 8)]


def estimate_similarity(a: Sequence[int], b: Sequence[int]) -> float:
    """Estimated Jaccard similarity of the two shingle sets: the share of equal MinHash values."""
    if len(a) != len(b):
        raise ValueError("signatures of different lengths cannot be compared")
    if not a:
        return 0.0
    return sum(map(operator.eq, a, b)) / len(a)


def encode_signature(sig: Sequence[int], config: NearDupConfig = DEFAULT_NEAR_DUP) -> str:
    raw = np.asarray(sig, dtype=config.dtype).tobytes()
    return base64.b64encode(raw).decode().rstrip("=")


def decode_signature(text: str, config: NearDupConfig = DEFAULT_NEAR_DUP) -> tuple[int, ...]:
    raw = base64.b64decode(text + "=" * (-len(text) % 4))
    return tuple(np.frombuffer(raw, dtype=config.dtype).tolist())


# --- near duplicates: the index records -----------------------------------------------------

ARTICLE_PREFIX = "a"
BAND_PREFIX = "b"


def short_id(article_id: str) -> str:
    """11-character stand-in for an article id in keys and band records (64-bit hash)."""
    return base64.urlsafe_b64encode(xxhash.xxh3_64_digest(article_id.encode())).decode()[:11]


def article_key(article_id: str) -> str:
    """Index key of an article's record: ``"a"`` + its short id."""
    return ARTICLE_PREFIX + short_id(article_id)


def _timestamp(moment: datetime) -> int:
    return int(moment.timestamp())


def _from_timestamp(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)


@dataclass(frozen=True)
class IndexEntry:
    """One remembered article: its signature and the original it duplicates (itself if unique)."""

    article_id: str
    original_id: str
    signature: tuple[int, ...]
    seen_at: datetime
    similarity: float | None = None  # to the candidate that made it a duplicate

    def to_record(self, config: NearDupConfig = DEFAULT_NEAR_DUP) -> dict[str, Any]:
        record: dict[str, Any] = {
            "i": self.article_id,
            "s": encode_signature(self.signature, config),
            "t": _timestamp(self.seen_at),
        }
        if self.original_id != self.article_id:
            record["o"] = self.original_id
            record["m"] = self.similarity
        return record

    @classmethod
    def from_record(
        cls, record: Mapping[str, Any], config: NearDupConfig = DEFAULT_NEAR_DUP
    ) -> IndexEntry:
        return cls(
            article_id=record["i"],
            original_id=record.get("o") or record["i"],
            signature=decode_signature(record["s"], config),
            seen_at=_from_timestamp(record["t"]),
            similarity=record.get("m"),
        )


def record_time(record: Mapping[str, Any]) -> datetime:
    """When a record of either dedup table was written: an index record or a FirstSeen record."""
    if "t" in record:
        return _from_timestamp(record["t"])
    return FirstSeen.from_record(record).seen_at


def is_expired(record: Mapping[str, Any], now: datetime, retention: timedelta) -> bool:
    """True when a record of either table is past the retention window: sweep it away."""
    return now - record_time(record) > retention


class NearJudgement(NamedTuple):
    verdict: DedupVerdict
    writes: dict[str, dict[str, Any]]  # index key -> JSON record to store (set, not merge)


def judge_near(
    sig: Sequence[int],
    keys: Sequence[str],
    index: Mapping[str, Any],
    article_id: str,
    now: datetime,
    retention: timedelta,
    config: NearDupConfig = DEFAULT_NEAR_DUP,
    eligible: bool = True,
) -> NearJudgement:
    """Decide whether an article is a near duplicate of one in the index; say what to remember.

    ``sig`` and ``keys`` come from ``signature`` and ``band_keys``; ``index`` is read with
    ``.get`` only. The candidate with the highest estimated similarity at or above the threshold
    wins (ties: the earliest seen), and ``duplicate_of`` is that candidate's original. A
    redelivered article (its own record is in the index) gets its first verdict again and writes
    nothing. Ineligible or too-short articles are never duplicates nor originals. Records older
    than ``retention`` are ignored.
    """
    if not eligible or not sig:
        return NearJudgement(UNIQUE, {})

    def live(entry: IndexEntry | None) -> bool:
        return entry is not None and now - entry.seen_at <= retention

    me = short_id(article_id)
    own = index.get(ARTICLE_PREFIX + me)
    if own is not None and not is_expired(own, now, retention):
        if own.get("o"):
            return NearJudgement(DedupVerdict("near_duplicate", own["o"], own.get("m"), None), {})
        return NearJudgement(UNIQUE, {})

    bands: dict[str, list[str]] = {}
    entries: dict[str, IndexEntry | None] = {}  # short id -> its record, None when missing
    for key in keys:
        record = index.get(key)
        members = list(record["a"]) if record else []
        bands[key] = members
        for member in members:
            if member != me and member not in entries:
                stored = index.get(ARTICLE_PREFIX + member)
                entries[member] = None if stored is None else IndexEntry.from_record(stored, config)

    best: IndexEntry | None = None
    best_similarity = 0.0
    for entry in entries.values():
        if entry is None or not live(entry) or entry.original_id == article_id:
            continue
        similarity = estimate_similarity(sig, entry.signature)
        if similarity < config.threshold:
            continue
        if best is None or (-similarity, entry.seen_at, entry.article_id) < (
            -best_similarity,
            best.seen_at,
            best.article_id,
        ):
            best, best_similarity = entry, similarity

    if best is None:
        verdict, original, similarity_out = UNIQUE, article_id, None
    else:
        similarity_out = round(best_similarity, 4)
        verdict = DedupVerdict("near_duplicate", best.original_id, similarity_out, None)
        original = best.original_id

    entry = IndexEntry(article_id, original, tuple(sig), now, similarity_out)
    writes: dict[str, dict[str, Any]] = {ARTICLE_PREFIX + me: entry.to_record(config)}
    stamp = _timestamp(now)
    for key, members in bands.items():
        kept: list[str] = []
        covered = False
        for member in members:
            stored_entry = entries.get(member)
            if member == me or (stored_entry is not None and not live(stored_entry)):
                continue  # expired ids leave the band when it is next written
            if stored_entry is not None and stored_entry.original_id == original:
                covered = True  # the band already leads to this story: no need to add me
                break
            kept.append(member)  # a missing record may be replication lag: keep the id
        if not covered:
            kept.append(me)
            writes[key] = {"a": kept[-config.max_ids_per_band :], "t": stamp}
    return NearJudgement(verdict, writes)


# --- both, in the order the agent needs -----------------------------------------------------


class Judgement(NamedTuple):
    verdict: DedupVerdict
    remember_exact: FirstSeen | None  # store under the fingerprint (None: leave as is)
    index_writes: dict[str, dict[str, Any]]  # store in the near-duplicate index


def judge(
    previous: FirstSeen | None,
    sig: Sequence[int],
    keys: Sequence[str],
    index: Mapping[str, Any],
    article_id: str,
    now: datetime,
    retention: timedelta,
    config: NearDupConfig = DEFAULT_NEAR_DUP,
    eligible: bool = True,
) -> Judgement:
    """Exact path first, then the near-duplicate index.

    - A redelivered article gets its first near verdict back (its own index record decides).
    - A copy of a text seen before is reported from the fingerprint and writes nothing.
    - A near duplicate's fingerprint is remembered as pointing at its ORIGINAL with its
      similarity, so a later exact copy of the near copy is a near duplicate of the original
      (same similarity): ``exact_duplicate`` always names an article with the same text.
    """
    if not eligible:
        return Judgement(UNIQUE, None, {})
    own = index.get(article_key(article_id)) if sig else None
    if own is not None and not is_expired(own, now, retention):
        near = judge_near(sig, keys, index, article_id, now, retention, config)
        return Judgement(near.verdict, None, {})
    exact = judge_exact(previous, article_id, now, retention)
    if exact.duplicate_of is not None:
        return Judgement(exact, None, {})
    near = judge_near(sig, keys, index, article_id, now, retention, config)
    remember = exact.remember
    if remember is not None and near.verdict.duplicate_of is not None:
        remember = FirstSeen(near.verdict.duplicate_of, now, near.verdict.similarity)
    return Judgement(near.verdict, remember, near.writes)


# --- forgetting: the sweep ------------------------------------------------------------------


@dataclass(frozen=True)
class SweepPosition:
    """Where a sweep pass over one table stands."""

    after: str | None = None  # the next step examines the keys after this one; None: from the first
    kept: int = 0  # live keys the pass has examined so far


class SweepStep(NamedTuple):
    expired: list[str]  # keys past the retention window: delete them
    position: SweepPosition  # where the next step starts
    remembered: int | None  # live keys counted by the pass this step ended; None mid-pass


def sweep_step(
    items: Iterable[tuple[str, Mapping[str, Any]]],
    position: SweepPosition,
    now: datetime,
    retention: timedelta,
    budget: int,
) -> SweepStep:
    """Examine at most ``budget`` (key, record) items of a dedup table; name the expired keys.

    ``items`` are the table's items after ``position.after``, in the store's key order, records
    of either table. Only ``budget`` of them are read, so a big table costs a bounded time per
    step; the caller deletes the keys after the step, never while iterating. A step that runs out
    of items ends the pass: it reports the live keys the pass counted (keys written behind the
    position meanwhile are not among them) and the next pass starts from the first key.
    """
    if budget < 1:
        raise ValueError("budget must be positive")
    expired: list[str] = []
    examined = 0
    last = position.after
    for key, record in itertools.islice(items, budget):
        examined += 1
        last = key
        if is_expired(record, now, retention):
            expired.append(key)
    kept = position.kept + examined - len(expired)
    if examined < budget:
        return SweepStep(expired, SweepPosition(), kept)
    return SweepStep(expired, SweepPosition(last, kept), None)
