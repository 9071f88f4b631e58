"""Report rows (aggregated in SQL) and their renderers.

Every renderer shows the same rows: money is summed in micro-dollars and rounded to
cents (half up) only here, at display time, so a total is the rounded exact sum.

Two shapes go through the same renderers: the plain ``report --by DIM`` rows
(``spend_rows``/``render``, whose JSON keys other tools rely on) and a :class:`Report`,
what every view (showback, top, waste, trend) builds. Tag values come from users, so
each format neutralises them its own way: CSV defuses formulas, HTML and Markdown escape
markup, the text table shows control characters as escapes.
"""

from __future__ import annotations

import csv
import html
import io
import json
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from tracker.cost.items import REPORT_ITEMS
from tracker.errors import InputError
from tracker.records import DIMENSIONS, cents, from_micros
from tracker.store.database import Store
from tracker.store.query import ViewQueries, Window

if TYPE_CHECKING:
    from tracker.report.charts import Chart

FORMATS = ("table", "csv", "json", "markdown", "html", "png")
TEXT_FORMATS = ("table", "csv", "json", "markdown", "html")
MONEY_COLUMNS = tuple(item.key for item in REPORT_ITEMS)
JOB_COLUMNS = (
    "team", "status", "instance_type", "instance_count", "billable_seconds", "artifact_bytes",
    "account", "region", "arn",
)  # fmt: skip
CHRONOLOGICAL = {"day", "month"}


def spend_rows(
    store: Store,
    by: str,
    *,
    since: date | None = None,
    until: date | None = None,
    filters: dict[str, str] | None = None,
) -> list[dict[str, Any]]:
    """One row per value of ``by``: its key, jobs, total and itemised parts in USD (Decimal cents)."""
    rows = []
    window = Window(since, until, filters or {})
    for agg in ViewQueries(store).by_dimension(by, window):
        key = agg[by]
        row: dict[str, Any] = {by: key.isoformat() if isinstance(key, date) else str(key)}
        if by == "job":
            row.update({name: agg[name] for name in JOB_COLUMNS})
        row["jobs"] = int(agg["jobs"])
        row.update({item.key: _usd(agg[item.name]) for item in REPORT_ITEMS})
        row["unpriced_jobs"] = int(agg["unpriced_jobs"])
        row["_micros"] = {item.name: int(agg[item.name]) for item in REPORT_ITEMS}
        rows.append(row)
    if by not in CHRONOLOGICAL:
        rows.sort(key=lambda r: (-r["_micros"]["list"], r[by]))
    return rows


def totals(rows: Sequence[dict[str, Any]], by: str) -> dict[str, Any]:
    """The totals row: exact micro-dollar sums rounded once, never a sum of rounded cents."""
    micros = {k: sum(r["_micros"][k] for r in rows) for k in (rows[0]["_micros"] if rows else {})}
    total = {by: "TOTAL", "jobs": sum(r["jobs"] for r in rows)}
    names = {item.name: item.key for item in REPORT_ITEMS}
    for item, column in names.items():
        total[column] = _usd(micros.get(item, 0))
    total["unpriced_jobs"] = sum(r["unpriced_jobs"] for r in rows)
    return total


def _usd(micros: int | None) -> Decimal:
    return cents(from_micros(int(micros or 0)))


def public(row: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in row.items() if not k.startswith("_")}


def columns_for(by: str) -> list[str]:
    cols = [by]
    if by == "job":
        cols += list(JOB_COLUMNS)
    return cols + ["jobs", *MONEY_COLUMNS, "unpriced_jobs"]


def render(rows: Sequence[dict[str, Any]], by: str, fmt: str) -> str | bytes:
    """Render ``report --by`` rows in one of FORMATS (PNG as bytes, the rest as text)."""
    if by not in DIMENSIONS:
        raise InputError(f"--by {by!r}: expected one of {', '.join(DIMENSIONS)}")
    if fmt not in FORMATS:
        raise InputError(f"--format {fmt!r}: expected one of {', '.join(FORMATS)}")
    cols = columns_for(by)
    if fmt == "json":
        return to_json([public(r) for r in rows])
    if fmt == "csv":
        return to_csv([public(r) for r in rows], cols)
    table = [public(r) for r in rows]
    if fmt in ("table", "markdown") and rows:
        table.append(totals(rows, by))
    if fmt == "table":
        return to_text_table(table, cols)
    if fmt == "markdown":
        return to_markdown(table, cols)
    return render_report(spend_report(rows, by), fmt)


def spend_report(rows: Sequence[dict[str, Any]], by: str) -> Report:
    """The ``report --by`` rows as a Report, with a bar chart of the total per key."""
    from tracker.report.charts import Chart, Series

    charted = list(rows) if by in CHRONOLOGICAL else list(rows)[:20]
    title = f"SageMaker training spend by {by}"
    chart = Chart(
        "bar" if by in CHRONOLOGICAL else "hbar",
        f"Total spend by {by}" + ("" if len(charted) == len(rows) else f" (top {len(charted)})"),
        tuple(str(r[by]) for r in charted),
        (Series("total_usd", tuple(r["total_usd"] for r in charted)),),
    )
    return Report(
        view="spend",
        title=title,
        columns=columns_for(by),
        rows=[public(r) for r in rows],
        total=totals(rows, by) if rows else None,
        charts=[chart],
    )


# -- views -------------------------------------------------------------------------------
@dataclass
class Report:
    """A rendered-ready view: its columns, rows (USD as Decimal cents), an optional totals
    row, charts, and notes that say what the numbers mean and what is not known."""

    view: str
    title: str
    columns: list[str]
    rows: list[dict[str, Any]]
    total: dict[str, Any] | None = None
    charts: list[Chart] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    subtitle: str = ""
    percent_columns: frozenset[str] = frozenset()

    def table_rows(self) -> list[dict[str, Any]]:
        return [*self.rows, self.total] if self.total and self.rows else list(self.rows)


def render_report(report: Report, fmt: str) -> str | bytes:
    """Render a Report in one of FORMATS; totals appear in table, markdown and html only."""
    if fmt == "json":
        return to_json([{c: row.get(c) for c in report.columns} for row in report.rows])
    if fmt == "csv":
        return to_csv(report.rows, report.columns)
    if fmt == "table":
        head = _printable(report.title) + (
            f"\n{_printable(report.subtitle)}" if report.subtitle else ""
        )
        body = _text_table(report.rows, report.columns, report.total, report.percent_columns)
        notes = "".join(f"Note: {_printable(n)}\n" for n in report.notes)
        return f"{head}\n\n{body}{notes}"
    if fmt == "markdown":
        head = f"## {_md(report.title)}\n\n" + (
            f"{_md(report.subtitle)}\n\n" if report.subtitle else ""
        )
        notes = "".join(f"\n> {_md(n)}\n" for n in report.notes)
        return (
            head + to_markdown(report.table_rows(), report.columns, report.percent_columns) + notes
        )
    if fmt == "html":
        return report_html(report)
    if fmt == "png":
        from tracker.report.charts import png

        if not report.charts:
            raise InputError(f"--format png: the {report.view} view has no chart")
        return png(report.charts[0])
    raise InputError(f"--format {fmt!r}: expected one of {', '.join(FORMATS)}")


def to_json(rows: Sequence[dict[str, Any]]) -> str:
    """A JSON array of the rows; money as numbers already rounded to cents."""
    return json.dumps(list(rows), default=_json_number, indent=2) + "\n"


def _json_number(value: Any) -> Any:
    if isinstance(value, Decimal):
        return float(value)  # already rounded to cents; float prints 12.34 as 12.34
    if isinstance(value, date):
        return value.isoformat()
    raise TypeError(f"not JSON serialisable: {value!r}")


def _printable(text: str) -> str:
    """Control and format characters (ANSI escapes, bidi overrides) shown as escapes."""
    if text.isprintable():
        return text
    return "".join(
        f"\\u{ord(ch):04x}" if unicodedata.category(ch) in ("Cc", "Cf", "Zl", "Zp") else ch
        for ch in text
    )


def _cell(value: Any, percent: bool = False) -> str:
    if value is None:
        return ""
    if isinstance(value, Decimal):
        return f"{value:,.1f}" if percent else f"{value:,.2f}"
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}"
    return _printable(str(value))


def _is_numeric(value: Any) -> bool:
    return isinstance(value, int | Decimal) and not isinstance(value, bool)


def to_text_table(rows: Sequence[dict[str, Any]], cols: Sequence[str]) -> str:
    """An aligned plain-text table; numbers right-aligned, the last row is the total."""
    if not rows:
        return "No spend in this window.\n"
    return _text_table(rows[:-1], cols, rows[-1])


def _text_table(
    rows: Sequence[dict[str, Any]],
    cols: Sequence[str],
    total: dict[str, Any] | None,
    percent: frozenset[str] = frozenset(),
) -> str:
    if not rows:
        return "No spend in this window.\n"
    everything = [*rows, *([total] if total else [])]
    cells = [[_cell(r.get(c), c in percent) for c in cols] for r in everything]
    widths = [max(len(c), *(len(row[i]) for row in cells)) for i, c in enumerate(cols)]
    numeric = [any(_is_numeric(r.get(c)) for r in everything) for c in cols]

    def line(values: Sequence[str]) -> str:
        parts = [
            v.rjust(w) if num else v.ljust(w)
            for v, w, num in zip(values, widths, numeric, strict=True)
        ]
        return "  ".join(parts).rstrip()

    rule = line(["-" * w for w in widths])
    out = [line(cols), rule, *(line(row) for row in cells[: len(rows)])]
    if total:
        out += [rule, line(cells[-1])]
    return "\n".join(out) + "\n"


def neutralise(value: str) -> str:
    """Defuse spreadsheet formulas in user-controlled text (tag values) for CSV output."""
    if value and value[0] in "=+-@\t\r":
        return "'" + value
    return value


def to_csv(rows: Sequence[dict[str, Any]], cols: Sequence[str]) -> str:
    """CSV with a header row; money with two decimals; text cells neutralised."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow([neutralise(c) for c in cols])
    for row in rows:
        out = []
        for c in cols:
            value = row.get(c)
            if isinstance(value, Decimal):
                out.append(f"{value:.2f}")
            elif isinstance(value, str):
                out.append(neutralise(value))
            else:
                out.append("" if value is None else str(value))
        writer.writerow(out)
    return buffer.getvalue()


_MD_SPECIAL = {"\\": "\\\\", "`": "\\`", "*": "\\*", "[": "\\[", "]": "\\]",
               "|": "\\|", "<": "&lt;", ">": "&gt;", "&": "&amp;"}  # fmt: skip


def _md(text: str) -> str:
    """Markdown-inert text: markup, links and raw HTML escaped, one line."""
    text = _printable(text.replace("\r\n", " ").replace("\n", " ").replace("\r", " "))
    return "".join(_MD_SPECIAL.get(ch, ch) for ch in text)


def to_markdown(
    rows: Sequence[dict[str, Any]], cols: Sequence[str], percent: frozenset[str] = frozenset()
) -> str:
    """A GitHub-flavoured Markdown table; numbers right-aligned, cells escaped."""
    numeric = [any(_is_numeric(r.get(c)) for r in rows) for c in cols]
    out = ["| " + " | ".join(_md(c) for c in cols) + " |",
           "|" + "|".join("---:" if n else "---" for n in numeric) + "|"]  # fmt: skip
    out += [
        "| " + " | ".join(_md(_cell(r.get(c), c in percent)) for c in cols) + " |" for r in rows
    ]
    return "\n".join(out) + "\n"


# -- HTML ----------------------------------------------------------------------------------
STYLE = (
    "body{font-family:system-ui,sans-serif;font-size:14px;margin:1.5rem;color:#222}"
    "table{border-collapse:collapse;margin:1rem 0}td,th{padding:3px 10px;border-bottom:1px solid #ddd;"
    "text-align:left;vertical-align:top;white-space:nowrap}.num{text-align:right;font-variant-numeric:tabular-nums}"
    "tr.total td{font-weight:bold;border-top:2px solid #888}.note{color:#555}.sub{color:#555}"
    "figure{margin:1rem 0}"
)


def html_table(
    rows: Sequence[dict[str, Any]],
    cols: Sequence[str],
    total: dict[str, Any] | None = None,
    percent: frozenset[str] = frozenset(),
    links: dict[str, Any] | None = None,
) -> str:
    """An escaped HTML table; ``links`` maps a column to a function value -> href (or None)."""
    numeric = {
        c for c in cols if any(_is_numeric(r.get(c)) for r in [*rows, *([total] if total else [])])
    }
    head = "".join(f"<th{' class=num' if c in numeric else ''}>{html.escape(c)}</th>" for c in cols)

    def tr(row: dict[str, Any], css: str = "") -> str:
        tds = []
        for c in cols:
            text = html.escape(_cell(row.get(c), c in percent))
            href = links[c](row.get(c)) if links and c in links and css != "total" else None
            if href:
                text = f'<a href="{html.escape(href, quote=True)}">{text}</a>'
            tds.append(f'<td class="num">{text}</td>' if c in numeric else f"<td>{text}</td>")
        return f"<tr{f' class={css}' if css else ''}>{''.join(tds)}</tr>"

    body = [tr(r) for r in rows] + ([tr(total, "total")] if total and rows else [])
    if not rows:
        body = [f'<tr><td colspan="{len(cols)}">No spend in this window.</td></tr>']
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def report_html(report: Report) -> str:
    """One self-contained page: no script, no external resource, every value escaped."""
    from tracker.report.charts import svg

    charts = "".join(f"<figure>{svg(chart)}</figure>" for chart in report.charts)
    notes = "".join(f'<p class="note">{html.escape(n)}</p>' for n in report.notes)
    sub = f'<p class="sub">{html.escape(report.subtitle)}</p>' if report.subtitle else ""
    table = html_table(report.rows, report.columns, report.total, report.percent_columns)
    return page(report.title, f"<h1>{html.escape(report.title)}</h1>{sub}{charts}{table}{notes}")


def page(title: str, body: str) -> str:
    """A complete HTML document around an already-escaped body."""
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'; img-src data:\">"
        f"<title>{html.escape(title)}</title><style>{STYLE}</style></head>"
        f"<body>{body}</body></html>\n"
    )


def to_html(rows: Sequence[dict[str, Any]], cols: Sequence[str], title: str) -> str:
    """A page with one table; the last row is the total."""
    table = html_table(rows[:-1], cols, rows[-1]) if rows else html_table([], cols)
    return page(title, f"<h1>{html.escape(title)}</h1>{table}")
