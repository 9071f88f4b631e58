"""Test data for estimates, reconciliation and export: stored jobs without AWS.

``make_job`` is tests/factories.py's, with this world's account, start (``START``) and
MaxRuntimeInSeconds 86400: a finished one-hour job on 1 x ml.m5.xlarge at the shipped $0.23/h
unless a test says otherwise. ``save`` costs records with the shipped price book and stores
them, as the collector would.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from functools import partial

from tests import factories
from tracker.cost.engine import CostPolicy, cost_job
from tracker.records import JobRecord
from tracker.settings import Settings
from tracker.store.database import Store

ACCOUNT = "123456789012"
START = datetime(2026, 11, 20, 8, 0, tzinfo=UTC)
NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
SETTINGS = Settings()
PRICES = SETTINGS.price_book()


def arn(name: str, region: str = "us-east-1", account: str = ACCOUNT) -> str:
    return f"arn:aws:sagemaker:{region}:{account}:training-job/{name}"


make_job = partial(
    factories.make_job, account_id=ACCOUNT, start_time=START, max_runtime_seconds=86400
)


def save(
    store: Store, records: list[JobRecord], now: datetime = NOW, discount_pct: Decimal = Decimal(0)
) -> None:
    """Cost with the shipped price book and store, as the collector does."""
    items = [
        (record, cost_job(record, PRICES.rates_for(record, discount_pct), now, CostPolicy()), {})
        for record in records
    ]
    store.save_jobs(items, now)
