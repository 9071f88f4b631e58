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
from tracker.cost.engine import CostPolicy, cost_job
from tracker.cost.prices import PriceBook
from tracker.settings import Settings
from tracker.store.database import Store


def recost(
    store: Store,
    price_book: PriceBook,
    policy: CostPolicy,
    discount_pct: Decimal,
    now: datetime,
    *,
    running_only: bool = False,
) -> int:
    """Recompute stored costs (all jobs, or only running ones); returns the jobs recosted.

    Works in batches, each its own transaction, so memory stays flat on a million jobs.
    """
    count = 0
    for batch in store.job_record_batches(running_only=running_only):
        costs = [
            (job_id, cost_job(record, price_book.rates_for(record, discount_pct), now, policy))
            for job_id, record in batch
        ]
        count += store.save_costs(costs, now)
    return count


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
            store, settings.price_book(), settings.cost_policy(), settings.discount_pct, now
        )
    return PriceRefresh(
        snapshot.path, snapshot.rates, recosted, snapshot.storage_path, snapshot.storage_rates
    )


def configured_regions(settings: Settings) -> list[str] | None:
    """Every region of the configured sources, sorted (None when no source is configured)."""
    return sorted({region for source in settings.sources for region in source.regions}) or None
