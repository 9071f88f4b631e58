"""Recosting: the stored records through the cost engine again, then back into the store;
and refreshing the price book from the AWS Price List before it.

Used after a price-book change (``tracker recost``, the prices job) and by every collection
for jobs still running (their cost so far grows with ``now``). No AWS call: the store keeps
each job's full record.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from pathlib import Path

from tracker.aws import session as aws_session
from tracker.aws.pricing import refresh
from tracker.collect.allocate import AllocationRule, reattribute
from tracker.cost.engine import CostPolicy, cost_job
from tracker.cost.prices import PriceBook
from tracker.settings import Attribution, Settings
from tracker.store.database import Store

#: The ``[attribution]`` tag keys and the ``[[allocation.rules]]`` a recost re-derives with.
Allocation = tuple[Attribution, Sequence[AllocationRule]]


def recost(
    store: Store,
    price_book: PriceBook,
    policy: CostPolicy,
    discount_pct: Decimal,
    now: datetime,
    *,
    running_only: bool = False,
    allocation: Allocation | None = None,
) -> int:
    """Recompute stored costs (all jobs, or only running ones); returns the jobs recosted.

    With ``allocation`` (the ``[attribution]`` tag keys and ``[[allocation.rules]]``), each
    job's team, project, user and ``team_source`` are derived again from its stored tags and
    the current rules (:func:`tracker.collect.allocate.reattribute`) and stored with its cost:
    a rule added, changed or removed applies to the jobs already collected.
    Works in batches, each its own transaction, so memory stays flat on a million jobs.
    """
    count = 0
    for batch in store.job_record_batches(running_only=running_only):
        attributed = {}
        if allocation is not None:
            attribution, rules = allocation
            attributed = {
                job_id: reattribute(record, attribution, rules) for job_id, record in batch
            }
        costs = [
            (job_id, cost_job(record, price_book.rates_for(record, discount_pct), now, policy))
            for job_id, record in batch
        ]
        count += store.save_costs(costs, now, attributed)
    return count


def allocation_of(settings: Settings) -> Allocation:
    """What :func:`recost` re-derives attribution with: the tag keys and the rules."""
    return settings.attribution, settings.allocation.rules


@dataclass(frozen=True)
class PriceRefresh:
    """What a price refresh did: the snapshots written, their rates, the jobs recosted."""

    path: Path
    rates: int
    recosted: int | None
    storage_path: Path | None = None
    storage_rates: int = 0


def refresh_prices(
    settings: Settings,
    store: Store | None,
    now: datetime,
    regions: Sequence[str] | None = None,
) -> PriceRefresh:
    """Fetch current training rates from the AWS Price List API into a new snapshot (for
    ``regions``; None: every region), then recost ``store`` when given."""
    client = aws_session.pricing_client(collection=settings.collection)
    snapshot = refresh(client, settings.pricing.snapshot_dir, now, regions)
    recosted = None
    if store is not None:
        recosted = recost(
            store,
            settings.price_book(),
            settings.cost_policy(),
            settings.discount_pct,
            now,
            allocation=allocation_of(settings),
        )
    return PriceRefresh(
        snapshot.path, snapshot.rates, recosted, snapshot.storage_path, snapshot.storage_rates
    )


def configured_regions(settings: Settings) -> list[str] | None:
    """Every region of the configured sources, sorted (None when no source is configured)."""
    return sorted({region for source in settings.sources for region in source.regions}) or None
