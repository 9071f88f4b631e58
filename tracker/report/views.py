"""The report views: showback, top, waste, trend, anomalies and units, each a question with
one answer.

Each view runs a few aggregate queries (``tracker.store.query``), turns the integer
micro-dollars into rows of cents, and returns a :class:`tracker.report.table.Table` that every
format renders (tracker.report.render). Exact sums are rounded once: a total is never a sum of rounded cells.
``now`` is passed in (it sets the default windows); nothing here reads the clock.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import TYPE_CHECKING, Any

from tracker import bounds
from tracker.alert.anomalies import BASELINE_DAYS, AnomalySettings
from tracker.bounds import DAILY_WINDOW_DAYS, MAX_DAILY_DAYS_SETTING, TOP_JOBS
from tracker.cost.shared import PoolSplit, SharedPool, shared_by_team, split_shared
from tracker.errors import InputError
from tracker.records import UNALLOCATED, format_usd, usd_cents
from tracker.report.charts import Chart, Series, keep_largest
from tracker.report.table import Column, Table, count, money, number, percent, text
from tracker.report.units import UNITS_BY
from tracker.report.unpriced import unpriced_notes
from tracker.store.lite import queries as queries_of
from tracker.store.window import Window

if TYPE_CHECKING:
    from tracker.store.database import Store
    from tracker.store.lite import LiteQueries, LiteStore
    from tracker.store.query import ViewQueries

VIEWS = ("showback", "top", "waste", "trend", "anomalies", "units")
PIVOT_DIMENSIONS = (
    "team", "project", "user", "instance_type", "account", "region", "status", "day", "month",
)  # fmt: skip
#: What a view's rows may be per (``--by``): showback's pivot dimensions, the units view's.
VIEW_BY = tuple(dict.fromkeys((*PIVOT_DIMENSIONS, *UNITS_BY)))
CHRONOLOGICAL = ("day", "month")
DEFAULT_TOP = 10
TREND_DAYS = 30
SHOWBACK_MONTHS = 3
WASTE_CATEGORIES = {
    "failed_or_stopped": "jobs that failed or were stopped: everything they cost",
    "idle_warm_pool": "warm-pool retained time that no later job reused",
    "unallocated": "spend of jobs without a team tag",
    "spot_opportunity": "on-demand compute that managed spot could have run, at the observed spot saving",
    "idle_gpu": "compute x (1 - mean GPU utilisation / 100) of GPU jobs with CloudWatch metrics, "
    "beside their cost (not added to it); top jobs with a right-sizing hint",
    "unpriced": "jobs with no price for their instance type: cost unknown",
}
Progress = Callable[[str], None]


def _quiet(_: str) -> None:
    """The progress callback when nobody is watching."""


@dataclass(frozen=True)
class ViewRequest:
    """What a view is asked: its name, window, filters and view-specific options."""

    view: str
    since: date | None = None
    until: date | None = None
    filters: dict[str, str] = field(default_factory=dict)
    rows_by: str = "team"
    cols_by: str = "month"
    top: int = DEFAULT_TOP
    #: The widest window a per-day view may span (``[reports] max_daily_days``).
    max_daily_days: int = int(DAILY_WINDOW_DAYS.high)
    #: The anomalies view's rules (``[anomalies]``).
    anomaly: AnomalySettings = field(default_factory=AnomalySettings)
    #: The showback's shared-cost pools (``[[allocation.shared]]``): a ``shared_usd`` column.
    shared: tuple[SharedPool, ...] = ()
    #: The showback as the split of its shared pools, row by row (``--show-shared``).
    show_shared: bool = False

    def __post_init__(self) -> None:
        if self.view not in VIEWS:
            raise InputError(f"--view {self.view!r}: expected one of {', '.join(VIEWS)}")
        if self.view == "units":
            if self.rows_by not in UNITS_BY:
                raise InputError(
                    f"units --by {self.rows_by!r}: expected one of {', '.join(UNITS_BY)}"
                )
        else:
            self._check_pivot()
        if self.show_shared:
            check_show_shared(self.view, self.shared)
        bounds.whole("--top", self.top, TOP_JOBS)
        bounds.whole("[reports] max_daily_days", self.max_daily_days, MAX_DAILY_DAYS_SETTING)
        check_window(self.since, self.until)
        if self.since and self.until:
            self.check_daily(Window(self.since, self.until))

    def _check_pivot(self) -> None:
        for flag, dim in (
            ("rows (--by, or ROWS in --pivot)", self.rows_by),
            ("columns (--pivot)", self.cols_by),
        ):
            if dim not in PIVOT_DIMENSIONS:
                raise InputError(
                    f"showback {flag} {dim!r}: expected one of {', '.join(PIVOT_DIMENSIONS)}"
                )
        if self.rows_by == self.cols_by:
            raise InputError(f"--pivot {self.rows_by},{self.cols_by}: rows and columns must differ")

    @property
    def per_day(self) -> bool:
        """True for a view with a point or a column a day: the trend, showback by day."""
        return self.view == "trend" or (
            self.view == "showback" and "day" in (self.rows_by, self.cols_by)
        )

    def check_daily(self, window: Window) -> None:
        """The one bound of every per-day view, CLI, dashboard and scheduled report alike:
        ``window`` (as the view resolved it) spans at most ``max_daily_days``. An open end
        (a showback from a day on) counts as the collected data's, bounded by it."""
        if self.per_day and window.since and window.until:
            what = "trend (a point a day)" if self.view == "trend" else "showback by day"
            bounds.check_daily_window(
                window.since, window.until, max_days=self.max_daily_days, what=what
            )


def check_window(since: date | None, until: date | None) -> None:
    """The one window check of ``tracker report`` (rows and views): since not after until."""
    if since and until and since > until:
        raise InputError(f"--since {since} is after --until {until}")


def parse_pivot(text: str, rows_default: str = "team") -> tuple[str, str]:
    """``--pivot COLS`` (rows from --by) or ``--pivot ROWS,COLS`` -> (rows, cols)."""
    parts = [p.strip().replace("-", "_") for p in text.split(",")]
    if len(parts) == 1:
        parts = [rows_default, parts[0]]
    if len(parts) != 2 or not all(parts):
        raise InputError(f"--pivot {text!r}: expected COLUMNS or ROWS,COLUMNS, e.g. team,month")
    return parts[0], parts[1]


def build(
    store: Store | LiteStore, request: ViewRequest, now: datetime, progress: Progress = _quiet
) -> Table:
    """Run one view against the store and return its Table."""
    queries = queries_of(store)
    window = Window(request.since, request.until, dict(request.filters))
    if request.view == "showback":
        request.check_daily(showback_window(window, now))
        if request.show_shared:
            table = shared_split(queries, window, now, request.shared, progress)
        else:
            table = showback(
                queries, window, now, request.rows_by, request.cols_by, progress, request.shared
            )
        window = showback_window(window, now)
    elif request.view == "top":
        table = top(queries, window, request.top, progress)
    elif request.view == "waste":
        table = waste(queries, window, progress)
    elif request.view == "anomalies":
        table = anomalies(store, window, now, request.anomaly, progress)  # type: ignore[arg-type]
    elif request.view == "units":
        from tracker.report.units import units

        table = units(
            store,  # type: ignore[arg-type]
            window,
            request.rows_by,
            progress,
            described=describe_window(window),
        )
    else:
        request.check_daily(trend_window(window, now))
        table = trend(queries, window, now, progress)
        window = trend_window(window, now)
    table.notes.extend(unpriced_notes(queries, window))
    return table


# -- helpers -------------------------------------------------------------------------------
def _key(value: Any) -> str:
    return value.isoformat() if isinstance(value, date) else str(value)


def describe_window(window: Window) -> str:
    """The window and filters in words, for subtitles."""
    if window.since or window.until:
        since = window.since.isoformat() if window.since else "the first collected day"
        until = window.until.isoformat() if window.until else "the last collected day"
        parts = [f"{since} to {until}, UTC days inclusive"]
    else:
        parts = ["all collected days"]
    if window.filters:
        parts.append(", ".join(f"{k}={v}" for k, v in sorted(window.filters.items())))
    return "; ".join(parts)


def month_start(day: date, months_back: int = 0) -> date:
    """The first day of the month ``months_back`` months before ``day``'s month."""
    index = day.year * 12 + day.month - 1 - months_back
    return date(index // 12, index % 12 + 1, 1)


def _percent(part: int, whole: int) -> Decimal | None:
    if not whole:
        return None
    return (Decimal(part) * 100 / Decimal(whole)).quantize(Decimal("0.1"), rounding=ROUND_HALF_UP)


# -- showback ------------------------------------------------------------------------------
def showback_window(window: Window, now: datetime) -> Window:
    """Default: the current month and the two before it, up to today."""
    if window.since or window.until:
        return window
    today = now.date()
    return Window(month_start(today, SHOWBACK_MONTHS - 1), today, window.filters)


def showback(
    queries: ViewQueries | LiteQueries,
    window: Window,
    now: datetime,
    rows_by: str = "team",
    cols_by: str = "month",
    progress: Progress = _quiet,
    shared: tuple[SharedPool, ...] = (),
) -> Table:
    """Spend per ``rows_by`` x ``cols_by`` with row and column totals; when the columns are
    months (or days), the change from the previous column to the last. With ``shared`` pools
    and rows by team, each team's share of them in ``shared_usd`` beside its own cost."""
    window = showback_window(window, now)
    progress(f"showback: summing spend by {rows_by} and {cols_by}")
    cells = queries.pivot(rows_by, cols_by, window)
    progress("showback: counting jobs")
    row_jobs = queries.distinct_jobs(rows_by, window)
    # A job has one team (project, ...), so rows partition the jobs; days and months do not.
    if rows_by in CHRONOLOGICAL:
        all_jobs = queries.distinct_jobs(None, window)[None]
    else:
        all_jobs = sum(row_jobs.values())
    grid: dict[str, dict[str, int]] = defaultdict(dict)
    col_micros: dict[str, int] = defaultdict(int)
    for cell in cells:
        row, col = _key(cell["row"]), _key(cell["col"])
        grid[row][col] = grid[row].get(col, 0) + int(cell["list"])
        col_micros[col] += int(cell["list"])
    chronological = cols_by in CHRONOLOGICAL
    cols = (
        sorted(col_micros)
        if chronological
        else sorted(col_micros, key=lambda c: (-col_micros[c], c))
    )
    names = _column_names(cols, rows_by)
    jobs_by_row = {_key(k): v for k, v in row_jobs.items()}
    row_total = {row: sum(values.values()) for row, values in grid.items()}
    ordered = sorted(grid, key=lambda r: (-row_total[r], r))
    if rows_by in CHRONOLOGICAL:
        ordered = sorted(grid)
    change = chronological and len(cols) >= 2

    def line(label: str, jobs: int, values: dict[str, int]) -> dict[str, Any]:
        out: dict[str, Any] = {rows_by: label, "jobs": jobs}
        out.update({names[c]: usd_cents(values.get(c, 0)) for c in cols})
        out["total_usd"] = usd_cents(sum(values.values()))
        if change:
            last, previous = values.get(cols[-1], 0), values.get(cols[-2], 0)
            out["change_usd"] = usd_cents(last - previous)
            out["change_pct"] = _percent(last - previous, previous)
        return out

    rows = [line(r, jobs_by_row.get(r, 0), grid[r]) for r in ordered]
    total = line("TOTAL", all_jobs, dict(col_micros)) if rows else None
    columns = [text(rows_by), count("jobs"), *(money(names[c]) for c in cols), money("total_usd")]
    shared_notes: list[str] = []
    if shared and rows_by == "team":
        progress("showback: splitting the shared pools")
        splits = _splits(queries, window, now, shared)
        rows, total = _with_shared(rows, total, splits, window, line)
        columns.append(money("shared_usd"))
        shared_notes = _shared_notes(splits)
    elif shared:
        shared_notes = [
            "Shared pools are split over teams: see --pivot team,month or --show-shared."
        ]
    columns += [money("change_usd"), percent("change_pct")] if change else []
    series = [Series(r, tuple(usd_cents(grid[r].get(c, 0)) for c in cols)) for r in ordered]
    chart = Chart(
        "stacked", f"Spend by {rows_by} per {cols_by} (USD)", tuple(cols), keep_largest(series)
    )
    notes = [f"Columns are {cols_by}s; money is list cost in USD, split pro rata over UTC days."]
    notes += shared_notes
    if change:
        notes.append(
            f"change_usd and change_pct compare {cols[-1]} with {cols[-2]}"
            + (" (the last is still in progress)." if _in_progress(cols[-1], cols_by, now) else ".")
        )
    return Table(
        view="showback",
        title=f"Showback: spend by {rows_by} and {cols_by}",
        subtitle=describe_window(window),
        columns=columns,
        rows=rows,
        total=total,
        charts=[chart],
        notes=notes,
    )


RESERVED = {"jobs", "total_usd", "shared_usd", "change_usd", "change_pct"}


def _column_names(cols: list[str], rows_by: str) -> dict[str, str]:
    """Column keys as they appear in rows; a value that clashes with a fixed key is suffixed."""
    return {c: f"{c} (column)" if c in RESERVED or c == rows_by else c for c in cols}


def _in_progress(col: str, cols_by: str, now: datetime) -> bool:
    today = now.date()
    return col == (today.isoformat() if cols_by == "day" else today.strftime("%Y-%m"))


# -- shared costs (``[[allocation.shared]]``, docs/allocation.md) -----------------------------
SHARED_COLUMNS: tuple[Column, ...] = (
    text("period"), text("pool"), text("source"), text("method"), text("team"),
    money("basis_usd"), percent("share_pct"), money("shared_usd"), text("note"),
)  # fmt: skip


def check_show_shared(view: str, shared: tuple[SharedPool, ...]) -> None:
    """``--show-shared`` is the showback's, and needs a pool to show."""
    if view != "showback":
        raise InputError(f"--show-shared applies to the showback view, not --view {view}")
    if not shared:
        raise InputError(
            "--show-shared: the config has no [[allocation.shared]] pool to show "
            "(see docs/allocation.md)"
        )


def _splits(
    queries: ViewQueries | LiteQueries, window: Window, now: datetime, pools: tuple[SharedPool, ...]
) -> list[PoolSplit]:
    """Every pool split per month of the window. The pools and bases are every team's own
    spend under the window's other filters: a ``--team`` filter narrows the rows shown,
    never what is split."""
    own: dict[str, dict[str, int]] = defaultdict(dict)
    for cell in queries.pivot("team", "month", window.without_filter("team")):
        own[_key(cell["col"])][_key(cell["row"])] = int(cell["list"])
    return split_shared(pools, own, window.since, window.until or now.date())


def _with_shared(
    rows: list[dict[str, Any]],
    total: dict[str, Any] | None,
    splits: list[PoolSplit],
    window: Window,
    line: Callable[[str, int, dict[str, int]], dict[str, Any]],
) -> tuple[list[dict[str, Any]], dict[str, Any] | None]:
    """The showback rows with ``shared_usd`` (whole cents: exact), a row for each team that
    only receives; the total's ``shared_usd`` is the sum of the rows'."""
    by_team = shared_by_team(splits)
    wanted = window.filters.get("team")
    shown = {row["team"] for row in rows}
    extra = [t for t in sorted(by_team) if t not in shown and wanted in (None, t)]
    rows = rows + [line(team, 0, {}) for team in extra]
    for row in rows:
        row["shared_usd"] = usd_cents(by_team.get(row["team"], 0))
    if rows:
        total = total or line("TOTAL", 0, {})
        total["shared_usd"] = usd_cents(sum(by_team.get(row["team"], 0) for row in rows))
    return rows, total


def _shared_notes(splits: list[PoolSplit]) -> list[str]:
    pools = list(dict.fromkeys(split.pool for split in splits))
    notes = [
        "shared_usd is each team's share of the shared pools ("
        + "; ".join(f"{p.name}: {p.source}, {p.method}" for p in pools)
        + "), per month, beside its own cost and not in total_usd; the team a pool comes from "
        "shows minus the pool. --show-shared shows the split."
    ]
    notes += [f"{s.pool.name} {s.period}: {s.note}." for s in splits if s.note]
    return notes


def shared_split(
    queries: ViewQueries | LiteQueries,
    window: Window,
    now: datetime,
    pools: tuple[SharedPool, ...],
    progress: Progress = _quiet,
) -> Table:
    """``--show-shared``: each pool's split per month, a row per team (its basis: own spend
    that month; its share), the team the pool comes from with minus the pool."""
    window = showback_window(window, now)
    progress("showback: splitting the shared pools")
    splits = _splits(queries, window, now, pools)
    wanted = window.filters.get("team")
    rows: list[dict[str, Any]] = []
    shown_micros = 0
    for split in splits:
        common = {"period": split.period, "pool": split.pool.name, "source": split.pool.source,
                  "method": split.pool.method}  # fmt: skip
        if split.note:
            amount = format_usd(usd_cents(split.pool_micros), symbol=True)
            rows.append({**common, "team": None, "basis_usd": None, "share_pct": None,
                         "shared_usd": None, "note": f"{amount} {split.note}"})  # fmt: skip
        for share in split.shares:
            if wanted not in (None, share.team):
                continue
            shown_micros += share.shared_micros
            giver = share.shared_micros < 0
            rows.append({
                **common, "team": share.team, "basis_usd": usd_cents(share.basis_micros),
                "share_pct": _percent(share.shared_micros, split.pool_micros),
                "shared_usd": usd_cents(share.shared_micros),
                "note": "the pool: its own cost, split over the others" if giver else "",
            })  # fmt: skip
    total = {"period": "TOTAL", "shared_usd": usd_cents(shown_micros)}
    return Table(
        view="showback",
        title="Showback: shared costs split over the teams",
        subtitle=describe_window(window),
        columns=list(SHARED_COLUMNS),
        rows=rows,
        total=total if rows else None,
        notes=[
            "Each pool is rounded to the cent per month and split in whole cents by largest "
            "remainder: the shares add up to the pool exactly. basis_usd is the team's own "
            "spend that month (what proportional splits by); share_pct its part of the pool.",
        ],
        empty="No shared pool had money to split in this window.",
    )


# -- top -----------------------------------------------------------------------------------
def top(
    queries: ViewQueries, window: Window, limit: int = DEFAULT_TOP, progress: Progress = _quiet
) -> Table:
    """The ``limit`` most expensive jobs in the window (their cost inside the window)."""
    progress(f"top: ranking jobs by spend (top {limit})")
    found = queries.top_jobs(limit, window)
    rows = [_top_row(rank, job) for rank, job in enumerate(found, start=1)]
    micros = {k: sum(int(j[k]) for j in found) for k in ("list", "spot_savings", "effective")}
    total = {
        "rank": "TOTAL",
        "total_usd": usd_cents(micros["list"]),
        "spot_savings_usd": usd_cents(micros["spot_savings"]),
        "effective_usd": usd_cents(micros["effective"]),
    }
    chart = Chart(
        "hbar",
        f"Top {len(rows)} jobs by spend (USD)",
        tuple(r["job"] for r in rows),
        (Series("total_usd", tuple(r["total_usd"] for r in rows)),),
    )
    notes = [
        "billable_hours is BillableTimeInSeconds / 3600 (wall-clock per instance); "
        "total_usd is the job's cost inside the window."
    ]
    if any(job["unpriced"] for job in found):
        notes.append(
            "Jobs marked unpriced have no price for an instance type: their cost is not known."
        )
    if any(not job["final"] for job in found):
        notes.append("Running jobs show their cost so far (in flight).")
    return Table(
        view="top",
        title=f"Top {limit} jobs by spend",
        subtitle=describe_window(window),
        columns=list(TOP_COLUMNS),
        rows=rows,
        total=total if rows else None,
        charts=[chart],
        notes=notes,
    )


TOP_COLUMNS: tuple[Column, ...] = (
    count("rank"), text("job"), text("team"), text("project"), text("status"),
    text("instance_type"), count("instance_count"), number("billable_hours"), text("spot"),
    money("total_usd"), money("spot_savings_usd"), money("effective_usd"), text("unpriced"),
    text("account"), text("region"),
)  # fmt: skip


def _top_row(rank: int, job: dict[str, Any]) -> dict[str, Any]:
    billable = job["billable_seconds"]
    hours = None
    if billable is not None:
        hours = (Decimal(billable) / 3600).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)
    return {
        "rank": rank,
        "job": job["name"],
        "team": job["team"] or UNALLOCATED,
        "project": job["project"],
        "status": job["status"],
        "instance_type": job["instance_type"],
        "instance_count": job["instance_count"],
        "billable_hours": hours,
        "spot": "yes" if job["spot"] else "no",
        "total_usd": usd_cents(job["list"]),
        "spot_savings_usd": usd_cents(job["spot_savings"]),
        "effective_usd": usd_cents(job["effective"]),
        "unpriced": "yes" if job["unpriced"] else "no",
        "account": job["account_id"],
        "region": job["region"],
    }


# -- waste ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class SpotRatio:
    """Observed managed-spot saving: 1 - billable/training over a set of spot jobs."""

    billable_seconds: int
    training_seconds: int
    jobs: int
    basis: str

    @property
    def saving(self) -> Decimal:
        return 1 - Decimal(self.billable_seconds) / Decimal(self.training_seconds)


def spot_ratios(history: list[dict[str, Any]]) -> tuple[dict[str, SpotRatio], dict[str, SpotRatio]]:
    """(per team, per instance family) observed spot ratios from spot job history."""
    from tracker.cost.engine import instance_family

    by_team: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0])
    by_family: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0])
    for row in history:
        for bucket, key in (
            (by_team, row["team"]),
            (by_family, _family(row["instance_type"], instance_family)),
        ):
            bucket[key][0] += int(row["billable_seconds"])
            bucket[key][1] += int(row["training_seconds"])
            bucket[key][2] += int(row["jobs"])
    teams = {k: SpotRatio(b, t, n, f"team {k}") for k, (b, t, n) in by_team.items() if t > 0}
    families = {k: SpotRatio(b, t, n, f"family {k}") for k, (b, t, n) in by_family.items() if t > 0}
    return teams, families


def _family(instance_type: str, instance_family: Callable[[str], str]) -> str:
    # A heterogeneous job's billed type is "a+b": its family is that of the first group.
    return instance_family(instance_type.split("+", 1)[0])


def waste(queries: ViewQueries, window: Window, progress: Progress = _quiet) -> Table:
    """Where money went that bought nothing (or cannot be attributed), per category and team."""
    progress("waste: failed and stopped jobs, idle warm pools, untagged and unpriced spend")
    found = queries.waste_by_team(window)
    rows: list[dict[str, Any]] = []
    for category in ("failed_or_stopped", "idle_warm_pool", "unallocated"):
        rows += _waste_rows(category, found[category])
    progress("waste: on-demand jobs that could have used managed spot")
    rows += _spot_rows(queries, window)
    progress("waste: idle GPU time of jobs with GPU metrics")
    rows += _idle_gpu_rows(queries, window)
    rows += [
        {"category": "unpriced", "team": r["team"], "jobs": r["jobs"], "waste_usd": None,
         "note": "cost unknown: no price for the instance type (see tracker prices check)"}
        for r in sorted(found["unpriced"], key=lambda r: r["team"])
    ]  # fmt: skip
    order = list(WASTE_CATEGORIES)
    rows.sort(key=lambda r: (order.index(r["category"]), -(r["waste_usd"] or 0), r["team"]))
    # Each category's sum is the exact sum rounded once, not a sum of rounded rows.
    chart_rows = [
        (
            category,
            usd_cents(sum((r["_micros"] for r in rows if r["category"] == category), Decimal(0))),
        )
        for category in order
        if category != "unpriced"
    ]
    chart = Chart(
        "hbar",
        "Waste by category (USD)",
        tuple(c for c, _ in chart_rows),
        (Series("waste_usd", tuple(v for _, v in chart_rows)),),
    )
    notes = [f"{name}: {text}." for name, text in WASTE_CATEGORIES.items()]
    notes.append(
        "Categories overlap (an untagged failed job is in two), so they have no grand total; "
        "each category's sum is charted."
    )
    return Table(
        view="waste",
        title="Waste: spend that bought nothing or has no owner",
        subtitle=describe_window(window),
        columns=[text("category"), text("team"), count("jobs"), money("waste_usd"), text("note")],
        rows=rows,
        charts=[chart],
        notes=notes,
    )


def _waste_rows(category: str, found: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [
        {
            "category": category,
            "team": r["team"],
            "jobs": int(r["jobs"]),
            "waste_usd": usd_cents(r["micros"]),
            "_micros": Decimal(int(r["micros"])),
            "note": "",
        }
        for r in found
        if int(r["micros"]) > 0
    ]


def _idle_gpu_rows(queries: ViewQueries, window: Window) -> list[dict[str, Any]]:
    """The top jobs by idle GPU cost, one row each with its hint; the rest one row a team."""
    from tracker.cost.gpu import idle_micros, rightsize_hint
    from tracker.store.gpu import GpuRepository

    jobs = []
    for job in GpuRepository(queries.store).idle_jobs(window):
        mean = Decimal(job["gpu_util_mean"])
        job["idle"] = idle_micros(int(job["compute"]), mean)
        job["note"] = f"{job['name']}: " + rightsize_hint(
            job["instance_type"], int(job["instance_count"]), mean
        )
        jobs.append(job)
    jobs.sort(key=lambda j: (-j["idle"], j["name"], j["job_id"]))
    rows = [{"category": "idle_gpu", "team": j["team"], "jobs": 1, "waste_usd": usd_cents(j["idle"]),
             "_micros": j["idle"], "note": j["note"]} for j in jobs[:DEFAULT_TOP]]  # fmt: skip
    rest: dict[str, list[Any]] = defaultdict(lambda: [0, Decimal(0)])
    for j in jobs[DEFAULT_TOP:]:
        rest[j["team"]][0] += 1
        rest[j["team"]][1] += j["idle"]
    rows += [{"category": "idle_gpu", "team": team, "jobs": n, "waste_usd": usd_cents(micros),
              "_micros": micros, "note": "other GPU jobs"} for team, (n, micros) in rest.items()]  # fmt: skip
    return rows


def _spot_rows(queries: ViewQueries, window: Window) -> list[dict[str, Any]]:
    """Completed on-demand compute x the observed spot saving of the team, else the family."""
    from tracker.cost.engine import instance_family

    teams, families = spot_ratios(queries.spot_history(window))
    saving: dict[str, Decimal] = defaultdict(Decimal)
    jobs: dict[str, int] = defaultdict(int)
    bases: dict[str, set[str]] = defaultdict(set)
    missing: dict[str, int] = defaultdict(int)
    for group in queries.on_demand_candidates(window):
        team = group["team"]
        ratio = teams.get(team) or families.get(_family(group["instance_type"], instance_family))
        if ratio is None or ratio.saving <= 0:
            missing[team] += int(group["jobs"])
            continue
        saving[team] += Decimal(int(group["compute"])) * ratio.saving
        jobs[team] += int(group["jobs"])
        bases[team].add(f"{ratio.basis} {ratio.saving * 100:.1f}% over {_jobs(ratio.jobs)} on spot")
    rows = []
    for team in sorted(set(saving) | set(missing)):
        note = _bases_note(bases[team])
        if missing[team]:
            note += (
                "; " if note else ""
            ) + f"{_jobs(missing[team])} with no spot history to compare"
        if team in saving:
            rows.append(
                {"category": "spot_opportunity", "team": team, "jobs": jobs[team],
                 "waste_usd": usd_cents(saving[team]), "_micros": saving[team], "note": "saving at " + note}
            )  # fmt: skip
    return rows


def _bases_note(bases: set[str]) -> str:
    """Where the spot ratios came from; many instance families are summarised as a range."""
    if len(bases) <= 2:
        return "; ".join(sorted(bases))
    percents = sorted(float(b.split("% over")[0].rsplit(" ", 1)[1]) for b in bases)
    return f"{len(bases)} observed ratios from {percents[0]:.1f}% to {percents[-1]:.1f}% (team or instance family)"


def _jobs(count: int) -> str:
    return f"{count} job" if count == 1 else f"{count} jobs"


# -- trend ---------------------------------------------------------------------------------
def trend_window(window: Window, now: datetime) -> Window:
    """Default: the last 30 UTC days up to today; one open end is filled in."""
    until = window.until or now.date()
    # (Back from --until 0001-01-15 the 30 days stop at the first day there is.)
    since = window.since or until - timedelta(days=min(TREND_DAYS - 1, (until - date.min).days))
    return Window(since, until, window.filters)


def trend(
    queries: ViewQueries, window: Window, now: datetime, progress: Progress = _quiet
) -> Table:
    """Daily spend per team, with the part that is the in-flight cost of running jobs."""
    window = trend_window(window, now)
    progress("trend: summing spend per day and team")
    found = queries.daily_by_team(window)
    overall = {
        "jobs": queries.distinct_jobs(None, window)[None],
        "list": sum(int(r["list"]) for r in found),
        "in_flight": sum(int(r["in_flight"]) for r in found),
    }
    rows = [
        {"day": _key(r["day"]), "team": r["team"], "jobs": int(r["jobs"]),
         "total_usd": usd_cents(r["list"]), "in_flight_usd": usd_cents(r["in_flight"])}
        for r in found
    ]  # fmt: skip
    total = {
        "day": "TOTAL",
        "jobs": overall["jobs"],
        "total_usd": usd_cents(overall["list"]),
        "in_flight_usd": usd_cents(overall["in_flight"]),
    }
    days = [window.since + timedelta(days=i) for i in range((window.until - window.since).days + 1)]
    labels = tuple(d.isoformat() for d in days)
    per_team: dict[str, dict[str, int]] = defaultdict(dict)
    in_flight: dict[str, int] = defaultdict(int)
    for r in found:
        per_team[r["team"]][_key(r["day"])] = int(r["list"])
        in_flight[_key(r["day"])] += int(r["in_flight"])
    series = [Series(t, tuple(usd_cents(v.get(d, 0)) for d in labels)) for t, v in per_team.items()]
    lines = list(keep_largest(series))
    if any(in_flight.values()):
        lines.append(
            Series(
                "in flight (running jobs)", tuple(usd_cents(in_flight.get(d, 0)) for d in labels)
            )
        )
    chart = Chart("line", "Daily spend per team (USD)", labels, tuple(lines))
    notes = [
        "in_flight_usd is the part of a day's spend from jobs still running, "
        "costed up to their last collection; it grows until they finish."
    ]
    return Table(
        view="trend",
        title="Trend: daily spend per team",
        subtitle=describe_window(window),
        columns=[
            text("day"),
            text("team"),
            count("jobs"),
            money("total_usd"),
            money("in_flight_usd"),
        ],
        rows=rows,
        total=total if rows else None,
        charts=[chart],
        notes=notes,
    )


# -- anomalies (docs/views/anomalies.md, docs/enforcement-and-anomalies.md) -----------------
ANOMALY_COLUMNS: tuple[Column, ...] = (
    text("kind"), text("day"), text("team"), text("job"), money("cost_usd"),
    money("baseline_usd"), number("factor", places=1), text("peers"),
)  # fmt: skip


def anomalies(
    store: Store,
    window: Window,
    now: datetime,
    options: AnomalySettings,
    progress: Progress = _quiet,
) -> Table:
    """Job and team-day anomalies of the last ``lookback_days``; ``--since``/``--until`` and
    ``--team`` narrow the rows (the peers and baselines stay those of the whole window)."""
    from tracker.alert.service import find_anomalies

    progress(f"anomalies: comparing jobs with their peers over {options.lookback_days} days")
    found = find_anomalies(options, store, now, days=options.lookback_days)
    team = window.filters.get("team")
    rows = []
    for day in found.days:
        rows.append({
            "kind": "team-day", "day": str(day.day), "team": day.team,
            "job": ", ".join(name for name, _ in day.top_jobs), "cost_usd": day.spend_usd,
            "baseline_usd": day.baseline_usd, "factor": day.factor,
            "peers": f"mean of the {BASELINE_DAYS} days before",
        })  # fmt: skip
    for job in found.jobs:
        rows.append({
            "kind": "job", "day": str(job.job.ended or ""), "team": job.job.team or UNALLOCATED,
            "job": job.job.name, "cost_usd": job.job.cost_usd, "baseline_usd": job.median_usd,
            "factor": job.factor, "peers": f"median of {job.peer_count}: {job.peers}",
        })  # fmt: skip
    rows = [
        {**r, "cost_usd": _cents(r["cost_usd"]), "baseline_usd": _cents(r["baseline_usd"])}
        for r in rows
        if (team is None or r["team"] == team)
        and (window.since is None or r["day"] >= str(window.since))
        and (window.until is None or r["day"] <= str(window.until))
    ]
    chart = Chart(
        "hbar",
        "Anomalies: cost as a multiple of the baseline",
        tuple(f"{r['job'] if r['kind'] == 'job' else r['team']} {r['day']}" for r in rows),
        (Series("factor", tuple(r["factor"].quantize(Decimal("0.1")) for r in rows)),),
    )
    return Table(
        view="anomalies",
        charts=[chart],
        title="Anomalies: jobs far above their peers, team-days far above their baseline",
        subtitle=f"the last {options.lookback_days} days to {now:%Y-%m-%d}",
        columns=list(ANOMALY_COLUMNS),
        rows=rows,
        notes=[
            f"A job is an anomaly above {options.job_factor}x its peers' median "
            f"(at least {options.min_peers} peers); a team-day above {options.day_factor}x "
            f"the mean daily spend of the {BASELINE_DAYS} days before. baseline_usd: the "
            "peers' median for a job, that mean for a team-day."
        ],
        empty="no anomalies",
    )


def _cents(usd: Decimal) -> Decimal:
    return usd.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)
