"""The rendering layer: one renderer per format for every :class:`~tracker.report.table.Table`.

``tracker report`` (rows and views), ``budgets``, ``status``, ``estimate`` and ``reconcile``,
the scheduled showback and the dashboard all render through here. Money is formatted by
:func:`tracker.records.format_usd` only.

Values users control (tag values, job names, pivot column names) are made inert twice. First,
one rule for every format people read: :func:`tracker.errors.printable` shows control
and format characters (newlines, tabs, NUL, C0/C1 controls, ANSI escapes, bidi marks,
overrides and isolates such as U+202E) as escapes like ``\\u202e``, in the text table,
Markdown, HTML (title, headings, cells, notes), CSV (header and cells) and every text of a
chart (title, tick labels, legend entries, tooltips; SVG and PNG alike, in
:func:`tracker.report.charts.layout`). Then each format's own syntax: CSV defuses formulas,
Markdown escapes markup, HTML and SVG autoescape (Jinja2 templates, package files).

CSV is escaped too, although a quoted newline is legal CSV: CSV is the format opened in
spreadsheets, where a right-to-left override reorders what a cell shows and a newline splits
what line-based tools (``grep``, ``wc -l``) read as one row; it is already written for
spreadsheets (formulas defused), not for exact round trips. JSON carries values exactly, as
data: JSON's own string escapes (``\\u202e``, ``\\n``; ``ensure_ascii``) keep every control
and bidi character out of the output's text, and a reader gets the tag value back as typed.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from tracker.errors import InputError, printable
from tracker.records import format_usd
from tracker.report.charts import layout, png
from tracker.report.formats import FORMATS
from tracker.report.table import MONEY, NUMBER, PERCENT, Column, Table
from tracker.report.templating import environment

Links = Mapping[str, Callable[[Any], str | None]]


def render(table: Table, fmt: str) -> str | bytes:
    """``table`` in one of FORMATS: PNG (its first chart) as bytes, the rest as text."""
    if fmt == "table":
        return to_text(table)
    if fmt == "csv":
        return to_csv(table)
    if fmt == "json":
        return to_json(table)
    if fmt == "markdown":
        return to_markdown(table)
    if fmt == "html":
        return to_html(table)
    if fmt == "png":
        if not table.charts:
            raise InputError(f"--format png: the {table.view or 'report'} output has no chart")
        return png(table.charts[0])
    raise InputError(f"--format {fmt!r}: expected one of {', '.join(FORMATS)}")


# -- cells ---------------------------------------------------------------------------------
def cell(value: Any, column: Column, blank: str = "") -> str:
    """One value as people read it, formatted by its column's kind."""
    if value is None:
        return blank
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, list | tuple):
        return printable(";".join(str(v) for v in value))
    if isinstance(value, datetime):
        return f"{value:%Y-%m-%d %H:%M:%S}"
    if isinstance(value, Decimal):
        if column.kind == MONEY:
            return format_usd(value, symbol=column.symbol)
        if column.kind in (PERCENT, NUMBER):
            text = f"{value:,.{column.places}f}"
            return text + "%" if column.symbol and column.kind == PERCENT else text
        return f"{value:,.2f}"
    if isinstance(value, int):
        return f"{value:,}"
    return printable(str(value))


def _grid(table: Table) -> tuple[list[list[str]], list[str] | None]:
    """The body cells and the totals cells (a key absent from the totals row is left empty)."""
    cols = table.columns
    body = [[cell(r.get(c.key), c, table.blank) for c in cols] for r in table.rows]
    total = table.total if table.total and table.rows else None
    foot = (
        [cell(total[c.key], c, table.blank) if c.key in total else "" for c in cols]
        if total
        else None
    )
    return body, foot


def _aligned(table: Table) -> list[bool]:
    """Right-align a numeric column that holds a value (an all-missing one reads as text)."""
    rows = table.table_rows()
    return [c.numeric and any(r.get(c.key) is not None for r in rows) for c in table.columns]


# -- text ------------------------------------------------------------------------------------
def text_table(table: Table, indent: str = "") -> str:
    """The aligned table alone: headings, a rule, rows, and the totals row under a rule."""
    if not table.rows:
        return indent + table.empty + "\n"
    body, foot = _grid(table)
    heads = [c.heading for c in table.columns]
    widths = [
        max(len(h), *(len(r[i]) for r in [*body, *([foot] if foot else [])]))
        for i, h in enumerate(heads)
    ]
    right = _aligned(table)

    def line(values: Sequence[str]) -> str:
        parts = [
            v.rjust(w) if r else v.ljust(w) for v, w, r in zip(values, widths, right, strict=True)
        ]
        return (indent + "  ".join(parts)).rstrip()

    rule = line(["-" * w for w in widths])
    out = [line([printable(h) for h in heads]), rule, *map(line, body)]
    if foot:
        out += [rule, line(foot)]
    return "\n".join(out) + "\n"


def to_text(table: Table) -> str:
    """The title and subtitle (when titled), the table, then the notes."""
    head = ""
    if table.titled and table.title:
        head = printable(table.title) + (f"\n{printable(table.subtitle)}" if table.subtitle else "")
        head += "\n\n"
    notes = "".join(f"note: {printable(n)}\n" for n in table.notes)
    return head + text_table(table) + (f"\n{notes}" if notes else "")


# -- CSV and JSON ------------------------------------------------------------------------------
def neutralise(value: str) -> str:
    """Defuse spreadsheet formulas in user-controlled text (tag values) for CSV output."""
    if value and value[0] in "=+-@\t\r":
        return "'" + value
    return value


def to_csv(table: Table) -> str:
    """CSV with a header row of keys; money with two decimals; text cells shown as
    :func:`printable` (control characters as escapes, see the module doc) and neutralised."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    keys = [c.key for c in table.records]
    writer.writerow([neutralise(printable(k)) for k in keys])
    for row in table.rows:
        writer.writerow([_csv_cell(row.get(k)) for k in keys])
    return buffer.getvalue()


def _csv_cell(value: Any) -> str:
    if isinstance(value, Decimal):
        return f"{value:.2f}"
    if isinstance(value, list | tuple):
        return neutralise(printable(";".join(str(v) for v in value)))
    if isinstance(value, str):
        return neutralise(printable(value))
    return "" if value is None else str(value)


def to_json(table: Table) -> str:
    """A JSON array of the rows with the record columns' keys."""
    keys = [c.key for c in table.records]
    return json_text([{k: row.get(k) for k in keys} for row in table.rows])


def json_text(value: Any) -> str:
    """Any structure of rows as indented JSON: money as numbers already rounded to cents,
    dates and times in ISO 8601."""
    return json.dumps(value, default=_json_value, indent=2) + "\n"


def _json_value(value: Any) -> Any:
    if isinstance(value, Decimal):
        return float(value)  # already rounded (cents, 0.1 %); float prints 12.34 as 12.34
    if isinstance(value, datetime | date):
        return value.isoformat()
    raise TypeError(f"not JSON serialisable: {value!r}")


# -- Markdown ----------------------------------------------------------------------------------
_MD_SPECIAL = {"\\": "\\\\", "`": "\\`", "*": "\\*", "[": "\\[", "]": "\\]",
               "|": "\\|", "<": "&lt;", ">": "&gt;", "&": "&amp;"}  # fmt: skip


def markdown_escape(text: str) -> str:
    """Markdown-inert text: control characters shown as escapes (:func:`printable`: one
    line), then markup, links and raw HTML escaped."""
    return "".join(_MD_SPECIAL.get(ch, ch) for ch in printable(text))


def to_markdown(table: Table) -> str:
    """A GitHub-flavoured Markdown table (under a heading when titled), then the notes."""
    body, foot = _grid(table)
    right = _aligned(table)
    out = ["| " + " | ".join(markdown_escape(c.heading) for c in table.columns) + " |",
           "|" + "|".join("---:" if r else "---" for r in right) + "|"]  # fmt: skip
    out += [
        "| " + " | ".join(markdown_escape(v) for v in row) + " |"
        for row in [*body, *([foot] if foot else [])]
    ]
    head = ""
    if table.titled and table.title:
        head = f"## {markdown_escape(table.title)}\n\n"
        head += f"{markdown_escape(table.subtitle)}\n\n" if table.subtitle else ""
    notes = "".join(f"\n> {markdown_escape(n)}\n" for n in table.notes)
    return head + "\n".join(out) + "\n" + notes


# -- HTML --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class HtmlCell:
    text: str
    numeric: bool = False
    href: str | None = None


@dataclass(frozen=True)
class HtmlRow:
    cells: tuple[HtmlCell, ...]
    total: bool = False


@dataclass(frozen=True)
class HtmlTable:
    """A table's cells as text for the ``table`` macro; the template escapes them."""

    head: tuple[HtmlCell, ...]
    body: tuple[HtmlRow, ...]
    empty: str


def html_table(table: Table, links: Links | None = None) -> HtmlTable:
    """The cells of ``table`` for templates; ``links`` maps a column to value -> href (or None)."""
    body, foot = _grid(table)
    right = _aligned(table)
    head = tuple(
        HtmlCell(printable(c.heading), r) for c, r in zip(table.columns, right, strict=True)
    )

    def row(texts: list[str], values: Mapping[str, Any], total: bool) -> HtmlRow:
        cells = []
        for text, column, r in zip(texts, table.columns, right, strict=True):
            link = (links or {}).get(column.key)
            href = link(values.get(column.key)) if link and not total else None
            cells.append(HtmlCell(text, r, href))
        return HtmlRow(tuple(cells), total)

    rows = [row(texts, values, False) for texts, values in zip(body, table.rows, strict=True)]
    if foot and table.total:
        rows.append(row(foot, table.total, True))
    return HtmlTable(head, tuple(rows), table.empty)


def to_html(table: Table) -> str:
    """One self-contained page: no script, no external resource, every value escaped (title,
    subtitle and notes shown as :func:`printable`, the cells by :func:`html_table`, the
    charts by :func:`~tracker.report.charts.layout`)."""
    shown = replace(
        table,
        title=printable(table.title),
        subtitle=printable(table.subtitle),
        notes=[printable(n) for n in table.notes],
    )
    return (
        environment()
        .get_template("report.html.j2")
        .render(table=shown, grid=html_table(table), drawings=[layout(c) for c in table.charts])
    )
