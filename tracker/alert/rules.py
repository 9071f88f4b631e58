"""Alert rules: which budget, job and bill rules fire, and the message each sends. Pure.

Rules (on plain records and a ``now``; no database, no AWS, no clock):

- ``budget-forecast``: a budget's forecast at period end reached one of its ``forecast_pct``;
- ``budget-actual``: its actual spend reached one of its ``thresholds_pct``;
- ``job-over-estimate``: a job that finished in the last ``job_lookback_days`` cost more than
  its estimate by more than ``job_tolerance_pct``;
- ``job-running-over-estimate``: a running job has already cost more than its estimate
  (early warning, with what it will cost if it runs to its stopping condition);
- ``bill-drift``: a settled billing period where the AWS bill and the tracker differ by more
  than ``[reconcile] drift_pct`` (a finding of the reconciliation feature).

Each alert has a key (``budget:<name>:<period>:<kind>:<pct>``, ``job:<arn>:<kind>``);
:mod:`tracker.alert.service` gathers the inputs and delivers each alert once per channel.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from tracker.alert.budgets import Budget, BudgetStatus, format_pct, pct
from tracker.alert.channels import Channel, Message, parse_channel
from tracker.reconcile.rules import Finding
from tracker.records import cents, format_usd

DEFAULT_TOLERANCE = Decimal(10)
KIND_ORDER = {
    "budget-forecast": 0,
    "budget-actual": 1,
    "job-running-over-estimate": 2,
    "job-over-estimate": 3,
    "bill-drift": 4,
    "enforce-stop": 5,
    "enforce-approve": 5,
    "enforce-dry-run": 5,
    "anomaly-job": 6,
    "anomaly-team-day": 7,
}


# -- configuration (parsed from [alerts] by tracker.settings) -----------------------------------
@dataclass(frozen=True)
class AlertSettings:
    """The ``[alerts]`` section."""

    notify: tuple[str, ...] = ("log",)
    job_tolerance_pct: Decimal | None = None  # None: [estimates]/[reconcile] tolerance_pct
    job_lookback_days: int = 7
    running_jobs: bool = True
    email_from: str | None = None
    email_region: str | None = None
    webhook_timeout_seconds: float = 10.0
    top_jobs: int = 5
    lease_seconds: int = 600


# -- alerts ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Alert:
    """A message and the channels it goes to (``log`` always among them)."""

    message: Message
    channels: tuple[Channel, ...]

    @property
    def key(self) -> str:
        return self.message.key


def channels_for(specs: Iterable[str]) -> tuple[Channel, ...]:
    """Parsed channels, ``log`` first and always present, each once."""
    parsed = [Channel("log")] + [parse_channel(s) for s in specs]
    unique: dict[str, Channel] = {}
    for channel in parsed:
        unique.setdefault(channel.key, channel)
    return tuple(unique.values())


def report_command(budget: Budget, status: BudgetStatus) -> str:
    flags = " ".join(f"--{k} {v}" for k, v in budget.filters)
    window = f"--since {status.period.start} --until {status.period.end}"
    return " ".join(p for p in ("tracker report --by job", flags, window, "--format table") if p)


def budget_alerts(status: BudgetStatus) -> list[Alert]:
    """One alert per crossed forecast threshold, then one per crossed actual threshold."""
    channels = channels_for(status.budget.notify)
    alerts = [
        Alert(_budget_message(status, "forecast", t), channels) for t in status.forecast_crossed
    ]
    alerts += [
        Alert(_budget_message(status, "actual", t), channels) for t in status.thresholds_crossed
    ]
    return alerts


def _budget_message(status: BudgetStatus, kind: str, threshold: Decimal) -> Message:
    budget, period = status.budget, status.period
    amount = format_usd(budget.amount_usd, symbol=True)
    label = f"{format_pct(threshold)}%"
    if kind == "forecast":
        subject = (
            f"Budget {budget.name} is forecast to reach {label} of {amount} for {period.label} "
            f"(forecast {format_usd(status.forecast_usd, symbol=True)})"
        )
        headline = f"The forecast for the end of {period.label} has reached {label} of the budget."
    else:
        subject = f"Budget {budget.name} crossed {label} of {amount} for {period.label} (spent {format_usd(status.actual_usd, symbol=True)})"
        headline = f"Actual spend in {period.label} has crossed {label} of the budget."
    lines = [
        headline,
        f"Budget:    {budget.name}: {amount} {budget.period} for {budget.scope()} ({budget.cost} cost)",
        f"Period:    {period.label} ({period.start} to {period.end}), as of {status.as_of:%Y-%m-%d %H:%M} UTC",
        f"Actual:    {format_usd(status.actual_usd, symbol=True)} of {amount} ({pct(status.pct_used)}%)",
        f"Forecast:  {format_usd(status.forecast_usd, symbol=True)} at period end ({pct(status.forecast_pct_used)}%)",
    ]
    if status.top_jobs:
        lines.append("Top jobs this period:")
        lines += [
            f"  {j.name}  {format_usd(j.usd, symbol=True)}  {j.status}{'' if j.final else ' (running, so far)'}"
            + (f"  {j.instance_type} x{j.instance_count}" if j.instance_type else "")
            for j in status.top_jobs
        ]
    if status.unpriced_jobs:
        lines.append(
            f"Warning:   {status.unpriced_jobs} job(s) in scope have no price and count as $0 "
            "(run: tracker prices check)"
        )
    lines.append(f"Method:    {status.method()}")
    lines.append("See more:")
    lines.append("  tracker budgets")
    lines.append(f"  {report_command(budget, status)}")
    fields = {
        "budget": budget.name, "period": period.label, "kind": kind,
        "threshold_pct": format_pct(threshold), "amount_usd": str(cents(budget.amount_usd)),
        "actual_usd": str(cents(status.actual_usd)), "forecast_usd": str(cents(status.forecast_usd)),
        "pct_used": str(pct(status.pct_used)), "scope": budget.scope(),
    }  # fmt: skip
    key = f"budget:{budget.name}:{period.label}:{kind}:{format_pct(threshold)}"
    return Message(key, f"budget-{kind}", subject, "\n".join(lines), fields)


@dataclass(frozen=True)
class Estimate:
    usd: Decimal
    source: str  # e.g. "tag tracker:estimate-usd", "recorded estimate est-12"


@dataclass(frozen=True)
class JobFacts:
    """What the job rules need about one job."""

    name: str
    arn: str
    region: str
    team: str | None
    status: str
    final: bool
    cost_usd: Decimal
    estimate: Estimate | None
    costed_at: datetime | None = None
    cost_at_stop_usd: Decimal | None = None
    stop_at: datetime | None = None
    stop_basis: str = ""


def job_alerts(
    facts: Sequence[JobFacts], settings: AlertSettings, tolerance_pct: Decimal = DEFAULT_TOLERANCE
) -> list[Alert]:
    """Over-estimate alerts for finished jobs (more than ``tolerance_pct`` over) and early
    warnings for running ones (already past the estimate)."""
    channels = channels_for(settings.notify)
    if settings.job_tolerance_pct is not None:
        tolerance_pct = settings.job_tolerance_pct
    alerts = []
    for job in facts:
        if job.estimate is None or job.estimate.usd <= 0:
            continue
        if job.final:
            limit = job.estimate.usd * (1 + tolerance_pct / 100)
            if job.cost_usd > limit:
                alerts.append(Alert(_finished_message(job, tolerance_pct), channels))
        elif settings.running_jobs and job.cost_usd > job.estimate.usd:
            alerts.append(Alert(_running_message(job), channels))
    return alerts


def _over(job: JobFacts) -> str:
    assert job.estimate is not None
    return f"{pct((job.cost_usd - job.estimate.usd) * 100 / job.estimate.usd)}%"


def _finished_message(job: JobFacts, tolerance_pct: Decimal) -> Message:
    assert job.estimate is not None
    subject = f"Job {job.name} cost {format_usd(job.cost_usd, symbol=True)}, {_over(job)} over its estimate of {format_usd(job.estimate.usd, symbol=True)}"
    lines = [
        f"Job:       {job.name} ({job.status}, team {job.team or 'unallocated'}, {job.region})",
        f"Cost:      {format_usd(job.cost_usd, symbol=True)}",
        f"Estimate:  {format_usd(job.estimate.usd, symbol=True)} ({job.estimate.source})",
        f"Over by:   {format_usd(job.cost_usd - job.estimate.usd, symbol=True)} ({_over(job)}; tolerance {format_pct(tolerance_pct)}%)",
        "See more:",
        f"  tracker report --by job --team {job.team or 'unallocated'} --format table",
        "  tracker reconcile --against estimates",
    ]
    fields = {"job": job.name, "team": job.team, "cost_usd": str(cents(job.cost_usd)),
              "estimate_usd": str(cents(job.estimate.usd)), "estimate_source": job.estimate.source}  # fmt: skip
    return Message(
        f"job:{job.arn}:over-estimate", "job-over-estimate", subject, "\n".join(lines), fields
    )


def _running_message(job: JobFacts) -> Message:
    assert job.estimate is not None
    subject = f"Running job {job.name} has already cost {format_usd(job.cost_usd, symbol=True)}, past its estimate of {format_usd(job.estimate.usd, symbol=True)}"
    as_of = f" as of {job.costed_at:%Y-%m-%d %H:%M} UTC" if job.costed_at else ""
    lines = [
        f"Job:       {job.name} (still running, team {job.team or 'unallocated'}, {job.region})",
        f"So far:    {format_usd(job.cost_usd, symbol=True)}{as_of} ({_over(job)} over the estimate)",
        f"Estimate:  {format_usd(job.estimate.usd, symbol=True)} ({job.estimate.source})",
    ]
    if job.cost_at_stop_usd is not None and job.stop_at is not None:
        lines.append(
            f"If it runs to its stopping condition ({job.stop_basis}, {job.stop_at:%Y-%m-%d %H:%M} UTC) "
            f"it will cost {format_usd(job.cost_at_stop_usd, symbol=True)}."
        )
    lines += [
        "See more:",
        f"  tracker report --by job --team {job.team or 'unallocated'} --status {job.status} --format table",
        f"  aws sagemaker describe-training-job --training-job-name {job.name} --region {job.region}",
        f"To stop it: aws sagemaker stop-training-job --training-job-name {job.name} --region {job.region}",
    ]
    fields = {"job": job.name, "team": job.team, "cost_usd": str(cents(job.cost_usd)),
              "estimate_usd": str(cents(job.estimate.usd)), "estimate_source": job.estimate.source,
              "cost_at_stop_usd": str(cents(job.cost_at_stop_usd)) if job.cost_at_stop_usd is not None else None}  # fmt: skip
    return Message(
        f"job:{job.arn}:running-over-estimate",
        "job-running-over-estimate",
        subject,
        "\n".join(lines),
        fields,
    )


def ordered(alerts: Iterable[Alert]) -> list[Alert]:
    """Forecast before actual (a forecast breach is announced first), lower thresholds first."""

    def rank(alert: Alert) -> tuple[int, Decimal, str]:
        threshold = Decimal(str(alert.message.fields.get("threshold_pct") or 0))
        return (KIND_ORDER.get(alert.message.kind, 9), threshold, alert.key)

    return sorted(alerts, key=rank)


def bill_alerts(findings: Iterable[Finding], settings: AlertSettings) -> list[Alert]:
    """One ``bill-drift`` alert per finding, on the ``[alerts] notify`` channels."""
    channels = channels_for(settings.notify)
    return [Alert(_drift_message(f), channels) for f in findings]


def _drift_message(finding: Finding) -> Message:
    subject = (
        f"Bill drift for team {finding.team}, {finding.period}: billed {format_usd(finding.billed_usd, symbol=True)} "
        f"vs tracker {format_usd(finding.tracker_usd, symbol=True)}"
    )
    lines = [
        finding.message,
        "The period is settled (older than the billing settle time), so the difference is real:",
        "untagged or unpriced jobs, a price book that differs from the bill, or usage the tracker "
        "does not see.",
        "See more:",
        f"  tracker reconcile --against bill --source {finding.source or 'ce'} --team {finding.team}",
        f"  tracker report --by job --team {finding.team} --format table",
    ]
    fields = {"team": finding.team, "period": finding.period, "tracker_usd": str(finding.tracker_usd),
              "billed_usd": str(finding.billed_usd), "delta_usd": str(finding.delta_usd)}  # fmt: skip
    return Message(finding.key, "bill-drift", subject, "\n".join(lines), fields)
