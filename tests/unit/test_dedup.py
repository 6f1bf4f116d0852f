import json
from datetime import UTC, datetime, timedelta

import pytest

from pipeline.stages.dedup import (
    DEFAULT_NEAR_DUP,
    FirstSeen,
    IndexEntry,
    NearDupConfig,
    SweepPosition,
    article_key,
    band_keys,
    estimate_similarity,
    fingerprint,
    is_expired,
    judge,
    judge_exact,
    judge_near,
    normalise_for_fingerprint,
    shingles,
    short_id,
    signature,
    sweep_step,
    tokens,
)

NOW = datetime(2026, 11, 23, tzinfo=UTC)
WEEK = timedelta(days=7)


def test_fingerprint_ignores_whitespace_quotes_case_and_punctuation():
    a = "Kim Jong Un “devrait” rencontrer   Poutine.\n\nLundi, Watson a dit."
    b = 'kim jong un "devrait" rencontrer Poutine\nLundi Watson a dit'
    assert fingerprint(a) == fingerprint(b)


def test_fingerprint_changes_with_the_words():
    assert fingerprint("Kim meets Putin") != fingerprint("Kim meets Biden")


def test_first_copy_is_unique_and_remembered():
    verdict = judge_exact(None, "a", NOW, WEEK)
    assert (verdict.status, verdict.duplicate_of) == ("unique", None)
    assert verdict.remember == FirstSeen("a", NOW)


def test_second_copy_points_at_the_first():
    verdict = judge_exact(FirstSeen("a", NOW), "b", NOW + timedelta(hours=1), WEEK)
    assert (verdict.status, verdict.duplicate_of, verdict.similarity) == (
        "exact_duplicate",
        "a",
        1.0,
    )
    assert verdict.remember is None


def test_a_copy_of_a_near_copy_is_a_near_duplicate_of_the_original():
    near_copy = FirstSeen("a", NOW, 0.82)  # the text first came as a near copy of "a"
    assert FirstSeen.from_record(near_copy.to_record()) == near_copy
    assert "similarity" not in FirstSeen("a", NOW).to_record()  # records written before it
    verdict = judge_exact(near_copy, "c", NOW + timedelta(hours=1), WEEK)
    assert (verdict.status, verdict.duplicate_of, verdict.similarity) == (
        "near_duplicate",
        "a",
        0.82,
    )


def test_redelivery_of_the_original_is_not_its_own_duplicate():
    verdict = judge_exact(FirstSeen("a", NOW), "a", NOW, WEEK)
    assert verdict.status == "unique" and verdict.remember is None


def test_memory_older_than_retention_is_forgotten():
    verdict = judge_exact(FirstSeen("a", NOW), "b", NOW + WEEK + timedelta(seconds=1), WEEK)
    assert verdict.status == "unique"
    assert verdict.remember == FirstSeen("b", NOW + WEEK + timedelta(seconds=1))


def test_ineligible_pages_are_never_originals_nor_duplicates():
    assert judge_exact(FirstSeen("a", NOW), "b", NOW, WEEK, eligible=False).status == "unique"
    assert judge_exact(None, "b", NOW, WEEK, eligible=False).remember is None


# --- normalisation and shingles -------------------------------------------------------------


def test_normalisation_keeps_combining_marks_and_drops_invisible_characters():
    # Devanagari vowel signs and the virama are marks: the words must stay whole.
    assert normalise_for_fingerprint("हिंदी समाचार।") == "हिंदी समाचार"
    assert normalise_for_fingerprint("infor\u00admation zero\u200bwidth a_b") == (
        "information zerowidth a b"
    )


def test_tokens_are_words_or_characters_of_unspaced_scripts():
    assert tokens("The Prime-Minister's “visit”") == ["the", "prime", "minister", "s", "visit"]
    assert tokens("DeepMind新电脑 已可") == ["deepmind", "新", "电", "脑", "已", "可"]
    assert tokens("ไก่ทอง") == ["ไ", "ก่", "ท", "อ", "ง"]


def test_shingles_are_consecutive_words_of_the_normalised_text():
    assert shingles("A b, C d!", 3) == {b"a b c", b"b c d"}
    assert shingles("Two words", 3) == {b"two words"}
    assert shingles(" \n ", 3) == set()


# --- signatures and band keys ---------------------------------------------------------------

ORIGINAL_PARAGRAPHS = [
    (
        "Dockworkers at the port of Valmora walked off the job on Tuesday morning, halting the "
        "loading of container ships for the first time in nearly two decades and leaving dozens of "
        "vessels waiting at anchor outside the harbour breakwater."
    ),
    (
        "The union representing about four thousand crane operators, lashers and truck drivers said "
        "the strike would last at least three days unless the port authority reopened talks on a "
        "pay offer that members rejected by a large majority last month."
    ),
    (
        "Port director Elena Marsh told reporters that the authority had made a fair proposal and "
        "accused union leaders of holding the regional economy hostage at the busiest time of the "
        "year, when retailers import most of their holiday stock."
    ),
    (
        "Shipping lines began diverting cargo to the smaller terminals at Carrow Bay and Istelle, "
        "where managers warned that storage yards would be full within forty eight hours if the "
        "dispute dragged on into the weekend."
    ),
    (
        "Economists at the national bank estimated that each day of stoppage would cost exporters "
        "roughly sixty million in delayed shipments, with fruit growers and car parts makers the "
        "most exposed because of tight delivery schedules."
    ),
    (
        "The transport minister urged both sides to accept mediation and said the government was "
        "ready to appoint an independent arbitrator, but stopped short of threatening emergency "
        "legislation to force the workers back to the quays."
    ),
    (
        "Picket lines remained calm through the afternoon as families brought food to the gates and "
        "passing motorists sounded their horns in support of the strikers."
    ),
]
TITLE = "Valmora dockworkers strike over pay, ships wait at anchor"
ORIGINAL = "\n\n".join([TITLE, *ORIGINAL_PARAGRAPHS])

# Same port, same people, a different story.
DISTINCT = "\n\n".join(  # noqa: FLY002
    [
        "Valmora port authority approves new container terminal",
        (
            "The port authority of Valmora approved on Friday the construction of a fourth container "
            "terminal on reclaimed land north of the harbour, a project expected to double capacity "
            "by the end of the decade."
        ),
        (
            "Port director Elena Marsh said the expansion would create about two thousand jobs and "
            "allow the largest ships now sailing between Asia and Europe to call at the port without "
            "waiting for the tide."
        ),
        (
            "Environmental groups criticised the plan, saying dredging the approach channel would "
            "destroy seagrass meadows that shelter young fish, and announced they would challenge "
            "the decision in court."
        ),
        (
            "Shipping lines welcomed the decision, and the union representing dockworkers said it "
            "would seek guarantees that new jobs at the terminal are covered by the existing "
            "collective agreement."
        ),
        (
            "Construction is due to start next spring, once the transport ministry signs off on the "
            "financing package negotiated with three regional banks."
        ),
    ]
)

CHROME_HEAD = [
    "Home | World | Business | Markets | Sport | Culture",
    "Share on Facebook Share on X Send by email",
    "Published 23 November 2026 Updated 10:42",
]
CHROME_FOOT = [
    "Read more: the latest business news",
    "Sign up to our newsletter for the top stories every morning",
    "© 2026 The Coastal Herald. All rights reserved.",
]


def _join(title: str, paragraphs: list[str]) -> str:
    return "\n\n".join([title, *paragraphs])


def _edit(paragraph: str, replacements: dict[str, str]) -> str:
    for old, new in replacements.items():
        assert old in paragraph
        paragraph = paragraph.replace(old, new, 1)
    return paragraph


EDITS = [
    {"Tuesday": "Wednesday", "nearly": "almost"},
    {"four thousand": "4,000", "members": "workers"},
    {"told reporters": "said", "busiest": "busyest"},
    {"forty eight": "48", "managers": "officials"},
    {"roughly": "about", "tight": "strict"},
    {"urged": "called on", "threatening": "threatning"},
    {"calm": "peaceful"},
]

COPIES = {
    "chrome": _join(TITLE, CHROME_HEAD + ORIGINAL_PARAGRAPHS + CHROME_FOOT),
    "headline": _join("Ships pile up off Valmora as port strike begins", ORIGINAL_PARAGRAPHS),
    "cut_tail": _join(TITLE, ORIGINAL_PARAGRAPHS[:5]),
    "small_edits": _join(TITLE, [_edit(p, e) for p, e in zip(ORIGINAL_PARAGRAPHS, EDITS)]),
    "reordered": _join(TITLE, [ORIGINAL_PARAGRAPHS[i] for i in (0, 2, 1, 4, 3, 6, 5)]),
    "headline+edits+reordered": _join(
        "Port strike halts Valmora",
        [_edit(p, e) for p, e in zip(ORIGINAL_PARAGRAPHS, EDITS)][::-1],
    ),
}


def _jaccard(a: str, b: str) -> float:
    x, y = shingles(a, DEFAULT_NEAR_DUP.shingle_size), shingles(b, DEFAULT_NEAR_DUP.shingle_size)
    return len(x & y) / len(x | y)


def test_signature_is_deterministic_b_bit_minhash():
    sig = signature(ORIGINAL)
    assert sig == signature(ORIGINAL)
    assert len(sig) == DEFAULT_NEAR_DUP.num_perm
    assert all(0 <= v < 2**16 for v in sig)
    assert signature(ORIGINAL.upper().replace(",", " ")) == sig  # normalised first


def test_texts_too_short_to_compare_get_no_signature_and_no_band_keys():
    assert signature("Breaking news") == ()
    assert band_keys(()) == []


def test_band_keys_are_short_stable_and_one_per_band():
    keys = band_keys(signature(ORIGINAL))
    assert len(keys) == len(set(keys)) == DEFAULT_NEAR_DUP.bands
    assert all(k.startswith("b") and len(k) == 9 for k in keys)
    assert band_keys(signature(ORIGINAL)) == keys
    other = NearDupConfig(seed=2)
    assert not set(band_keys(signature(ORIGINAL, other), other)) & set(keys)


def test_estimate_tracks_the_true_jaccard_similarity():
    assert estimate_similarity(signature(ORIGINAL), signature(ORIGINAL)) == 1.0
    for text in [*COPIES.values(), DISTINCT]:
        estimate = estimate_similarity(signature(ORIGINAL), signature(text))
        assert abs(estimate - _jaccard(ORIGINAL, text)) < 0.12


def test_config_is_validated():
    with pytest.raises(ValueError):
        NearDupConfig(num_perm=64, bands=32, rows=4)
    with pytest.raises(ValueError):
        NearDupConfig(threshold=0)
    with pytest.raises(ValueError):
        NearDupConfig(hash_bits=8)


# --- the near-duplicate verdict -------------------------------------------------------------


class Index(dict):
    """The index as the agent holds it: JSON values, read with .get, written by the caller."""

    def apply(self, writes: dict) -> None:
        for key, value in writes.items():
            self[key] = json.loads(json.dumps(value))


def _near(index: Index, article_id: str, text: str, now: datetime = NOW, **kwargs):
    sig = signature(text)
    result = judge_near(sig, band_keys(sig), index, article_id, now, WEEK, **kwargs)
    index.apply(result.writes)
    return result


@pytest.mark.parametrize("kind", sorted(COPIES))
def test_each_kind_of_copy_is_a_near_duplicate_of_the_original(kind):
    index = Index()
    assert _near(index, "orig", ORIGINAL).verdict.status == "unique"
    verdict = _near(index, f"copy-{kind}", COPIES[kind], NOW + timedelta(hours=1)).verdict
    assert verdict.status == "near_duplicate"
    assert verdict.duplicate_of == "orig"
    assert DEFAULT_NEAR_DUP.threshold <= verdict.similarity < 1.0


def test_a_distinct_article_on_the_same_topic_is_not_a_duplicate():
    index = Index()
    _near(index, "orig", ORIGINAL)
    result = _near(index, "other", DISTINCT)
    assert result.verdict.status == "unique"
    assert estimate_similarity(signature(ORIGINAL), signature(DISTINCT)) < 0.1
    assert article_key("other") in result.writes  # remembered as an original of its own


def test_records_are_small_json():
    index = Index()
    writes = _near(index, "orig", ORIGINAL).writes
    assert json.loads(json.dumps(writes)) == writes
    assert set(writes) == {article_key("orig"), *band_keys(signature(ORIGINAL))}
    size = sum(len(k) + len(json.dumps(v, separators=(",", ":"))) for k, v in writes.items())
    assert size < 2500
    entry = IndexEntry.from_record(writes[article_key("orig")])
    assert entry.signature == signature(ORIGINAL) and entry.original_id == "orig"


def test_redelivery_is_not_its_own_duplicate_and_repeats_the_first_verdict():
    index = Index()
    _near(index, "orig", ORIGINAL)
    again = _near(index, "orig", ORIGINAL, NOW + timedelta(minutes=5))
    assert again.verdict.status == "unique" and again.writes == {}

    first = _near(index, "copy", COPIES["cut_tail"], NOW + timedelta(hours=1))
    redelivered = _near(index, "copy", COPIES["cut_tail"], NOW + timedelta(hours=2))
    assert redelivered.verdict == first.verdict and redelivered.writes == {}


def test_an_original_whose_record_is_gone_is_not_a_duplicate_of_its_own_copies():
    index = Index()
    _near(index, "orig", ORIGINAL)
    _near(index, "copy", COPIES["headline"], NOW + timedelta(hours=1))
    del index[article_key("orig")]  # swept, or not replicated yet
    assert _near(index, "orig", ORIGINAL, NOW + timedelta(hours=2)).verdict.status == "unique"


def test_entries_past_retention_are_ignored_and_reported_expired():
    index = Index()
    writes = _near(index, "orig", ORIGINAL).writes
    later = NOW + WEEK + timedelta(seconds=1)
    verdict = _near(index, "copy", COPIES["chrome"], later).verdict
    assert verdict.status == "unique"
    assert all(is_expired(value, later, WEEK) for value in writes.values())
    assert not is_expired(index[article_key("copy")], later, WEEK)
    within = _near(Index(index), "copy2", COPIES["chrome"], NOW + WEEK).verdict
    assert within.status == "near_duplicate"


def test_ineligible_articles_are_never_originals_nor_duplicates():
    index = Index()
    wall = _near(index, "wall", ORIGINAL, eligible=False)
    assert wall.verdict.status == "unique" and wall.writes == {}
    assert _near(index, "copy", COPIES["chrome"]).verdict.status == "unique"
    assert _near(index, "wall2", COPIES["headline"], eligible=False).verdict.status == "unique"


def test_a_copy_of_a_copy_points_at_the_first_article_seen():
    index = Index()
    _near(index, "orig", ORIGINAL)
    assert _near(index, "copy", COPIES["small_edits"]).verdict.duplicate_of == "orig"
    # The original's record is gone (e.g. swept by another worker): the copy's record still
    # names the original, so a copy reached only through the first copy follows it there.
    del index[article_key("orig")]
    later = COPIES["small_edits"].replace("Picket lines", "Pickets")
    verdict = _near(index, "copy2", later).verdict
    assert (verdict.status, verdict.duplicate_of) == ("near_duplicate", "orig")


def test_the_most_similar_candidate_wins():
    index = Index()
    _near(index, "distinct", DISTINCT)
    _near(index, "orig", ORIGINAL)
    verdict = _near(index, "copy", COPIES["reordered"]).verdict
    assert verdict.duplicate_of == "orig"


def test_a_copy_writes_only_bands_its_story_does_not_reach_yet():
    index = Index()
    first = _near(index, "orig", ORIGINAL)
    copy = _near(index, "copy", COPIES["headline"])
    bands = [k for k in copy.writes if k != article_key("copy")]
    assert article_key("copy") in copy.writes
    assert len(bands) < len(first.writes) - 1
    shared = [k for k in band_keys(signature(ORIGINAL)) if k not in bands]
    assert shared and all(index[k]["a"] == [short_id("orig")] for k in shared)


def test_band_records_keep_a_bounded_number_of_ids():
    config = NearDupConfig(max_ids_per_band=2)
    index = Index()
    sig = signature(ORIGINAL, config)
    keys = band_keys(sig, config)
    # Three unrelated articles claiming the same band (forged records, as after hash collisions).
    for number in range(3):
        index[article_key(f"x{number}")] = IndexEntry(
            f"x{number}", f"x{number}", tuple(range(config.num_perm)), NOW
        ).to_record(config)
    index[keys[0]] = {"a": [short_id(f"x{n}") for n in range(3)], "t": int(NOW.timestamp())}
    result = judge_near(sig, keys, index, "orig", NOW, WEEK, config)
    assert result.verdict.status == "unique"
    assert result.writes[keys[0]]["a"] == [short_id("x2"), short_id("orig")]


# --- exact and near together ----------------------------------------------------------------


class Memory:
    def __init__(self) -> None:
        self.exact: dict[str, FirstSeen] = {}
        self.index = Index()

    def judge(self, article_id: str, text: str, now: datetime = NOW, eligible: bool = True):
        key, sig = fingerprint(text), signature(text)
        result = judge(
            self.exact.get(key), sig, band_keys(sig), self.index, article_id, now, WEEK,
            eligible=eligible,
        )  # fmt: skip
        if result.remember_exact is not None:
            self.exact[key] = result.remember_exact
        self.index.apply(result.index_writes)
        return result.verdict


def test_exact_copies_are_exact_duplicates_and_near_copies_near_ones():
    memory = Memory()
    assert memory.judge("orig", ORIGINAL).status == "unique"
    exact = memory.judge("same", ORIGINAL.replace("\n\n", "\n"))
    assert (exact.status, exact.duplicate_of, exact.similarity) == ("exact_duplicate", "orig", 1.0)
    near = memory.judge("near", COPIES["cut_tail"])
    assert (near.status, near.duplicate_of) == ("near_duplicate", "orig")
    # An exact copy of the near copy points at the first article seen, as a near duplicate of
    # it with the near copy's similarity: exact_duplicate only ever names the same text.
    again = memory.judge("near-again", COPIES["cut_tail"])
    assert (again.status, again.duplicate_of) == ("near_duplicate", "orig")
    assert again.similarity == near.similarity
    # Redeliveries repeat their first verdict.
    assert memory.judge("near", COPIES["cut_tail"]) == near
    assert memory.judge("orig", ORIGINAL).status == "unique"
    assert memory.judge("other", DISTINCT).status == "unique"


def test_an_ineligible_page_never_becomes_the_original():
    memory = Memory()
    assert memory.judge("wall", ORIGINAL, eligible=False).status == "unique"
    assert memory.judge("orig", ORIGINAL).status == "unique"
    assert memory.judge("copy", COPIES["chrome"]).duplicate_of == "orig"


def test_full_width_values_round_trip_through_the_record():
    config = NearDupConfig(hash_bits=32)
    sig = signature(ORIGINAL, config)
    assert max(sig) >= 2**16
    entry = IndexEntry("orig", "orig", sig, NOW)
    assert IndexEntry.from_record(entry.to_record(config), config) == entry
    index = Index()
    index.apply(judge_near(sig, band_keys(sig, config), index, "orig", NOW, WEEK, config).writes)
    copy = signature(COPIES["cut_tail"], config)
    verdict = judge_near(copy, band_keys(copy, config), index, "copy", NOW, WEEK, config).verdict
    assert verdict.duplicate_of == "orig"


def test_first_seen_round_trips_through_its_table_record():
    first = FirstSeen("a", NOW)
    assert FirstSeen.from_record(first.to_record()) == first


# --- forgetting: the sweep ------------------------------------------------------------------


def _items_after(table: dict, after: str | None):
    """Key order after ``after``, as pipeline.app.table_items_after reads a Faust table."""
    return ((key, table[key]) for key in sorted(table) if after is None or key > after)


def _sweep_pass(table: dict, now: datetime, budget: int, retention: timedelta = WEEK):
    """Steps until a pass ends, deleting after each step as the agent does."""
    position, swept, steps = SweepPosition(), [], 0
    while True:
        step = sweep_step(_items_after(table, position.after), position, now, retention, budget)
        steps += 1
        for key in step.expired:
            del table[key]
        swept += step.expired
        position = step.position
        if step.remembered is not None:
            return swept, step.remembered, steps


def test_sweep_names_expired_records_of_both_tables_and_keeps_live_ones():
    later = NOW + WEEK + timedelta(seconds=1)
    fingerprints = {
        fingerprint("old story"): FirstSeen("old", NOW).to_record(),
        fingerprint("new story"): FirstSeen("new", NOW + timedelta(days=1)).to_record(),
    }
    index = Index()
    old_writes = _near(index, "orig", ORIGINAL).writes
    new_writes = _near(index, "other", DISTINCT, NOW + timedelta(days=1)).writes
    assert len(old_writes) == 43 and set(old_writes).isdisjoint(new_writes)

    step = sweep_step(_items_after(fingerprints, None), SweepPosition(), later, WEEK, budget=100)
    assert step.expired == [fingerprint("old story")]
    assert (step.position, step.remembered) == (SweepPosition(), 1)

    step = sweep_step(_items_after(index, None), SweepPosition(), later, WEEK, budget=100)
    assert sorted(step.expired) == sorted(old_writes)
    assert step.remembered == len(new_writes)


def test_sweep_reads_at_most_the_budget_and_resumes_after_the_last_key():
    table = {f"k{i:02}": {"t": int(NOW.timestamp()) - 10 * 86_400 * (i % 2)} for i in range(10)}
    seen: list[str] = []

    def reading(after: str | None):
        for key, record in _items_after(table, after):
            seen.append(key)
            yield key, record

    first = sweep_step(reading(None), SweepPosition(), NOW, WEEK, budget=4)
    assert seen == ["k00", "k01", "k02", "k03"]  # nothing read past the budget
    assert first.expired == ["k01", "k03"] and first.remembered is None
    assert first.position == SweepPosition("k03", kept=2)

    second = sweep_step(reading(first.position.after), first.position, NOW, WEEK, budget=4)
    assert seen[4:] == ["k04", "k05", "k06", "k07"]
    assert second.expired == ["k05", "k07"] and second.position.kept == 4

    last = sweep_step(reading(second.position.after), second.position, NOW, WEEK, budget=4)
    assert seen[8:] == ["k08", "k09"]
    assert last.expired == ["k09"]
    assert (last.position, last.remembered) == (SweepPosition(), 5)  # the pass is over


def test_a_pass_in_small_steps_forgets_exactly_what_one_big_step_would():
    later = NOW + WEEK + timedelta(hours=1)
    index = Index()
    for hours, (article_id, text) in enumerate([("orig", ORIGINAL), ("other", DISTINCT)]):
        _near(index, article_id, text, NOW + timedelta(hours=2 * hours))
    _near(index, "copy", COPIES["chrome"], NOW + timedelta(hours=3))
    big = Index(index)
    expected = sweep_step(_items_after(big, None), SweepPosition(), later, WEEK, len(big) + 1)

    swept, remembered, steps = _sweep_pass(index, later, budget=7)
    assert sorted(swept) == sorted(expected.expired) and len(swept) > 0
    assert remembered == expected.remembered == len(index)
    assert steps == len(big) // 7 + 1
    assert _sweep_pass(index, later, budget=7)[:2] == ([], len(index))  # nothing left to forget


def test_a_table_of_exactly_budget_keys_ends_its_pass_on_an_empty_step():
    table = {"a": FirstSeen("x", NOW).to_record(), "b": FirstSeen("y", NOW).to_record()}
    assert _sweep_pass(table, NOW, budget=2) == ([], 2, 2)


def test_keys_written_ahead_of_the_position_are_swept_in_the_same_pass():
    stale = {"t": int((NOW - 2 * WEEK).timestamp())}
    table = {"a": stale, "c": stale}
    first = sweep_step(_items_after(table, None), SweepPosition(), NOW, WEEK, budget=1)
    table["b"] = stale  # written between two steps, after the position
    table["0"] = stale  # ... and before it: left for the next pass
    second = sweep_step(_items_after(table, first.position.after), first.position, NOW, WEEK, 5)
    assert (first.expired, second.expired, second.remembered) == (["a"], ["b", "c"], 0)


def test_sweeping_never_changes_a_verdict():
    later = NOW + WEEK + timedelta(minutes=30)
    index = Index()
    _near(index, "orig", ORIGINAL)
    _near(index, "recent", DISTINCT, NOW + timedelta(hours=1))
    swept = Index(index)
    _sweep_pass(swept, later, budget=5)
    assert len(swept) < len(index)
    for article_id, text in [("c1", COPIES["chrome"]), ("c2", DISTINCT), ("orig", ORIGINAL)]:
        sig = signature(text)
        before = judge_near(sig, band_keys(sig), index, article_id, later, WEEK)
        after = judge_near(sig, band_keys(sig), swept, article_id, later, WEEK)
        assert after.verdict == before.verdict, article_id


def test_sweep_budget_must_be_positive():
    with pytest.raises(ValueError, match="budget"):
        sweep_step(iter([]), SweepPosition(), NOW, WEEK, budget=0)
