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


@contextmanager
def progress_bar(total: int, description: str) -> Iterator[_Bar]:
    """A bar of `total` steps labelled `description` (plain text: 'model [untrained]' shows as it
    is, never read as markup), transient, on stderr; a no-op when progress is off."""
    if not progress_enabled():
        yield _Bar(None, None)
        return
    from rich.markup import escape
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    with Progress(
        TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
        transient=True,
    ) as progress:
        yield _Bar(progress, progress.add_task(escape(description), total=total))
