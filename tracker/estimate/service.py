"""Estimates as a service: cost a planned job with the configured price book, record it, and
read the recorded estimates back for matching.

Takes the settings, the store and ``now`` from its caller (the CLI, or the launch-script API
in :mod:`tracker.estimate.api`); the pure rules are in :mod:`tracker.estimate.rules`.
"""

from __future__ import annotations

from datetime import datetime

from tracker.estimate.rules import (
    Estimate,
    EstimateIndex,
    EstimateRequest,
    build_estimate,
    new_estimate_id,
    require_priced,
)
from tracker.settings import Settings
from tracker.store.database import Store
from tracker.store.estimates import EstimateRepository


def default_region(settings: Settings) -> str:
    """The first region of the first configured source, else us-east-1."""
    for source in settings.sources:
        if source.regions:
            return source.regions[0]
    return "us-east-1"


def price_estimate(
    settings: Settings, request: EstimateRequest, now: datetime, *, recorded: bool = False
) -> Estimate:
    """The itemised estimate of ``request`` at ``now``; ``recorded`` gives it an id to record.

    Raises InputError for an instance type the price book has no rate for (it would say $0).
    """
    result = build_estimate(
        request,
        settings.price_book(),
        now,
        settings.cost_policy(),
        settings.discount_pct,
        estimate_id=new_estimate_id() if recorded else None,
    )
    require_priced(result)
    return result


def recorded_index(store: Store) -> EstimateIndex:
    """Every recorded estimate, indexed for matching to jobs (by id, job name, name prefix)."""
    return EstimateIndex.build(EstimateRepository(store).recorded())


def record_estimate(store: Store, estimate: Estimate) -> str:
    """Store an estimate (made with ``recorded=True``) to match it to its job later."""
    return EstimateRepository(store).record(estimate.entry())
