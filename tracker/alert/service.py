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
from dataclasses import asdict, dataclass, field, replace
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

from tracker.alert import anomalies
from tracker.alert import enforce as enforcing
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
from tracker.store.query import ViewQueries, Window
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
    if settings.anomalies.enabled:
        channels = channels_for(settings.alerts.notify)
        options = settings.anomalies
        found = find_anomalies(options, store, now, days=settings.alerts.job_lookback_days)
        alerts += [Alert(anomalies.job_message(a, options), channels) for a in found.jobs]
        alerts += [Alert(anomalies.team_day_message(a, options), channels) for a in found.days]
    return statuses, ordered(alerts)


# -- anomalies ([anomalies]) -------------------------------------------------------------------
@dataclass
class Anomalies:
    jobs: list[anomalies.JobAnomaly]
    days: list[anomalies.TeamDayAnomaly]


def find_anomalies(
    options: anomalies.AnomalySettings, store: Store, now: datetime, *, days: int
) -> Anomalies:
    """Job and team-day anomalies of the last ``days`` days (peers from ``lookback_days``)."""
    queries = SpendQueries(store)
    rows = queries.finished_since(now - timedelta(days=max(days, options.lookback_days)))
    estimates = job_estimates(store, rows)
    population = [
        anomalies.FinishedJob(
            r.name,
            r.arn,
            r.team,
            r.instance_type,
            from_micros(r.list_micros),
            f"{estimates[r.arn].source} {estimates[r.arn].usd}" if r.arn in estimates else None,
            aware_utc(r.end_time).date() if r.end_time is not None else None,
        )  # fmt: skip
        for r in rows
    ]
    since = now - timedelta(days=days)
    recent = {r.arn for r in rows if r.end_time is not None and aware_utc(r.end_time) >= since}
    jobs = anomalies.job_anomalies([j for j in population if j.arn in recent], population, options)
    last = now.date()
    first = last - timedelta(days=days - 1)
    view = ViewQueries(store)
    window = Window(first - timedelta(days=anomalies.BASELINE_DAYS), last)
    spend = {
        (r["team"], _day(r["day"])): from_micros(r["list"]) for r in view.daily_by_team(window)
    }
    span = [first + timedelta(days=n) for n in range(days)]
    found_days = []
    for day in anomalies.team_day_anomalies(spend, span, options):
        top = view.top_jobs(3, Window(day.day, day.day, {"team": day.team}))
        found_days.append(
            replace(day, top_jobs=tuple((t["name"], from_micros(t["list"])) for t in top))
        )
    return Anomalies(jobs, found_days)


def _day(value: object) -> date:
    return value if isinstance(value, date) else date.fromisoformat(str(value))


# -- delivery -------------------------------------------------------------------------------------
@dataclass
class Outcome:
    """What happened to one (alert, channel) in this run."""

    key: str
    channel: str
    # sent | failed | unconfirmed | already-sent | in-progress | would-send | would-retry;
    # enforcement's StopTrainingJob call: stopped | would-stop (and failed, already-sent)
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
                "stopped",
                "would-stop",
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
    stop: Callable[[str, str], None] | None = None,
) -> AlertRun:
    """Evaluate every rule at ``now`` and deliver what has not been delivered yet.

    ``wall`` stamps the ledger (real time, even when ``now`` is pinned for a report).
    A dry run reads the ledger but sends, stops and records nothing. ``stop(name, region)``
    calls StopTrainingJob for ``[enforce] mode = "stop"`` (default: the base credentials).
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
    stop = stop or _stop_with_base_credentials(settings)
    for alert, outcome in enforcement(settings, store, now, statuses, ledger, stop, dry_run):
        if alert is not None:
            alerts.append(alert)  # run.alerts is this same list
        if outcome is not None:
            run.outcomes.append(outcome)
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
        if (row.alert_key, row.channel) in handled or row.channel == enforcing.STOP_CHANNEL:
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


# -- runaway-job enforcement ([enforce]) ------------------------------------------------------
def running_for_enforcement(
    settings: Settings, store: Store, running: Sequence[Job]
) -> list[enforcing.RunningJob]:
    """The running jobs as the enforcement rules see them: cost so far, estimate, restarts."""
    estimates = job_estimates(store, running)
    jobs = []
    for row in running:
        raw = json.loads(row.raw_json or "{}")
        estimate = estimates.get(row.arn)
        jobs.append(
            enforcing.RunningJob(
                row.name,
                row.arn,
                row.region,
                row.team,
                from_micros(row.list_micros),
                estimate.usd if estimate else None,
                estimate.source if estimate else "",
                bool(row.spot),
                bool(row.checkpoint_uri) or enforcing.has_checkpoints(raw),
                enforcing.restarts(raw),
                json.loads(row.tags_json or "{}").get(enforcing.EXEMPT_TAG) == "off",
            )  # fmt: skip
        )
    return jobs


def team_budgets(statuses: Sequence[BudgetStatus]) -> list[enforcing.TeamBudget]:
    """Budgets scoped to exactly one team (the ``over-budget`` rule's budgets)."""
    return [
        enforcing.TeamBudget(
            s.budget.name,
            s.budget.filter_map["team"],
            s.budget.amount_usd,
            s.actual_usd,
            s.period.label,
        )  # fmt: skip
        for s in statuses
        if set(s.budget.filter_map) == {"team"}
    ]


def enforcement(
    settings: Settings,
    store: Store,
    now: datetime,
    statuses: Sequence[BudgetStatus],
    ledger: AlertLedger,
    stop: Callable[[str, str], None],
    dry_run: bool,
) -> list[tuple[Alert | None, Outcome | None]]:
    """Evaluate ``[enforce]``; in ``stop`` mode call StopTrainingJob once per job.

    The call is claimed in the ledger (channel ``action:stop-training-job``, the alert's key)
    and committed before it is made, so two runs never both stop a job; a failed call is
    retried next run, and the alert goes out once the call succeeded.
    """
    options = settings.enforce
    if not options.enabled:
        return []
    running = running_for_enforcement(settings, store, SpendQueries(store).running_jobs())
    out: list[tuple[Alert | None, Outcome | None]] = []
    channels = channels_for(settings.alerts.notify)
    for decision in enforcing.decide(running, team_budgets(statuses), options):
        if decision.mode != "stop":
            out.append((Alert(enforcing.message(decision, now), channels), None))
            continue
        message = enforcing.message(decision, now, stopped=True)
        if dry_run:
            state = ledger.state([decision.key]).get((decision.key, enforcing.STOP_CHANNEL))
            label = "already-sent" if state == "sent" else "would-stop"
            out.append(
                (None, Outcome(decision.key, enforcing.STOP_CHANNEL, label, message.subject))
            )
            continue
        claim = ledger.claim_delivery(decision.key, enforcing.STOP_CHANNEL, message.kind,
                                      message.subject, asdict(message))  # fmt: skip
        if claim is not None:
            try:
                stop(decision.job.name, decision.job.region)
            except Exception as exc:  # noqa: BLE001 - any failure is retried next run
                error = f"{type(exc).__name__}: {exc}"
                ledger.mark_failed(decision.key, enforcing.STOP_CHANNEL, claim.token, error)
                log.error("enforcement could not stop %s: %s; retried next run",
                          decision.job.name, error)  # fmt: skip
                out.append((None, Outcome(decision.key, enforcing.STOP_CHANNEL, "failed",
                                          message.subject, error)))  # fmt: skip
                continue
            ledger.mark_sent(decision.key, enforcing.STOP_CHANNEL, claim.token)
            log.warning("enforcement stopped %s (%s)", decision.job.name, decision.rule)
            out.append(
                (None, Outcome(decision.key, enforcing.STOP_CHANNEL, "stopped", message.subject))
            )
        elif ledger.state([decision.key]).get((decision.key, enforcing.STOP_CHANNEL)) != "sent":
            continue  # another run is stopping it right now, or gave up: no alert yet
        out.append((Alert(message, channels), None))
    return out


ENFORCE_STATES = {"sent": "stopped", "failed": "stop failed", "sending": "stopping",
                  "unconfirmed": "stop unconfirmed"}  # fmt: skip


def enforcement_log(store: Store) -> list[dict[str, Any]]:
    """Every stop and would-stop recorded in the ledger, oldest first (``tracker status``):
    a stop by its StopTrainingJob row, a would-stop or approval by its ``log`` delivery."""
    ledger = AlertLedger(store, lambda: datetime.min)
    rows = []
    for row in ledger.deliveries():
        if not row.kind.startswith("enforce-"):
            continue
        stop = row.channel == enforcing.STOP_CHANNEL
        if not stop and (row.kind == "enforce-stop" or row.channel != "log"):
            continue
        fields = row.payload.get("fields", {})
        state = ENFORCE_STATES.get(row.status, row.status) if stop else (
            "would stop" if fields.get("mode") == "dry-run" else "awaiting approval")  # fmt: skip
        rows.append({"at": fields.get("at"), "job": fields.get("job"), "region": fields.get("region"),
                     "team": fields.get("team"), "rule": fields.get("rule"), "mode": fields.get("mode"),
                     "state": state, "cost_usd": fields.get("cost_usd"), "reason": fields.get("reason"),
                     "command": fields.get("command")})  # fmt: skip
    return rows


def _stop_with_base_credentials(settings: Settings) -> Callable[[str, str], None]:
    def stop(name: str, region: str) -> None:
        from tracker.aws.enforce import stop_training_job
        from tracker.aws.session import make_client

        stop_training_job(make_client("sagemaker", region, collection=settings.collection), name)

    return stop


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
