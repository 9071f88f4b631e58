"""Issue 12, rows 2, 3, 5, 6 and 7: no flag, config value or file starts unbounded work or
escapes as a traceback; each is one ``Error:`` line naming it, exit 2.

| row | attempt                                                        | before                  |
|-----|----------------------------------------------------------------|-------------------------|
| 2   | ``report --view trend --since 2026-01-01 --until 9999-12-31``  | 49 s, 5.1 GB, 1.0 GB    |
| 3   | ``report --top 99999999999999999999``                          | OverflowError traceback |
| 5   | ``estimate ... --count 99999999999999999999 --record``         | traceback; absurd money |
| 6   | ``[[budgets]] amount_usd = 1e308``, then ``tracker budgets``   | InvalidOperation        |
| 7   | a TOML array nested 5,000 deep                                 | RecursionError          |

The table below runs each case through the real CLI: those marked ``E2E`` as a subprocess
(``python -m tracker``, proving stderr holds no traceback end to end), the rest in this
process through ``tracker.cli.main.main``. Also here: the docs' "Bounds" table lists every
bound of ``tracker.bounds.ALL`` with its exact numbers.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest

from tests.conftest import REPO, run_cli
from tests.views_data import NOW, make_store
from tracker import bounds
from tracker.errors import InputError
from tracker.report.views import ViewRequest

# Config files the cases name by key; written into the case's folder as NAME.toml.
CONFIGS = {
    "budget_1e308": '[[budgets]]\nname = "all"\namount_usd = 1e308\n',
    "budget_inf": '[[budgets]]\nname = "all"\namount_usd = inf\n',
    "budget_nan_text": '[[budgets]]\nname = "all"\namount_usd = "nan"\n',
    "budget_tiny": '[[budgets]]\nname = "all"\namount_usd = "1e-400"\n',
    "drift_1e308": "[reconcile]\ndrift_pct = 1e308\n",
    "tolerance_nan": "[estimates]\ntolerance_pct = nan\n",
    "alert_tolerance_inf": "[alerts]\ntolerance_pct = inf\n",
    "storage_rate_1e308": '[pricing]\nstorage_usd_per_gb_month = { "us-east-1" = 1e308 }\n',
    "discount_nan": "[pricing]\ndiscount_pct = nan\n",
    "nested_arrays": "a = " + "[" * 5000 + "]" * 5000 + "\n",
    "nested_tables": "a = " + "{b = " * 5000 + "1" + "}" * 5000 + "\n",
    "nested_33": "[alerts]\nx = " + "[" * 32 + "1" + "]" * 32 + "\n",
    "huge": "# " + "x" * bounds.CONFIG_BYTES.high + "\n",
    "max_days_30": "[reports]\nmax_daily_days = 30\n",
    "max_days_too_many": "[reports]\nmax_daily_days = 99999999999999999999\n",
}


@dataclass(frozen=True)
class Case:
    row: int
    argv: tuple[str, ...]  # {db} is the seeded database's URL, {tmp} the case's folder
    message: str  # the exact stderr line (after "Error: "), {tmp} filled in
    e2e: bool = False

    @property
    def id(self) -> str:
        return f"row{self.row}:" + " ".join(self.argv)[:60]


TREND_WIDE = (
    "--since 2026-01-01 --until 9999-12-31 is 2,912,443 days; a trend (a point a day) shows at "
    "most 400 days (set [reports] max_daily_days to change it): narrow the window or group by "
    "month (--by month, or --pivot ROWS,month)"
)
SHOWBACK_WIDE = (
    "--since 2025-01-01 --until 2026-11-26 is 695 days; a showback by day shows at most 400 days "
    "(set [reports] max_daily_days to change it): narrow the window or group by month "
    "(--by month, or --pivot ROWS,month)"
)


def config_case(row: int, name: str, message: str, *, e2e: bool = False) -> Case:
    return Case(row, ("budgets", "--config", f"{{tmp}}/{name}.toml", "--db", "{db}"), message, e2e)


CASES = [
    # -- row 2: per-day views span at most [reports] max_daily_days (400 by default) ----------
    Case(
        2,
        ("report", "--db", "{db}", "--view", "trend", "--since", "2026-01-01",
         "--until", "9999-12-31", "--format", "html", "--output", "{tmp}/trend.html"),
        TREND_WIDE,
        e2e=True,
    ),
    Case(2, ("report", "--db", "{db}", "--view", "trend", "--since", "2026-01-01", "--until",
             "9999-12-31"), TREND_WIDE),
    Case(
        2,
        ("report", "--db", "{db}", "--view", "trend", "--since", "0001-01-01"),
        "--since 0001-01-01 --until 2026-11-26 is 739,946 days; a trend (a point a day) shows at "
        "most 400 days (set [reports] max_daily_days to change it): narrow the window or group "
        "by month (--by month, or --pivot ROWS,month)",
    ),
    Case(2, ("report", "--db", "{db}", "--pivot", "team,day", "--since", "2025-01-01",
             "--until", "2026-11-26"), SHOWBACK_WIDE),
    Case(2, ("report", "--db", "{db}", "--pivot", "day,team", "--since", "2025-01-01",
             "--until", "2026-11-26"), SHOWBACK_WIDE),
    Case(
        2,
        ("report", "--db", "{db}", "--config", "{tmp}/max_days_30.toml", "--view", "trend",
         "--since", "2026-10-01", "--until", "2026-10-31"),
        "--since 2026-10-01 --until 2026-10-31 is 31 days; a trend (a point a day) shows at most "
        "30 days (set [reports] max_daily_days to change it): narrow the window or group by "
        "month (--by month, or --pivot ROWS,month)",
    ),
    Case(
        2,
        ("report", "--db", "{db}", "--config", "{tmp}/max_days_too_many.toml", "--view", "trend"),
        "{tmp}/max_days_too_many.toml: reports.max_daily_days: must be a whole number of days "
        "from 1 to 3660, got 99999999999999999999",
    ),
    # -- row 3: --top -------------------------------------------------------------------------
    Case(3, ("report", "--db", "{db}", "--top", "99999999999999999999"),
         "--top 99999999999999999999: expected a whole number from 1 to 1,000 jobs", e2e=True),
    Case(3, ("report", "--db", "{db}", "--top", "1001"),
         "--top 1001: expected a whole number from 1 to 1,000 jobs"),
    Case(3, ("report", "--db", "{db}", "--top", "0"),
         "--top 0: expected a whole number from 1 to 1,000 jobs"),
    Case(3, ("report", "--db", "{db}", "--top", "\u0663"),
         "--top '\u0663': expected a whole number from 1 to 1,000 jobs"),
    Case(3, ("report", "--db", "{db}", "--top", "\u00b2"),
         "--top '\u00b2': expected a whole number from 1 to 1,000 jobs"),
    # -- row 5: estimate inputs, and every other number a flag takes ---------------------------
    Case(
        5,
        ("estimate", "--db", "{db}", "--instance-type", "ml.g5.2xlarge", "--hours", "1",
         "--count", "99999999999999999999", "--record"),
        "--count 99999999999999999999: expected a whole number from 1 to 10,000 instances",
        e2e=True,
    ),
    Case(5, ("estimate", "--instance-type", "ml.g5.2xlarge", "--hours", "1", "--count", "-1"),
         "--count -1: expected a whole number from 1 to 10,000 instances"),
    Case(5, ("estimate", "--instance-type", "ml.g5.2xlarge", "--hours", "1e308"),
         "--hours 1e308: expected a number more than 0 to 8,784 hours"),
    Case(5, ("estimate", "--instance-type", "ml.g5.2xlarge", "--hours", "nan"),
         "--hours 'nan': expected a number more than 0 to 8,784 hours"),
    Case(5, ("estimate", "--instance-type", "ml.g5.2xlarge", "--hours", "0"),
         "--hours 0: expected a number more than 0 to 8,784 hours"),
    Case(5, ("estimate", "--instance-type", "ml.g5.2xlarge", "--hours", "1",
             "--volume-gb", "99999999999999999999"),
         "--volume-gb 99999999999999999999: expected a whole number from 0 to 16,384 GB"),
    Case(5, ("estimate", "--instance-type", "ml.g5.2xlarge", "--hours", "1",
             "--spot-ratio", "1e308"),
         "--spot-ratio 1e308: expected a number more than 0 to 1"),
    Case(5, ("reconcile", "--against", "estimates", "--tolerance", "1e308"),
         "--tolerance 1e308: expected a number from 0 to 1,000 %"),
    Case(5, ("demo", "--jobs", "99999999999999999999"),
         "--jobs 99999999999999999999: expected a whole number from 1 to 100,000 jobs"),
    Case(5, ("demo", "--seed", "-1"),
         "--seed -1: expected a whole number from 0 to 9,223,372,036,854,775,807"),
    Case(5, ("serve", "--port", "70000"),
         "--port 70000: expected a whole number from 1 to 65,535"),
    # -- row 6: money, rates and percentages in the config --------------------------------------
    config_case(6, "budget_1e308", "{tmp}/budget_1e308.toml: budgets[0].amount_usd: must be a "
                "number of US dollars from 0.01 to 1,000,000,000,000, got 1e+308", e2e=True),
    config_case(6, "budget_inf", "{tmp}/budget_inf.toml: budgets[0].amount_usd: must be a "
                "number of US dollars from 0.01 to 1,000,000,000,000, got inf"),
    config_case(6, "budget_nan_text", "{tmp}/budget_nan_text.toml: budgets[0].amount_usd: must "
                "be a number of US dollars from 0.01 to 1,000,000,000,000, got 'nan'"),
    config_case(6, "budget_tiny", "{tmp}/budget_tiny.toml: budgets[0].amount_usd: must be a "
                "number of US dollars from 0.01 to 1,000,000,000,000, got '1e-400'"),
    config_case(6, "drift_1e308", "{tmp}/drift_1e308.toml: reconcile.drift_pct: must be a "
                "number from 0 to 1,000, got 1e+308"),
    config_case(6, "tolerance_nan", "{tmp}/tolerance_nan.toml: estimates.tolerance_pct: must be "
                "a number from 0 to 1,000, got nan"),
    config_case(6, "alert_tolerance_inf", "{tmp}/alert_tolerance_inf.toml: alerts.tolerance_pct: "
                "must be a percentage from 0 to 1,000, got inf"),
    config_case(6, "storage_rate_1e308", "{tmp}/storage_rate_1e308.toml: "
                "pricing.storage_usd_per_gb_month.us-east-1: must be a number from 0 to 1,000, "
                "got 1e+308"),
    config_case(6, "discount_nan", "{tmp}/discount_nan.toml: pricing.discount_pct: must be a "
                "number from 0 to 100, got nan"),
    # -- row 7: deep and large config files -----------------------------------------------------
    config_case(7, "nested_arrays", "{tmp}/nested_arrays.toml: tables and arrays nest more than "
                "32 levels deep; no tracker config does", e2e=True),
    config_case(7, "nested_tables", "{tmp}/nested_tables.toml: tables and arrays nest more than "
                "32 levels deep; no tracker config does"),
    config_case(7, "nested_33", "{tmp}/nested_33.toml: tables and arrays nest more than 32 "
                "levels deep; no tracker config does"),
    config_case(7, "huge", "{tmp}/huge.toml: the file is larger than 1,048,576 bytes; no tracker "
                "config is"),
]  # fmt: skip


@pytest.fixture(scope="module")
def db_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    return str(make_store(tmp_path_factory.mktemp("bounds")).engine.url)


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    for name, text in CONFIGS.items():
        (tmp_path / f"{name}.toml").write_text(text, encoding="utf-8")
    return tmp_path


@pytest.mark.parametrize("case", CASES, ids=lambda case: case.id)
def test_bound_refuses_hostile_input_with_one_line(
    case: Case,
    db_url: str,
    folder: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    argv = [part.format(db=db_url, tmp=folder) for part in case.argv]
    if case.e2e:
        result = run_cli(*argv, env={"TRACKER_NOW": NOW.isoformat()})
        code, out, err = result.returncode, result.stdout, result.stderr
    else:
        from tracker.cli.main import main

        monkeypatch.setenv("TRACKER_NOW", NOW.isoformat())
        code = main(argv)
        captured = capsys.readouterr()
        out, err = captured.out, captured.err
    assert (code, err) == (2, f"Error: {case.message.format(tmp=folder)}\n")
    assert out == ""
    assert not (folder / "trend.html").exists()  # row 2: the 1.0 GB file is never written


def test_bound_cases_cover_every_row_end_to_end() -> None:
    assert {case.row for case in CASES} == {2, 3, 5, 6, 7}
    assert {case.row for case in CASES if case.e2e} == {2, 3, 5, 6, 7}


# -- row 2: the legal windows still work, and the dashboard's request carries the bound --------
def test_trend_of_400_days_renders(db_url: str, tmp_path: Path) -> None:
    page = tmp_path / "trend.html"
    result = run_cli(
        "report", "--db", db_url, "--view", "trend", "--since", "2025-10-23", "--until",
        "2026-11-26", "--format", "html", "--output", str(page),
        env={"TRACKER_NOW": NOW.isoformat()},
    )  # fmt: skip
    assert (result.returncode, result.stderr) == (0, "")
    html = page.read_text(encoding="utf-8")
    assert "2025-10-23 to 2026-11-26" in html and "2026-11-10" in html
    assert page.stat().st_size < 2_000_000


def test_view_request_carries_the_daily_bound() -> None:
    wide = {"since": date(2026, 1, 1), "until": date(2026, 2, 1)}  # 32 days
    assert ViewRequest("trend", **wide).max_daily_days == 400
    with pytest.raises(InputError, match=r"is 32 days; a trend \(a point a day\) shows at most 31"):
        ViewRequest("trend", **wide, max_daily_days=31)
    with pytest.raises(InputError, match="showback by day shows at most 31"):
        ViewRequest("showback", **wide, cols_by="day", max_daily_days=31)
    ViewRequest("showback", **wide, cols_by="month", max_daily_days=31)  # months: no bound
    with pytest.raises(InputError, match=r"max_daily_days 3661: expected .* 1 to 3,660 days"):
        ViewRequest("trend", max_daily_days=3661)


def test_report_by_day_is_bounded_by_data_not_window(
    db_url: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """``report --by day`` groups in SQL: one row per day that has spend, whatever the window."""
    from tracker.cli.main import main

    monkeypatch.setenv("TRACKER_NOW", NOW.isoformat())
    argv = ["report", "--db", db_url, "--by", "day", "--since", "0001-01-01", "--until",
            "9999-12-31", "--format", "csv"]  # fmt: skip
    assert main(argv) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("day,") and len(lines) == 1 + 12  # header + days with spend


# -- row 5: the largest legal estimate fits, recorded; the library refuses what the CLI does ----
def test_estimate_of_the_largest_job_records(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from tracker.cli.main import main
    from tracker.store.database import Store
    from tracker.store.estimates import EstimateRepository

    monkeypatch.setenv("TRACKER_NOW", NOW.isoformat())
    url = f"sqlite:///{tmp_path / 'est.db'}"
    argv = ["estimate", "--db", url, "--instance-type", "ml.p4d.24xlarge", "--count", "10000",
            "--hours", "8784", "--volume-gb", "16384", "--record"]  # fmt: skip
    assert main(argv) == 0
    out = capsys.readouterr().out
    # 10,000 x 8,784 h x 25.251 USD per hour (the dearest shipped rate); the volume is free
    # on p4d (local NVMe).
    assert "total         2,218,047,840.00 USD" in out
    (entry,) = EstimateRepository(Store.open(url)).recorded()
    assert entry.usd == Decimal("2218047840.00")


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"count": 10**20}, "--count 100000000000000000000: expected a whole number from 1"),
        ({"count": 0}, "--count 0: expected a whole number from 1 to 10,000 instances"),
        ({"hours": 1e308}, "--hours 1E+308: expected a number more than 0 to 8,784 hours"),
        ({"hours": "nan"}, "hours 'nan': expected a finite number"),
        ({"volume_gb": 16385}, "--volume-gb 16385: expected a whole number from 0 to 16,384 GB"),
        ({"spot_ratio": "1e308"}, "--spot-ratio 1E+308: expected the billed share"),
    ],
)
def test_estimate_job_api_refuses_out_of_range(kwargs: dict, message: str, tmp_path: Path) -> None:
    from tracker.estimate.api import estimate_job

    with pytest.raises(InputError) as error:
        estimate_job("ml.g5.2xlarge", **{"hours": 1, **kwargs}, db=f"sqlite:///{tmp_path}/x.db")
    assert str(error.value).startswith(message)


def test_largest_estimate_fits_a_64_bit_count_of_micro_dollars() -> None:
    """USD.high in micro-dollars fits a signed 64-bit integer, and so does the largest job the
    bounds allow (the arithmetic in tracker/bounds.py, HOURLY_RATE_USD): the dearest hourly rate
    a price file may hold x instances x hours, plus the largest volume at the dearest GB-month
    rate over the 13 calendar months a year of hours can touch."""
    assert bounds.USD.high * 10**6 < 2**63
    compute = bounds.HOURLY_RATE_USD.high * bounds.INSTANCE_COUNT.high * bounds.JOB_HOURS.high
    storage = bounds.VOLUME_GB.high * bounds.INSTANCE_COUNT.high * bounds.RATE_USD.high * 13
    assert compute * 10**6 == 878_400_000_000_000_000
    assert storage * 10**6 == 2_129_920_000_000_000_000
    assert (compute + storage) * 10**6 < 2**63 - 1


# -- the last resort: whatever no check caught is one line, the traceback only at DEBUG --------
@pytest.mark.parametrize("exc", [OverflowError("int too large"), RecursionError(), MemoryError()])
def test_main_turns_unexpected_exception_into_one_line(
    exc: BaseException, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from tracker.cli import main as cli_main

    def explode(_args: object) -> int:
        raise exc

    monkeypatch.setitem(cli_main.COMMANDS, "recost", explode)
    assert cli_main.main(["recost"]) == 1
    err = capsys.readouterr().err
    name = type(exc).__name__
    detail = f"{name}: int too large" if str(exc) else name
    assert err == (
        f"Error: internal error ({detail}); run with --log-level DEBUG for the traceback\n"
    )
    assert cli_main.main(["recost", "--log-level", "DEBUG"]) == 1
    assert "Traceback (most recent call last)" in capsys.readouterr().err


# -- docs: every bound in docs/operations.md "Bounds", with its exact numbers -------------------
def bounds_table() -> dict[str, list[str]]:
    text = (REPO / "docs" / "operations.md").read_text(encoding="utf-8")
    section = text.split("\n## Bounds\n", 1)[1].split("\n## ", 1)[0]
    rows = {}
    for line in section.splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if line.startswith("|") and len(cells) >= 4 and not set(cells[0]) <= set("-: "):
            rows[cells[0]] = cells
    return rows


@pytest.mark.parametrize("bound", bounds.ALL, ids=lambda bound: bound.name)
def test_docs_list_every_bound_with_its_numbers(bound: bounds.Bound) -> None:
    rows = bounds_table()
    assert bound.name in rows, f"docs/operations.md ## Bounds has no row {bound.name!r}"
    _, limits, unit, *_ = rows[bound.name]
    assert limits == f"{bound.low:,} to {bound.high:,}"
    assert unit == (bound.unit or "-")


def test_docs_bounds_table_has_no_stale_rows() -> None:
    assert sorted(bounds_table()) == sorted(["Bound", *(bound.name for bound in bounds.ALL)])


def test_bounds_have_unique_names() -> None:
    assert len({bound.name for bound in bounds.ALL}) == len(bounds.ALL)
    assert re.fullmatch(r"\[reports\] max_daily_days", bounds.MAX_DAILY_DAYS_SETTING.name)


def test_trend_before_the_first_day_there_is_stops_there(
    db_url: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Found by tests/test_cli_fuzz.py: the default 30 days back from --until 0001-01-15
    overflowed the calendar (OverflowError)."""
    from tracker.cli.main import main

    monkeypatch.setenv("TRACKER_NOW", NOW.isoformat())
    argv = ["report", "--db", db_url, "--view", "trend", "--until", "0001-01-15", "--format", "csv"]
    assert main(argv) == 0
    assert capsys.readouterr().out == "day,team,jobs,total_usd,in_flight_usd\n"


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (
            ["prices", "check", "--config", "x" * 5000],
            f"Error: {'x' * 200}: not a usable file name (OSError)\n",
        ),
        (
            ["export", "--output", "a\x00b.csv"],
            "Error: --output 'a\\x00b.csv': a file name cannot hold a NUL character\n",
        ),
    ],
    ids=["config name too long", "NUL in --output"],
)
def test_unusable_file_names_are_one_line(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """Found by tests/test_cli_fuzz.py: both were an OSError / ValueError ("internal error")."""
    from tracker.cli.main import main

    assert main(argv) == 2
    assert capsys.readouterr().err == message
