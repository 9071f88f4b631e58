"""The Python API for launch scripts: estimate a training job before starting it.

It reads the config file and the clock itself, so a launch script needs one call::

    from tracker.estimate.api import estimate_job
    est = estimate_job("ml.g5.2xlarge", 2, 3.5, team="nlp", name_prefix="nightly-", record=True)
    estimator = Estimator(..., tags=est.sagemaker_tags())

Nothing it imports needs boto3, so a launch script can use it without AWS libraries.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from pathlib import Path

from tracker.clock import system_clock
from tracker.estimate.rules import Estimate, EstimateRequest, to_decimal
from tracker.estimate.service import default_region, price_estimate, record_estimate
from tracker.settings import load_settings
from tracker.store.database import Store


def estimate_job(
    instance_type: str,
    count: int = 1,
    hours: Decimal | float | int | str = 1,
    *,
    region: str | None = None,
    spot_ratio: Decimal | float | str | None = None,
    volume_gb: int = 0,
    team: str | None = None,
    job_name: str | None = None,
    name_prefix: str | None = None,
    record: bool = False,
    config: str | Path | None = None,
    db: str | None = None,
    now: datetime | None = None,
) -> Estimate:
    """Estimate a training job from the configured price book; ``record=True`` stores it.

    Returns the itemised :class:`~tracker.estimate.rules.Estimate`; pass
    ``estimate.sagemaker_tags()`` (or merge ``estimate.tags()``) into the job's tags so the
    reconciliation finds it. ``region`` defaults to the first region of the first configured
    source, else us-east-1. Raises InputError for bad values and for an instance type the
    price book has no rate for.
    """
    settings = load_settings(str(config) if config is not None else None)
    request = EstimateRequest(
        instance_type=instance_type,
        instance_count=count,
        hours=to_decimal(hours, "hours"),
        region=region or default_region(settings),
        spot_ratio=None if spot_ratio is None else to_decimal(spot_ratio, "spot_ratio"),
        volume_gb=volume_gb,
        team=team,
        job_name=job_name,
        name_prefix=name_prefix,
    )
    estimate = price_estimate(settings, request, now or system_clock(), recorded=record)
    if record:
        # An explicit db="" is a mistake (InputError "db is empty"), not the configured URL.
        url, option = (db, "db") if db is not None else (settings.database_url, "[database] url")
        record_estimate(Store.open(url, option=option), estimate)
    return estimate
