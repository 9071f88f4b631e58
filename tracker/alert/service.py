"""Alerts as a service: gather budgets, jobs and bill findings from the store, evaluate the
pure rules of :mod:`tracker.alert.rules`, and deliver each alert once per channel.

``tracker.store.ops.AlertLedger`` claims each (key, channel) in the database and commits
before sending, marks it sent after, and keeps failures to retry next run. Every attempt
carries the same idempotency key; a claim left by a process that died mid-delivery is resent
once, flagged as a repeat, and never again (docs/operations.md, "Alert delivery guarantees").
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal

from tracker.alert.budgets import (
    BudgetInputs,
    BudgetStatus,
    JobSpend,
    evaluate,
    job_cost_at_stop,
    period_containing,
    project_running,
    trailing_window,
)
from tracker.alert.channels import Channel, Message, idempotency_key
from tracker.alert.notify import DeliveryError, Notifier, NotifySettings
from tracker.alert.rules import (
    Alert,
    AlertSettings,
    Estimate,
    JobFacts,
    bill_alerts,
    budget_alerts,
    channels_for,
    job_alerts,
    ordered,
)
from tracker.cost.prices import PriceBook
from tracker.estimate.rules import ESTIMATE_USD_TAG, resolve_estimate
from tracker.estimate.service import recorded_index
from tracker.reconcile.service import estimate_tolerance, stored_bill_findings
from tracker.records import from_micros
from tracker.settings import Settings
from tracker.store.database import Store, aware_utc, job_record
from tracker.store.ops import UNCONFIRMED_ERROR, AlertLedger, Delivery, SpendQueries
from tracker.store.schema import Job

# The logger keeps its documented name (docs/budgets-and-alerts.md: the ``log`` channel).
log = logging.getLogger("tracker.alert.rules")

SOURCE_LABELS = {
    "estimate-id": "recorded estimate {id}, matched by its tracker:estimate-id tag",
    "job-name": "recorded estimate {id}, matched by job name",
    "name-prefix": "recorded estimate {id}, matched by name prefix",
    "estimate-usd-tag": f"tag {ESTIMATE_USD_TAG}",
}


def notify_settings(options: AlertSettings) -> NotifySettings:
    """The ``[alerts]`` keys the channels need."""
    return NotifySettings(options.email_from, options.email_region, options.webhook_timeout_seconds)


# -- gathering (database + price book -> plain records) ---------------------------------------------
def budget_statuses(
    settings: Settings, store: Store, now: datetime, *, price_book: PriceBook | None = None
) -> list[BudgetStatus]:
    """Every configured budget evaluated at ``now``."""
    budgets = settings.budgets
    if not budgets:
        return []
    queries = SpendQueries(store)
    book = price_book or settings.price_book()
    policy = settings.cost_policy()
    top = settings.alerts.top_jobs
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


def job_estimates(store: Store, rows: Sequence[Job]) -> dict[str, Estimate]:
    """ARN -> Estimate for the given stored jobs, by the estimates feature's matching rules.

    Recorded estimates (by ``tracker:estimate-id`` tag, exact job name, longest name prefix)
    win, then the ``tracker:estimate-usd`` tag (``tracker.estimate.rules.resolve_estimate``). The
    worst case implied by a job's stopping condition is not an estimate a job can overrun, so
    it never triggers an alert.
    """
    match = _recorded_matcher(store)
    found: dict[str, Estimate] = {}
    for row in rows:
        estimate = match(row, json.loads(row.tags_json or "{}"))
        if estimate is not None and estimate.usd > 0:
            found[row.arn] = estimate
    return found


def _recorded_matcher(store: Store) -> Callable[[Job, dict[str, str]], Estimate | None]:
    index = recorded_index(store)

    def match(row: Job, tags: dict[str, str]) -> Estimate | None:
        resolved = resolve_estimate(row.name, tags, aware_utc(row.creation_time), index)
        label = SOURCE_LABELS.get(resolved.source)
        if resolved.usd is None or label is None:
            return None
        return Estimate(resolved.usd, label.format(id=resolved.estimate_id))

    return match


def job_facts(
    settings: Settings, store: Store, now: datetime, *, price_book: PriceBook | None = None
) -> list[JobFacts]:
    """Finished jobs of the lookback window and running jobs, with estimates and projections."""
    options = settings.alerts
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
    settings: Settings, store: Store, now: datetime
) -> tuple[list[BudgetStatus], list[Alert]]:
    """Budget statuses and every alert whose rule holds at ``now``, in delivery order."""
    book = settings.price_book()
    statuses = budget_statuses(settings, store, now, price_book=book)
    alerts = [a for s in statuses for a in budget_alerts(s)]
    facts = job_facts(settings, store, now, price_book=book)
    alerts += job_alerts(facts, settings.alerts, estimate_tolerance(settings))
    # Bill-drift findings from the bill lines already stored by ``tracker reconcile --against
    # bill`` or the daily reconcile job: no AWS call here.
    findings = stored_bill_findings(settings, store, now, source=settings.reconcile.source)
    alerts += bill_alerts(findings, settings.alerts)
    return statuses, ordered(alerts)


# -- delivery -------------------------------------------------------------------------------------
@dataclass
class Outcome:
    """What happened to one (alert, channel) in this run."""

    key: str
    channel: str
    # sent | failed | unconfirmed | already-sent | in-progress | would-send | would-retry
    state: str
    subject: str = ""
    error: str | None = None
    repeat: bool = False  # sent flagged as a repeat: an earlier attempt may have arrived


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
        return self.count("failed") == 0 and self.count("unconfirmed") == 0

    def render(self) -> str:
        head = "Alerts (dry run, nothing sent or recorded)" if self.dry_run else "Alerts"
        counts = ", ".join(
            f"{self.count(s)} {s}"
            for s in (
                "sent",
                "failed",
                "unconfirmed",
                "already-sent",
                "in-progress",
                "would-send",
                "would-retry",
            )
            if self.count(s)
        )
        lines = [
            f"{head} at {self.as_of:%Y-%m-%d %H:%M} UTC: {len(self.alerts)} rule(s) firing; {counts or 'nothing to deliver'}"
        ]
        for o in self.outcomes:
            if o.state == "already-sent":
                continue
            detail = f"  ({o.error})" if o.error else ""
            if o.repeat and o.state == "sent":
                detail += "  (flagged as a repeat: same idempotency key as an earlier attempt)"
            lines.append(f"  {o.state.upper():<12} {o.channel:<40} {o.subject}{detail}")
        if self.count("failed"):
            lines.append("Failed deliveries are kept and retried on the next run.")
        return "\n".join(lines) + "\n"

    def summary(self) -> dict[str, int]:
        return {
            "rules_firing": len(self.alerts),
            **{
                s: self.count(s)
                for s in ("sent", "failed", "unconfirmed", "already-sent", "in-progress")
            },
        }


def run_alerts(
    settings: Settings,
    store: Store,
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
    options = settings.alerts
    statuses, alerts = evaluate_alerts(settings, store, now)
    run = AlertRun(now, dry_run, statuses, alerts)
    ledger = AlertLedger(store, wall, timedelta(seconds=options.lease_seconds))
    notifier = notifier or Notifier(notify_settings(options))
    given_up: set[tuple[str, str]] = set()
    if not dry_run:  # a resent claim whose sender died again: never sent a third time
        for row in ledger.give_up_abandoned():
            given_up.add((row.alert_key, row.channel))
            log.error("alert delivery on %s unconfirmed: %s (%s)", row.channel, UNCONFIRMED_ERROR,
                      row.alert_key, extra={"alert_key": row.alert_key, "channel": row.channel})  # fmt: skip
            run.outcomes.append(Outcome(row.alert_key, row.channel, "unconfirmed", row.subject,
                                        UNCONFIRMED_ERROR))  # fmt: skip
    states = ledger.state(a.key for a in alerts)
    handled: set[tuple[str, str]] = set(given_up)
    for alert in alerts:
        for channel in alert.channels:
            if (alert.key, channel.key) in handled:
                continue
            handled.add((alert.key, channel.key))
            state = states.get((alert.key, channel.key))
            if state in ("sent", "unconfirmed"):  # unconfirmed: attempted twice, never again
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


def _deliver(
    ledger: AlertLedger, notifier: Notifier, channel: Channel, message: Message
) -> Outcome:
    payload = asdict(message)
    key = idempotency_key(message.key, channel.key)
    # The claim is committed before the send: a crash from here on leaves it "sending".
    claim = ledger.claim_delivery(message.key, channel.key, message.kind, message.subject, payload)
    if claim is None:  # sent meanwhile, another run is sending it right now, or given up
        return Outcome(message.key, channel.key, "in-progress", message.subject)
    token = claim.token
    if claim.after_crash:
        log.warning("alert delivery on %s was interrupted by a crash; resending it once, flagged "
                    "as a repeat with the same idempotency key %s (%s)", channel.key, key,
                    message.key, extra={"alert_key": message.key, "channel": channel.key})  # fmt: skip
    try:
        notifier.send(channel, message, repeat=claim.repeat)
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
    return Outcome(message.key, channel.key, "sent", message.subject, repeat=claim.repeat)


def _fail_unknown(ledger: AlertLedger, row: Delivery, message: Message) -> Outcome:
    error = f"channel {row.channel} is no longer configured; add it back to deliver this alert"
    ledger.mark_unroutable(row.alert_key, row.channel, error)
    return Outcome(row.alert_key, row.channel, "failed", message.subject, error)


def _configured_channels(settings: Settings, options: AlertSettings) -> dict[str, Channel]:
    specs = [*options.notify, *(s for b in settings.budgets for s in b.notify)]
    return {c.key: c for c in channels_for(specs)}
