"""HTML for the tabs. Every piece of text that came from a user, a model or a corpus goes
through `esc`, so input such as <script> is shown as text and never run as markup."""

from __future__ import annotations

import csv
import difflib
import html
import io
import re
from collections.abc import Iterable, Sequence
from urllib.parse import quote

STYLE = """
<style>
.vm-grid {display:grid; grid-template-columns:repeat(2, minmax(0, 1fr)); gap:1rem;}
.vm-panel {min-width:0;}
.vm-panel h3 {margin:0 0 .4rem 0;}
.vm-grid, .vm-table {overflow-wrap:anywhere;}
.vm-table td:first-child {overflow-wrap:normal; white-space:nowrap; width:1%;}
.vm-table th {overflow-wrap:normal; word-break:normal;}
.vm-msg {padding:.5rem .75rem; border-radius:6px; border:1px solid #e0a800; background:#fff8e1; color:#5f4b00;}
.vm-err {border-color:#d9534f; background:#fdecea; color:#7a1c1a;}
.vm-table {border-collapse:collapse; width:100%; font-size:.92rem;}
.vm-table td, .vm-table th {border-bottom:1px solid #ddd; padding:.25rem .4rem; text-align:left; vertical-align:top;}
.vm-unk {background:#ffd7d7; border-radius:3px; padding:0 .15rem;}
.vm-new {background:#c8f7c5; border-radius:3px; padding:0 .1rem;}
.vm-dim {color:#777; font-size:.85rem;}
.vm-csv {font-size:.8rem; color:#2a7de1;}
.vm-err-text {color:#b02a26;}
.vm-figure {font-size:1rem;}
</style>
"""


def esc(text) -> str:
    return html.escape(str(text), quote=True)


def message(text: str, error: bool = False) -> str:
    return f'<div class="vm-msg{" vm-err" if error else ""}" role="status">{esc(text)}</div>'


def page(body: str) -> str:
    return STYLE + body


def side_by_side(panels: Sequence[tuple[str, str]]) -> str:
    """panels: (title, inner html) per model, shown in columns."""
    cols = "".join(f'<div class="vm-panel"><h3>{esc(title)}</h3>{inner}</div>' for title, inner in panels)
    return page(f'<div class="vm-grid">{cols}</div>')


def table(header: Iterable[str], rows: Iterable[Iterable[str]], name: str = "table") -> str:
    """Cells are HTML already (escape text with esc first). Below the table, a link downloads it as
    CSV (the cells' text, markup removed), built in the page: nothing is kept on the server."""
    header, rows = list(header), [list(r) for r in rows]
    head = "".join(f"<th>{h}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>" for row in rows)
    link = (
        f'<a class="vm-csv" download="{esc(name)}.csv" href="data:text/csv;charset=utf-8,'
        f'{quote(as_csv([header, *rows]))}">download CSV</a>'
    )
    return f'<table class="vm-table"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>{link}'


def as_csv(rows: Sequence[Sequence[str]]) -> str:
    """CSV of HTML cells as a reader sees them: tags removed (a <br> becomes a space), entities decoded."""
    out = io.StringIO()
    writer = csv.writer(out)
    for row in rows:
        writer.writerow([html.unescape(re.sub(r"<[^>]+>", "", re.sub(r"<br\s*/?>", " ", c))).strip() for c in row])
    return out.getvalue()


def mark_unknown(tokens: Sequence[str], unknown: Iterable[str]) -> str:
    unknown = set(unknown)
    return " ".join(
        f'<span class="vm-unk" title="not in the vocabulary: read as &lt;unk&gt;">{esc(t)}</span>'
        if t in unknown
        else esc(t)
        for t in tokens
    )


def changed(previous: str | None, current: str) -> list[bool]:
    """For each word of current: is it new against previous (a word-level diff)? None: nothing is."""
    cur = current.split()
    marked = [False] * len(cur)
    if previous is None:
        return marked
    for op, _, _, j1, j2 in difflib.SequenceMatcher(a=previous.split(), b=cur, autojunk=False).get_opcodes():
        if op in ("replace", "insert"):
            for j in range(j1, j2):
                marked[j] = True
    return marked


def mark_changes(previous: str | None, current: str) -> str:
    """current with the words that differ from previous highlighted."""
    cur, marked = current.split(), changed(previous, current)
    if previous is None:
        return esc(current)
    return " ".join(f'<span class="vm-new">{esc(w)}</span>' if m else esc(w) for w, m in zip(cur, marked))
