"""The views answer their questions, to the cent, on the organisation of tests/views_data.py.

| job            | team        | Oct 2026 | Nov 2026 | notes                                  |
|----------------|-------------|---------:|---------:|----------------------------------------|
| nlp-train-1    | nlp         | 1.00     |          | on-demand m5, completed                |
| nlp-long       | nlp         | 0.50     | 0.50     | 4 h over midnight Oct 31 -> Nov 1      |
| nlp-train-2    | nlp         |          | 1.00     | on-demand m5, completed                |
| nlp-spot       | nlp         |          | 0.75     | spot g5: billable 1800 of 7200 s       |
| nlp-trainium   | nlp         |          | unknown  | unpriced                               |
| vision-g5      | vision      |          | 1.50     | on-demand g5, completed                |
| vision-fail    | vision      |          | 3.00     | failed                                 |
| vision-warm    | vision      |          | 0.30     | 0.20 + 0.10 warm pool never reused     |
| vision-running | vision      |          | 2.00     | running: in flight                     |
| untagged       | unallocated |          | 0.25     |                                        |
| hostile        | <script>... |          | 0.25     |                                        |

Spot saving observed: nlp team 1 - 1800/7200 = 75%; family ml.g5 (nlp-spot) 75%.
Spot opportunity: nlp (1.00 + 1.00 + 0.50 + 0.50) x 0.75 = 2.25 (team ratio);
vision-g5 1.50 x 0.75 = 1.125 -> 1.13 (family ratio); vision-warm (c5) has no history.
"""

from __future__ import annotations

import json
import re
from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest

from tests.conftest import run_cli
from tests.views_data import NOW, at, fill, make_job, make_store
from tracker.errors import InputError
from tracker.records import Rates
from tracker.report.views import ViewRequest, build, month_start, parse_pivot
from tracker.store.database import Store

D = Decimal


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Store:
    return make_store(tmp_path_factory.mktemp("views"))


def rows_by(report, key: str) -> dict[str, dict]:
    return {row[key]: row for row in report.rows}


# -- showback ------------------------------------------------------------------------------
def test_showback_team_by_month_with_change(store: Store) -> None:
    report = build(store, ViewRequest("showback"), NOW)
    assert report.keys == [
        "team",
        "jobs",
        "2026-10",
        "2026-11",
        "total_usd",
        "change_usd",
        "change_pct",
    ]
    teams = rows_by(report, "team")
    assert teams["nlp"]["2026-10"] == D("1.50") and teams["nlp"]["2026-11"] == D("2.25")
    assert teams["nlp"]["total_usd"] == D("3.75")
    assert teams["nlp"]["change_usd"] == D("0.75") and teams["nlp"]["change_pct"] == D("50.0")
    assert teams["nlp"]["jobs"] == 5
    assert teams["vision"]["total_usd"] == D("6.80") and teams["vision"]["change_pct"] is None
    assert [r["team"] for r in report.rows][:2] == ["vision", "nlp"]
    assert report.total["total_usd"] == D("11.05") and report.total["jobs"] == 11
    assert report.total["2026-10"] == D("1.50") and report.total["2026-11"] == D("9.55")


def test_showback_default_window_is_three_months(store: Store) -> None:
    report = build(store, ViewRequest("showback"), NOW)
    assert report.subtitle.startswith("2026-09-01 to 2026-11-26")


def test_showback_pivot_other_dimensions(store: Store) -> None:
    report = build(store, ViewRequest("showback", rows_by="status", cols_by="team"), NOW)
    statuses = rows_by(report, "status")
    assert statuses["Failed"]["vision"] == D("3.00")
    assert statuses["InProgress"]["vision"] == D("2.00")
    assert statuses["Completed"]["nlp"] == D("3.75")
    assert "change_usd" not in report.keys  # columns are not periods


def test_showback_total_is_rounded_once(tmp_path: Path) -> None:
    """Two teams each spend 0.005 (0.018/h x 1000 s): each cell shows 0.01, the total 0.01.

    | team | exact  | shown |
    |------|--------|-------|
    | a    | 0.005  | 0.01  |
    | b    | 0.005  | 0.01  |
    | all  | 0.010  | 0.01  |
    """
    store = Store.open(f"sqlite:///{tmp_path / 'r.db'}")
    rates = Rates(hourly={"ml.t3.medium": D("0.018")})
    jobs = [
        make_job(n, n, instance_type="ml.t3.medium", start_time=at(11, 3), seconds=1000)
        for n in ("a", "b")
    ]
    from tracker.cost.engine import CostPolicy, cost_job

    store.save_jobs([(j, cost_job(j, rates, NOW, CostPolicy()), {}) for j in jobs], NOW)
    report = build(store, ViewRequest("showback"), NOW)
    assert [r["total_usd"] for r in report.rows] == [D("0.01"), D("0.01")]
    assert report.total["total_usd"] == D("0.01")


def test_showback_filters_apply(store: Store) -> None:
    report = build(store, ViewRequest("showback", filters={"status": "Failed"}), NOW)
    assert [(r["team"], r["total_usd"]) for r in report.rows] == [("vision", D("3.00"))]


# -- top -----------------------------------------------------------------------------------
def test_top_ranks_jobs_by_cost_in_window(store: Store) -> None:
    report = build(store, ViewRequest("top", top=3), NOW)
    assert [(r["rank"], r["job"], r["total_usd"]) for r in report.rows] == [
        (1, "vision-fail", D("3.00")),
        (2, "vision-running", D("2.00")),
        (3, "vision-g5", D("1.50")),
    ]
    fail = report.rows[0]
    assert (fail["team"], fail["instance_type"], fail["instance_count"], fail["billable_hours"]) == (
        "vision", "ml.g5.2xlarge", 2, D("1.00"),
    )  # fmt: skip
    assert report.total["total_usd"] == D("6.50")


def test_top_shows_spot_savings(store: Store) -> None:
    report = build(store, ViewRequest("top", top=20, filters={"team": "nlp"}), NOW)
    spot = rows_by(report, "job")["nlp-spot"]
    assert (spot["total_usd"], spot["spot_savings_usd"], spot["billable_hours"], spot["spot"]) == (
        D("0.75"), D("2.25"), D("0.50"), "yes",
    )  # fmt: skip


def test_top_counts_only_the_window(store: Store) -> None:
    """nlp-long costs 1.00 over Oct 31 and Nov 1: only 0.50 falls in November."""
    report = build(store, ViewRequest("top", top=20, since=date(2026, 11, 1)), NOW)
    assert rows_by(report, "job")["nlp-long"]["total_usd"] == D("0.50")
    assert "nlp-train-1" not in rows_by(report, "job")


# -- waste ---------------------------------------------------------------------------------
def test_waste_categories(store: Store) -> None:
    report = build(store, ViewRequest("waste"), NOW)
    found = {(r["category"], r["team"]): (r["jobs"], r["waste_usd"]) for r in report.rows}
    assert found == {
        ("failed_or_stopped", "vision"): (1, D("3.00")),
        ("idle_warm_pool", "vision"): (1, D("0.10")),
        ("unallocated", "unallocated"): (1, D("0.25")),
        ("spot_opportunity", "nlp"): (3, D("2.25")),
        ("spot_opportunity", "vision"): (1, D("1.13")),
        ("unpriced", "nlp"): (1, None),
    }
    notes = {(r["category"], r["team"]): r["note"] for r in report.rows}
    assert "team nlp 75.0%" in notes[("spot_opportunity", "nlp")]
    assert "family ml.g5 75.0%" in notes[("spot_opportunity", "vision")]
    assert "1 job with no spot history" in notes[("spot_opportunity", "vision")]
    assert report.total is None


def test_waste_reused_warm_pool_is_not_waste(tmp_path: Path) -> None:
    reused = make_job("warm-reused", "ops", instance_type="ml.c5.xlarge", start_time=at(11, 16),
                      warm_pool_status="Reused", warm_pool_retained_seconds=1800,
                      warm_pool_reused_by="next-job")  # fmt: skip
    idle = make_job("warm-idle", "ops", instance_type="ml.c5.xlarge", start_time=at(11, 17),
                    warm_pool_status="Terminated", warm_pool_retained_seconds=1200)  # fmt: skip
    store = fill(Store.open(f"sqlite:///{tmp_path / 'w.db'}"), [reused, idle])
    report = build(store, ViewRequest("waste"), NOW)
    warm = [
        {k: v for k, v in r.items() if not k.startswith("_")}
        for r in report.rows
        if r["category"] == "idle_warm_pool"
    ]
    assert warm == [
        {"category": "idle_warm_pool", "team": "ops", "jobs": 1, "waste_usd": D("0.07"), "note": ""}
    ]
    # 1200 s x 0.20/h = 0.0666... -> 0.07


def test_waste_team_filter_still_borrows_family_ratio(store: Store) -> None:
    report = build(store, ViewRequest("waste", filters={"team": "vision"}), NOW)
    spot = [r for r in report.rows if r["category"] == "spot_opportunity"]
    assert [(r["team"], r["waste_usd"]) for r in spot] == [("vision", D("1.13"))]


def test_waste_stopped_jobs_count(tmp_path: Path) -> None:
    stopped = make_job("stopped", "ops", instance_count=2, start_time=at(11, 2), seconds=1800,
                       status="Stopped", secondary_status="Stopped")  # fmt: skip
    store = fill(Store.open(f"sqlite:///{tmp_path / 's.db'}"), [stopped])
    report = build(store, ViewRequest("waste"), NOW)
    assert [(r["category"], r["waste_usd"]) for r in report.rows] == [
        ("failed_or_stopped", D("0.25"))
    ]


# -- trend ---------------------------------------------------------------------------------
def test_trend_daily_per_team_with_in_flight(store: Store) -> None:
    report = build(store, ViewRequest("trend"), NOW)
    days = {(r["day"], r["team"]): (r["total_usd"], r["in_flight_usd"]) for r in report.rows}
    assert days[("2026-11-26", "vision")] == (D("2.00"), D("2.00"))
    assert days[("2026-10-31", "nlp")] == (D("0.50"), D("0.00"))
    assert days[("2026-11-01", "nlp")] == (D("0.50"), D("0.00"))
    assert ("2026-10-10", "nlp") not in days  # before the 30-day window
    assert report.total["total_usd"] == D("10.05") and report.total["in_flight_usd"] == D("2.00")
    assert report.subtitle.startswith("2026-10-28 to 2026-11-26")
    chart = report.charts[0]
    assert len(chart.labels) == 30 and chart.series[-1].name == "in flight (running jobs)"


def test_trend_open_window_ends(store: Store) -> None:
    report = build(store, ViewRequest("trend", until=date(2026, 10, 31)), NOW)
    assert report.subtitle.startswith("2026-10-02 to 2026-10-31")
    assert {r["day"] for r in report.rows} == {"2026-10-10", "2026-10-31"}


# -- requests ------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"view": "budget"}, "--view 'budget'"),
        ({"view": "showback", "rows_by": "team", "cols_by": "team"}, "must differ"),
        ({"view": "showback", "cols_by": "job"}, "columns (--pivot) 'job'"),
        ({"view": "top", "top": 0}, "--top 0"),
        ({"view": "top", "since": date(2026, 2, 1), "until": date(2026, 1, 1)}, "after --until"),
    ],
)
def test_view_request_rejects_bad_input(kwargs: dict, message: str) -> None:
    with pytest.raises(InputError, match=re.escape(message)):
        ViewRequest(**kwargs)


def test_parse_pivot() -> None:
    assert parse_pivot("month", "team") == ("team", "month")
    assert parse_pivot("project,instance-type") == ("project", "instance_type")
    with pytest.raises(InputError, match="ROWS,COLUMNS"):
        parse_pivot("a,b,c")


def test_month_start() -> None:
    assert month_start(date(2026, 1, 15), 2) == date(2025, 11, 1)
    assert month_start(date(2026, 12, 31)) == date(2026, 12, 1)


# -- the command ---------------------------------------------------------------------------
@pytest.fixture(scope="module")
def db_url(store: Store) -> str:
    return str(store.engine.url)


def cli(db_url: str, *args: str):  # noqa: ANN201
    """The real command in a subprocess (end to end)."""
    return run_cli("--db", db_url, "report", *args, env={"TRACKER_NOW": NOW.isoformat()})


def main(
    db_url: str, *args: str, capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> tuple[int, str, str]:
    """The command in this process: (exit code, stdout, stderr)."""
    from tracker.cli.main import main as tracker_main

    monkeypatch.setenv("TRACKER_NOW", NOW.isoformat())
    code = tracker_main(["--db", db_url, "report", *args])
    out = capsys.readouterr()
    return code, out.out, out.err


def test_cli_view_json_matches_library(db_url: str) -> None:
    result = cli(db_url, "--view", "waste", "--format", "json")
    assert result.returncode == 0, result.stderr
    rows = json.loads(result.stdout)
    assert {(r["category"], r["team"]): r["waste_usd"] for r in rows}[
        ("spot_opportunity", "vision")
    ] == 1.13
    assert result.stderr == ""  # no progress when stderr is not a terminal


def test_cli_top_and_pivot_imply_their_views(db_url: str) -> None:
    top = cli(db_url, "--top", "2", "--format", "csv")
    assert top.returncode == 0, top.stderr
    assert top.stdout.splitlines()[1].startswith("1,vision-fail,vision,")
    pivot = cli(db_url, "--pivot", "month,status", "--format", "json")
    assert json.loads(pivot.stdout)[0] == {
        "month": "2026-10", "jobs": 2, "Completed": 1.5, "Failed": 0.0, "InProgress": 0.0,
        "total_usd": 1.5,
    }  # fmt: skip


def test_cli_view_writes_png_and_html_files(db_url: str, tmp_path: Path) -> None:
    png, page = tmp_path / "trend.png", tmp_path / "showback.html"
    assert cli(db_url, "--view", "trend", "--format", "png", "--output", str(png)).returncode == 0
    assert png.read_bytes().startswith(b"\x89PNG")
    assert (
        cli(db_url, "--view", "showback", "--format", "html", "--output", str(page)).returncode == 0
    )
    assert "<svg" in page.read_text() and "11.05" in page.read_text()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--view", "top", "--pivot", "month"), "--pivot applies to the showback view"),
        (("--view", "waste", "--top", "3"), "--top applies to the top view"),
        (("--view", "nope"), "invalid choice"),
        (("--top", "-1"), "--top -1"),
        (("--view", "showback", "--by", "job"), "rows (--by, or ROWS in --pivot) 'job'"),
    ],
)
def test_cli_view_bad_arguments_exit_2(
    db_url: str,
    args: tuple[str, ...],
    message: str,
    capsys: pytest.CaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    code, _, err = main(db_url, *args, capsys=capsys, monkeypatch=monkeypatch)
    assert code == 2
    assert err.startswith("Error: ") and message in err
    assert len(err.strip().splitlines()) == 1


def test_progress_printer_quiet_when_piped() -> None:
    import io

    from tracker.cli.views import progress_printer

    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    piped, tty = io.StringIO(), Tty()
    progress_printer(piped)("working")
    progress_printer(tty)("working")
    assert piped.getvalue() == "" and "working..." in tty.getvalue()


def test_waste_chart_sums_are_rounded_once(tmp_path: Path) -> None:
    """Two teams each keep a warm pool 90 s on ml.c5.xlarge (0.20/h): 0.005 each.

    | team | exact | row shows |
    |------|-------|-----------|
    | a    | 0.005 | 0.01      |
    | b    | 0.005 | 0.01      |
    | sum  | 0.010 | 0.01 (chart), not 0.02 |
    """
    jobs = [
        make_job(
            f"warm-{t}",
            t,
            instance_type="ml.c5.xlarge",
            start_time=at(11, 18),
            warm_pool_status="Terminated",
            warm_pool_retained_seconds=90,
        )
        for t in ("a", "b")
    ]
    store = fill(Store.open(f"sqlite:///{tmp_path / 'c.db'}"), jobs)
    report = build(store, ViewRequest("waste"), NOW)
    assert [r["waste_usd"] for r in report.rows if r["category"] == "idle_warm_pool"] == [
        D("0.01"),
        D("0.01"),
    ]
    chart = report.charts[0]
    assert chart.series[0].values[chart.labels.index("idle_warm_pool")] == D("0.01")


def test_cli_png_piped_to_stdout(
    db_url: str, capsysbinary: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tracker.cli.main import main as tracker_main

    monkeypatch.setenv("TRACKER_NOW", NOW.isoformat())
    assert tracker_main(["--db", db_url, "report", "--view", "waste", "--format", "png"]) == 0
    assert capsysbinary.readouterr().out.startswith(b"\x89PNG\r\n\x1a\n")
