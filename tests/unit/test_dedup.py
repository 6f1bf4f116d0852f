from datetime import datetime, timedelta, timezone

from pipeline.stages.dedup import FirstSeen, fingerprint, judge_exact

NOW = datetime(2026, 11, 23, tzinfo=timezone.utc)
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
    assert (verdict.status, verdict.duplicate_of, verdict.similarity) == ("exact_duplicate", "a", 1.0)
    assert verdict.remember is None


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
