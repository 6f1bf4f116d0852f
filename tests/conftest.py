from __future__ import annotations

from pathlib import Path

# hypothesis's pytest plugin imports this module when the session ends; CPython 3.11.7 fails to
# compile a module imported after a test has hit a RecursionError (gh-106905), so load it first.
import hypothesis.internal.observability  # noqa: F401
import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
# What the tests read, with its origin and licence: tests/data/README.md.
TEST_DATA = REPO_ROOT / "tests" / "data"
SEED_PATH = TEST_DATA / "seed" / "000_1a9e3e07799cbb39.txt"


@pytest.fixture(scope="session")
def seed_text() -> str:
    return SEED_PATH.read_text(encoding="utf-8")
