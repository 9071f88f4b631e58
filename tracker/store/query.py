"""The one query layer: a window and filter builder and one aggregation, in SQL.

Every report, view, budget, export and dashboard page sums integer micro-dollars over
``job_cost_days`` (each job's cost split per UTC day) joined to ``jobs``, so a window counts
only the days of a job that fall inside it and nothing loads every job into memory: the
scale target is a million jobs. The pieces, each written once:

- :class:`Window` and :func:`within`: inclusive UTC days and equality filters;
- :func:`dimension`: the SQL expression of a report dimension (missing values read
  ``unallocated``);
- :func:`item_sums`: the summed micro-dollar columns of cost items from the catalogue;
- :meth:`ViewQueries.spend`: spend grouped by any dimensions, which ``report --by``, the
  showback pivot, the trend, the dashboard and the budgets all call.

Results are plain dicts of ints and strings; rounding to cents happens when rendering.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from typing import Any

from sqlalchemy import Select, and_, case, func, or_, select
from sqlalchemy.sql.elements import ColumnElement

from tracker.cost.items import LIST, REPORT_ITEMS, CostItem
from tracker.errors import InputError
from tracker.records import DIMENSIONS, FILTERS, LINEAGE, UNALLOCATED
from tracker.store.database import Repository, Store
from tracker.store.schema import Job, JobCostDay, SpendDay
from tracker.store.window import (  # noqa: F401 - Window, check_text: their old home
    CHRONOLOGICAL,
    ROLLED,
    UNPRICED_MARK,
    Window,
    check_text,
    rolled,
)

# The job column behind each dimension that is a job attribute (day and month are the split's).
JOB_COLUMNS = {
    "team": Job.team, "project": Job.project, "user": Job.user,
    "instance_type": Job.instance_type, "account": Job.account_id,
    "region": Job.region, "status": Job.status, "job": Job.name,
    **{name: getattr(Job, name) for name in LINEAGE}, "team_source": Job.team_source,
}  # fmt: skip
WASTED_STATUSES = ("Failed", "Stopped")
REUSED_WARM_POOL = ("Reused", "InUse")
TEAM = func.coalesce(Job.team, UNALLOCATED)
# What ``report --by job`` shows about each job beside its money.
JOB_DETAILS = {
    "arn": Job.arn, "team": Job.team, "team_source": Job.team_source, "status": Job.status, "instance_type": Job.instance_type,
    "instance_count": Job.instance_count, "billable_seconds": Job.billable_seconds,
    "artifact_bytes": Job.artifact_bytes, "account": Job.account_id, "region": Job.region,
    "flags": Job.flags, "plan_value_micros": Job.plan_value_micros,
}  # fmt: skip


def within(query: Select, window: Window) -> Select:
    """Restrict a query over job_cost_days joined to jobs to the window's days and filters."""
    if window.since is not None:
        query = query.where(JobCostDay.day >= window.since)
    if window.until is not None:
        query = query.where(JobCostDay.day <= window.until)
    for name, value in window.filters.items():
        if value is None:
            continue
        if name not in FILTERS:
            raise InputError(f"filter {name!r}: expected one of {', '.join(FILTERS)}")
        query = query.where(func.coalesce(JOB_COLUMNS[name], UNALLOCATED) == value)
    return query


def dimension(by: str, dialect: str) -> ColumnElement:
    """The SQL expression of a report dimension (missing values read ``unallocated``)."""
    if by == "day":
        return JobCostDay.day
    if by == "month":
        if dialect == "sqlite":
            return func.strftime("%Y-%m", JobCostDay.day)
        return func.to_char(JobCostDay.day, "YYYY-MM")
    if by not in JOB_COLUMNS:
        raise InputError(f"dimension {by!r}: expected one of {', '.join(DIMENSIONS)}")
    return func.coalesce(JOB_COLUMNS[by], UNALLOCATED)


def _check_dimension(by: str) -> None:
    if by not in DIMENSIONS:
        raise InputError(f"--by {by!r}: expected one of {', '.join(DIMENSIONS)}")


def item_sums(
    items: Sequence[CostItem], when: ColumnElement | None = None, prefix: str = ""
) -> list[ColumnElement]:
    """SUM of each item's day column (0 when nothing matches), labelled ``prefix + name``;
    ``when`` restricts each sum to the day rows that satisfy it."""
    sums = []
    for item in items:
        column = getattr(JobCostDay, item.column)
        amount = column if when is None else case((when, column), else_=0)
        sums.append(func.coalesce(func.sum(amount), 0).label(prefix + item.name))
    return sums


def over_days(*columns: Any) -> Select:
    """SELECT columns FROM job_cost_days JOIN jobs: what every spend query starts from."""
    return select(*columns).select_from(JobCostDay).join(Job, Job.id == JobCostDay.job_id)


def _counts(by: Sequence[str]) -> list[ColumnElement]:
    """Jobs and unpriced jobs per group. A job has one row per day, so in a grouping by day
    plain counts are exact and spare SQL the DISTINCT (3x faster on a quarter million jobs)."""
    unpriced = Job.unpriced == True  # noqa: E712 - SQL expression
    if "day" in by:
        return [
            func.count().label("jobs"),
            func.coalesce(func.sum(case((unpriced, 1), else_=0)), 0).label("unpriced_jobs"),
        ]
    return [
        func.count(func.distinct(JobCostDay.job_id)).label("jobs"),
        func.count(func.distinct(case((unpriced, JobCostDay.job_id)))).label("unpriced_jobs"),
    ]


def rollup_dimension(by: str, dialect: str) -> ColumnElement:
    """A dimension's expression over ``spend_days`` (stored as reports show it)."""
    if by == "day":
        return SpendDay.day
    if by == "month":
        if dialect == "sqlite":
            return func.strftime("%Y-%m", SpendDay.day)
        return func.to_char(SpendDay.day, "YYYY-MM")
    return getattr(SpendDay, ROLLED[by])


def rollup_within(query: Select, window: Window) -> Select:
    """:func:`within` over ``spend_days``."""
    if window.since is not None:
        query = query.where(SpendDay.day >= window.since)
    if window.until is not None:
        query = query.where(SpendDay.day <= window.until)
    for name, value in window.filters.items():
        if value is not None:
            query = query.where(getattr(SpendDay, ROLLED[name]) == value)
    return query


def _rollup_counts(by: Sequence[str], window: Window, dialect: str) -> list[ColumnElement]:
    """Distinct jobs and unpriced jobs per group, exact from the rollup's two counts: a job's
    days are consecutive, so it has a row on its group window's first day (counted there by
    ``jobs``) or its first day falls later in the window (counted by ``first_jobs``). Grouped
    by day, each day is its own window; by month, a month's window starts on its 1st."""
    if "day" in by:
        starts: ColumnElement = SpendDay.jobs
    else:
        conditions = []
        if window.since is not None:
            conditions.append(SpendDay.day == window.since)
        if "month" in by:
            first_of_month = (
                func.strftime("%d", SpendDay.day) == "01"
                if dialect == "sqlite"
                else func.extract("day", SpendDay.day) == 1
            )
            conditions.append(first_of_month)
        starts = (
            case((or_(*conditions), SpendDay.jobs), else_=SpendDay.first_jobs)
            if conditions
            else SpendDay.first_jobs
        )
    unpriced = SpendDay.unpriced == True  # noqa: E712 - SQL expression
    return [
        func.coalesce(func.sum(starts), 0).label("jobs"),
        func.coalesce(func.sum(case((unpriced, starts), else_=0)), 0).label("unpriced_jobs"),
    ]


def rollup_sums(
    items: Sequence[CostItem], when: ColumnElement | None = None, prefix: str = ""
) -> list[ColumnElement]:
    """:func:`item_sums` over ``spend_days``."""
    sums = []
    for item in items:
        column = getattr(SpendDay, item.column)
        amount = column if when is None else case((when, column), else_=0)
        sums.append(func.coalesce(func.sum(amount), 0).label(prefix + item.name))
    return sums


class ViewQueries(Repository):
    """Named aggregate queries over one Store's engine. Groupings and filters the rollup
    keeps are answered from ``spend_days`` (``use_rollup``), the others from the job tables;
    both give the same rows (tests/test_rollups.py)."""

    def __init__(self, store: Store, *, use_rollup: bool | None = None):
        super().__init__(store)
        self.dialect = store.engine.dialect.name
        self.use_rollup = store.use_rollup if use_rollup is None else use_rollup

    def _rolled(self, by: Sequence[str], window: Window) -> bool:
        return self.use_rollup and rolled(by, window)

    def _all(self, query: Select) -> list[dict[str, Any]]:
        with self.store.session() as session:
            return [dict(row._mapping) for row in session.execute(query).all()]

    # -- the one aggregation -------------------------------------------------------------
    def spend(
        self,
        by: Sequence[str],
        window: Window,
        items: Sequence[CostItem] = REPORT_ITEMS,
        *,
        counts: bool = True,
        in_flight: bool = False,
        final_only: bool = False,
    ) -> list[dict[str, Any]]:
        """Micro-dollars of ``items`` grouped by the dimensions ``by`` (none: one overall row).

        Each row has one key per dimension (named after it), ``jobs`` and ``unpriced_jobs``
        when ``counts``, one key per item name, and ``in_flight_<item>`` (the part from jobs
        still running) for each item when ``in_flight``. ``final_only`` keeps finished jobs.
        """
        if self._rolled(by, window) and all(item.per_day for item in items):
            return self._rollup_spend(by, window, items, counts, in_flight, final_only)
        keys = [dimension(name, self.dialect).label(name) for name in by]
        columns = [*keys, *(_counts(by) if counts else []), *item_sums(items)]
        if in_flight:
            columns += item_sums(items, Job.final == False, "in_flight_")  # noqa: E712
        query = within(over_days(*columns), window)
        if final_only:
            query = query.where(Job.final == True)  # noqa: E712
        if keys:
            query = query.group_by(*keys).order_by(*keys)
        return self._all(query)

    def _rollup_spend(
        self,
        by: Sequence[str],
        window: Window,
        items: Sequence[CostItem],
        counts: bool,
        in_flight: bool,
        final_only: bool,
    ) -> list[dict[str, Any]]:
        """:meth:`spend` from the rollup."""
        keys = [rollup_dimension(name, self.dialect).label(name) for name in by]
        columns = [*keys, *(_rollup_counts(by, window, self.dialect) if counts else [])]
        columns += rollup_sums(items)
        if in_flight:
            columns += rollup_sums(items, SpendDay.final == False, "in_flight_")  # noqa: E712
        query = rollup_within(select(*columns).select_from(SpendDay), window)
        if final_only:
            query = query.where(SpendDay.final == True)  # noqa: E712
        if keys:
            query = query.group_by(*keys).order_by(*keys)
        return self._all(query)

    def by_dimension(
        self, by: str, window: Window, *, limit: int | None = None, offset: int = 0
    ) -> list[dict[str, Any]]:
        """``report --by``: spend per value of one dimension, with the job's details by job,
        in the order every face shows them (:meth:`dimension_order`); ``limit`` and
        ``offset`` page in SQL (the dashboard and the API), without them every row comes."""
        _check_dimension(by)
        if self._rolled([by], window):
            key = rollup_dimension(by, self.dialect)
            query = select(
                key.label(by),
                *_rollup_counts([by], window, self.dialect),
                *rollup_sums(REPORT_ITEMS),
            ).select_from(SpendDay)
            query = rollup_within(query, window).group_by(key)
            query = query.order_by(*self.dimension_order(by, key, SpendDay.list_micros))
            if limit is not None:
                query = query.limit(limit).offset(offset)
            return self._all(query)
        key = dimension(by, self.dialect)
        columns = [key.label(by)]
        if by == "job":
            columns += [column.label(name) for name, column in JOB_DETAILS.items()]
        query = over_days(*columns, *_counts([by]), *item_sums(REPORT_ITEMS))
        groups = [Job.id, key, *JOB_DETAILS.values()] if by == "job" else [key]
        query = within(query, window).group_by(*groups).order_by(*self.dimension_order(by, key))
        if limit is not None:
            query = query.limit(limit).offset(offset)
        return self._all(query)

    def dimension_order(
        self, by: str, key: ColumnElement, money: ColumnElement = JobCostDay.list_micros
    ) -> list[ColumnElement]:
        """The one order of ``report --by`` rows: days and months in time order, anything else
        most expensive first, then by value in code-point order (as Python sorts text; the
        same on SQLite and PostgreSQL whatever its collation), then by job id. ``key`` is the
        dimension's expression as the query groups by it (the same bound parameters)."""
        if by in CHRONOLOGICAL:
            return [key]
        if self.dialect == "postgresql":
            key = key.collate("C")
        spend = func.coalesce(func.sum(money), 0)
        return [spend.desc(), key, *([Job.id] if by == "job" else [])]

    def count_dimension(self, by: str, window: Window) -> int:
        """How many rows :meth:`by_dimension` returns for ``window``, counted in SQL."""
        _check_dimension(by)
        if self._rolled([by], window):
            counted = func.count(func.distinct(rollup_dimension(by, self.dialect)))
            query = rollup_within(select(counted.label("rows")).select_from(SpendDay), window)
            return int(self._all(query)[0]["rows"])
        counted = JobCostDay.job_id if by == "job" else dimension(by, self.dialect)
        query = within(over_days(func.count(func.distinct(counted)).label("rows")), window)
        return int(self._all(query)[0]["rows"])

    def unpriced_flags(self, window: Window) -> list[dict[str, Any]]:
        """Jobs with spend days in the window that carry an unpriced flag, counted per
        (region, stored flags): ``region``, ``flags`` (comma-separated) and ``jobs``.

        Flags are one comma-separated column, so SQL groups by the whole string and the
        caller splits it; each job falls in exactly one group, so the counts add up.
        """
        if self._rolled([], window):
            jobs = _rollup_counts(["region"], window, self.dialect)[0]
            keys = (SpendDay.region, SpendDay.unpriced_flags)
            query = select(
                SpendDay.region.label("region"), SpendDay.unpriced_flags.label("flags"), jobs
            )
            query = rollup_within(query.select_from(SpendDay), window)
            query = query.where(SpendDay.unpriced_flags != "")
            return self._all(query.group_by(*keys).order_by(*keys))
        jobs = func.count(func.distinct(Job.id)).label("jobs")
        query = within(
            over_days(Job.region.label("region"), Job.flags.label("flags"), jobs), window
        )
        query = query.where(Job.flags.contains(UNPRICED_MARK, autoescape=True))
        return self._all(query.group_by(Job.region, Job.flags).order_by(Job.region, Job.flags))

    # -- showback ------------------------------------------------------------------------
    def pivot(self, rows_by: str, cols_by: str, window: Window) -> list[dict[str, Any]]:
        """(row, col, list micro-dollars) for every pair of the two dimensions with spend."""
        found = self.spend([rows_by, cols_by], window, (LIST,), counts=False)
        return [{"row": r[rows_by], "col": r[cols_by], "list": r[LIST.name]} for r in found]

    def distinct_jobs(self, by: str | None, window: Window) -> dict[Any, int]:
        """Jobs with spend in the window, per value of ``by`` (or overall under the key None)."""
        if self._rolled([] if by is None else [by], window):
            jobs = _rollup_counts([] if by is None else [by], window, self.dialect)[0]
            if by is None:
                rows = self._all(rollup_within(select(jobs).select_from(SpendDay), window))
                return {None: int(rows[0]["jobs"]) if rows else 0}
            key = rollup_dimension(by, self.dialect).label(by)
            query = rollup_within(select(key, jobs).select_from(SpendDay), window).group_by(key)
            return {row[by]: int(row["jobs"]) for row in self._all(query)}
        if by is None:
            count = func.count(func.distinct(JobCostDay.job_id)).label("jobs")
            # Without filters the jobs table is not needed: count over the day split alone.
            query = (
                select(count).select_from(JobCostDay) if not window.filters else over_days(count)
            )
            rows = self._all(within(query, window))
            return {None: int(rows[0]["jobs"]) if rows else 0}
        key = dimension(by, self.dialect).label(by)
        count = func.count(func.distinct(JobCostDay.job_id)).label("jobs")
        rows = self._all(within(over_days(key, count), window).group_by(key))
        return {row[by]: int(row["jobs"]) for row in rows}

    def totals(self, window: Window) -> dict[str, int]:
        """Overall jobs and itemised micro-dollars in the window (``in_flight``: running jobs)."""
        row = self.spend([], window, in_flight=True)[0]
        return {key: int(value or 0) for key, value in row.items()} | {
            "in_flight": int(row["in_flight_list"] or 0)
        }

    # -- top -----------------------------------------------------------------------------
    def top_jobs(self, limit: int, window: Window, offset: int = 0) -> list[dict[str, Any]]:
        """The ``limit`` jobs with the most list cost in the window, most expensive first."""
        spend = func.sum(JobCostDay.list_micros)
        query = over_days(
            Job.id, Job.name, Job.team, Job.project, Job.user, Job.status, Job.instance_type,
            Job.instance_count, Job.billable_seconds, Job.training_seconds, Job.spot,
            Job.unpriced, Job.final, Job.account_id, Job.region, Job.arn,
            *item_sums(REPORT_ITEMS),
        )  # fmt: skip
        query = within(query, window).group_by(Job.id)
        query = query.order_by(spend.desc(), Job.name, Job.id).limit(limit).offset(offset)
        return self._all(query)

    # -- waste ---------------------------------------------------------------------------
    def waste_by_team(self, window: Window) -> dict[str, list[dict[str, Any]]]:
        """Per category, per team: jobs and micro-dollars, in one pass over the window.

        failed_or_stopped: everything jobs in status Failed or Stopped cost;
        idle_warm_pool: warm-pool cost of jobs whose retained instances no job reused;
        unallocated: spend of jobs without a team tag; unpriced: jobs with no price.
        """
        idle = and_(
            JobCostDay.warm_pool_micros > 0,
            Job.warm_pool_reused_by.is_(None),
            or_(Job.warm_pool_status.is_(None), Job.warm_pool_status.not_in(REUSED_WARM_POOL)),
        )
        categories = {
            "failed_or_stopped": (Job.status.in_(WASTED_STATUSES), JobCostDay.list_micros),
            "idle_warm_pool": (idle, JobCostDay.warm_pool_micros),
            "unallocated": (TEAM == UNALLOCATED, JobCostDay.list_micros),
            "unpriced": (Job.unpriced == True, JobCostDay.list_micros),  # noqa: E712
        }
        columns = [TEAM.label("team")]
        for name, (condition, amount) in categories.items():
            columns.append(
                func.count(func.distinct(case((condition, JobCostDay.job_id)))).label(
                    f"{name}_jobs"
                )
            )
            columns.append(func.coalesce(func.sum(case((condition, amount), else_=0)), 0).label(
                f"{name}_micros"
            ))  # fmt: skip
        rows = self._all(within(over_days(*columns), window).group_by(TEAM))
        found: dict[str, list[dict[str, Any]]] = {name: [] for name in categories}
        for row in rows:
            for name in categories:
                if row[f"{name}_jobs"]:
                    found[name].append(
                        {
                            "team": row["team"],
                            "jobs": int(row[f"{name}_jobs"]),
                            "micros": int(row[f"{name}_micros"]),
                        }
                    )
        return found

    def spot_history(self, window: Window) -> list[dict[str, Any]]:
        """Per (team, instance type): billable and training seconds of managed-spot jobs.

        Jobs are those with spend in the window (any filter but the team's, so a team
        without spot history can borrow its instance family's ratio).
        """
        in_window = within(
            select(JobCostDay.job_id).join(Job, Job.id == JobCostDay.job_id),
            window.without_filter("team"),
        )
        query = (
            select(
                TEAM.label("team"),
                Job.instance_type,
                func.count(Job.id).label("jobs"),
                func.coalesce(func.sum(Job.billable_seconds), 0).label("billable_seconds"),
                func.coalesce(func.sum(Job.training_seconds), 0).label("training_seconds"),
            )
            .where(
                Job.spot == True,  # noqa: E712
                Job.final == True,  # noqa: E712
                Job.billable_seconds.is_not(None),
                Job.training_seconds > 0,
                Job.instance_type.is_not(None),
                Job.id.in_(in_window),
            )
            .group_by(TEAM, Job.instance_type)
        )
        return self._all(query)

    def on_demand_candidates(self, window: Window) -> list[dict[str, Any]]:
        """Per (team, instance type): completed on-demand compute that managed spot could run."""
        query = over_days(
            TEAM.label("team"),
            Job.instance_type,
            func.count(func.distinct(JobCostDay.job_id)).label("jobs"),
            func.coalesce(func.sum(JobCostDay.compute_micros), 0).label("compute"),
        )
        query = within(query, window).where(
            Job.spot == False,  # noqa: E712
            Job.status == "Completed",
            Job.training_plan_arn.is_(None),
            Job.serverless_base_model_arn.is_(None),
            Job.billable_token_count.is_(None),
            Job.unpriced == False,  # noqa: E712
            Job.instance_type.is_not(None),
            JobCostDay.compute_micros > 0,
        )
        return self._all(query.group_by(TEAM, Job.instance_type))

    # -- trend ---------------------------------------------------------------------------
    def daily_by_team(self, window: Window) -> list[dict[str, Any]]:
        """(day, team, jobs, list, in_flight): in_flight is the part from running jobs."""
        found = self.spend(["day", "team"], window, (LIST,), in_flight=True)
        return [
            {"day": r["day"], "team": r["team"], "jobs": r["jobs"], "list": r["list"],
             "in_flight": r["in_flight_list"]}
            for r in found
        ]  # fmt: skip

    # -- dashboard -----------------------------------------------------------------------
    def job(self, job_id: int) -> Job | None:
        with self.store.session() as session:
            return session.get(Job, job_id)

    def job_days(self, job_id: int) -> list[dict[str, Any]]:
        """A job's per-day cost split, oldest first."""
        query = select(JobCostDay).where(JobCostDay.job_id == job_id).order_by(JobCostDay.day)
        with self.store.session() as session:
            return [row.model_dump() for row in session.execute(query).scalars()]

    def job_ids_by_name(self, names: list[str]) -> dict[str, int]:
        """Name -> id for the given job names (the first stored when a name repeats)."""
        if not names:
            return {}
        query = select(Job.name, func.min(Job.id)).where(Job.name.in_(names)).group_by(Job.name)
        with self.store.session() as session:
            return {name: job_id for name, job_id in session.execute(query).all()}

    def spend_days(self) -> tuple[date, date] | None:
        """The first and the last UTC day with cost, or None before anything is collected."""
        # Two scalar subqueries, not min() and max() in one SELECT: SQLite answers each alone
        # from the day index, both together only by a scan (94 ms on a million jobs).
        day = SpendDay.day if self.use_rollup else JobCostDay.day
        query = select(
            select(func.min(day)).scalar_subquery(), select(func.max(day)).scalar_subquery()
        )
        with self.store.session() as session:
            first, last = session.execute(query).one()
        return None if first is None else (first, last)

    def team_exists(self, team: str) -> bool:
        check_text("team", team)
        query = select(Job.id).where(Job.team == team).limit(1)
        with self.store.session() as session:
            return session.execute(query).first() is not None
