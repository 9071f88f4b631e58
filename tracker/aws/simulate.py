"""A simulated AWS organisation on a moto server, for the demo and end-to-end tests.

Jobs are created through the real SageMaker API (so moto stores what AWS would), then the
fields moto cannot produce (status, times, billable seconds, warm pools, selected instance
type) are set on moto's backend objects, which moto then returns from DescribeTrainingJob.
Only the demo and the tests use this module; the collector never does.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3

DEMO_ROLE = "arn:aws:iam::{account}:role/SageMakerExecution"
IMAGE = "763104351884.dkr.ecr.us-east-1.amazonaws.com/pytorch-training:2.3-gpu-py311"


@dataclass
class SimJob:
    """One training job to create; None means AWS did not report that field."""

    name: str
    account_id: str
    region: str
    instance_type: str = "ml.m5.xlarge"
    count: int = 1
    groups: list[tuple[str, str, int]] = field(default_factory=list)  # (group name, type, count)
    selected_type: str | None = None
    selected_count: int | None = None
    status: str = "Completed"
    start: datetime | None = None
    end: datetime | None = None
    billable_seconds: int | None = None
    training_seconds: int | None = None
    spot: bool = False
    warm_pool_seconds: int | None = None
    volume_gb: int = 30
    max_runtime_seconds: int = 86400
    tags: dict[str, str] = field(default_factory=dict)
    bucket: str = "ml-artifacts"
    artifact_bytes: int = 0
    checkpoint_bytes: int = 0
    failure_reason: str | None = None


def _naive(value: datetime | None) -> datetime | None:
    return value.astimezone(UTC).replace(tzinfo=None) if value and value.tzinfo else value


def clients_for(account_id: str, region: str, base_account: str = "123456789012") -> dict[str, Any]:
    """SageMaker and S3 clients in ``account_id`` (moto honours the account of an assumed role)."""
    session = boto3.Session(region_name=region)
    if account_id != base_account:
        creds = session.client("sts").assume_role(
            RoleArn=f"arn:aws:iam::{account_id}:role/SpendTrackerRead", RoleSessionName="seed"
        )["Credentials"]
        session = boto3.Session(
            region_name=region,
            aws_access_key_id=creds["AccessKeyId"],
            aws_secret_access_key=creds["SecretAccessKey"],
            aws_session_token=creds["SessionToken"],
        )
    return {"sagemaker": session.client("sagemaker"), "s3": session.client("s3")}


def create_job(clients: dict[str, Any], job: SimJob) -> None:
    """Create one job through the API, then set the fields moto does not simulate."""
    from moto.sagemaker.models import sagemaker_backends

    sm, s3 = clients["sagemaker"], clients["s3"]
    _ensure_bucket(s3, job.bucket, job.region)
    resource: dict[str, Any] = {"VolumeSizeInGB": job.volume_gb}
    if job.groups:
        resource["InstanceGroups"] = [
            {"InstanceGroupName": name, "InstanceType": itype, "InstanceCount": count}
            for name, itype, count in job.groups
        ]
    else:
        resource.update({"InstanceType": job.instance_type, "InstanceCount": job.count})
    stopping = {"MaxRuntimeInSeconds": job.max_runtime_seconds}
    if job.spot:
        stopping["MaxWaitTimeInSeconds"] = job.max_runtime_seconds * 2
    kwargs: dict[str, Any] = {
        "TrainingJobName": job.name,
        "AlgorithmSpecification": {"TrainingImage": IMAGE, "TrainingInputMode": "File"},
        "RoleArn": DEMO_ROLE.format(account=job.account_id),
        "OutputDataConfig": {"S3OutputPath": f"s3://{job.bucket}/training"},
        "ResourceConfig": resource,
        "StoppingCondition": stopping,
        "EnableManagedSpotTraining": job.spot,
    }
    if job.tags:
        kwargs["Tags"] = [{"Key": k, "Value": v} for k, v in job.tags.items()]
    if job.checkpoint_bytes:
        kwargs["CheckpointConfig"] = {"S3Uri": f"s3://{job.bucket}/checkpoints/{job.name}"}
    sm.create_training_job(**kwargs)

    fake = sagemaker_backends[job.account_id][job.region].training_jobs[job.name]
    created = _naive(job.start) if job.start else fake.creation_time
    fake.training_job_status = job.status
    fake.secondary_status = {"InProgress": "Training"}.get(job.status, job.status)
    fake.creation_time = created - timedelta(minutes=3) if job.start else created
    fake.training_start_time = _naive(job.start)
    fake.training_end_time = _naive(job.end)
    fake.last_modified_time = _naive(job.end or job.start) or created
    fake.billable_time_in_seconds = job.billable_seconds
    fake.training_time_in_seconds = job.training_seconds
    fake.failure_reason = job.failure_reason
    if job.selected_type:
        fake.resource_config = {
            **fake.resource_config,
            "SelectedInstanceType": job.selected_type,
            "SelectedInstanceCount": job.selected_count or job.count,
        }
    if job.warm_pool_seconds is not None:
        fake.resource_config = {**fake.resource_config, "KeepAlivePeriodInSeconds": 1800}
        fake.warm_pool_status = {
            "Status": "Terminated",
            "ResourceRetainedBillableTimeInSeconds": job.warm_pool_seconds,
        }
    if job.status != "Completed":
        fake.model_artifacts = None
    elif job.artifact_bytes:
        key = f"training/{job.name}/output/model.tar.gz"
        s3.put_object(Bucket=job.bucket, Key=key, Body=b"\0" * job.artifact_bytes)
    if job.checkpoint_bytes:
        s3.put_object(
            Bucket=job.bucket,
            Key=f"checkpoints/{job.name}/step-1000.pt",
            Body=b"\0" * job.checkpoint_bytes,
        )


_BUCKETS: set[tuple[int, str]] = set()


def _ensure_bucket(s3: Any, bucket: str, region: str) -> None:
    marker = (id(s3), bucket)
    if marker in _BUCKETS:
        return
    try:
        if region == "us-east-1":
            s3.create_bucket(Bucket=bucket)
        else:
            s3.create_bucket(
                Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": region}
            )
    except s3.exceptions.BucketAlreadyOwnedByYou:
        pass
    _BUCKETS.add(marker)


# -- the demo organisation ----------------------------------------------------------------
ACCOUNTS = {
    "prod": ("123456789012", ("us-east-1", "us-west-2")),
    "research": ("210987654321", ("us-east-1", "eu-west-1")),
}
TEAMS = {
    "nlp": (["llm-finetune", "summarise"], ["ana", "bo", "chen"]),
    "vision": (["detector", "segmenter"], ["dmitri", "eve"]),
    "recsys": (["ranker", "two-tower"], ["farah", "gus"]),
    "speech": (["asr"], ["hana", "ivan"]),
    "forecasting": (["demand"], ["jo"]),
}
# Instance types by region, each with a traced rate in the shipped price book, weighted.
TYPES = {
    "us-east-1": [
        ("ml.m5.xlarge", 6),
        ("ml.m5.4xlarge", 3),
        ("ml.g4dn.xlarge", 4),
        ("ml.g5.xlarge", 4),
        ("ml.g5.2xlarge", 4),
        ("ml.g6.xlarge", 2),
        ("ml.g6e.xlarge", 2),
        ("ml.p4d.24xlarge", 1),
    ],
    "us-west-2": [
        ("ml.g5.xlarge", 4),
        ("ml.g5.2xlarge", 3),
        ("ml.g5.12xlarge", 2),
        ("ml.g6.2xlarge", 2),
        ("ml.g6e.2xlarge", 2),
        ("ml.g5.48xlarge", 1),
    ],
    "eu-west-1": [
        ("ml.m5.xlarge", 5),
        ("ml.g4dn.xlarge", 4),
        ("ml.g5.xlarge", 3),
        ("ml.p3.2xlarge", 2),
    ],
}
UNPRICED_TYPE = "ml.trn1.32xlarge"  # deliberately absent from the shipped price book


def demo_jobs(now: datetime, count: int, seed: int) -> list[SimJob]:
    """A deterministic organisation: ``count`` jobs over the 60 days before ``now``."""
    rng = random.Random(seed)
    jobs: list[SimJob] = []
    slots = [(src, acct, region) for src, (acct, regions) in ACCOUNTS.items() for region in regions]
    for i in range(count):
        source, account, region = slots[i % len(slots)]
        team = rng.choice(list(TEAMS))
        projects, users = TEAMS[team]
        types, weights = zip(*TYPES[region], strict=True)
        itype = rng.choices(types, weights)[0]
        big = itype.endswith(("24xlarge", "48xlarge", "12xlarge"))
        instances = 1 if big else rng.choice([1, 1, 1, 2, 2, 4])
        hours = rng.uniform(0.25, 3.0 if big else 10.0)
        start = (now - timedelta(days=rng.uniform(0.6, 60))).replace(microsecond=0)
        seconds = int(hours * 3600)
        job = SimJob(
            name=f"{team}-{rng.choice(projects)}-{i:04d}",
            account_id=account,
            region=region,
            instance_type=itype,
            count=instances,
            start=start,
            end=start + timedelta(seconds=seconds),
            billable_seconds=seconds,
            training_seconds=seconds,
            volume_gb=rng.choice([30, 50, 100, 200]),
            tags={
                "team": team,
                "project": rng.choice(projects),
                "owner": rng.choice(users),
                "cost-center": f"cc-{100 + list(TEAMS).index(team)}",
            },
            bucket=f"ml-artifacts-{account}-{region}",
            artifact_bytes=rng.randint(20_000, 400_000),
        )
        roll = rng.random()
        if roll < 0.22:  # managed spot: billed for less than it trained
            job.spot = True
            job.billable_seconds = int(seconds * rng.uniform(0.3, 0.45))
        elif roll < 0.30:  # failed part-way; AWS still bills the time used
            job.status = "Failed"
            job.failure_reason = "AlgorithmError: CUDA out of memory"
            job.billable_seconds = job.training_seconds = int(seconds * rng.uniform(0.05, 0.5))
            job.end = start + timedelta(seconds=job.training_seconds)
        elif roll < 0.34:  # stopped by its owner
            job.status = "Stopped"
            job.billable_seconds = job.training_seconds = int(seconds * rng.uniform(0.2, 0.8))
            job.end = start + timedelta(seconds=job.training_seconds)
        elif roll < 0.42:  # warm pool kept after the job
            job.warm_pool_seconds = rng.choice([600, 1200, 1800])
        elif roll < 0.47:  # untagged: lands in "unallocated"
            job.tags = {}
        if rng.random() < 0.1:
            job.checkpoint_bytes = rng.randint(50_000, 300_000)
        jobs.append(job)
    jobs.extend(_special_jobs(now))
    return jobs


def _special_jobs(now: datetime) -> list[SimJob]:
    """The cases every FinOps question needs, placed deterministically."""
    prod, research = ACCOUNTS["prod"][0], ACCOUNTS["research"][0]
    day = now.replace(microsecond=0)
    return [
        SimJob(
            name="nlp-llm-finetune-hetero-001",
            account_id=prod,
            region="us-east-1",
            groups=[("trainers", "ml.p4d.24xlarge", 2), ("dataloaders", "ml.m5.4xlarge", 4)],
            start=day - timedelta(days=9, hours=5),
            end=day - timedelta(days=9, hours=1),
            billable_seconds=14400,
            training_seconds=14400,
            volume_gb=100,
            tags={"team": "nlp", "project": "llm-finetune", "owner": "ana"},
            bucket=f"ml-artifacts-{prod}-us-east-1",
            artifact_bytes=900_000,
        ),
        SimJob(
            name="vision-detector-flex-002",
            account_id=prod,
            region="us-east-1",
            instance_type="ml.g5.xlarge",
            count=2,
            selected_type="ml.g5.2xlarge",
            selected_count=2,
            start=day - timedelta(days=3, hours=7),
            end=day - timedelta(days=3, hours=4),
            billable_seconds=10800,
            training_seconds=10800,
            tags={"team": "vision", "project": "detector", "owner": "eve"},
            bucket=f"ml-artifacts-{prod}-us-east-1",
        ),
        SimJob(
            name="nlp-summarise-trainium-003",
            account_id=prod,
            region="us-east-1",
            instance_type=UNPRICED_TYPE,
            count=1,
            start=day - timedelta(days=5, hours=6),
            end=day - timedelta(days=5, hours=2),
            billable_seconds=14400,
            training_seconds=14400,
            tags={"team": "nlp", "project": "summarise", "owner": "bo"},
            bucket=f"ml-artifacts-{prod}-us-east-1",
        ),
        SimJob(
            name="speech-asr-failed-boot-004",
            account_id=research,
            region="eu-west-1",
            instance_type="ml.p3.2xlarge",
            status="Failed",
            failure_reason="CapacityError: Unable to provision requested ML compute capacity",
            tags={"team": "speech", "project": "asr", "owner": "hana"},
            bucket=f"ml-artifacts-{research}-eu-west-1",
            start=None,
        ),
        SimJob(
            name="recsys-ranker-running-005",
            account_id=research,
            region="us-east-1",
            instance_type="ml.g5.2xlarge",
            count=2,
            status="InProgress",
            start=day - timedelta(hours=2),
            end=None,
            billable_seconds=None,
            training_seconds=None,
            tags={
                "team": "recsys",
                "project": "ranker",
                "sagemaker:user-profile-arn": f"arn:aws:sagemaker:us-east-1:{research}:user-profile/d-demo/gus",
            },
            bucket=f"ml-artifacts-{research}-us-east-1",
        ),
    ]


def seed_organisation(now: datetime, count: int, seed: int) -> list[SimJob]:
    """Create the demo organisation's buckets and jobs on the moto server in use."""
    jobs = demo_jobs(now, count, seed)
    clients: dict[tuple[str, str], dict[str, Any]] = {}
    for job in jobs:
        key = (job.account_id, job.region)
        if key not in clients:
            clients[key] = clients_for(job.account_id, job.region)
        create_job(clients[key], job)
    return jobs
