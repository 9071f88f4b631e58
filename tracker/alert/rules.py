"""Alerts: which budget and job rules fire, and their delivery exactly once per channel.

Rules (pure, on plain records and a ``now``):

- ``budget-forecast``: a budget's forecast at period end reached one of its ``forecast_pct``;
- ``budget-actual``: its actual spend reached one of its ``thresholds_pct``;
- ``job-over-estimate``: a job that finished in the last ``job_lookback_days`` cost more than
  its estimate by more than ``job_tolerance_pct``;
- ``job-running-over-estimate``: a running job has already cost more than its estimate
  (early warning, with what it will cost if it runs to its stopping condition);
- ``bill-drift``: a settled billing period where the AWS bill and the tracker differ by more
  than ``[reconcile] drift_pct`` (a finding of the reconciliation feature).

Each alert has a key (``budget:<name>:<period>:<kind>:<pct>``, ``job:<arn>:<kind>``) and is
delivered once per channel, ever: ``tracker.store.ops.AlertLedger`` claims each (key, channel)
in the database before sending, marks it sent after, and keeps failures to retry next run.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

from tracker.alert.budgets import (
    Budget,
    BudgetInputs,
    BudgetStatus,
    JobSpend,
    evaluate,
    format_pct,
    job_cost_at_stop,
    pct,
    period_containing,
    project_running,
    trailing_window,
    usd,
)
from tracker.alert.notify import (
    Channel,
    DeliveryError,
    Message,
    Notifier,
    NotifySettings,
    parse_channel,
    shown_value,
)
from tracker.records import cents, from_micros

log = logging.getLogger("tracker.alert.rules")

ESTIMATE_TAG = "tracker:estimate-usd"
ALERT_KEYS = {
    "notify", "job_tolerance_pct", "job_lookback_days", "running_jobs", "email_from",
    "email_region", "webhook_timeout_seconds", "top_jobs", "lease_seconds", "tolerance_pct",
}  # fmt: skip
DEFAULT_TOLERANCE = Decimal(10)
KIND_ORDER = {
    "budget-forecast": 0,
    "budget-actual": 1,
    "job-running-over-estimate": 2,
    "job-over-estimate": 3,
    "bill-drift": 4,
}


# -- configuration ---------------------------------------------------------------------------
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

    def notify_settings(self) -> NotifySettings:
        return NotifySettings(self.email_from, self.email_region, self.webhook_timeout_seconds)


def parse_alerts(value: Any, ctx: Any) -> AlertSettings:
    """``[alerts]`` -> AlertSettings; problems go to ``ctx.problem``."""
    if value is None:
        return AlertSettings()
    if not isinstance(value, dict):
        ctx.problem("alerts", "must be a table ([alerts])")
        return AlertSettings()
    for key in value:
        if key not in ALERT_KEYS:
            ctx.problem(
                f"alerts.{key}", f"unknown key; expected one of {', '.join(sorted(ALERT_KEYS))}"
            )
    default = AlertSettings()
    notify = value.get("notify", list(default.notify))
    if not isinstance(notify, list):
        ctx.problem(
            "alerts.notify",
            f'must be a list of channels like ["log", "webhook:env:SLACK_WEBHOOK_URL"], got {shown_value(notify)!r}',
        )
        notify = list(default.notify)
    for index, spec in enumerate(notify):
        try:
            parse_channel(spec)
        except ValueError as exc:
            ctx.problem(f"alerts.notify[{index}]", str(exc))
    tolerance = None
    for key in ("job_tolerance_pct", "tolerance_pct"):  # tolerance_pct: the short spelling
        if key not in value:
            continue
        tolerance = _decimal(value[key])
        if tolerance is None or not 0 <= tolerance <= 1000:
            ctx.problem(f"alerts.{key}", f"must be a percentage from 0 to 1000, got {value[key]!r}")
            tolerance = None
        break
    email_from = value.get("email_from")
    if email_from is not None:
        try:
            parse_channel(f"email:{email_from}")
        except ValueError:
            ctx.problem(
                "alerts.email_from", f"must be an email address verified in SES, got {email_from!r}"
            )
            email_from = None
    region = value.get("email_region")
    if region is not None and not isinstance(region, str):
        ctx.problem(
            "alerts.email_region", f"must be a region code like 'us-east-1', got {region!r}"
        )
        region = None
    running = value.get("running_jobs", True)
    if not isinstance(running, bool):
        ctx.problem("alerts.running_jobs", f"must be true or false, got {running!r}")
        running = True
    timeout = _decimal(value.get("webhook_timeout_seconds", default.webhook_timeout_seconds))
    if timeout is None or not 0 < timeout <= 300:
        ctx.problem("alerts.webhook_timeout_seconds", "must be a number of seconds from 0 to 300")
        timeout = Decimal(10)
    return AlertSettings(
        notify=tuple(dict.fromkeys(s for s in notify if isinstance(s, str))),  # others: reported
        job_tolerance_pct=tolerance,
        job_lookback_days=_whole(
            ctx, "alerts.job_lookback_days", value.get("job_lookback_days"), 7, 1, 366
        ),
        running_jobs=running,
        email_from=email_from,
        email_region=region,
        webhook_timeout_seconds=float(timeout),
        top_jobs=_whole(ctx, "alerts.top_jobs", value.get("top_jobs"), 5, 0, 50),
        lease_seconds=_whole(
            ctx, "alerts.lease_seconds", value.get("lease_seconds"), 600, 10, 86400
        ),
    )


def _decimal(value: Any) -> Decimal | None:
    if isinstance(value, bool) or not isinstance(value, int | float | str | Decimal):
        return None
    try:
        number = Decimal(str(value))
    except InvalidOperation:
        return None
    return number if number.is_finite() else None


def _whole(ctx: Any, key: str, value: Any, default: int, low: int, high: int) -> int:
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        ctx.problem(key, f"must be a whole number from {low} to {high}, got {value!r}")
        return default
    return value


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
    amount = usd(budget.amount_usd)
    label = f"{format_pct(threshold)}%"
    if kind == "forecast":
        subject = (
            f"Budget {budget.name} is forecast to reach {label} of {amount} for {period.label} "
            f"(forecast {usd(status.forecast_usd)})"
        )
        headline = f"The forecast for the end of {period.label} has reached {label} of the budget."
    else:
        subject = f"Budget {budget.name} crossed {label} of {amount} for {period.label} (spent {usd(status.actual_usd)})"
        headline = f"Actual spend in {period.label} has crossed {label} of the budget."
    lines = [
        headline,
        f"Budget:    {budget.name}: {amount} {budget.period} for {budget.scope()} ({budget.cost} cost)",
        f"Period:    {period.label} ({period.start} to {period.end}), as of {status.as_of:%Y-%m-%d %H:%M} UTC",
        f"Actual:    {usd(status.actual_usd)} of {amount} ({pct(status.pct_used)}%)",
        f"Forecast:  {usd(status.forecast_usd)} at period end ({pct(status.forecast_pct_used)}%)",
    ]
    if status.top_jobs:
        lines.append("Top jobs this period:")
        lines += [
            f"  {j.name}  {usd(j.usd)}  {j.status}{'' if j.final else ' (running, so far)'}"
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
    subject = f"Job {job.name} cost {usd(job.cost_usd)}, {_over(job)} over its estimate of {usd(job.estimate.usd)}"
    lines = [
        f"Job:       {job.name} ({job.status}, team {job.team or 'unallocated'}, {job.region})",
        f"Cost:      {usd(job.cost_usd)}",
        f"Estimate:  {usd(job.estimate.usd)} ({job.estimate.source})",
        f"Over by:   {usd(job.cost_usd - job.estimate.usd)} ({_over(job)}; tolerance {format_pct(tolerance_pct)}%)",
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
    subject = f"Running job {job.name} has already cost {usd(job.cost_usd)}, past its estimate of {usd(job.estimate.usd)}"
    as_of = f" as of {job.costed_at:%Y-%m-%d %H:%M} UTC" if job.costed_at else ""
    lines = [
        f"Job:       {job.name} (still running, team {job.team or 'unallocated'}, {job.region})",
        f"So far:    {usd(job.cost_usd)}{as_of} ({_over(job)} over the estimate)",
        f"Estimate:  {usd(job.estimate.usd)} ({job.estimate.source})",
    ]
    if job.cost_at_stop_usd is not None and job.stop_at is not None:
        lines.append(
            f"If it runs to its stopping condition ({job.stop_basis}, {job.stop_at:%Y-%m-%d %H:%M} UTC) "
            f"it will cost {usd(job.cost_at_stop_usd)}."
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


# -- gathering (database + price book -> plain records) ---------------------------------------------
def budget_statuses(
    settings: Any, store: Any, now: datetime, *, price_book: Any = None
) -> list[BudgetStatus]:
    """Every configured budget evaluated at ``now``."""
    budgets: Sequence[Budget] = settings.feature("budgets")
    if not budgets:
        return []
    from tracker.store.database import job_record
    from tracker.store.ops import SpendQueries

    queries = SpendQueries(store)
    book = price_book or settings.price_book()
    policy = settings.cost_policy()
    top = alert_settings(settings).top_jobs
    statuses = []
    for budget in budgets:
        period = period_containing(budget.period, now)
        filters = budget.filter_map
        rows = queries.job_spend(filters, period.start, period.end, budget.cost)
        in_period = {r.job_id: from_micros(r.micros) for r in rows}
        first, last = trailing_window(now, budget.run_rate_days)
        trailing = from_micros(queries.finished_micros(filters, first, last, budget.cost))
        running = []
        for row in queries.running_jobs(filters):
            record = job_record(row)
            rates = book.rates_for(record, settings.discount_pct)
            so_far = in_period.get(row.id, Decimal(0))
            running.append(
                project_running(record, so_far, rates, policy, period, now, cost=budget.cost)
            )
        jobs = tuple(
            JobSpend(
                r.name,
                from_micros(r.micros),
                r.final,
                r.status,
                r.team,
                r.instance_type,
                r.instance_count,
                r.arn,
                r.region,
            )  # fmt: skip
            for r in rows
        )
        inputs = BudgetInputs(jobs, trailing, tuple(running), sum(1 for r in rows if r.unpriced))
        statuses.append(evaluate(budget, inputs, now, top=top))
    return statuses


def alert_settings(settings: Any) -> AlertSettings:
    return settings.feature("alerts") or AlertSettings()


def job_estimates(store: Any, rows: Sequence[Any]) -> dict[str, Estimate]:
    """ARN -> Estimate for the given stored jobs, by the estimates feature's matching rules.

    Recorded estimates (by ``tracker:estimate-id`` tag, exact job name, longest name prefix)
    win, then the ``tracker:estimate-usd`` tag (``tracker.estimate.rules.resolve_estimate``). The
    worst case implied by a job's stopping condition is not an estimate a job can overrun, so
    it never triggers an alert. Without the estimates feature, only the tag is read.
    """
    matcher = _recorded_matcher(store)
    found: dict[str, Estimate] = {}
    for row in rows:
        tags = json.loads(row.tags_json or "{}")
        estimate = matcher(row, tags) if matcher else _tag_estimate(tags)
        if estimate is not None and estimate.usd > 0:
            found[row.arn] = estimate
    return found


def _tag_estimate(tags: dict[str, str]) -> Estimate | None:
    tag = tags.get(ESTIMATE_TAG)
    amount = _decimal(str(tag).strip().removeprefix("$").replace(",", "")) if tag else None
    return Estimate(amount, f"tag {ESTIMATE_TAG}") if amount is not None else None


SOURCE_LABELS = {
    "estimate-id": "recorded estimate {id}, matched by its tracker:estimate-id tag",
    "job-name": "recorded estimate {id}, matched by job name",
    "name-prefix": "recorded estimate {id}, matched by name prefix",
    "estimate-usd-tag": f"tag {ESTIMATE_TAG}",
}


def _recorded_matcher(store: Any) -> Callable[[Any, dict[str, str]], Estimate | None] | None:
    try:
        from tracker.estimate.rules import EstimateIndex, resolve_estimate
        from tracker.store.estimates import EstimateRepository
    except ImportError:
        return None
    from tracker.store.database import aware_utc

    index = EstimateIndex.build(EstimateRepository(store).recorded())

    def match(row: Any, tags: dict[str, str]) -> Estimate | None:
        resolved = resolve_estimate(row.name, tags, aware_utc(row.creation_time), index)
        label = SOURCE_LABELS.get(resolved.source)
        if resolved.usd is None or label is None:
            return None
        return Estimate(resolved.usd, label.format(id=resolved.estimate_id))

    return match


def estimate_tolerance(settings: Any) -> Decimal:
    """The estimates feature's tolerance (``[estimates]``/``[reconcile] tolerance_pct``)."""
    try:
        from tracker.reconcile.service import estimate_tolerance as feature_tolerance

        return feature_tolerance(settings)
    except (ImportError, KeyError, AttributeError):
        return DEFAULT_TOLERANCE


def job_facts(
    settings: Any, store: Any, now: datetime, *, price_book: Any = None
) -> list[JobFacts]:
    """Finished jobs of the lookback window and running jobs, with estimates and projections."""
    from tracker.store.database import aware_utc, job_record
    from tracker.store.ops import SpendQueries

    options = alert_settings(settings)
    queries = SpendQueries(store)
    finished = queries.finished_since(now - timedelta(days=options.job_lookback_days))
    running = queries.running_jobs() if options.running_jobs else []
    estimates = job_estimates(store, [*finished, *running])
    book = None
    facts = []
    for row in [*finished, *running]:
        estimate = estimates.get(row.arn)
        if estimate is None:
            continue
        at_stop = stop_at = None
        basis = ""
        if not row.final:
            book = book or price_book or settings.price_book()
            record = job_record(row)
            at_stop, stop_at, basis = job_cost_at_stop(
                record, book.rates_for(record, settings.discount_pct), settings.cost_policy(), now
            )
        facts.append(
            JobFacts(
                row.name,
                row.arn,
                row.region,
                row.team,
                row.status,
                row.final,
                from_micros(row.list_micros),
                estimate,
                aware_utc(row.costed_at),
                at_stop,
                stop_at,
                basis,
            )  # fmt: skip
        )
    return facts


def evaluate_alerts(
    settings: Any, store: Any, now: datetime
) -> tuple[list[BudgetStatus], list[Alert]]:
    """Budget statuses and every alert whose rule holds at ``now``, in delivery order."""
    book = settings.price_book()
    statuses = budget_statuses(settings, store, now, price_book=book)
    alerts = [a for s in statuses for a in budget_alerts(s)]
    facts = job_facts(settings, store, now, price_book=book)
    alerts += job_alerts(facts, alert_settings(settings), estimate_tolerance(settings))
    alerts += bill_alerts(settings, store, now)
    return statuses, ordered(alerts)


def bill_alerts(settings: Any, store: Any, now: datetime) -> list[Alert]:
    """Bill-drift findings of the reconciliation feature, from the bill lines already stored
    by ``tracker reconcile --against bill`` or the daily reconcile job (no AWS call here)."""
    try:
        from tracker.reconcile.service import reconcile_settings, stored_bill_findings
    except ImportError:
        return []
    source = reconcile_settings(settings).source
    channels = channels_for(alert_settings(settings).notify)
    return [
        Alert(_drift_message(f), channels)
        for f in stored_bill_findings(settings, store, now, source=source)
    ]


def _drift_message(finding: Any) -> Message:
    subject = (
        f"Bill drift for team {finding.team}, {finding.period}: billed {usd(finding.billed_usd)} "
        f"vs tracker {usd(finding.tracker_usd)}"
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


# -- delivery -------------------------------------------------------------------------------------
@dataclass
class Outcome:
    """What happened to one (alert, channel) in this run."""

    key: str
    channel: str
    state: str  # sent | failed | already-sent | in-progress | would-send | would-retry
    subject: str = ""
    error: str | None = None


@dataclass
class AlertRun:
    """The result of ``tracker alerts``: what fired and what was delivered."""

    as_of: datetime
    dry_run: bool
    statuses: list[BudgetStatus] = field(default_factory=list)
    alerts: list[Alert] = field(default_factory=list)
    outcomes: list[Outcome] = field(default_factory=list)

    def count(self, state: str) -> int:
        return sum(1 for o in self.outcomes if o.state == state)

    @property
    def ok(self) -> bool:
        return self.count("failed") == 0

    def render(self) -> str:
        head = "Alerts (dry run, nothing sent or recorded)" if self.dry_run else "Alerts"
        counts = ", ".join(
            f"{self.count(s)} {s}"
            for s in ("sent", "failed", "already-sent", "in-progress", "would-send", "would-retry")
            if self.count(s)
        )
        lines = [
            f"{head} at {self.as_of:%Y-%m-%d %H:%M} UTC: {len(self.alerts)} rule(s) firing; {counts or 'nothing to deliver'}"
        ]
        for o in self.outcomes:
            if o.state == "already-sent":
                continue
            detail = f"  ({o.error})" if o.error else ""
            lines.append(f"  {o.state.upper():<12} {o.channel:<40} {o.subject}{detail}")
        if self.count("failed"):
            lines.append("Failed deliveries are kept and retried on the next run.")
        return "\n".join(lines) + "\n"

    def summary(self) -> dict[str, Any]:
        return {
            "rules_firing": len(self.alerts),
            **{s: self.count(s) for s in ("sent", "failed", "already-sent", "in-progress")},
        }


def run_alerts(
    settings: Any,
    store: Any,
    *,
    now: datetime,
    wall: Callable[[], datetime],
    notifier: Notifier | None = None,
    dry_run: bool = False,
) -> AlertRun:
    """Evaluate every rule at ``now`` and deliver what has not been delivered yet.

    ``wall`` stamps the ledger (real time, even when ``now`` is pinned for a report).
    A dry run reads the ledger but sends and records nothing.
    """
    from tracker.store.ops import AlertLedger

    options = alert_settings(settings)
    statuses, alerts = evaluate_alerts(settings, store, now)
    run = AlertRun(now, dry_run, statuses, alerts)
    ledger = AlertLedger(store, wall, timedelta(seconds=options.lease_seconds))
    notifier = notifier or Notifier(options.notify_settings())
    states = ledger.state(a.key for a in alerts)
    handled: set[tuple[str, str]] = set()
    for alert in alerts:
        for channel in alert.channels:
            handled.add((alert.key, channel.key))
            state = states.get((alert.key, channel.key))
            if state == "sent":
                run.outcomes.append(
                    Outcome(alert.key, channel.key, "already-sent", alert.message.subject)
                )
            elif dry_run:
                label = "would-retry" if state == "failed" else "would-send"
                run.outcomes.append(Outcome(alert.key, channel.key, label, alert.message.subject))
            else:
                run.outcomes.append(_deliver(ledger, notifier, channel, alert.message))
    known = _configured_channels(settings, options)
    for row in ledger.retryable():
        if (row.alert_key, row.channel) in handled:
            continue
        message = Message(**row.payload)
        if dry_run:
            run.outcomes.append(Outcome(row.alert_key, row.channel, "would-retry", message.subject))
            continue
        channel = known.get(row.channel)
        if channel is None:
            run.outcomes.append(_fail_unknown(ledger, row, message))
            continue
        run.outcomes.append(_deliver(ledger, notifier, channel, message))
    return run


def _deliver(ledger: Any, notifier: Notifier, channel: Channel, message: Message) -> Outcome:
    payload = asdict(message)
    token = ledger.claim(message.key, channel.key, message.kind, message.subject, payload)
    if token is None:  # sent meanwhile, or another run is sending it right now
        return Outcome(message.key, channel.key, "in-progress", message.subject)
    try:
        notifier.send(channel, message)
    except DeliveryError as exc:
        ledger.mark_failed(message.key, channel.key, token, str(exc))
        log.error("alert delivery failed on %s: %s (%s); retried next run", channel.key, exc, message.key,
                  extra={"alert_key": message.key, "channel": channel.key})  # fmt: skip
        return Outcome(message.key, channel.key, "failed", message.subject, str(exc))
    except Exception as exc:  # noqa: BLE001 - any failure must leave the row retryable, not "sending"
        error = f"{type(exc).__name__}: {exc}" if channel.kind != "webhook" else type(exc).__name__
        ledger.mark_failed(message.key, channel.key, token, error)
        log.exception("alert delivery failed on %s (%s)", channel.key, message.key)
        return Outcome(message.key, channel.key, "failed", message.subject, error)
    ledger.mark_sent(message.key, channel.key, token)
    log.info(
        "alert sent on %s: %s",
        channel.key,
        message.subject,
        extra={"alert_key": message.key, "channel": channel.key},
    )
    return Outcome(message.key, channel.key, "sent", message.subject)


def _fail_unknown(ledger: Any, row: Any, message: Message) -> Outcome:
    error = f"channel {row.channel} is no longer configured; add it back to deliver this alert"
    token = ledger.claim(row.alert_key, row.channel, row.kind, row.subject, row.payload)
    if token is not None:
        ledger.mark_failed(row.alert_key, row.channel, token, error)
    return Outcome(row.alert_key, row.channel, "failed", message.subject, error)


def _configured_channels(settings: Any, options: AlertSettings) -> dict[str, Channel]:
    specs = [*options.notify, *(s for b in settings.feature("budgets") or () for s in b.notify)]
    return {c.key: c for c in channels_for(specs)}
