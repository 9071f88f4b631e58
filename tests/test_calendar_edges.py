"""Dates at the edges of the calendar (issue 12): ``--since 0001-01-01`` and ``--until
9999-12-31`` are valid dates, so every window, period and bill line built from them must work
without overflowing ``date`` (each test failed on the old code with ``OverflowError`` or
``ValueError: year 10000 is out of range``). One helper, ``tracker.bounds.day_after``, finds
every exclusive end: None past 9999-12-31, meaning "to the end of the calendar"."""

from __future__ import annotations

import json
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from tests.conftest import run_cli
from tests.reconcile_data import NOW, SETTINGS, make_job, save
from tests.test_bill_files import CUR_ROWS, cur_csv_gz, cur_parquet
from tracker.bounds import day_after
from tracker.errors import InputError
from tracker.reconcile.bill_files import local_bill_files, read_bill
from tracker.reconcile.rules import is_settled, period_end
from tracker.reconcile.service import fetch_lines, reconcile_bill
from tracker.store.database import Store
from tracker.store.estimates import EstimateRepository

FIRST, LAST = date.min, date.max  # 0001-01-01, 9999-12-31


def test_day_after_the_last_day_of_the_calendar_is_none() -> None:
    assert day_after(date(9999, 12, 30)) == LAST
    assert day_after(LAST) is None
    assert day_after(FIRST) == date(1, 1, 2)
    assert day_after(date(9999, 12, 29), days=2) == LAST
    assert day_after(date(9999, 12, 29), days=3) is None


def test_period_end_of_the_calendars_last_day_and_month_is_none() -> None:
    assert period_end("9999-12-31") is None
    assert period_end("9999-12") is None
    assert period_end("9999-11") == date(9999, 12, 1)
    assert period_end("9999-12-30") == LAST
    assert period_end("0001-01") == date(1, 2, 1)


def test_is_settled_near_the_calendars_end_is_false_not_an_overflow() -> None:
    # 9999-12-30 ends on 9999-12-31; old code added settle_days to it: OverflowError.
    assert is_settled("9999-12-30", NOW, 2) is False
    assert is_settled("9999-12", NOW, 2) is False
    assert is_settled("0001-01-01", NOW, 2) is True
    assert is_settled("2026-11-23", NOW, 2) is True  # ended 11-24, two whole days by 11-26
    assert is_settled("2026-11-24", NOW, 2) is False


@pytest.fixture
def store(tmp_path: Path) -> Store:
    """Two finished one-hour jobs on 1 x ml.m5.xlarge at $0.23/h, on 2026-11-20 and -21."""
    store = Store.open(f"sqlite:///{tmp_path / 't.db'}")
    save(
        store,
        [make_job("nlp-1", "nlp"), make_job("cv-1", "cv", start_time=NOW - timedelta(days=5))],
    )
    return store


@pytest.mark.parametrize(
    ("since", "until", "names"),
    [
        (FIRST, LAST, ["nlp-1", "cv-1"]),
        (None, LAST, ["nlp-1", "cv-1"]),
        (date(2026, 11, 21), LAST, ["cv-1"]),
        (FIRST, FIRST, []),
        (LAST, LAST, []),
    ],
)
def test_finished_jobs_window_to_the_calendars_end(store: Store, since, until, names) -> None:
    jobs = EstimateRepository(store).finished_jobs(since, until)
    assert [job.record.name for job in jobs] == names


def test_cli_reconcile_estimates_until_9999_12_31_lists_every_job(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 't.db'}"
    save(Store.open(db), [make_job("nlp-1", "nlp")])
    result = run_cli(
        "--db", db, "reconcile", "--against", "estimates", "--since", "0001-01-01",
        "--until", "9999-12-31", "--format", "json", env={"TRACKER_NOW": NOW.isoformat()},
    )  # fmt: skip
    assert (result.returncode, result.stderr) == (0, "")
    assert [row["job"] for row in json.loads(result.stdout)] == ["nlp-1"]


def test_reconcile_bill_file_over_the_whole_calendar(store: Store, tmp_path: Path) -> None:
    """The bill of tests/test_bill_files.py (nlp 1.38 + 0.05 on 11-20, cv 1.515 on 11-21)
    against nlp-1 ($0.23, 11-20) and cv-1 ($0.23, 11-21), daily and monthly, 0001..9999."""
    source = str(cur_parquet(tmp_path / "cur.parquet"))
    daily = reconcile_bill(SETTINGS, store, NOW, source=source, since=FIRST, until=LAST)
    rows = [
        (r["team"], r["period"], r["tracker_usd"], r["billed_usd"])
        for r in (x.to_dict() for x in daily.rows)
    ]
    assert rows == [
        ("nlp", "2026-11-20", Decimal("0.23"), Decimal("1.43")),
        ("cv", "2026-11-21", Decimal("0.23"), Decimal("1.52")),
    ]
    assert (daily.since, daily.until) == (FIRST, LAST)
    monthly = reconcile_bill(
        SETTINGS, store, NOW, source=source, since=date(9999, 12, 1), until=LAST,
        granularity="monthly",
    )  # fmt: skip
    assert (monthly.rows, monthly.lines) == ([], [])


def test_reconcile_bill_cost_explorer_until_9999_12_31_is_input_error() -> None:
    """Cost Explorer's End is the exclusive day after --until: none follows 9999-12-31. The
    error comes before any client is made (no AWS call)."""
    with pytest.raises(InputError) as caught:
        fetch_lines(SETTINGS, "ce", date(2026, 11, 1), LAST, "daily")
    assert str(caught.value) == (
        "--until 9999-12-31: Cost Explorer needs the day after --until, and no day follows it; "
        "pass an earlier --until"
    )


@pytest.mark.parametrize("maker", [cur_csv_gz, cur_parquet])
def test_read_bill_line_dated_9999_12_31_is_input_error(tmp_path: Path, maker) -> None:
    row = CUR_ROWS[0][:3] + ("9999-12-31T08:00:00Z",) + CUR_ROWS[0][4:]
    first = CUR_ROWS[0][:3] + ("0001-01-01T08:00:00Z",) + CUR_ROWS[0][4:]
    path = maker(tmp_path / f"bill{'.csv.gz' if maker is cur_csv_gz else '.parquet'}", [first, row])
    with pytest.raises(InputError) as caught:
        read_bill(local_bill_files(str(path)), "team", "f")
    value = "'9999-12-31T08:00:00Z'" if maker is cur_csv_gz else "Timestamp('9999-12-31 08:00:00')"
    assert str(caught.value) == (
        f"{path}: line_item_usage_start_date: {value} is the calendar's last day; a bill line "
        "ends the day after its usage day, so usage must be dated before 9999-12-31"
    )
    ok = maker(tmp_path / f"ok{'.csv.gz' if maker is cur_csv_gz else '.parquet'}", [first])
    lines = read_bill(local_bill_files(str(ok)), "team", "f").lines
    assert [(line.period_start, line.period_end) for line in lines] == [(FIRST, date(1, 1, 2))]
