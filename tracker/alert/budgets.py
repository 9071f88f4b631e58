"""Budgets: periods, actual spend and the forecast at period end. Pure.

No boto3, no database: the caller gathers the numbers (``tracker.alert.service``) and
this module does the arithmetic, in ``Decimal`` dollars, rounding only for display.

Method (also in docs/budgets-and-alerts.md and in every budget alert):

    actual   = cost of finished jobs on the period's days so far
             + cost so far of running jobs on the period's days
    forecast = actual
             + run_rate x remaining_days
             + sum over running jobs of (cost at its stopping condition - cost so far)

``run_rate`` is the finished jobs' cost per day over the ``run_rate_days`` whole UTC days
before today (the window may reach back into the previous period: a rate is a rate);
``remaining_days`` is the exact time from ``now`` to the end of the period, in days. A
running job's cost at its stopping condition is its cost at ``start + MaxWaitTimeInSeconds``
(managed spot) or ``start + MaxRuntimeInSeconds``, cut at the period end: the worst case
the job can still add. Running jobs are left out of the run rate so that nothing counts twice.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from tracker.cost.engine import CostPolicy, cost_job
from tracker.records import JobRecord, Rates, cents, format_usd

PERIODS = ("monthly", "quarterly", "yearly")
FILTER_KEYS = ("team", "project", "user", "account", "region")
COST_MEASURES = ("list", "effective")
DEFAULT_THRESHOLDS = (Decimal(50), Decimal(80), Decimal(100))
DEFAULT_FORECAST = (Decimal(100),)
DEFAULT_RUN_RATE_DAYS = 7
TOP_JOBS = 5
SECONDS_PER_DAY = Decimal(86400)
HUNDRED = Decimal(100)


# -- budgets (parsed from [[budgets]] by tracker.settings) ----------------------------------
@dataclass(frozen=True)
class Budget:
    """One ``[[budgets]]`` entry. ``filters`` narrow it (team, project, ...); none = everything."""

    name: str
    amount_usd: Decimal
    period: str = "monthly"
    filters: tuple[tuple[str, str], ...] = ()
    thresholds_pct: tuple[Decimal, ...] = DEFAULT_THRESHOLDS
    forecast_pct: tuple[Decimal, ...] = DEFAULT_FORECAST
    notify: tuple[str, ...] = ("log",)
    run_rate_days: int = DEFAULT_RUN_RATE_DAYS
    cost: str = "list"

    @property
    def filter_map(self) -> dict[str, str]:
        return dict(self.filters)

    def scope(self) -> str:
        """Who the budget covers, in words: ``team nlp``, or ``all training jobs``."""
        if not self.filters:
            return "all training jobs"
        return ", ".join(f"{key} {value}" for key, value in self.filters)


def format_pct(value: Decimal) -> str:
    """A threshold as people write it: 50, 12.5 (no trailing zeros, no exponent)."""
    text = format(value.normalize(), "f")
    return text


# -- periods --------------------------------------------------------------------------------
@dataclass(frozen=True)
class Period:
    """One budget period: UTC days ``start`` to ``end`` inclusive, named by ``label``."""

    kind: str
    start: date
    end: date
    label: str

    @property
    def start_at(self) -> datetime:
        return datetime(self.start.year, self.start.month, self.start.day, tzinfo=UTC)

    @property
    def end_at(self) -> datetime:
        """The instant the period ends (the next period's first midnight, UTC)."""
        return self.start_at + timedelta(days=(self.end - self.start).days + 1)

    @property
    def days(self) -> int:
        return (self.end - self.start).days + 1


def period_containing(kind: str, now: datetime) -> Period:
    """The monthly, quarterly or yearly period (UTC calendar) that contains ``now``."""
    moment = now.astimezone(UTC)
    year, month = moment.year, moment.month
    if kind == "monthly":
        first_month, months, label = month, 1, f"{year}-{month:02d}"
    elif kind == "quarterly":
        quarter = (month - 1) // 3 + 1
        first_month, months, label = 3 * quarter - 2, 3, f"{year}-Q{quarter}"
    elif kind == "yearly":
        first_month, months, label = 1, 12, f"{year}"
    else:
        raise ValueError(f"unknown period {kind!r}; expected one of {', '.join(PERIODS)}")
    start = date(year, first_month, 1)
    after = first_month + months
    next_start = date(year + 1, after - 12, 1) if after > 12 else date(year, after, 1)
    return Period(kind, start, next_start - timedelta(days=1), label)


def trailing_window(now: datetime, days: int) -> tuple[date, date]:
    """The ``days`` whole UTC days before today: (first, last), inclusive."""
    today = now.astimezone(UTC).date()
    return today - timedelta(days=days), today - timedelta(days=1)


# -- inputs and evaluation -------------------------------------------------------------------
@dataclass(frozen=True)
class JobSpend:
    """One job's cost on the period's days (running jobs: so far)."""

    name: str
    usd: Decimal
    final: bool = True
    status: str = "Completed"
    team: str | None = None
    instance_type: str | None = None
    instance_count: int = 0
    arn: str = ""
    region: str = ""


@dataclass(frozen=True)
class RunningProjection:
    """A running job's cost on the period's days: so far, and at its stopping condition."""

    name: str
    so_far_usd: Decimal
    at_stop_usd: Decimal
    stop_at: datetime | None
    basis: str  # what the stop time rests on, for the message

    @property
    def remaining_usd(self) -> Decimal:
        return max(self.at_stop_usd - self.so_far_usd, Decimal(0))


@dataclass(frozen=True)
class BudgetInputs:
    """What the database says about one budget's scope (gathered by ``tracker.alert.service``)."""

    jobs: tuple[JobSpend, ...] = ()
    trailing_finished_usd: Decimal = Decimal(0)
    running: tuple[RunningProjection, ...] = ()
    unpriced_jobs: int = 0


@dataclass(frozen=True)
class BudgetStatus:
    """A budget's standing at ``as_of``: actual, forecast and the thresholds they crossed."""

    budget: Budget
    period: Period
    as_of: datetime
    finished_usd: Decimal
    running_usd: Decimal
    run_rate_usd_per_day: Decimal
    remaining_days: Decimal
    running_remaining_usd: Decimal
    thresholds_crossed: tuple[Decimal, ...]
    forecast_crossed: tuple[Decimal, ...]
    top_jobs: tuple[JobSpend, ...] = ()
    running_jobs: int = 0
    unpriced_jobs: int = 0
    jobs: int = 0

    @property
    def actual_usd(self) -> Decimal:
        return self.finished_usd + self.running_usd

    @property
    def projected_run_rate_usd(self) -> Decimal:
        return self.run_rate_usd_per_day * self.remaining_days

    @property
    def forecast_usd(self) -> Decimal:
        return self.actual_usd + self.projected_run_rate_usd + self.running_remaining_usd

    @property
    def pct_used(self) -> Decimal:
        return self.actual_usd * HUNDRED / self.budget.amount_usd

    @property
    def forecast_pct_used(self) -> Decimal:
        return self.forecast_usd * HUNDRED / self.budget.amount_usd

    def method(self) -> str:
        """How actual and forecast were computed, with this budget's numbers, in one paragraph."""
        return (
            f"Actual = finished jobs in the period ({format_usd(self.finished_usd, symbol=True)}) + running jobs so far "
            f"({format_usd(self.running_usd, symbol=True)}). Forecast = actual + run rate x days left "
            f"({format_usd(self.run_rate_usd_per_day, symbol=True)}/day, the finished jobs' cost per day over the last "
            f"{self.budget.run_rate_days} whole days, x {self.remaining_days.quantize(Decimal('0.1'), ROUND_HALF_UP)} days"
            f" = {format_usd(self.projected_run_rate_usd, symbol=True)}) + what {self.running_jobs} running job(s) can still "
            f"cost up to their stopping condition ({format_usd(self.running_remaining_usd, symbol=True)})."
        )

    def row(self) -> dict[str, Any]:
        """The JSON row of ``tracker budgets``: money in cents, percentages to 0.01."""
        return {
            "budget": self.budget.name,
            "period": self.budget.period,
            "amount_usd": cents(self.budget.amount_usd),
            "actual_usd": cents(self.actual_usd),
            "forecast_usd": cents(self.forecast_usd),
            "pct_used": pct(self.pct_used),
            "thresholds_crossed": [number(t) for t in self.thresholds_crossed],
            "forecast_pct_used": pct(self.forecast_pct_used),
            "forecast_thresholds_crossed": [number(t) for t in self.forecast_crossed],
            "period_label": self.period.label,
            "period_start": self.period.start.isoformat(),
            "period_end": self.period.end.isoformat(),
            "scope": self.budget.scope(),
            "cost": self.budget.cost,
            "finished_usd": cents(self.finished_usd),
            "running_usd": cents(self.running_usd),
            "run_rate_usd_per_day": cents(self.run_rate_usd_per_day),
            "remaining_days": self.remaining_days.quantize(Decimal("0.01"), ROUND_HALF_UP),
            "running_remaining_usd": cents(self.running_remaining_usd),
            "jobs": self.jobs,
            "running_jobs": self.running_jobs,
            "unpriced_jobs": self.unpriced_jobs,
            "as_of": self.as_of.isoformat(),
            "top_jobs": [
                {"job": j.name, "usd": cents(j.usd), "status": j.status} for j in self.top_jobs
            ],
        }


def evaluate(
    budget: Budget, inputs: BudgetInputs, now: datetime, *, top: int = TOP_JOBS
) -> BudgetStatus:
    """Actual, forecast and crossed thresholds of ``budget`` in the period containing ``now``."""
    period = period_containing(budget.period, now)
    finished = sum((j.usd for j in inputs.jobs if j.final), Decimal(0))
    running = sum((j.usd for j in inputs.jobs if not j.final), Decimal(0))
    rate = inputs.trailing_finished_usd / budget.run_rate_days
    remaining = max(Decimal((period.end_at - now).total_seconds()) / SECONDS_PER_DAY, Decimal(0))
    running_remaining = sum((r.remaining_usd for r in inputs.running), Decimal(0))
    actual = finished + running
    forecast = actual + rate * remaining + running_remaining
    ranked = sorted(inputs.jobs, key=lambda j: (-j.usd, j.name))
    return BudgetStatus(
        budget=budget,
        period=period,
        as_of=now,
        finished_usd=finished,
        running_usd=running,
        run_rate_usd_per_day=rate,
        remaining_days=remaining,
        running_remaining_usd=running_remaining,
        thresholds_crossed=crossed(actual, budget.amount_usd, budget.thresholds_pct),
        forecast_crossed=crossed(forecast, budget.amount_usd, budget.forecast_pct),
        top_jobs=tuple(j for j in ranked[:top] if j.usd > 0),
        running_jobs=len(inputs.running),
        unpriced_jobs=inputs.unpriced_jobs,
        jobs=len(inputs.jobs),
    )


def crossed(
    spend_usd: Decimal, amount_usd: Decimal, thresholds: Iterable[Decimal]
) -> tuple[Decimal, ...]:
    """Thresholds (percent of ``amount_usd``) that ``spend_usd`` has reached, exactly."""
    return tuple(t for t in sorted(thresholds) if spend_usd * HUNDRED >= amount_usd * t)


# -- running jobs: cost at the stopping condition ----------------------------------------------
def stop_time(record: JobRecord, now: datetime) -> tuple[datetime | None, str]:
    """When a running job must stop at the latest, and why (the StoppingCondition field used).

    Managed spot jobs stop at MaxWaitTimeInSeconds (training plus waiting for capacity);
    others at MaxRuntimeInSeconds. A job that has not started yet is assumed to start now.
    """
    start = record.start_time or now
    if record.spot and record.max_wait_seconds:
        return start + timedelta(seconds=record.max_wait_seconds), "MaxWaitTimeInSeconds"
    if record.max_runtime_seconds:
        return start + timedelta(seconds=record.max_runtime_seconds), "MaxRuntimeInSeconds"
    return None, "no stopping condition: projected to the period end"


def project_running(
    record: JobRecord,
    so_far_usd: Decimal,
    rates: Rates,
    policy: CostPolicy,
    period: Period,
    now: datetime,
    *,
    cost: str = "list",
) -> RunningProjection:
    """A running job's cost on the period's days if it runs to its stopping condition."""
    stop_at, basis = stop_time(record, now)
    horizon = min(stop_at, period.end_at) if stop_at else period.end_at
    horizon = max(horizon, now)
    started = record if record.start_time else replace(record, start_time=now)
    projected = cost_job(started, rates, horizon, policy)
    attr = "effective_usd" if cost == "effective" else "list_usd"
    in_period = sum(
        (
            getattr(p, attr)
            for p in projected.periods
            if period.start <= date.fromisoformat(p.day) <= period.end
        ),
        Decimal(0),
    )
    return RunningProjection(record.name, so_far_usd, in_period, stop_at, basis)


def job_cost_at_stop(
    record: JobRecord, rates: Rates, policy: CostPolicy, now: datetime
) -> tuple[Decimal, datetime | None, str]:
    """A running job's whole cost (all days) if it runs to its stopping condition."""
    stop_at, basis = stop_time(record, now)
    horizon = max(stop_at or now, now)
    started = record if record.start_time else replace(record, start_time=now)
    return cost_job(started, rates, horizon, policy).list_usd, stop_at, basis


# -- display helpers ---------------------------------------------------------------------------
def pct(value: Decimal) -> Decimal:
    return value.quantize(Decimal("0.01"), ROUND_HALF_UP)


def number(value: Decimal) -> int | Decimal:
    """An integral Decimal as int (50), else the Decimal (12.5), for JSON."""
    return int(value) if value == value.to_integral_value() else value.normalize()
