"""Progress bars on a terminal, silence elsewhere (non-tty, --quiet, tests)."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager

_enabled: bool | None = None  # None: decide from whether stderr is a terminal


def set_progress(enabled: bool | None) -> None:
    """Force progress bars on/off (the CLI's --quiet), or None to follow the terminal."""
    global _enabled
    _enabled = enabled


def progress_enabled() -> bool:
    return sys.stderr.isatty() if _enabled is None else _enabled


class _Bar:
    def __init__(self, progress, task):
        self._progress, self._task = progress, task

    def advance(self, n: int = 1) -> None:
        if self._progress is not None:
            self._progress.advance(self._task, n)

    def describe(self, text: str) -> None:
        """Replace the bar's description (e.g. a sweep's done / running / failed / skipped counts)."""
        if self._progress is not None:
            self._progress.update(self._task, description=text)


@contextmanager
def progress_bar(total: int, description: str, eta: bool = False) -> Iterator[_Bar]:
    if not progress_enabled():
        yield _Bar(None, None)
        return
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    with Progress(
        TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
        *([TimeRemainingColumn()] if eta else []), transient=True,
    ) as progress:
        yield _Bar(progress, progress.add_task(description, total=total))
