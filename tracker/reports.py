"""Report rows (aggregated in SQL by the store) and their renderers.

Every renderer shows the same rows: money is summed in micro-dollars and rounded to
cents (half up) only here, at display time, so a total is the rounded exact sum.
"""

from __future__ import annotations

import csv
import html
import io
import json
from collections.abc import Sequence
from datetime import date
from decimal import Decimal
from typing import Any

from tracker.errors import InputError
from tracker.records import cents, from_micros
from tracker.store import DIMENSIONS, Store

FORMATS = ("table", "csv", "json", "markdown", "html")
MONEY_COLUMNS = (
    "total_usd", "compute_usd", "spot_savings_usd", "warm_pool_usd", "storage_usd",
    "effective_usd", "artifact_usd_per_month",
)  # fmt: skip
JOB_COLUMNS = (
    "team", "status", "instance_type", "instance_count", "billable_seconds", "artifact_bytes",
    "account", "region", "arn",
)  # fmt: skip
CHRONOLOGICAL = {"day", "month"}


def spend_rows(store: Store, by: str, *, since: date | None = None, until: date | None = None,
               filters: dict[str, str] | None = None) -> list[dict[str, Any]]:
    """One row per value of ``by``: its key, jobs, total and itemised parts in USD (Decimal cents)."""
    rows = []
    for agg in store.aggregate(by, since=since, until=until, filters=filters):
        key = agg["key"]
        row: dict[str, Any] = {by: key.isoformat() if isinstance(key, date) else str(key)}
        if by == "job":
            row.update({
                "team": agg["team"], "status": agg["status"], "instance_type": agg["instance_type"],
                "instance_count": agg["instance_count"], "billable_seconds": agg["billable_seconds"],
                "artifact_bytes": agg["artifact_bytes"], "account": agg["account_id"],
                "region": agg["region"], "arn": agg["arn"],
            })  # fmt: skip
        row["jobs"] = int(agg["jobs"])
        row["total_usd"] = _usd(agg["list"])
        row["compute_usd"] = _usd(agg["compute"])
        row["spot_savings_usd"] = _usd(agg["spot_savings"])
        row["warm_pool_usd"] = _usd(agg["warm_pool"])
        row["storage_usd"] = _usd(agg["storage"])
        row["effective_usd"] = _usd(agg["effective"])
        row["artifact_usd_per_month"] = _usd(agg["artifact_per_month"])
        row["unpriced_jobs"] = int(agg["unpriced_jobs"])
        row["_micros"] = {item: int(agg[item]) for item in ("list", "compute", "spot_savings", "warm_pool",
                                                             "storage", "effective", "artifact_per_month")}
        rows.append(row)
    if by not in CHRONOLOGICAL:
        rows.sort(key=lambda r: (-r["_micros"]["list"], r[by]))
    return rows


def totals(rows: Sequence[dict[str, Any]], by: str) -> dict[str, Any]:
    """The totals row: exact micro-dollar sums rounded once, never a sum of rounded cents."""
    micros = {k: sum(r["_micros"][k] for r in rows) for k in (rows[0]["_micros"] if rows else {})}
    total = {by: "TOTAL", "jobs": sum(r["jobs"] for r in rows)}
    names = {"list": "total_usd", "compute": "compute_usd", "spot_savings": "spot_savings_usd",
             "warm_pool": "warm_pool_usd", "storage": "storage_usd", "effective": "effective_usd",
             "artifact_per_month": "artifact_usd_per_month"}
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


def render(rows: Sequence[dict[str, Any]], by: str, fmt: str) -> str:
    """Render report rows in one of FORMATS."""
    if by not in DIMENSIONS:
        raise InputError(f"--by {by!r}: expected one of {', '.join(DIMENSIONS)}")
    cols = columns_for(by)
    if fmt == "json":
        return json.dumps([public(r) for r in rows], default=_json_number, indent=2) + "\n"
    if fmt == "csv":
        return to_csv([public(r) for r in rows], cols)
    table = [public(r) for r in rows]
    if fmt in ("table", "markdown", "html") and rows:
        table.append(totals(rows, by))
    if fmt == "table":
        return to_text_table(table, cols)
    if fmt == "markdown":
        return to_markdown(table, cols)
    if fmt == "html":
        return to_html(table, cols, title=f"SageMaker training spend by {by}")
    raise InputError(f"--format {fmt!r}: expected one of {', '.join(FORMATS)}")


def _json_number(value: Any) -> Any:
    if isinstance(value, Decimal):
        return float(value)  # already rounded to cents; float prints 12.34 as 12.34
    raise TypeError(f"not JSON serialisable: {value!r}")


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, Decimal):
        return f"{value:,.2f}"
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}"
    return str(value)


def _is_numeric(value: Any) -> bool:
    return isinstance(value, int | Decimal) and not isinstance(value, bool)


def to_text_table(rows: Sequence[dict[str, Any]], cols: Sequence[str]) -> str:
    """An aligned plain-text table; numbers right-aligned, the last row is the total."""
    if not rows:
        return "No spend in this window.\n"
    cells = [[_cell(r.get(c)) for c in cols] for r in rows]
    widths = [max(len(c), *(len(row[i]) for row in cells)) for i, c in enumerate(cols)]
    numeric = [any(_is_numeric(r.get(c)) for r in rows) for c in cols]

    def line(values: Sequence[str]) -> str:
        parts = [v.rjust(w) if num else v.ljust(w) for v, w, num in zip(values, widths, numeric, strict=True)]
        return "  ".join(parts).rstrip()

    out = [line(cols), line(["-" * w for w in widths])]
    out += [line(row) for row in cells[:-1]]
    out += [line(["-" * w for w in widths]), line(cells[-1])]
    return "\n".join(out) + "\n"


def neutralise(value: str) -> str:
    """Defuse spreadsheet formulas in user-controlled text (tag values) for CSV output."""
    if value and value[0] in "=+-@\t\r":
        return "'" + value
    return value


def to_csv(rows: Sequence[dict[str, Any]], cols: Sequence[str]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(cols)
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


def to_markdown(rows: Sequence[dict[str, Any]], cols: Sequence[str]) -> str:
    def esc(text: str) -> str:
        return text.replace("|", "\\|").replace("\n", " ")

    numeric = [any(_is_numeric(r.get(c)) for r in rows) for c in cols]
    out = ["| " + " | ".join(cols) + " |",
           "|" + "|".join("---:" if n else "---" for n in numeric) + "|"]
    out += ["| " + " | ".join(esc(_cell(r.get(c))) for c in cols) + " |" for r in rows]
    return "\n".join(out) + "\n"


def to_html(rows: Sequence[dict[str, Any]], cols: Sequence[str], title: str) -> str:
    head = "".join(f"<th>{html.escape(c)}</th>" for c in cols)
    body = []
    for r in rows:
        tds = "".join(
            f'<td class="num">{html.escape(_cell(r.get(c)))}</td>' if _is_numeric(r.get(c))
            else f"<td>{html.escape(_cell(r.get(c)))}</td>"
            for c in cols
        )
        body.append(f"<tr>{tds}</tr>")
    return (
        "<!doctype html><html><head><meta charset=\"utf-8\">"
        f"<title>{html.escape(title)}</title><style>body{{font-family:sans-serif}}"
        "table{border-collapse:collapse}td,th{padding:2px 8px;border-bottom:1px solid #ddd}"
        ".num{text-align:right}</style></head><body>"
        f"<h1>{html.escape(title)}</h1><table><thead><tr>{head}</tr></thead>"
        f"<tbody>{''.join(body)}</tbody></table></body></html>\n"
    )
