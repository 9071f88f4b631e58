"""``report --by DIM``: spend rows aggregated in SQL, one per value of the dimension.

Money is summed in micro-dollars and rounded to cents (half up) only at display time, so a
total is the rounded exact sum; its parts (compute, warm pool, storage) are then given the
total's cents by largest remainder (:func:`tracker.records.cents_parts`), so in every
format the shown parts add up to the shown total. The money columns and JSON keys come from the cost-item
catalogue (:data:`tracker.cost.items.REPORT_ITEMS`); :func:`spend_table` makes the rows a
:class:`~tracker.report.table.Table` that every format renders (tracker.report.render).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from tracker import bounds
from tracker.bounds import PAGE_NUMBER, PAGE_ROWS
from tracker.cost.items import (
    LIST,
    PLAN_VALUE,
    REPORT_ITEMS,
    SPOT_SAVINGS,
    STORAGE,
    TOTAL_PARTS,
    WARM_POOL,
    CostItem,
)
from tracker.errors import InputError
from tracker.records import CENT, DIMENSIONS, cents_parts, usd_cents
from tracker.report.charts import Chart, Series
from tracker.report.table import REPORT_MONEY, Column, Table, count, money, text
from tracker.report.unpriced import split_flags, unpriced_notes, unpriced_parts
from tracker.store.lite import queries
from tracker.store.window import CHRONOLOGICAL, Window

if TYPE_CHECKING:
    from tracker.store.database import Store
    from tracker.store.lite import LiteStore

JOB_COLUMNS: tuple[Column, ...] = (
    text("team"), text("status"), text("instance_type"), count("instance_count"),
    count("billable_seconds"), count("artifact_bytes"), text("account"), text("region"),
    text("arn"),
)  # fmt: skip
#: What ``--by job`` JSON and CSV rows add after the money: the engine's flags, the parts
#: left without a price, the on-demand value of training-plan usage (outside the total, for
#: the whole job), the FOCUS ListCost (the total under its FOCUS name) and where the job's
#: team came from (``team_source``: tag, an allocation rule's name, unallocated).
JOB_EXTRA_COLUMNS: tuple[Column, ...] = (
    text("flags"), text("unpriced_parts"), money(PLAN_VALUE.key, PLAN_VALUE.label.lower()),
    money("list_usd", "list"), text("team_source"),
)  # fmt: skip
#: ``report --by job`` as people read it (text, Markdown, HTML): one line per job that fits
#: a terminal. JSON and CSV keep every key of :func:`columns_for` (other tools rely on them);
#: here the ARN, account, region, artifacts and effective cost are left to them and to the
#: job's dashboard page, the jobs count (always 1 for a job) is left out, and compute is the
#: total less the warm pool and storage shown beside it.
JOB_TABLE_COLUMNS: tuple[Column, ...] = (
    text("job"), text("team"), text("status"), text("instances"),
    count("billable_seconds", "billable s"),
    *(money(item.key, item.label.lower()) for item in (LIST, SPOT_SAVINGS, WARM_POOL, STORAGE)),
    count("unpriced_jobs", "unpriced"),
)  # fmt: skip


def spend_rows(
    store: Store | LiteStore,
    by: str,
    *,
    since: date | None = None,
    until: date | None = None,
    filters: dict[str, str] | None = None,
    page: int | None = None,
    page_rows: int = int(PAGE_ROWS.high),
) -> list[dict[str, Any]]:
    """One row per value of ``by``: its key, jobs, total and itemised parts in USD (Decimal cents).

    Days and months come in time order, other keys most expensive first (the query layer's
    one order). Every row by default (the CLI: one row per value with spend, bounded by the
    data); ``page`` (1-based) gives only that page of ``page_rows`` rows, paged in SQL."""
    window = Window(since, until, filters or {})
    paging = {}
    if page is not None:
        page = bounds.whole("page", page, PAGE_NUMBER)
        page_rows = bounds.whole("rows per page", page_rows, PAGE_ROWS)
        paging = {"limit": page_rows, "offset": (page - 1) * page_rows}
    rows = []
    for agg in queries(store).by_dimension(by, window, **paging):
        key = agg[by]
        row: dict[str, Any] = {by: key.isoformat() if isinstance(key, date) else str(key)}
        if by == "job":
            row.update({column.key: agg[column.key] for column in JOB_COLUMNS})
        row["jobs"] = int(agg["jobs"])
        micros = {item.name: int(agg[item.name] or 0) for item in REPORT_ITEMS}
        row.update(shown_usd(micros))
        row["unpriced_jobs"] = int(agg["unpriced_jobs"])
        if by == "job":
            row["flags"] = split_flags(agg["flags"])
            row["unpriced_parts"] = unpriced_parts(row["flags"])
            row[PLAN_VALUE.key] = usd_cents(int(agg["plan_value_micros"] or 0))
            row["list_usd"] = row[LIST.key]
            row["team_source"] = agg["team_source"]
        row["_micros"] = micros
        rows.append(row)
    return rows


def spend_count(
    store: Store | LiteStore,
    by: str,
    *,
    since: date | None = None,
    until: date | None = None,
    filters: dict[str, str] | None = None,
) -> int:
    """How many rows :func:`spend_rows` has for the window in all (a COUNT in SQL)."""
    return queries(store).count_dimension(by, Window(since, until, filters or {}))


def spend_total(
    store: Store | LiteStore,
    by: str,
    *,
    since: date | None = None,
    until: date | None = None,
    filters: dict[str, str] | None = None,
) -> dict[str, Any]:
    """The totals row of every :func:`spend_rows` row, summed in SQL: what a page of rows
    shows as its total (each job has one value of ``by``, so its jobs add up)."""
    (overall,) = queries(store).spend([], Window(since, until, filters or {}))
    micros = {item.name: int(overall[item.name] or 0) for item in REPORT_ITEMS}
    total: dict[str, Any] = {by: "TOTAL", "jobs": int(overall["jobs"])}
    total.update(shown_usd(micros))
    total["unpriced_jobs"] = int(overall["unpriced_jobs"])
    return total


def totals(rows: Sequence[dict[str, Any]], by: str) -> dict[str, Any]:
    """The totals row: exact micro-dollar sums rounded once, never a sum of rounded cents."""
    micros = {k: sum(r["_micros"][k] for r in rows) for k in (rows[0]["_micros"] if rows else {})}
    total: dict[str, Any] = {by: "TOTAL", "jobs": sum(r["jobs"] for r in rows)}
    total.update(shown_usd(micros))
    total["unpriced_jobs"] = sum(r["unpriced_jobs"] for r in rows)
    return total


def spend_notes(
    store: Store | LiteStore,
    *,
    since: date | None = None,
    until: date | None = None,
    filters: dict[str, str] | None = None,
) -> list[str]:
    """The notes under ``report --by`` rows of the same window: what is unpriced, where."""
    return unpriced_notes(queries(store), Window(since, until, filters or {}))


def shown_usd(
    micros: Mapping[str, int], items: Sequence[CostItem] = REPORT_ITEMS
) -> dict[str, Decimal]:
    """Micro-dollars by item name -> USD cents by item key, as every output shows them.

    The total (list) is rounded half up; compute, warm pool and storage get its cents by
    largest remainder, so they add up to it exactly; the other items (spot savings,
    effective, the S3 run-rate) are rounded on their own."""
    shown = {item.key: usd_cents(micros.get(item.name, 0)) for item in items}
    parts = [item for item in TOTAL_PARTS if item in items]
    if LIST in items and parts:
        total, part_cents = cents_parts(
            micros.get(LIST.name, 0), [micros.get(item.name, 0) for item in parts]
        )
        shown[LIST.key] = total * CENT
        shown.update({item.key: c * CENT for item, c in zip(parts, part_cents, strict=True)})
    return shown


def public(row: dict[str, Any]) -> dict[str, Any]:
    """The row without its private (``_``) keys: what JSON and CSV show."""
    return {k: v for k, v in row.items() if not k.startswith("_")}


def columns_for(by: str) -> list[Column]:
    """The columns of ``report --by`` rows: the key, job details for ``job``, counts, money."""
    cols = [text(by)]
    if by == "job":
        cols += list(JOB_COLUMNS)
    cols = [*cols, count("jobs"), *REPORT_MONEY, count("unpriced_jobs")]
    return [*cols, *JOB_EXTRA_COLUMNS] if by == "job" else cols


def _instances(row: dict[str, Any]) -> dict[str, str | None]:
    """A job's instances as one cell: ``2 x ml.g5.2xlarge`` (None when AWS did not say)."""
    if not row.get("instance_type"):
        return {"instances": None}
    return {"instances": f"{row['instance_count'] or 0} x {row['instance_type']}"}


def spend_table(rows: Sequence[dict[str, Any]], by: str, notes: Sequence[str] = ()) -> Table:
    """The ``report --by`` rows as a Table with its totals row, a bar chart of the total
    per key and ``notes`` (from :func:`spend_notes`). Untitled in text and Markdown: scripts
    read those as a bare table."""
    if by not in DIMENSIONS:
        raise InputError(f"--by {by!r}: expected one of {', '.join(DIMENSIONS)}")
    charted = list(rows) if by in CHRONOLOGICAL else list(rows)[:20]
    chart = Chart(
        "bar" if by in CHRONOLOGICAL else "hbar",
        f"Total spend by {by}" + ("" if len(charted) == len(rows) else f" (top {len(charted)})"),
        tuple(str(r[by]) for r in charted),
        (Series("total_usd", tuple(r["total_usd"] for r in charted)),),
    )
    records = columns_for(by)
    return Table(
        view="spend",
        title=f"SageMaker training spend by {by}",
        columns=list(JOB_TABLE_COLUMNS) if by == "job" else records,
        record_columns=records,
        rows=[public(r) | _instances(r) if by == "job" else public(r) for r in rows],
        total=totals(rows, by) if rows else None,
        charts=[chart],
        notes=list(notes),
        titled=False,
    )
