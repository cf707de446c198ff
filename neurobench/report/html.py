"""Self-contained HTML: one page, inline CSS, figures as data URIs, sorting by a few lines of plain
JavaScript, no CDN and no network. Every user string goes through `esc` (html.escape)."""

from __future__ import annotations

import html
import math
from collections.abc import Sequence

from ..terminal import cell_text, interval_text

CSS = """
body{font-family:system-ui,-apple-system,'Segoe UI',sans-serif;margin:1.5em auto;max-width:1100px;
     color:#222;padding:0 1em;line-height:1.4}
h1{font-size:1.5em}h2{font-size:1.2em;border-bottom:1px solid #ccc;margin-top:2em}h3{font-size:1.05em}
table{border-collapse:collapse;font-size:.85em;margin:.5em 0}
th,td{border:1px solid #ddd;padding:.25em .5em;text-align:left;vertical-align:top}
td.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
th.sortable{cursor:pointer;background:#f4f4f4}th.sortable:hover{background:#e8e8e8}
th[aria-sort=ascending]::after{content:" \\25B2"}th[aria-sort=descending]::after{content:" \\25BC"}
figure{margin:.5em 0;display:inline-block;vertical-align:top}figure img{max-width:100%;height:auto}
figcaption{font-size:.8em;color:#555;max-width:700px}
.note{font-size:.85em;color:#555}.skip{font-size:.85em;color:#8a5a00}
details{margin:.5em 0}summary{cursor:pointer;color:#1f5fa8}
small{color:#666}
"""

# Sort a table by a clicked header: numbers by data-value (missing last), text A-Z; click again to reverse.
SORT_JS = """
document.querySelectorAll('table.sortable').forEach(function (table) {
  table.querySelectorAll('th.sortable').forEach(function (th, col) {
    th.addEventListener('click', function () {
      var body = table.tBodies[0];
      var rows = Array.prototype.slice.call(body.rows);
      var desc = th.getAttribute('aria-sort') !== 'descending';
      table.querySelectorAll('th').forEach(function (h) { h.removeAttribute('aria-sort'); });
      th.setAttribute('aria-sort', desc ? 'descending' : 'ascending');
      var idx = th.cellIndex;
      function key(row) {
        var cell = row.cells[idx];
        var v = cell.getAttribute('data-value');
        if (v !== null) { return v === '' ? null : parseFloat(v); }
        return cell.textContent.trim().toLowerCase();
      }
      rows.sort(function (a, b) {
        var x = key(a), y = key(b);
        if (x === null && y === null) { return 0; }
        if (x === null) { return 1; }
        if (y === null) { return -1; }
        var c = (typeof x === 'number' && typeof y === 'number') ? x - y : String(x).localeCompare(String(y));
        return desc ? -c : c;
      });
      rows.forEach(function (r) { body.appendChild(r); });
    });
  });
});
"""


def esc(text) -> str:
    return html.escape(str(text), quote=True)


def page(title: str, body: str, script: str = "") -> str:
    """A complete HTML document (UTF-8, inline CSS, optional inline script)."""
    js = f"<script>{script}</script>" if script else ""
    return (f"<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
            f"<title>{esc(title)}</title><style>{CSS}</style></head>\n<body>\n{body}\n{js}</body></html>\n")


def figure(uri: str, caption: str, alt: str) -> str:
    return f'<figure><img src="{uri}" alt="{esc(alt)}"><figcaption>{esc(caption)}</figcaption></figure>'


def number_cell(x, digits: int = 4) -> str:
    """A right-aligned number cell whose data-value sorts numerically ('' when missing)."""
    ok = isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(float(x))
    return f'<td class="num" data-value="{float(x) if ok else ""}">{esc(cell_text(float(x) if ok else None, digits))}</td>'


def interval_cell(low, high) -> str:
    return f'<td class="num">{esc(interval_text(low, high))}</td>'


def table(columns: Sequence[str], rows: Sequence[Sequence[str]], sortable: bool = False, table_id: str = "") -> str:
    """A table from header names (escaped here) and rows of ready-made <td> cells."""
    cls = ' class="sortable"' if sortable else ""
    ident = f' id="{esc(table_id)}"' if table_id else ""
    th_cls = ' class="sortable"' if sortable else ""
    head = "".join(f"<th{th_cls}>{esc(c)}</th>" for c in columns)
    body = "\n".join("<tr>" + "".join(r) + "</tr>" for r in rows)
    return f"<table{cls}{ident}><thead><tr>{head}</tr></thead><tbody>\n{body}\n</tbody></table>"


def text_cell(text) -> str:
    return f"<td>{esc(text)}</td>"


def definition_list(items: Sequence[tuple[str, str]]) -> str:
    return table(["what", "value"], [[text_cell(k), text_cell(v)] for k, v in items])
