"""Recosting: the stored records through the cost engine again, then back into the store.

Used after a price-book change (``tracker recost``, the prices job) and by every collection
for jobs still running (their cost so far grows with ``now``). No AWS call: the store keeps
each job's full record.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from tracker.cost.engine import CostPolicy, cost_job
from tracker.cost.prices import PriceBook
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
