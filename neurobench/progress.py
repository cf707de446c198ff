"""Progress bars on a terminal, silence elsewhere (non-tty, --quiet, tests).

Bars nest: a bar opened while another is showing (a layer's ridge fits inside a benchmark's layer
loop, an extraction inside a comparison) is one more line of the same live display, removed when
its work is done."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager

_enabled: bool | None = None  # None: decide from whether stderr is a terminal
_live = None  # the rich Progress showing now (shared by nested bars)
_depth = 0


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
            from rich.markup import escape

            self._progress.update(self._task, description=escape(text))


@contextmanager
def progress_bar(total: int, description: str, eta: bool = False) -> Iterator[_Bar]:
    """A bar of `total` steps labelled `description` (plain text: 'model [untrained]' shows as it
    is, never read as markup), transient, on stderr; a no-op when progress is off. `eta`: show the
    time remaining (taken when the outermost bar opens)."""
    global _live, _depth
    if not progress_enabled():
        yield _Bar(None, None)
        return
    from rich.markup import escape
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    if _live is None:
        _live = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                         *([TimeRemainingColumn()] if eta else []), transient=True)
        _live.start()
    progress = _live
    _depth += 1
    task = progress.add_task(escape(description), total=total)
    try:
        yield _Bar(progress, task)
    finally:
        progress.remove_task(task)
        _depth -= 1
        if _depth == 0:
            progress.stop()
            _live = None
