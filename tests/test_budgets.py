"""Budgets: periods (month, quarter, year boundaries), actual and forecast arithmetic, config.

Rates in these tests: ml.m5.xlarge at $1.00 per instance-hour, no storage volume, so a job's
cost is its hours x instances in dollars. ``make_job`` is tests/factories.py's (1 x ml.m5.xlarge)
for team nlp in account 123456789012, MaxRuntimeInSeconds 86400.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from functools import partial
from pathlib import Path

import pytest

from tests import factories
from tests.conftest import run_cli
from tests.factories import HOUR
from tracker.alert.budgets import (
    Budget,
    BudgetInputs,
    JobSpend,
    RunningProjection,
    crossed,
    evaluate,
    period_containing,
    project_running,
    stop_time,
    trailing_window,
)
from tracker.alert.rules import AlertSettings
from tracker.alert.service import budget_statuses
from tracker.cost.engine import CostPolicy, cost_job
from tracker.errors import ConfigError
from tracker.records import JobRecord, Rates
from tracker.settings import SectionContext, parse_budgets, parse_settings
from tracker.store.database import Store

RATES = Rates(hourly={"ml.m5.xlarge": Decimal(1)})
D = Decimal


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


make_job = partial(
    factories.make_job, team="nlp", account_id="123456789012", max_runtime_seconds=86400
)


def save(store: Store, records: list[JobRecord], now: datetime) -> None:
    store.save_jobs([(r, cost_job(r, RATES, now, CostPolicy()), {}) for r in records], now)


class FakeSettings:
    """The two things budget_statuses reads from Settings, plus a fixed price book."""

    discount_pct = D(0)
    alerts = AlertSettings()

    def __init__(self, budgets: tuple[Budget, ...]):
        self.budgets = budgets

    def price_book(self):
        return FixedBook()

    def cost_policy(self):
        return CostPolicy()


class FixedBook:
    def rates_for(self, record, discount_pct=None):
        return RATES


# -- periods ---------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("kind", "now", "label", "start", "end"),
    [
        ("monthly", "2026-11-30T23:59:59", "2026-11", "2026-11-01", "2026-11-30"),
        ("monthly", "2026-12-01T00:00:00", "2026-12", "2026-12-01", "2026-12-31"),
        ("monthly", "2026-12-31T23:59:59", "2026-12", "2026-12-01", "2026-12-31"),
        ("monthly", "2028-02-15T12:00:00", "2028-02", "2028-02-01", "2028-02-29"),
        ("monthly", "2027-02-28T23:00:00", "2027-02", "2027-02-01", "2027-02-28"),
        ("quarterly", "2026-03-31T23:59:59", "2026-Q1", "2026-01-01", "2026-03-31"),
        ("quarterly", "2026-04-01T00:00:00", "2026-Q2", "2026-04-01", "2026-06-30"),
        ("quarterly", "2026-11-15T00:00:00", "2026-Q4", "2026-10-01", "2026-12-31"),
        ("yearly", "2026-12-31T23:59:59", "2026", "2026-01-01", "2026-12-31"),
        ("yearly", "2027-01-01T00:00:00", "2027", "2027-01-01", "2027-12-31"),
    ],
)
def test_period_containing_boundaries(
    kind: str, now: str, label: str, start: str, end: str
) -> None:
    period = period_containing(kind, at(now))
    assert (period.label, period.start.isoformat(), period.end.isoformat()) == (label, start, end)
    assert period.end_at == at(end) + timedelta(days=1)


def test_period_containing_converts_other_timezones_to_utc() -> None:
    from datetime import timezone

    # 2026-12-01 01:00 in UTC+02:00 is still 2026-11-30 23:00 UTC: November.
    local = datetime(2026, 12, 1, 1, 0, tzinfo=timezone(timedelta(hours=2)))
    assert period_containing("monthly", local).label == "2026-11"


def test_trailing_window_crosses_month_boundary() -> None:
    assert trailing_window(at("2026-12-01T08:00:00"), 7) == (date(2026, 11, 24), date(2026, 11, 30))
    assert trailing_window(at("2026-03-01T00:00:00"), 1) == (date(2026, 2, 28), date(2026, 2, 28))


# -- arithmetic ------------------------------------------------------------------------------
def test_evaluate_actual_and_forecast() -> None:
    """Budget $1,000 monthly, now 2026-11-11 00:00 UTC (20 days left in November).

    | part                                   | arithmetic        | USD     |
    |----------------------------------------|-------------------|---------|
    | finished a                             |                   |  300.00 |
    | finished b                             |                   |  100.50 |
    | running c so far                       |                   |   49.50 |
    | actual                                 | 300+100.50+49.50  |  450.00 |
    | run rate (finished, last 7 days 350)   | 350 / 7           |   50/day|
    | projected run rate                     | 50 x 20           | 1000.00 |
    | running c: at stop 149.50 - so far     | 149.50 - 49.50    |  100.00 |
    | forecast                               | 450+1000+100      | 1550.00 |
    """
    budget = Budget("nlp", D(1000), filters=(("team", "nlp"),))
    inputs = BudgetInputs(
        jobs=(
            JobSpend("a", D(300)),
            JobSpend("b", D("100.50")),
            JobSpend("c", D("49.50"), final=False, status="InProgress"),
        ),
        trailing_finished_usd=D(350),
        running=(RunningProjection("c", D("49.50"), D("149.50"), None, "MaxRuntimeInSeconds"),),
    )
    status = evaluate(budget, inputs, at("2026-11-11T00:00:00"))
    assert status.actual_usd == D("450.00")
    assert status.run_rate_usd_per_day == D(50)
    assert status.remaining_days == D(20)
    assert status.forecast_usd == D("1550.00")
    assert status.thresholds_crossed == ()
    assert status.forecast_crossed == (D(100),)
    row = status.row()
    assert {k: row[k] for k in ("budget", "period", "amount_usd", "actual_usd", "forecast_usd", "pct_used", "thresholds_crossed")} == {
        "budget": "nlp", "period": "monthly", "amount_usd": D("1000.00"), "actual_usd": D("450.00"),
        "forecast_usd": D("1550.00"), "pct_used": D("45.00"), "thresholds_crossed": [],
    }  # fmt: skip
    assert row["period_label"] == "2026-11"
    assert [j["job"] for j in row["top_jobs"]] == ["a", "b", "c"]
    assert "$50.00/day" in status.method() and "20.0 days" in status.method()


def test_evaluate_on_the_first_instant_of_a_month_has_the_whole_month_left() -> None:
    """2026-12-01 00:00: nothing spent in December yet; 31 days x $10/day = $310 forecast."""
    budget = Budget("org", D(1000), run_rate_days=7)
    status = evaluate(budget, BudgetInputs(trailing_finished_usd=D(70)), at("2026-12-01T00:00:00"))
    assert status.period.label == "2026-12"
    assert status.actual_usd == 0
    assert status.remaining_days == D(31)
    assert status.forecast_usd == D(310)


def test_evaluate_at_the_last_second_projects_almost_nothing() -> None:
    budget = Budget("org", D(100))
    status = evaluate(budget, BudgetInputs(jobs=(JobSpend("a", D(60)),), trailing_finished_usd=D(8640 * 7)),
                      at("2026-11-30T23:59:59"))  # fmt: skip
    # one second left at $8,640/day = $0.10
    assert status.forecast_usd == D("60.1")
    assert status.thresholds_crossed == (D(50),)


@pytest.mark.parametrize(
    ("spend", "expected"),
    [
        ("49.999999", ()),
        ("50", (D(50),)),
        ("80", (D(50), D(80))),
        ("100.01", (D(50), D(80), D(100))),
    ],
)
def test_crossed_is_inclusive_and_exact(spend: str, expected: tuple[Decimal, ...]) -> None:
    assert crossed(D(spend), D(100), (D(100), D(50), D(80))) == expected


# -- running jobs: their stopping condition ----------------------------------------------------------
def test_stop_time_uses_max_wait_for_spot_and_max_runtime_otherwise() -> None:
    now = at("2026-11-10T12:00:00")
    on_demand = make_job(
        "od",
        start_time=at("2026-11-10T10:00:00"),
        seconds=None,
        status="InProgress",
        max_runtime_seconds=7200,
    )
    assert stop_time(on_demand, now) == (at("2026-11-10T12:00:00"), "MaxRuntimeInSeconds")
    spot = replace(on_demand, spot=True, max_wait_seconds=10800)
    assert stop_time(spot, now) == (at("2026-11-10T13:00:00"), "MaxWaitTimeInSeconds")
    pending = replace(on_demand, start_time=None)
    assert stop_time(pending, now) == (at("2026-11-10T14:00:00"), "MaxRuntimeInSeconds")


def test_project_running_cuts_at_the_period_end() -> None:
    """Started 2026-11-30 22:00, 2 instances at $1/h, MaxRuntime 4 h (stops 12-01 02:00).

    | period   | now               | in-period hours at stop | at stop |
    |----------|-------------------|-------------------------|---------|
    | 2026-11  | 11-30 23:00       | 22:00-24:00 = 2 h x 2   | $4.00   |
    | 2026-12  | 12-01 01:00       | 00:00-02:00 = 2 h x 2   | $4.00   |
    """
    record = make_job(
        "long",
        start_time=at("2026-11-30T22:00:00"),
        seconds=None,
        status="InProgress",
        instance_count=2,
        max_runtime_seconds=4 * 3600,
    )
    nov_now = at("2026-11-30T23:00:00")
    nov = project_running(
        record, D(2), RATES, CostPolicy(), period_containing("monthly", nov_now), nov_now
    )
    assert (nov.at_stop_usd, nov.remaining_usd) == (D(4), D(2))
    dec_now = at("2026-12-01T01:00:00")
    dec = project_running(
        record, D(2), RATES, CostPolicy(), period_containing("monthly", dec_now), dec_now
    )
    assert (dec.at_stop_usd, dec.remaining_usd) == (D(4), D(2))


def test_project_running_past_its_stop_adds_nothing() -> None:
    record = make_job(
        "late",
        start_time=at("2026-11-10T00:00:00"),
        seconds=None,
        status="InProgress",
        max_runtime_seconds=3600,
    )
    now = at("2026-11-10T05:00:00")
    projection = project_running(
        record, D(5), RATES, CostPolicy(), period_containing("monthly", now), now
    )
    assert projection.remaining_usd == 0


# -- from the database ---------------------------------------------------------------------------
@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The same database questions on SQLite and on PostgreSQL (skipped if it does not answer)."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'b.db'}"
    return request.getfixturevalue("pg_url")


def test_budget_statuses_from_store_split_across_month_boundary(db_url: str) -> None:
    """Team nlp, budget $20 monthly; now 2026-12-02 00:00 (30 days left); run rate over 7 days.

    | job      | interval (UTC)                     | $1/h x n | Nov     | Dec    |
    |----------|------------------------------------|----------|---------|--------|
    | spanning | 11-30 22:00 -> 12-01 04:00, 1 inst | 6 h      | 2.00    | 4.00   |
    | dec      | 12-01 10:00 -> 12-01 16:00, 1 inst | 6 h      |         | 6.00   |
    | running  | 12-01 20:00 -> now (4 h), 1 inst   | 4 h      |         | 4.00   |
    | other    | team cv, 12-01, 10 h               | ignored  |         |        |
    | nov      | 11-26 00:00 -> 11-26 05:00, 1 inst | 5 h      | 5.00    |        |

    actual (Dec) = 4 + 6 + 4 = 14.00 -> 70% of $20: crosses 50.
    run rate = finished nlp cost on 11-25..12-01 = 2 + 4 + 6 + 5 = 17 / 7 days.
    running: MaxRuntime 10 h -> stops 12-02 06:00: 6 more hours = $6.00.
    forecast = 14 + 17/7 x 30 + 6 = 92.857142... -> $92.86.
    """
    now = at("2026-12-02T00:00:00")
    store = Store.open(db_url)
    save(store, [
        make_job("spanning", start_time=at("2026-11-30T22:00:00"), seconds=6 * HOUR),
        make_job("dec", start_time=at("2026-12-01T10:00:00"), seconds=6 * HOUR),
        make_job("running", start_time=at("2026-12-01T20:00:00"), seconds=None, status="InProgress", max_runtime_seconds=10 * 3600),
        make_job("other", start_time=at("2026-12-01T00:00:00"), seconds=10 * HOUR, team="cv"),
        make_job("nov", start_time=at("2026-11-26T00:00:00"), seconds=5 * HOUR),
    ], now)  # fmt: skip
    budget = Budget("nlp-monthly", D(20), filters=(("team", "nlp"),))
    [status] = budget_statuses(FakeSettings((budget,)), store, now)
    row = status.row()
    assert row["actual_usd"] == D("14.00")
    assert row["pct_used"] == D("70.00")
    assert row["thresholds_crossed"] == [50]
    assert status.running_remaining_usd == D(6)
    assert row["forecast_usd"] == D("92.86")
    assert row["forecast_thresholds_crossed"] == [100]
    assert [j["job"] for j in row["top_jobs"]] == ["dec", "running", "spanning"]
    assert row["top_jobs"][2]["usd"] == D("4.00")  # only its December share

    nov_now = at("2026-11-30T23:30:00")
    [nov] = budget_statuses(FakeSettings((budget,)), store, nov_now)
    assert nov.period.label == "2026-11"
    assert nov.row()["actual_usd"] == D("7.00")  # nov 5 + spanning's 2 November hours


# -- configuration ----------------------------------------------------------------------------------
def ctx() -> SectionContext:
    return SectionContext(None, Path.cwd(), [])


def test_parse_budgets_reads_the_documented_example() -> None:
    context = ctx()
    [budget] = parse_budgets(
        [{
            "name": "nlp-monthly", "team": "nlp", "period": "monthly", "amount_usd": 5000,
            "thresholds_pct": [50, 80, 100], "forecast_pct": 100,
            "notify": ["log", "sns:arn:aws:sns:us-east-1:123456789012:budget-alerts",
                       "webhook:env:SLACK_WEBHOOK_URL", "email:finops@example.com"],
        }],
        context,
    )  # fmt: skip
    assert context.problems == []
    assert budget.amount_usd == D(5000) and budget.filters == (("team", "nlp"),)
    assert budget.thresholds_pct == (D(50), D(80), D(100)) and budget.forecast_pct == (D(100),)
    assert budget.scope() == "team nlp"


def test_parse_budgets_reports_every_problem() -> None:
    context = ctx()
    parse_budgets(
        [
            {
                "name": "a",
                "amount_usd": -5,
                "period": "weekly",
                "thresholds_pct": [50, "x"],
                "colour": "red",
            },
            {"name": "b", "amount_usd": 10, "notify": ["pager:ops", "webhook:htp://secret-token"]},
            {"name": "b", "amount_usd": 10},
        ],
        context,
    )
    text = "\n".join(context.problems)
    for expected in ("budgets[0].amount_usd", "budgets[0].period", "budgets[0].thresholds_pct",
                     "budgets[0].colour", "budgets[1].notify[0]", "budgets[1].notify[1]", "budgets[2].name"):  # fmt: skip
        assert expected in text
    assert "secret-token" not in text


def test_bad_budget_config_exits_2_with_one_line(tmp_path: Path) -> None:
    config = tmp_path / "tracker.toml"
    config.write_text('[[budgets]]\nname = "x"\namount_usd = "lots"\nperiod = "fortnightly"\n')
    with pytest.raises(ConfigError):
        parse_settings(config)
    result = run_cli("--config", str(config), "budgets")
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and result.stderr.startswith("Error: ")
    assert "budgets[0].amount_usd" in result.stderr and "budgets[0].period" in result.stderr


def test_cli_budgets_json_rows(tmp_path: Path) -> None:
    """Team nlp: one finished job, 2026-11-05 00:00-10:00 at $1/h x 3 = $30.00 of $50 = 60%."""
    db = tmp_path / "t.db"
    store = Store.open(f"sqlite:///{db}")
    save(
        store,
        [make_job("j", start_time=at("2026-11-05T00:00:00"), seconds=10 * HOUR, instance_count=3)],
        at("2026-11-06T00:00:00"),
    )
    config = tmp_path / "tracker.toml"
    config.write_text(
        f'[database]\nurl = "sqlite:///{db}"\n'
        '[[budgets]]\nname = "nlp-monthly"\nteam = "nlp"\namount_usd = 50\nrun_rate_days = 7\n'
        '[[budgets]]\nname = "org-yearly"\nperiod = "yearly"\namount_usd = 1000\n'
    )
    result = run_cli(
        "--config",
        str(config),
        "budgets",
        "--format",
        "json",
        env={"TRACKER_NOW": "2026-11-20T00:00:00Z"},
    )
    assert result.returncode == 0, result.stderr
    import json

    rows = {r["budget"]: r for r in json.loads(result.stdout)}
    nlp = rows["nlp-monthly"]
    assert {k: nlp[k] for k in ("period", "amount_usd", "actual_usd", "pct_used", "thresholds_crossed")} == {
        "period": "monthly", "amount_usd": 50.0, "actual_usd": 30.0, "pct_used": 60.0, "thresholds_crossed": [50],
    }  # fmt: skip
    # The job is older than the 7-day window, so nothing is projected: forecast = actual.
    assert nlp["forecast_usd"] == 30.0
    assert rows["org-yearly"]["period_label"] == "2026"
    table = run_cli("--config", str(config), "budgets", env={"TRACKER_NOW": "2026-11-20T00:00:00Z"})
    assert "nlp-monthly" in table.stdout and "$30.00" in table.stdout and "60.00%" in table.stdout
