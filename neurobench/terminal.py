"""Terminal output that fits: tables laid out for the console's width without ever splitting a
number, and the machine-readable formats every listing command shares.

Width: a terminal's own width; when piped, `COLUMNS` if set, else 80 (rich's rule). A table whose
columns cannot all fit keeps its columns from the left (the first column, the row's name, always)
and drops the others whole, saying which were dropped (`--format json` has every column). A cell
holding a number never wraps; text cells fold, headers wrap at spaces (underscores are shown as
spaces in table headers).

Formats (`--format`): `table` (rich, for people), `json` (JSON Lines: one JSON object per row,
keys are the column names, NaN written as null), `csv`, `markdown`.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
import re
import sys
from collections.abc import Sequence

from rich.console import Console
from rich.markup import escape
from rich.table import Table
from rich.text import Text

FORMATS = ("table", "json", "csv", "markdown")

_NUMBER = re.compile(r"^[-+]?(\d+(\.\d*)?|\.\d+)([eE][-+]?\d+)?%?$|^-$|^nan$|^inf$")
# rich's default table: a border of 1 plus, per column, 1 separator and a padding of 1 each side
_EDGE, _PER_COLUMN = 1, 3
_MIN_TEXT = 10  # narrowest a text column is folded to


def console(stderr: bool = False) -> Console:
    """A console for stdout (or stderr): the terminal's width, or `COLUMNS` / 80 when piped."""
    stream = sys.stderr if stderr else sys.stdout
    width = None
    if not stream.isatty():
        try:
            width = max(20, int(os.environ.get("COLUMNS", "80")))
        except ValueError:
            width = 80
    return Console(stderr=stderr, width=width)


def cell_text(x, digits: int = 4) -> str:
    """How a value is shown: floats with `digits` decimals, None/NaN as '-'."""
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "-"
    if isinstance(x, bool):
        return str(x).lower()
    if isinstance(x, float):
        return f"{x:.{digits}f}"
    return str(x)


def _records(data) -> tuple[list[str], list[dict]]:
    if isinstance(data, list):
        return list(dict.fromkeys(k for rec in data for k in rec)), data
    return [str(c) for c in data.columns], data.to_dict("records")


def _is_number(text: str) -> bool:
    return bool(_NUMBER.match(text))


def fit_table(data, width: int, title: str | None = None, keep: Sequence[str] = ()) -> tuple[Table, list[str]]:
    """A rich table of a DataFrame or list of row dicts that fits `width` columns: numeric columns
    never wrap (a number is never split), text columns fold. Columns that cannot fit are dropped
    whole, from the right, except the first column and those named in `keep`; returns the table
    and the names of the dropped columns."""
    columns, records = _records(data)
    cells = {c: [cell_text(rec.get(c)) for rec in records] for c in columns}
    numeric = {c: bool(cells[c]) and all(_is_number(t) for t in cells[c]) for c in columns}

    widths: dict[str, int] = {}

    def min_width(c: str) -> int:
        if c in widths:
            return widths[c]
        longest = max((len(t) for t in cells[c]), default=1)
        header_word = max((len(w) for w in _header(c).split()), default=1)
        if numeric[c]:
            return max(longest, min(header_word, 12))
        # a text cell wraps at spaces; a token holding a digit (a number, '[0.1, 0.2]') is never split
        digits = max((len(tok) for t in cells[c] for tok in t.split() if any(ch.isdigit() for ch in tok)), default=0)
        token = max((len(tok) for t in cells[c] for tok in t.split()), default=1)
        return max(min(header_word, 14), min(token, _MIN_TEXT), min(digits, 24))

    if columns and not numeric[columns[0]]:  # the row's name: whole where it can be
        first = columns[0]
        natural = max((len(t) for t in cells[first]), default=1)
        widths[first] = min(natural, max(_MIN_TEXT, width // 4))
    shown = list(columns)
    protected = set(keep) | set(columns[:1])

    def total() -> int:
        return _EDGE + sum(min_width(c) + _PER_COLUMN for c in shown)

    dropped: list[str] = []
    for c in reversed(columns):
        if total() <= width:
            break
        if c not in protected:
            shown.remove(c)
            dropped.append(c)
    dropped.reverse()
    sized = _allocate({c: min_width(c) for c in shown},
                      {c: max([len(t) for t in cells[c]] + [len(w) for w in _header(c).split()] + [1]) for c in shown},
                      width - _EDGE - _PER_COLUMN * len(shown))
    table = Table(title=escape(title) if title else None, show_lines=False)
    for c in shown:
        header = Text(_header(c), no_wrap=False, overflow="fold")  # headers wrap at spaces, numbers never
        if numeric[c]:
            table.add_column(header, no_wrap=True, justify="right", width=sized[c])
        else:
            table.add_column(header, overflow="fold", width=sized[c])
    for i in range(len(records)):
        table.add_row(*[escape(cells[c][i]) for c in shown])
    return table, dropped


def _allocate(low: dict[str, int], natural: dict[str, int], room: int) -> dict[str, int]:
    """Column widths: each at least its minimum; the room left is shared out a character at a time
    to the columns still narrower than their natural (widest cell) width."""
    widths = dict(low)
    spare = room - sum(widths.values())
    growing = [c for c in widths if widths[c] < natural[c]]
    while spare > 0 and growing:
        for c in list(growing):
            if spare == 0:
                break
            widths[c] += 1
            spare -= 1
            if widths[c] >= natural[c]:
                growing.remove(c)
    return widths


def interval_text(low, high, digits: int = 4) -> str:
    """A (low, high) pair as '[low, high]' ('-' when both are missing): wraps at its space only."""
    if cell_text(low) == "-" and cell_text(high) == "-":
        return "-"
    return f"[{cell_text(low, digits)}, {cell_text(high, digits)}]"


def _header(column: str) -> str:
    return column.replace("_", " ")


def print_table(out: Console, data, title: str | None = None, keep: Sequence[str] = ()) -> list[str]:
    """Print a fitted table on `out`, then a line naming the columns that did not fit."""
    table, dropped = fit_table(data, out.width, title, keep)
    out.print(table)
    if dropped:
        out.print(escape(f"(not shown at {out.width} columns: {', '.join(dropped)}; widen the terminal, set COLUMNS, "
                         "or use --format json for every column)"))
    return dropped


def _plain(x):
    """A JSON-able value: NaN -> None, numpy scalars -> Python."""
    if hasattr(x, "item") and not isinstance(x, (list, dict, str)):
        try:
            x = x.item()
        except (ValueError, AttributeError):
            pass
    if isinstance(x, float) and not math.isfinite(x):
        return None
    return x


def render(data, fmt: str) -> str:
    """Rows (DataFrame or list of dicts) as `json` (JSON Lines), `csv` or `markdown` text."""
    columns, records = _records(data)
    if fmt == "json":
        return "".join(json.dumps({c: _plain(rec.get(c)) for c in columns}, default=str) + "\n" for rec in records)
    if fmt == "csv":
        buf = io.StringIO()
        writer = csv.writer(buf, lineterminator="\n")
        writer.writerow(columns)
        for rec in records:
            writer.writerow(["" if _plain(rec.get(c)) is None else rec.get(c) for c in columns])
        return buf.getvalue()
    if fmt == "markdown":
        def md(text: str) -> str:
            return text.replace("|", "\\|")

        lines = ["| " + " | ".join(md(c) for c in columns) + " |", "|" + "---|" * len(columns)]
        lines += ["| " + " | ".join(md(cell_text(rec.get(c))) for c in columns) + " |" for rec in records]
        return "\n".join(lines) + "\n"
    raise ValueError(f"unknown format {fmt!r}; one of {FORMATS}")


def emit(out: Console, data, fmt: str, title: str | None = None, keep: Sequence[str] = ()) -> None:
    """Print rows in `fmt`: a fitted table, or machine-readable text written as it is (no wrapping,
    no markup)."""
    if fmt == "table":
        print_table(out, data, title, keep)
    else:
        out.file.write(render(data, fmt))
        out.file.flush()
