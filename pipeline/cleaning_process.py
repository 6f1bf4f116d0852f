"""HTML extraction in a child process with a time limit.

trafilatura and lxml run in native code: a pathological page (200,000 nested inline tags, a
table of 50,000 rows) takes many seconds and cannot be interrupted in a thread. In a child
process it can: past `time_limit` the child is killed, the article goes to the DLQ as
`stage_timeout`, and the next page gets a new child (`pipeline.child_process`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pipeline.child_process import ChildProcess
from pipeline.stages.clean import CleanedArticle, clean_html


class HtmlCleaningProcess:
    """`clean_html` with the signature of `pipeline.stages.clean.clean_html`, in a child."""

    def __init__(self, time_limit: float) -> None:
        self._time_limit = time_limit
        self._child = ChildProcess("HTML cleaning", _ready)

    @property
    def pid(self) -> int | None:
        return self._child.pid

    def start(self) -> None:
        self._child.start()

    def clean_html(
        self, html: str, url: str | None, title: str | None, *, max_chars: int
    ) -> CleanedArticle:
        cleaned: CleanedArticle = self._child.call((html, url, title, max_chars), self._time_limit)
        return cleaned

    def close(self) -> None:
        self._child.close()


def _ready() -> tuple[Callable[[Any], CleanedArticle], None]:
    # trafilatura loads parts of itself on its first page: not within an article's time limit.
    clean_html(
        "<html><body><article><p>Ready.</p></article></body></html>", None, None, max_chars=1_000
    )
    return _clean, None


def _clean(request: tuple[str, str | None, str | None, int]) -> CleanedArticle:
    html, url, title, max_chars = request
    return clean_html(html, url, title, max_chars=max_chars)
