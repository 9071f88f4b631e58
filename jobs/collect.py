"""Scheduled job ``collect``: every configured source and region, incrementally."""

from __future__ import annotations

from jobs.context import JobContext, JobOutcome
from tracker.collect.service import collect


def run(ctx: JobContext) -> JobOutcome:
    """Collect once; ``partial`` when some regions failed (they are retried next tick)."""
    settings = ctx.settings
    if not settings.sources:
        where = settings.path or "config/tracker.toml"
        return JobOutcome("failed", f"{where}: sources: no [[sources]] configured")
    summary = collect(settings, ctx.store, settings.price_book(), clock=ctx.clock)
    detail = (
        f"{summary.total('new')} new, {summary.total('updated')} updated, "
        f"{summary.total('unchanged')} unchanged, {summary.recosted} running recosted, "
        f"{summary.total('api_calls')} API calls"
    )
    errors = [f"{r.account_id}/{r.region}: {r.error}" for r in summary.regions if r.error]
    if errors:
        detail += "; failed: " + "; ".join(errors)
    return JobOutcome(summary.status, detail)
