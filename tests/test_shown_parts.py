"""Rule 12 of docs/cost-model.md in every output: the shown parts add up to the shown total.

Jobs (eu-west-1, shipped rates: ml.m5.xlarge $0.257/h, ML storage $0.154 per GB-month; 10
March, 744 h), costed and stored as the collector does:

| job      | what                                        | parts rounded alone        | shown              |
|----------|---------------------------------------------|----------------------------|--------------------|
| warm     | 1 h + 1800 s warm pool, 50 GB (rule 4)      | 0.26 + 0.13 + 0.02 -> 0.40 | 0.26 + 0.13 + 0.01 |
| short-N  | 601 + 37 N s, 73 GB, team t(N mod 6)        | often one cent off         | adds up            |

``report --by team`` and ``report --by job`` are rendered as table, CSV, JSON, Markdown and
HTML and parsed back: in every row (and the totals row where the format has one)
``compute_usd + warm_pool_usd + storage_usd == total_usd``.
"""

from __future__ import annotations

import csv
import io
import json
import re
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from tests.reconcile_data import make_job, save
from tracker.records import usd_cents
from tracker.report.render import render
from tracker.report.spend import spend_rows, spend_table
from tracker.store.database import Store

START = datetime(2026, 3, 10, 10, 0, tzinfo=UTC)
PARTS = ("compute_usd", "warm_pool_usd", "storage_usd")


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Store:
    store = Store.open(f"sqlite:///{tmp_path_factory.mktemp('shown') / 'tracker.db'}")
    jobs = [
        make_job("warm", "a", region="eu-west-1", volume_gb=50, seconds=3600,
                 warm_pool_retained_seconds=1800, warm_pool_status="Terminated",
                 start_time=START),
    ]  # fmt: skip
    jobs += [
        make_job(f"short-{n}", f"t{n % 6}", region="eu-west-1", volume_gb=73,
                 seconds=601 + 37 * n, start_time=START + timedelta(minutes=n))
        for n in range(60)
    ]  # fmt: skip
    save(store, jobs, now=datetime(2026, 3, 12, tzinfo=UTC))
    return store


def parsed(text: str, fmt: str) -> list[dict[str, str]]:
    """The rows of a rendered ``report --by`` table as dicts of column -> cell text."""
    if fmt == "csv":
        return list(csv.DictReader(io.StringIO(text)))
    if fmt == "json":
        return [{k: str(v) for k, v in row.items()} for row in json.loads(text)]
    if fmt == "html":
        head = re.findall(r"<th[^>]*>(.*?)</th>", text)
        bodies = re.findall(r"<tr(?: class=total)?>(<td.*?)</tr>", text)
        return [dict(zip(head, re.findall(r"<td[^>]*>(.*?)</td>", b), strict=True)) for b in bodies]
    if fmt == "markdown":
        lines = [line.strip("|").split("|") for line in text.splitlines() if line.startswith("|")]
        head, body = [c.strip() for c in lines[0]], lines[2:]
        return [dict(zip(head, (c.strip() for c in row), strict=True)) for row in body]
    # Text: the dashed rule under the headings gives each column's span (cells may be blank).
    lines = [line for line in text.splitlines() if line.strip()]
    spans = [m.span() for m in re.finditer(r"-+", lines[1])]
    cells = [[line[a:b].strip() for a, b in spans] for line in lines if not line.startswith("-")]
    return [dict(zip(cells[0], row, strict=True)) for row in cells[1:]]


@pytest.mark.parametrize("fmt", ["table", "csv", "json", "markdown", "html"])
@pytest.mark.parametrize("by", ["team", "job"])
def test_report_by_shows_parts_that_add_up(store: Store, by: str, fmt: str):
    table = spend_table(spend_rows(store, by), by)
    if by == "job" and fmt in {"table", "markdown", "html"}:
        # The people-facing job table shows no compute column (it is the total less the
        # parts beside it); its full record is the one JSON and CSV carry.
        table = replace(table, columns=list(table.record_columns or table.columns))
    rows = parsed(str(render(table, fmt)), fmt)
    assert len(rows) >= 7
    for row in rows:
        total = Decimal(row["total_usd"])
        assert sum(Decimal(row[key]) for key in PARTS) == total, row


def test_the_jobs_are_ones_whose_parts_rounded_alone_do_not_add_up(store: Store):
    """Without the rule these rows would not add up: the test data is worth its name."""
    off = [
        row
        for row in spend_rows(store, "job")
        if sum(usd_cents(row["_micros"][key.removesuffix("_usd")]) for key in PARTS)
        != usd_cents(row["_micros"]["list"])
    ]
    assert any(row["job"] == "warm" for row in off)
    assert len(off) >= 5
