"""Launch guardrails, the pure part: a CreateTrainingJob request's worst case and the budget
decision (docs/guardrails.md).

The worst case is the job costed by the one engine (:func:`tracker.cost.engine.cost_job`) with
the configured price book, as if it ran on demand for its whole ``MaxRuntimeInSeconds`` on
every instance, plus its warm-pool keep-alive period and ML storage. Managed spot does not
raise it: ``MaxRuntimeInSeconds`` bounds the time a job runs (all its attempts together), and
``MaxWaitTimeInSeconds`` adds only the time spent waiting for spot capacity, which is not
billed (CreateTrainingJob API reference, ``StoppingCondition``). A spot job is billed at most
its running time, at no more than the on-demand rate.

Nothing here reads the clock, the database or AWS: the service passes the budgets' statuses.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from tracker.alert.budgets import Budget, BudgetStatus
from tracker.collect.parse import job_from_describe, tags_from_list
from tracker.cost.engine import CostPolicy, cost_job
from tracker.cost.prices import PriceBook
from tracker.errors import InputError, printable
from tracker.estimate.rules import (
    SECONDS_PER_HOUR,
    Estimate,
    EstimateRequest,
    worst_case_job,
)
from tracker.guard.policy import GuardSettings
from tracker.records import JobRecord, format_usd

if TYPE_CHECKING:
    from tracker.settings import Attribution

# StoppingCondition.MaxRuntimeInSeconds when a request leaves it out (API reference: 1 day).
DEFAULT_MAX_RUNTIME_SECONDS = 86400
GUARD_ACCOUNT = "guard"


# -- the job a request asks for, and its worst case -------------------------------------------
def unchecked_reason(params: Mapping[str, Any]) -> str | None:
    """Why the guard cannot price this request (it lets it through, saying so), else None:
    no job name (botocore's validation refuses the call), a serverless job (billed per
    token, unknown before it runs), or no InstanceType or InstanceGroups (flexible instance
    preferences, or a malformed request SageMaker refuses)."""
    name = params.get("TrainingJobName")
    if not isinstance(name, str) or not name:
        return "CreateTrainingJob without a TrainingJobName"
    if params.get("ServerlessJobConfig") is not None:
        return (
            f"serverless training job {printable(name)}: billed per token, unknown before it runs"
        )
    resources = params.get("ResourceConfig")
    if not isinstance(resources, Mapping) or not (
        resources.get("InstanceType") or resources.get("InstanceGroups")
    ):
        return f"training job {printable(name)} names no InstanceType or InstanceGroups"
    return None


def request_job(
    params: Mapping[str, Any], region: str, attribution: Attribution, now: datetime
) -> JobRecord:
    """The JobRecord a CreateTrainingJob request describes (not yet run), created at ``now``."""
    name = params.get("TrainingJobName")
    if not isinstance(name, str) or not name:
        raise InputError("CreateTrainingJob: TrainingJobName is missing")
    tags = tags_from_list(params.get("Tags") or [])
    document = {
        **params,
        "TrainingJobArn": f"guard:{name}",
        "TrainingJobStatus": "InProgress",
        "CreationTime": now,
        "LastModifiedTime": now,
    }
    return job_from_describe(document, GUARD_ACCOUNT, region, tags, 0, attribution)


def max_runtime_seconds(job: JobRecord) -> int:
    return (
        job.max_runtime_seconds
        if (job.max_runtime_seconds or 0) > 0
        else (DEFAULT_MAX_RUNTIME_SECONDS)
    )


def worst_case(
    job: JobRecord,
    price_book: PriceBook,
    now: datetime,
    policy: CostPolicy,
    discount_pct: Decimal = Decimal(0),
) -> Estimate:
    """The job's worst case as an itemised :class:`Estimate` (``total_usd`` in cents).

    On demand for MaxRuntimeInSeconds (the spot wait is not billed), plus the keep-alive
    period, through :func:`worst_case_job` and the engine.
    """
    seconds = max_runtime_seconds(job)
    on_demand = replace(job, spot=False, max_wait_seconds=None, max_runtime_seconds=seconds)
    bounded = worst_case_job(on_demand) or on_demand
    rates = price_book.rates_for(bounded, discount_pct)
    cost = cost_job(bounded, rates, now, policy)
    groups = job.instance_groups
    instance_type = job.instance_type or (groups[0].instance_type if groups else "")
    count = (
        sum(g.count for g in groups) if groups and not job.instance_type
        else job.instance_count or 1
    )  # fmt: skip
    request = EstimateRequest(
        instance_type=instance_type,
        instance_count=count,
        hours=Decimal(seconds) / SECONDS_PER_HOUR,
        region=job.region,
        volume_gb=job.volume_gb,
        team=job.team,
        job_name=job.name,
    )
    return Estimate(request, cost, rates.hourly.get(instance_type), now)


# -- the decision ------------------------------------------------------------------------------
def applies(budget: Budget, job: JobRecord) -> bool:
    """Whether ``budget`` covers ``job``: each of its filters matches the job. The account is
    not known before the call, so a budget filtered by account is not checked."""
    values = {"team": job.team, "project": job.project, "user": job.user, "region": job.region}
    return all(values.get(key) == value for key, value in budget.filters)


@dataclass(frozen=True)
class Room:
    """One budget the job falls under: its amount, forecast and room (amount - forecast)."""

    name: str
    amount_usd: Decimal
    actual_usd: Decimal
    forecast_usd: Decimal

    @property
    def room_usd(self) -> Decimal:
        return self.amount_usd - self.forecast_usd

    def describe(self) -> str:
        return (
            f"budget {printable(self.name)} has {format_usd(self.room_usd, symbol=True)} of room "
            f"({format_usd(self.amount_usd, symbol=True)}, forecast "
            f"{format_usd(self.forecast_usd, symbol=True)})"
        )


@dataclass(frozen=True)
class Decision:
    """What the guardrail decided about one job."""

    job_name: str
    team: str
    mode: str
    estimate: Estimate
    budgets: tuple[Room, ...]
    override_tag: str
    override: str | None = None

    @property
    def worst_case_usd(self) -> Decimal:
        return self.estimate.total_usd

    @property
    def unpriced(self) -> bool:
        return self.estimate.unpriced

    @property
    def breaks(self) -> tuple[Room, ...]:
        """The budgets the worst case would take past their amount, least room first."""
        if self.unpriced:
            return ()
        over = [b for b in self.budgets if b.forecast_usd + self.worst_case_usd > b.amount_usd]
        return tuple(sorted(over, key=lambda b: (b.room_usd, b.name)))

    @property
    def tightest(self) -> Room | None:
        return min(self.budgets, key=lambda b: (b.room_usd, b.name), default=None)

    @property
    def refused(self) -> bool:
        """Refuse mode, no override tag, and a broken budget or an unpriced job."""
        if self.mode != "refuse" or self.override is not None:
            return False
        return self.unpriced or bool(self.breaks)

    def what(self) -> str:
        request = self.estimate.request
        return (
            f"training job {printable(self.job_name)} (team {printable(self.team)}): worst case "
            f"{self._worst()} ({request.instance_count} x {request.instance_type} for "
            f"{request.hours.normalize():f} h)"
        )

    def _worst(self) -> str:
        if self.unpriced:
            request = self.estimate.request
            return f"unknown (no training rate for {request.instance_type} in {request.region})"
        return format_usd(self.worst_case_usd, symbol=True)

    def how_to_override(self) -> str:
        return f"to launch it anyway, tag it {self.override_tag}=<who approved it>"

    def summary(self) -> str:
        """One line: the worst case and the tightest budget's room (or why it passes)."""
        head = self.what()
        if self.override is not None:
            return f"{head}; allowed by override tag {self.override_tag}={printable(self.override)}"
        if self.unpriced:
            return f"{head}; add the rate to [pricing] overrides or run 'tracker prices refresh'"
        chosen = self.breaks[0] if self.breaks else self.tightest
        if chosen is None:
            return f"{head}; no budget covers team {printable(self.team)}"
        verdict = "would exceed it" if self.breaks else "fits"
        return f"{head}; {chosen.describe()}: {verdict}"

    def refusal(self) -> str:
        """The GuardrailRefused message: the budget, its room, the worst case, the override."""
        return f"refused by the launch guardrail: {self.summary()}; {self.how_to_override()}"


def decide(
    job: JobRecord,
    estimate: Estimate,
    statuses: Sequence[BudgetStatus],
    settings: GuardSettings,
    default_mode: str | None = None,
) -> Decision:
    """The decision about ``job`` given its worst case and every budget's status."""
    rooms = tuple(
        Room(s.budget.name, s.budget.amount_usd, s.actual_usd, s.forecast_usd)
        for s in statuses
        if applies(s.budget, job)
    )
    override = job.tags.get(settings.override_tag)
    return Decision(
        job_name=job.name,
        team=job.team,
        mode=settings.mode_for(job.team, default_mode),
        estimate=estimate,
        budgets=rooms,
        override_tag=settings.override_tag,
        override=override if override is None or override.strip() else None,
    )
