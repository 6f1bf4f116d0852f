"""Installed, not editable: state (the local broker, the workers' tables, the demo's log) never
lands in the package, and the package carries every file it reads."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

import pipeline
from pipeline.kafka_local import default_state_dir
from pipeline.paths import state_root
from pipeline.settings import Settings
from tests.conftest import REPO_ROOT

PACKAGE_DIR = Path(pipeline.__file__).resolve().parent


@pytest.fixture
def elsewhere(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A current directory unrelated to the package, without PIPELINE_STATE_DIR."""
    monkeypatch.delenv("PIPELINE_STATE_DIR", raising=False)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_default_state_is_var_under_the_current_directory(elsewhere: Path) -> None:
    assert state_root() == elsewhere / "var"
    assert Settings().state_dir == elsewhere / "var"
    assert default_state_dir() == elsewhere / "var" / "kafka"


def test_state_dir_variable_wins(elsewhere: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PIPELINE_STATE_DIR", str(elsewhere / "state"))
    assert state_root() == elsewhere / "state"
    assert Settings().state_dir == elsewhere / "state"
    assert default_state_dir() == elsewhere / "state" / "kafka"


def test_a_relative_state_dir_is_made_absolute(
    elsewhere: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Absolute at once, so a later chdir (the broker's launch, Faust) cannot move it.
    monkeypatch.setenv("PIPELINE_STATE_DIR", "state")
    assert state_root() == elsewhere / "state"


def test_no_state_path_is_inside_the_package(elsewhere: Path) -> None:
    for path in (state_root(), Settings().state_dir, default_state_dir()):
        assert not path.resolve().is_relative_to(PACKAGE_DIR), path


def test_every_file_the_package_reads_is_package_data() -> None:
    pyproject = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())
    declared = set(pyproject["tool"]["setuptools"]["package-data"]["pipeline"])
    data_files = {
        path.relative_to(PACKAGE_DIR).as_posix()
        for path in PACKAGE_DIR.rglob("*")
        if path.is_file() and path.suffix not in {".py", ".pyc"}
    }
    assert data_files <= declared, data_files - declared
