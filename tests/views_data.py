"""A small organisation with known costs, for the view, format, dashboard and browser tests.

Now is 2026-11-26 12:00 UTC. Rates (USD per instance-hour): ml.m5.xlarge 0.25,
ml.c5.xlarge 0.20, ml.g5.2xlarge 1.50; ml.trn1.32xlarge has none (unpriced). No volumes,
so no storage cost. Account 111111111111, us-east-1. ``make_job`` is tests/factories.py's
(a one-hour job on 1 x ml.m5.xlarge unless a row says otherwise) with this organisation's
account, project ``p``, user ana; jobs run from their start for their training seconds.

| job            | team      | instances           | status     | start (UTC)      | billable s        | cost                          |
|----------------|-----------|---------------------|------------|------------------|-------------------|-------------------------------|
| nlp-train-1    | nlp       | 4 x m5.xlarge       | Completed  | 2026-10-10 08:00 | 3600              | 0.25*4*1 = 1.00 (Oct)         |
| nlp-long       | nlp       | 1 x m5.xlarge       | Completed  | 2026-10-31 22:00 | 14400             | 1.00: 0.50 Oct + 0.50 Nov     |
| nlp-train-2    | nlp       | 2 x m5.xlarge       | Completed  | 2026-11-05 10:00 | 7200              | 0.25*2*2 = 1.00               |
| nlp-spot       | nlp       | 1 x g5.2xlarge spot | Completed  | 2026-11-10 00:00 | 1800 of 7200      | 0.75, spot saved 2.25         |
| nlp-trainium   | nlp       | 1 x trn1.32xlarge   | Completed  | 2026-11-18 00:00 | 3600              | unknown (unpriced)            |
| vision-g5      | vision    | 1 x g5.2xlarge      | Completed  | 2026-11-08 00:00 | 3600              | 1.50                          |
| vision-fail    | vision    | 2 x g5.2xlarge      | Failed     | 2026-11-12 00:00 | 3600              | 1.50*2*1 = 3.00               |
| vision-warm    | vision    | 1 x c5.xlarge       | Completed  | 2026-11-15 00:00 | 3600 + 1800 warm  | 0.20 + 0.10 warm = 0.30       |
| vision-running | vision    | 2 x m5.xlarge       | InProgress | 2026-11-26 08:00 | (4 h so far)      | 0.25*2*4 = 2.00 in flight     |
| untagged       | unallocated | 1 x m5.xlarge     | Completed  | 2026-11-20 00:00 | 3600              | 0.25                          |
| hostile        | <script>alert(1)</script> | 1 x m5.xlarge | Completed | 2026-11-21 00:00 | 3600 | 0.25 (project =HYPERLINK(...)) |

Per team: nlp Oct 1.50, Nov 2.25 (1.00 + 0.75 + 0.50), all 3.75; vision Nov 6.80
(1.50 + 3.00 + 0.30 + 2.00); unallocated 0.25; hostile 0.25. Oct 1.50 + Nov 9.55 = 11.05.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from functools import partial
from pathlib import Path

from tests import factories
from tests.factories import HOUR
from tracker.cost.engine import CostPolicy, cost_job
from tracker.records import JobRecord, Rates
from tracker.store.database import Store

NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
ACCOUNT = "111111111111"
REGION = "us-east-1"
RATES = Rates(
    hourly={
        "ml.m5.xlarge": Decimal("0.25"),
        "ml.c5.xlarge": Decimal("0.20"),
        "ml.g5.2xlarge": Decimal("1.50"),
    }
)
HOSTILE_TEAM = "<script>alert(1)</script>"
HOSTILE_PROJECT = '=HYPERLINK("http://x","y")'

make_job = partial(
    factories.make_job,
    account_id=ACCOUNT,
    project="p",
    tags={"project": "p"},
    user="ana",
    secondary_status="Completed",
)


def at(month: int, day: int, hour: int = 0) -> datetime:
    return datetime(2026, month, day, hour, tzinfo=UTC)


JOBS = [
    make_job("nlp-train-1", "nlp", instance_count=4, start_time=at(10, 10, 8)),
    make_job("nlp-long", "nlp", start_time=at(10, 31, 22), seconds=4 * HOUR),
    make_job("nlp-train-2", "nlp", instance_count=2, start_time=at(11, 5, 10), seconds=2 * HOUR),
    make_job("nlp-spot", "nlp", instance_type="ml.g5.2xlarge", start_time=at(11, 10),
             seconds=2 * HOUR, billable_seconds=1800, spot=True),
    make_job("nlp-trainium", "nlp", instance_type="ml.trn1.32xlarge", start_time=at(11, 18)),
    make_job("vision-g5", "vision", instance_type="ml.g5.2xlarge", start_time=at(11, 8)),
    make_job("vision-fail", "vision", instance_type="ml.g5.2xlarge", instance_count=2,
             start_time=at(11, 12), status="Failed", secondary_status="Failed",
             failure_reason="AlgorithmError: out of memory"),
    make_job("vision-warm", "vision", instance_type="ml.c5.xlarge", start_time=at(11, 15),
             warm_pool_status="Terminated", warm_pool_retained_seconds=1800),
    make_job("vision-running", "vision", instance_count=2, start_time=at(11, 26, 8), seconds=None,
             status="InProgress", secondary_status="InProgress", last_modified_time=NOW),
    make_job("untagged", start_time=at(11, 20), tags={}, project=None),
    make_job("hostile", HOSTILE_TEAM, start_time=at(11, 21), tags={"project": HOSTILE_PROJECT},
             project=HOSTILE_PROJECT),
]  # fmt: skip


def raw_fields(job: JobRecord) -> dict:
    """A DescribeTrainingJob-shaped response for the job page."""
    return {
        "TrainingJobName": job.name,
        "TrainingJobArn": job.arn,
        "TrainingJobStatus": job.status,
        "ResourceConfig": {
            "InstanceType": job.instance_type,
            "InstanceCount": job.instance_count,
            "VolumeSizeInGB": job.volume_gb,
        },  # fmt: skip
        "BillableTimeInSeconds": job.billable_seconds,
        "TrainingTimeInSeconds": job.training_seconds,
        "EnableManagedSpotTraining": job.spot,
        "Tags": [{"Key": k, "Value": v} for k, v in job.tags.items()],
    }


def fill(store: Store, jobs: list[JobRecord] = JOBS, now: datetime = NOW) -> Store:
    """Cost and save ``jobs`` into ``store``."""
    items = [(job, cost_job(job, RATES, now, CostPolicy()), raw_fields(job)) for job in jobs]
    store.save_jobs(items, now)
    return store


def make_store(folder: Path) -> Store:
    """A fresh SQLite store in ``folder`` holding the organisation above."""
    return fill(Store.open(f"sqlite:///{folder / 'views.db'}"))
