"""A small organisation with known costs, for the view, format, dashboard and browser tests.

Now is 2026-11-26 12:00 UTC. Rates (USD per instance-hour): ml.m5.xlarge 0.25,
ml.c5.xlarge 0.20, ml.g5.2xlarge 1.50; ml.trn1.32xlarge has none (unpriced). No volumes,
so no storage cost. Account 111111111111, us-east-1.

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

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

from tracker.cost.engine import CostPolicy, cost_job
from tracker.records import UNALLOCATED, JobRecord, Rates
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


def record(
    name: str,
    team: str,
    itype: str,
    count: int,
    start: datetime,
    billable: int | None,
    *,
    status: str = "Completed",
    training: int | None = None,
    spot: bool = False,
    warm: int | None = None,
    project: str | None = "p",
) -> JobRecord:
    """One job; the end is start + training seconds (None while running)."""
    training = billable if training is None else training
    end = None if status == "InProgress" else start + timedelta(seconds=training or 0)
    tags = {"project": project} if project else {}
    if team != UNALLOCATED:
        tags["team"] = team
    return JobRecord(
        account_id=ACCOUNT,
        region=REGION,
        name=name,
        arn=f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:training-job/{name}",
        status=status,
        creation_time=start - timedelta(minutes=5),
        last_modified_time=end or NOW,
        start_time=start,
        end_time=end,
        secondary_status=status,
        failure_reason="AlgorithmError: out of memory" if status == "Failed" else None,
        instance_type=itype,
        instance_count=count,
        volume_gb=0,
        spot=spot,
        billable_seconds=billable,
        training_seconds=training,
        warm_pool_status="Terminated" if warm else None,
        warm_pool_retained_seconds=warm,
        tags=tags,
        team=team,
        project=project,
        user="ana",
    )


def at(month: int, day: int, hour: int = 0) -> datetime:
    return datetime(2026, month, day, hour, tzinfo=UTC)


JOBS = [
    record("nlp-train-1", "nlp", "ml.m5.xlarge", 4, at(10, 10, 8), 3600),
    record("nlp-long", "nlp", "ml.m5.xlarge", 1, at(10, 31, 22), 14400),
    record("nlp-train-2", "nlp", "ml.m5.xlarge", 2, at(11, 5, 10), 7200),
    record("nlp-spot", "nlp", "ml.g5.2xlarge", 1, at(11, 10), 1800, training=7200, spot=True),
    record("nlp-trainium", "nlp", "ml.trn1.32xlarge", 1, at(11, 18), 3600),
    record("vision-g5", "vision", "ml.g5.2xlarge", 1, at(11, 8), 3600),
    record("vision-fail", "vision", "ml.g5.2xlarge", 2, at(11, 12), 3600, status="Failed"),
    record("vision-warm", "vision", "ml.c5.xlarge", 1, at(11, 15), 3600, warm=1800),
    record("vision-running", "vision", "ml.m5.xlarge", 2, at(11, 26, 8), None, status="InProgress"),
    record("untagged", UNALLOCATED, "ml.m5.xlarge", 1, at(11, 20), 3600, project=None),
    record("hostile", HOSTILE_TEAM, "ml.m5.xlarge", 1, at(11, 21), 3600, project=HOSTILE_PROJECT),
]


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
