"""Test data for estimates, reconciliation and export: stored jobs without AWS.

``make_job`` builds a finished JobRecord (defaults: us-east-1, 1 x ml.m5.xlarge at the shipped
$0.23/h, one hour from ``START``, MaxRuntimeInSeconds 86400); ``save`` costs records with the
shipped price book and stores them, as the collector would.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from tracker.cost.engine import CostPolicy, cost_job
from tracker.records import UNALLOCATED, InstanceGroup, JobRecord
from tracker.settings import Settings
from tracker.store.database import Store

ACCOUNT = "123456789012"
START = datetime(2026, 11, 20, 8, 0, tzinfo=UTC)
NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
SETTINGS = Settings()
PRICES = SETTINGS.price_book()


def arn(name: str, region: str = "us-east-1", account: str = ACCOUNT) -> str:
    return f"arn:aws:sagemaker:{region}:{account}:training-job/{name}"


def make_job(
    name: str,
    team: str | None = None,
    *,
    start: datetime = START,
    hours: float | Decimal = 1,
    itype: str = "ml.m5.xlarge",
    count: int = 1,
    tags: dict[str, str] | None = None,
    billable: int | None = None,
    spot: bool = False,
    max_runtime: int | None = 86400,
    max_wait: int | None = None,
    region: str = "us-east-1",
    status: str = "Completed",
    groups: tuple[InstanceGroup, ...] = (),
    **extra: Any,
) -> JobRecord:
    """A finished job that trained ``hours`` from ``start`` (billable = training unless given)."""
    seconds = int(Decimal(str(hours)) * 3600)
    all_tags = dict(tags or {})
    if team is not None:
        all_tags.setdefault("team", team)
    return JobRecord(
        account_id=ACCOUNT,
        region=region,
        name=name,
        arn=arn(name, region),
        status=status,
        creation_time=start - timedelta(minutes=5),
        last_modified_time=start + timedelta(seconds=seconds),
        start_time=start,
        end_time=start + timedelta(seconds=seconds),
        instance_type=itype,
        instance_count=count,
        instance_groups=groups,
        spot=spot,
        billable_seconds=billable if billable is not None else seconds,
        training_seconds=seconds,
        max_runtime_seconds=max_runtime,
        max_wait_seconds=max_wait,
        tags=all_tags,
        team=team or UNALLOCATED,
        **extra,
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
