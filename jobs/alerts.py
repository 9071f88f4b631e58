"""Scheduled job ``alerts``: evaluate budgets and job rules, deliver what is new."""

from __future__ import annotations

from jobs.context import JobContext, JobOutcome
from tracker.alert.service import run_alerts


def run(ctx: JobContext) -> JobOutcome:
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
