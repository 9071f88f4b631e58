"""SQL for the report views: small named queries that aggregate in the database.

Every query sums integer micro-dollars over ``job_cost_days`` (each job's cost split per
UTC day) joined to ``jobs``, so a window counts only the days of a job that fall inside
it and nothing loads every job into memory: the scale target is a million jobs.
Results are plain dicts of ints and strings; rounding to cents happens in the views.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from typing import Any

from sqlalchemy import and_, case, func, or_, select

from tracker.errors import InputError
from tracker.records import UNALLOCATED
from tracker.store.schema import Job, JobCostDay

DIMENSION_COLUMNS = {
    "team": Job.team, "project": Job.project, "user": Job.user,
    "instance_type": Job.instance_type, "account": Job.account_id,
    "region": Job.region, "status": Job.status, "job": Job.name,
}  # fmt: skip
FILTER_COLUMNS = {
    "team": Job.team, "project": Job.project, "user": Job.user, "account": Job.account_id,
    "region": Job.region, "instance_type": Job.instance_type, "status": Job.status,
}  # fmt: skip
WASTED_STATUSES = ("Failed", "Stopped")
REUSED_WARM_POOL = ("Reused", "InUse")
TEAM = func.coalesce(Job.team, UNALLOCATED)


@dataclass(frozen=True)
class Window:
    """Inclusive UTC days and equality filters (team, project, account, ...) for a query."""

    since: date | None = None
    until: date | None = None
    filters: dict[str, str] = field(default_factory=dict)

    def with_filter(self, name: str, value: str) -> Window:
        return Window(self.since, self.until, {**self.filters, name: value})


def _sum(column: Any, label: str) -> Any:
    return func.coalesce(func.sum(column), 0).label(label)


class ViewQueries:
    """Named aggregate queries over one Store's engine."""

    def __init__(self, store: Any):
        self.store = store
        self.dialect = store.engine.dialect.name

    # -- building blocks ---------------------------------------------------------------
    def dimension(self, by: str) -> Any:
        """The SQL expression of a report dimension (missing values read ``unallocated``)."""
        if by == "day":
            return JobCostDay.day
        if by == "month":
            if self.dialect == "sqlite":
                return func.strftime("%Y-%m", JobCostDay.day)
            return func.to_char(JobCostDay.day, "YYYY-MM")
        if by not in DIMENSION_COLUMNS:
            expected = ", ".join([*DIMENSION_COLUMNS, "day", "month"])
            raise InputError(f"dimension {by!r}: expected one of {expected}")
        return func.coalesce(DIMENSION_COLUMNS[by], UNALLOCATED)

    @staticmethod
    def within(query: Any, window: Window) -> Any:
        """Restrict a query joined over job_cost_days to the window and filters."""
        if window.since is not None:
            query = query.where(JobCostDay.day >= window.since)
        if window.until is not None:
            query = query.where(JobCostDay.day <= window.until)
        for name, value in window.filters.items():
            if value is None:
                continue
            if name not in FILTER_COLUMNS:
                raise InputError(f"filter {name!r}: expected one of {', '.join(FILTER_COLUMNS)}")
            query = query.where(func.coalesce(FILTER_COLUMNS[name], UNALLOCATED) == value)
        return query

    def _days(self, *columns: Any) -> Any:
        return select(*columns).select_from(JobCostDay).join(Job, Job.id == JobCostDay.job_id)

    def _all(self, query: Any) -> list[dict[str, Any]]:
        with self.store.session() as session:
            return [dict(row._mapping) for row in session.execute(query).all()]

    # -- showback ------------------------------------------------------------------------
    def pivot(self, rows_by: str, cols_by: str, window: Window) -> list[dict[str, Any]]:
        """(row, col, list micro-dollars) for every pair of the two dimensions with spend."""
        row_key = self.dimension(rows_by).label("row")
        col_key = self.dimension(cols_by).label("col")
        query = self._days(row_key, col_key, _sum(JobCostDay.list_micros, "list"))
        query = self.within(query, window).group_by(row_key, col_key)
        return self._all(query)

    def distinct_jobs(self, by: str | None, window: Window) -> dict[Any, int]:
        """Jobs with spend in the window, per value of ``by`` (or overall under the key None)."""
        count = func.count(func.distinct(JobCostDay.job_id)).label("jobs")
        if by is None:
            # Without filters the jobs table is not needed: count over the day split alone.
            query = (
                select(count).select_from(JobCostDay) if not window.filters else self._days(count)
            )
            rows = self._all(self.within(query, window))
            return {None: int(rows[0]["jobs"]) if rows else 0}
        key = self.dimension(by).label("key")
        rows = self._all(self.within(self._days(key, count), window).group_by(key))
        return {row["key"]: int(row["jobs"]) for row in rows}

    def totals(self, window: Window) -> dict[str, int]:
        """Overall jobs and itemised micro-dollars in the window."""
        query = self._days(
            func.count(func.distinct(JobCostDay.job_id)).label("jobs"),
            _sum(JobCostDay.list_micros, "list"),
            _sum(JobCostDay.compute_micros, "compute"),
            _sum(JobCostDay.spot_savings_micros, "spot_savings"),
            _sum(JobCostDay.effective_micros, "effective"),
            _sum(case((Job.final == False, JobCostDay.list_micros), else_=0), "in_flight"),  # noqa: E712
        )
        row = self._all(self.within(query, window))[0]
        return {key: int(value or 0) for key, value in row.items()}

    # -- top -----------------------------------------------------------------------------
    def top_jobs(self, limit: int, window: Window, offset: int = 0) -> list[dict[str, Any]]:
        """The ``limit`` jobs with the most list cost in the window, most expensive first."""
        spend = func.sum(JobCostDay.list_micros)
        query = self._days(
            Job.id, Job.name, Job.team, Job.project, Job.user, Job.status, Job.instance_type,
            Job.instance_count, Job.billable_seconds, Job.training_seconds, Job.spot,
            Job.unpriced, Job.final, Job.account_id, Job.region, Job.arn,
            func.coalesce(spend, 0).label("list"),
            _sum(JobCostDay.compute_micros, "compute"),
            _sum(JobCostDay.spot_savings_micros, "spot_savings"),
            _sum(JobCostDay.effective_micros, "effective"),
        )  # fmt: skip
        query = self.within(query, window).group_by(Job.id)
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
            columns.append(_sum(case((condition, amount), else_=0), f"{name}_micros"))
        rows = self._all(self.within(self._days(*columns), window).group_by(TEAM))
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
        in_window = self.within(
            select(JobCostDay.job_id).join(Job, Job.id == JobCostDay.job_id),
            Window(
                window.since, window.until, {k: v for k, v in window.filters.items() if k != "team"}
            ),
        )
        query = (
            select(
                TEAM.label("team"),
                Job.instance_type,
                func.count(Job.id).label("jobs"),
                _sum(Job.billable_seconds, "billable_seconds"),
                _sum(Job.training_seconds, "training_seconds"),
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
        query = self._days(
            TEAM.label("team"),
            Job.instance_type,
            func.count(func.distinct(JobCostDay.job_id)).label("jobs"),
            _sum(JobCostDay.compute_micros, "compute"),
        )
        query = self.within(query, window).where(
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
        query = self._days(
            JobCostDay.day.label("day"),
            TEAM.label("team"),
            func.count(func.distinct(JobCostDay.job_id)).label("jobs"),
            _sum(JobCostDay.list_micros, "list"),
            _sum(case((Job.final == False, JobCostDay.list_micros), else_=0), "in_flight"),  # noqa: E712
        )
        query = self.within(query, window).group_by(JobCostDay.day, TEAM)
        return self._all(query.order_by(JobCostDay.day, TEAM))

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

    def team_exists(self, team: str) -> bool:
        query = select(Job.id).where(Job.team == team).limit(1)
        with self.store.session() as session:
            return session.execute(query).first() is not None
