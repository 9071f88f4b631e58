"""The daily artifact re-measure (``tracker run remeasure``): S3 bytes of jobs that ended
within ``[collection] remeasure_days`` are measured again; grown bytes are stored with their
artifact run-rate; older jobs are left alone.

S3 at a test rate of $1.024 per GiB-month, so 1 MiB = $0.001 a month; 1 x ml.m5.xlarge at
$0.20/h for 3600 s = 0.20. NOW = 2026-10-10 12:00 UTC, remeasure_days = 7:

| job   | ended       | bytes at collection | added later        | stored after          |
|-------|-------------|---------------------|--------------------|-----------------------|
| fresh | 10-08 10:00 | 1 MiB (model)       | 1 MiB checkpoint   | 2 MiB: 0.002 / month  |
| old   | 10-01 10:00 | 1 MiB (model)       | 1 MiB checkpoint   | 1 MiB: 0.001 (kept)   |
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import boto3
from moto import mock_aws

from tests.conftest import DEFAULT_ACCOUNT, seed_job
from tracker.aws.session import AwsContextFactory
from tracker.collect.remeasure import remeasure_artifacts
from tracker.collect.service import collect
from tracker.cost.prices import PriceBook
from tracker.daemon.tasks import JobContext, task
from tracker.settings import CollectionSettings, Settings, Source
from tracker.store.database import Store

MIB = 1024**2
NOW = datetime(2026, 10, 10, 12, 0, tzinfo=UTC)
BOOK = PriceBook({("us-east-1", "ml.m5.xlarge"): Decimal("0.20")},
                 s3={"us-east-1": Decimal("1.024")})  # fmt: skip
CFG = Settings(sources=(Source("prod", ("us-east-1",)),),
               collection=CollectionSettings(max_attempts=2, remeasure_days=7))  # fmt: skip


def _seed() -> None:
    sm = boto3.client("sagemaker", region_name="us-east-1")
    s3 = boto3.client("s3", region_name="us-east-1")
    for name, start in (("fresh", datetime(2026, 10, 8, 9)), ("old", datetime(2026, 10, 1, 9))):
        seed_job(sm, name, s3=s3, start=start, billable=3600, artifact_bytes=MIB,
                 checkpoint_bucket="ckpt")  # fmt: skip


def _checkpoint_copied_later() -> None:
    s3 = boto3.client("s3", region_name="us-east-1")
    for name in ("fresh", "old"):
        s3.put_object(Bucket="ckpt", Key=f"checkpoints/{name}/late.pt", Body=b"\0" * MIB)


def _artifacts(store: Store) -> dict[str, tuple[int, int]]:
    return {j.name: (j.artifact_bytes, j.artifact_micros_per_month) for j in store.jobs()}


def test_remeasure_stores_grown_bytes_of_recent_jobs_only(tmp_path: Path) -> None:
    store = Store.open(f"sqlite:///{tmp_path / 'tracker.db'}")
    with mock_aws():
        boto3.client("s3", region_name="us-east-1").create_bucket(Bucket="ckpt")
        _seed()
        factory = AwsContextFactory(CFG.collection)
        collect(CFG, store, BOOK, clock=lambda: NOW - timedelta(days=1), context_factory=factory)
        assert _artifacts(store) == {"fresh": (MIB, 1_000), "old": (MIB, 1_000)}
        _checkpoint_copied_later()
        result = remeasure_artifacts(CFG, store, BOOK, clock=lambda: NOW, context_factory=factory)
        again = remeasure_artifacts(CFG, store, BOOK, clock=lambda: NOW, context_factory=factory)

    assert (result.measured, result.grown, result.unchanged, result.status) == (1, 1, 0, "ok")
    assert (again.measured, again.grown, again.unchanged) == (1, 0, 1)
    assert _artifacts(store) == {"fresh": (2 * MIB, 2_000), "old": (MIB, 1_000)}
    fresh = store.job_by_name("fresh")
    # The run-rate is monthly storage, never in the job's own cost: compute stays 0.20.
    assert (fresh.list_micros, fresh.compute_micros) == (200_000, 200_000)


def test_remeasure_task_runs_as_a_scheduled_job(tmp_path: Path, monkeypatch) -> None:
    store = Store.open(f"sqlite:///{tmp_path / 'tracker.db'}")
    monkeypatch.setattr(Settings, "price_book", lambda self: BOOK)
    with mock_aws():
        boto3.client("s3", region_name="us-east-1").create_bucket(Bucket="ckpt")
        _seed()
        collect(CFG, store, BOOK, clock=lambda: NOW - timedelta(days=1),
                context_factory=AwsContextFactory(CFG.collection))  # fmt: skip
        _checkpoint_copied_later()
        outcome = task("remeasure")(JobContext(CFG, store, lambda: NOW, lambda: NOW))
    assert (outcome.status, outcome.detail) == (
        "ok", "1 job(s) since 2026-10-03 measured: 1 changed, 0 unchanged, 0 incomplete",
    )  # fmt: skip
    assert store.job_by_name("fresh").artifact_bytes == 2 * MIB
    assert store.job_by_name("fresh").account_id == DEFAULT_ACCOUNT
