"""The scheduled jobs: each calls one service and says in one line what it did.

:data:`TASKS` maps the names ``[schedule]``, ``tracker run JOB`` and the run history use to
their functions. A task never catches errors: :func:`tracker.daemon.runner.run_job` records
a failure and the daemon retries on the next tick.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from tracker.alert.service import run_alerts
from tracker.collect.models import collect_models
from tracker.collect.recost import configured_regions, refresh_prices
from tracker.collect.remeasure import remeasure_artifacts
from tracker.collect.service import CollectSummary
from tracker.collect.service import collect as collect_jobs
from tracker.errors import InputError
from tracker.reconcile.service import reconcile_bill
from tracker.report.publish import write_showback
from tracker.schedule import JOB_NAMES
from tracker.settings import Settings
from tracker.store.database import Store


@dataclass(frozen=True)
class JobContext:
    """What a job needs: settings, store, the business clock and real (wall) time."""

    settings: Settings
    store: Store
    clock: Callable[[], datetime]
    wall: Callable[[], datetime]
    trigger: str = "cli"  # cli | daemon
    owner: str = ""


@dataclass(frozen=True)
class JobOutcome:
    """``ok``, ``partial`` (done, with failures to look at) or ``failed``; one line of detail."""

    status: str
    detail: str = ""

    @property
    def ok(self) -> bool:
        return self.status == "ok"


def collect(ctx: JobContext) -> JobOutcome:
    """Collect once; ``partial`` when some regions failed (they are retried next tick)."""
    settings = ctx.settings
    if not settings.sources:
        where = settings.path or "config/tracker.toml"
        return JobOutcome("failed", f"{where}: sources: no [[sources]] configured")
    return collect_outcome(
        collect_jobs(settings, ctx.store, settings.price_book(), clock=ctx.clock)
    )


def collect_outcome(summary: CollectSummary) -> JobOutcome:
    """One collection's result as a job outcome: counts, and each failed region."""
    detail = (
        f"{summary.total('new')} new, {summary.total('updated')} updated, "
        f"{summary.total('unchanged')} unchanged, {summary.recosted} running recosted, "
        f"{summary.total('api_calls')} API calls"
    )
    if summary.skipped:
        detail += f"; {len(summary.skipped)} pair(s) skipped (held by another collector)"
    errors = [f"{r.account_id}/{r.region}: {r.error}" for r in summary.regions if r.error]
    if errors:
        detail += "; failed: " + "; ".join(errors)
    return JobOutcome(summary.status, detail)


def alerts(ctx: JobContext) -> JobOutcome:
    """Deliver new alerts; ``partial`` when a delivery failed (it is retried next run)."""
    result = run_alerts(ctx.settings, ctx.store, now=ctx.clock(), wall=ctx.wall)
    counts = result.summary()
    detail = (
        f"{counts['rules_firing']} rule(s) firing; {counts['sent']} sent, "
        f"{counts['failed']} failed, {counts['already-sent']} already sent"
    )
    failures = [f"{o.channel}: {o.error}" for o in result.outcomes if o.state == "failed"]
    if failures:
        detail += "; " + "; ".join(dict.fromkeys(failures))
    return JobOutcome("ok" if result.ok else "partial", detail)


def reconcile(ctx: JobContext) -> JobOutcome:
    """Fetch the bill for last month and this month once and compare it with the tracker.

    Drift in a settled period becomes a ``bill-drift`` alert on the next alerts run (the
    daemon runs alerts right after this job when alerts follow collection).
    """
    report = reconcile_bill(ctx.settings, ctx.store, ctx.clock())
    detail = (
        f"{report.source} {report.since}..{report.until}: {report.stored} bill lines stored, "
        f"{len(report.rows)} team-period rows, {len(report.findings)} drift finding(s)"
    )
    if report.notes:
        detail += "; " + "; ".join(report.notes[:3])
    return JobOutcome("ok", detail)


def prices(ctx: JobContext) -> JobOutcome:
    """Fetch rates for the configured regions, write a snapshot, recost stored jobs."""
    regions = configured_regions(ctx.settings)
    refreshed = refresh_prices(ctx.settings, ctx.store, ctx.clock(), regions)
    return JobOutcome(
        "ok",
        f"{refreshed.rates} rates written to {refreshed.path.name}; "
        f"{refreshed.recosted} jobs recosted",
    )


def showback(ctx: JobContext) -> JobOutcome:
    """Write last month's showback once (``[reports]`` says where; docs/reports.md)."""
    result = write_showback(ctx.settings, ctx.store, ctx.clock())
    return JobOutcome("ok", result.summary())


def remeasure(ctx: JobContext) -> JobOutcome:
    """Measure again the S3 artifacts of jobs that ended within ``remeasure_days``."""
    settings = ctx.settings
    result = remeasure_artifacts(settings, ctx.store, settings.price_book(), clock=ctx.clock)
    detail = (
        f"{result.measured} job(s) since {result.since:%Y-%m-%d} measured: {result.grown} "
        f"changed, {result.unchanged} unchanged, {result.incomplete} incomplete"
    )
    if result.no_source:
        detail += f", {result.no_source} of accounts no longer configured"
    if result.errors:
        detail += "; " + "; ".join(result.errors[:3])
    return JobOutcome(result.status, detail)


def models(ctx: JobContext) -> JobOutcome:
    """Collect model packages and models, then link each job to the model it helped make."""
    result = collect_models(ctx.settings, ctx.store, clock=ctx.clock)
    return JobOutcome(result.status, result.detail())


TASKS: dict[str, Callable[[JobContext], JobOutcome]] = {
    "collect": collect,
    "alerts": alerts,
    "reconcile": reconcile,
    "prices": prices,
    "showback": showback,
    "remeasure": remeasure,
    "models": models,
}
assert tuple(TASKS) == JOB_NAMES, "every job name in tracker.schedule has a task, in order"


def task(name: str) -> Callable[[JobContext], JobOutcome]:
    """The function of the job ``name``."""
    if name not in TASKS:
        raise InputError(f"job {name!r}: expected one of {', '.join(JOB_NAMES)}")
    return TASKS[name]
