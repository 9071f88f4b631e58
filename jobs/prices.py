"""Scheduled job ``prices``: refresh training rates from the AWS Price List API, then recost."""

from __future__ import annotations

from jobs.context import JobContext, JobOutcome


def run(ctx: JobContext) -> JobOutcome:
    """Fetch rates for the configured regions, write a snapshot, recost stored jobs."""
    from tracker.aws.pricing import refresh
    from tracker.aws.session import pricing_client
    from tracker.collect.recost import recost

    settings = ctx.settings
    regions = sorted({region for source in settings.sources for region in source.regions}) or None
    path, count = refresh(pricing_client(), settings.pricing.snapshot_dir, ctx.clock(), regions)
    recosted = recost(
        ctx.store, settings.price_book(), settings.cost_policy(), settings.discount_pct, ctx.clock()
    )
    return JobOutcome("ok", f"{count} rates written to {path.name}; {recosted} jobs recosted")
