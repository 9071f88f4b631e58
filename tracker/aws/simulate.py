"""Training jobs on moto, for the demo, the tests and the benchmarks: the one seeding factory.

Jobs are created through the real CreateTrainingJob API (so moto stores what AWS would),
then the fields moto does not produce (status, times, billable and training seconds, warm
pools, selected instance types, failure reasons) are set on moto's backend objects, whose
snake_case attributes moto returns as the CamelCase keys of DescribeTrainingJob. Moto wants
naive UTC there. :func:`seed_backend_job` writes the same objects straight into moto's
backends without HTTP, for runs where tens of thousands of API calls would dominate.

:class:`JobSpec` is everything a seeded job can vary, with defaults each caller overrides;
:class:`SimJob` and :func:`seed_organisation` describe the demo's simulated organisation on
top of it. Only the demo, the tests and the benchmarks use this module; the collector never
does, and it imports moto only when a job is seeded.

Every seeder first calls :func:`tracker.aws.moto_search.install`, which gives moto's Search
the paging, sorting and operators AWS documents (the collector's default path uses them);
:func:`use_documented_search` does only that, for callers that seed nothing.
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from botocore.client import BaseClient
    from moto.sagemaker.models import FakeTrainingJob, SageMakerModelBackend

DEFAULT_ACCOUNT = "123456789012"
DEFAULT_REGION = "us-east-1"
DEFAULT_START = datetime(2026, 10, 1, 9, 0, 0)  # naive UTC, a Thursday morning
ROLE_ARN = "arn:aws:iam::123456789012:role/SageMakerTraining"
DEMO_ROLE = "arn:aws:iam::{account}:role/SageMakerExecution"
IMAGE = "763104351884.dkr.ecr.us-east-1.amazonaws.com/pytorch-training:2.3-gpu-py311"
SECONDARY = {"Completed": "Completed", "Failed": "Failed", "Stopped": "Stopped",
             "InProgress": "Training", "Stopping": "Stopping"}  # fmt: skip
MISSING: Any = object()  # "leave the field out of the response" where None means "default"


@dataclass(frozen=True)
class JobSpec:
    """Everything a seeded job can vary. Times are UTC (naive or aware).

    ``training`` defaults to ``billable``; ``end`` defaults to ``start + training``
    (None for InProgress jobs); ``created`` to four minutes before ``start``;
    ``modified`` to ``end`` (else ``start``). ``billable=None`` leaves
    BillableTimeInSeconds out (as for many failed jobs); ``start=None`` leaves the start
    and end times out. ``groups`` are (instance type, count) of a heterogeneous cluster,
    named ``group_names`` or ``group-1``, ``group-2``...
    """

    instance_type: str = "ml.m5.xlarge"
    count: int = 1
    billable: int | None = 3600
    training: Any = MISSING
    spot: bool = False
    status: str = "Completed"
    start: datetime | None = DEFAULT_START
    end: Any = MISSING
    created: datetime | None = None
    modified: datetime | None = None
    tags: Mapping[str, str] = field(default_factory=lambda: {"team": "ml"})
    warm_pool_seconds: int | None = None
    warm_pool_status: str = "Terminated"
    groups: Sequence[tuple[str, int]] = ()
    group_names: Sequence[str] = ()
    selected_type: str | None = None
    selected_count: int | None = None
    volume_gb: int = 30
    role_arn: str = ROLE_ARN
    output_bucket: str = "sm-artifacts"
    output_prefix: str = "output"
    artifact_bytes: int = 0
    output_files: Mapping[str, int] = field(default_factory=dict)
    checkpoint_bytes: int = 0
    checkpoint_bucket: str | None = None
    failure_reason: str | None = None
    training_plan_arn: str | None = None
    keep_alive_seconds: int | None = None
    max_runtime: int = 86400
    max_wait: int | None = None
    # What SageMaker records about the job's origin (a tuning sweep, an AutoML job, an
    # experiment run): set on moto's job as DescribeTrainingJob and Search return them.
    tuning_job_arn: str | None = None
    auto_ml_job_arn: str | None = None
    experiment_config: Mapping[str, str] | None = None
    # What the job was asked to do and reported (units of work for ``report --view units``):
    # HyperParameters as CreateTrainingJob takes them (text values), FinalMetricDataList as
    # (metric name, value) pairs, set when the job ends.
    hyper_parameters: Mapping[str, str] = field(default_factory=dict)
    final_metrics: Mapping[str, float] = field(default_factory=dict)

    def training_seconds(self) -> int | None:
        return self.billable if self.training is MISSING else self.training

    def times(self) -> tuple[datetime | None, datetime | None, datetime, datetime]:
        """(start, end, created, modified) as naive UTC, defaults applied."""
        start = _naive(self.start)
        if self.end is not MISSING:
            end = _naive(self.end)
        elif start is None or self.status in ("InProgress", "Stopping"):
            end = None
        else:
            end = start + timedelta(seconds=self.training_seconds() or 0)
        created = _naive(self.created) or (start or DEFAULT_START) - timedelta(minutes=4)
        modified = _naive(self.modified) or end or start or created
        return start, end, created, modified

    def output_uri(self) -> str:
        return f"s3://{self.output_bucket}/{self.output_prefix}"

    def checkpoint_uri(self, name: str) -> str | None:
        if not (self.checkpoint_bytes or self.checkpoint_bucket):
            return None
        return f"s3://{self.checkpoint_bucket or self.output_bucket}/checkpoints/{name}"


def create_request(name: str, spec: JobSpec) -> dict[str, Any]:
    """The CreateTrainingJob request a real user would send for ``spec``."""
    resource: dict[str, Any] = {"VolumeSizeInGB": spec.volume_gb}
    if spec.groups:
        names = list(spec.group_names) or [f"group-{i + 1}" for i in range(len(spec.groups))]
        resource["InstanceGroups"] = [
            {"InstanceType": t, "InstanceCount": c, "InstanceGroupName": group}
            for group, (t, c) in zip(names, spec.groups, strict=True)
        ]
    else:
        resource.update(InstanceType=spec.instance_type, InstanceCount=spec.count)
    if spec.keep_alive_seconds is not None:
        resource["KeepAlivePeriodInSeconds"] = spec.keep_alive_seconds
    if spec.training_plan_arn:
        resource["TrainingPlanArn"] = spec.training_plan_arn
    stopping: dict[str, int] = {"MaxRuntimeInSeconds": spec.max_runtime}
    if spec.spot:
        stopping["MaxWaitTimeInSeconds"] = spec.max_wait or spec.max_runtime * 2
    request: dict[str, Any] = {
        "TrainingJobName": name,
        "AlgorithmSpecification": {"TrainingImage": IMAGE, "TrainingInputMode": "File"},
        "RoleArn": spec.role_arn,
        "OutputDataConfig": {"S3OutputPath": spec.output_uri()},
        "ResourceConfig": resource,
        "StoppingCondition": stopping,
        "EnableManagedSpotTraining": spec.spot,
        "Tags": [{"Key": k, "Value": v} for k, v in spec.tags.items()],
    }
    checkpoint = spec.checkpoint_uri(name)
    if checkpoint:
        request["CheckpointConfig"] = {"S3Uri": checkpoint}
    if spec.hyper_parameters:
        request["HyperParameters"] = dict(spec.hyper_parameters)
    return request


def use_documented_search() -> None:
    """Give moto's SageMaker Search its documented semantics (:mod:`tracker.aws.moto_search`)."""
    from tracker.aws import moto_search

    moto_search.install()


def seed_job(client: BaseClient, name: str, spec: JobSpec, *, s3: BaseClient | None = None) -> str:
    """Create one training job through the API, then set what moto cannot; returns its ARN.

    ``client`` is a sagemaker client (its credentials pick the account); ``s3`` an S3
    client in the same account, needed only when the job leaves objects in S3.
    """
    use_documented_search()
    arn = client.create_training_job(**create_request(name, spec))["TrainingJobArn"]
    account_id, region = _account_region(arn)
    _finish(_backend(account_id, region).training_jobs[name], spec)
    if s3 is not None:
        for bucket, key, size in _artifact_objects(name, spec):
            ensure_bucket(s3, bucket, region)
            s3.put_object(Bucket=bucket, Key=key, Body=b"\0" * size)
    elif _artifact_objects(name, spec):
        raise ValueError(f"{name}: artifact bytes need an s3 client (seed_job(..., s3=...))")
    return arn


def seed_backend_job(
    name: str, spec: JobSpec, *, account_id: str = DEFAULT_ACCOUNT, region: str = DEFAULT_REGION
) -> str:
    """Like :func:`seed_job` but straight into moto's backends (no HTTP); returns the ARN."""
    use_documented_search()
    request = create_request(name, spec)
    job = _backend(account_id, region).create_training_job(
        training_job_name=name,
        hyper_parameters=request.get("HyperParameters"),
        algorithm_specification=request["AlgorithmSpecification"],
        role_arn=request["RoleArn"],
        input_data_config=None,
        output_data_config=request["OutputDataConfig"],
        resource_config=request["ResourceConfig"],
        vpc_config=None,
        stopping_condition=request["StoppingCondition"],
        tags=request["Tags"],
        enable_network_isolation=False,
        enable_inter_container_traffic_encryption=False,
        enable_managed_spot_training=spec.spot,
        checkpoint_config=request.get("CheckpointConfig"),
        debug_hook_config=None,
        debug_rule_configurations=None,
        tensor_board_output_config=None,
        experiment_config=None,
    )
    _finish(job, spec)
    objects = _artifact_objects(name, spec)
    if objects:
        from moto.s3.models import s3_backends

        backend = s3_backends[account_id]["aws"]
        for bucket, key, size in objects:
            if bucket not in backend.buckets:
                backend.create_bucket(bucket, region)
            backend.put_object(bucket, key, b"\0" * size)
    return job.arn


def update_job(account_id: str, region: str, name: str, **fields: Any) -> None:
    """Change a seeded job as AWS would (e.g. ``status="Completed"``), bumping its times."""
    job = _backend(account_id, region).training_jobs[name]
    for key, value in fields.items():
        setattr(job, key, _naive(value) if isinstance(value, datetime) else value)


def ensure_bucket(s3: BaseClient, bucket: str, region: str) -> None:
    """Create ``bucket`` unless this account already has it."""
    try:
        if region == "us-east-1":
            s3.create_bucket(Bucket=bucket)  # idempotent for its owner in us-east-1
        else:
            s3.create_bucket(
                Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": region}
            )
    except s3.exceptions.BucketAlreadyOwnedByYou:
        pass


def _finish(job: FakeTrainingJob, spec: JobSpec) -> None:
    """Set on moto's FakeTrainingJob the fields moto does not produce."""
    start, end, created, modified = spec.times()
    job.training_job_status = spec.status
    job.secondary_status = SECONDARY.get(spec.status, spec.status)
    job.creation_time = created
    job.training_start_time = start
    job.training_end_time = end
    job.last_modified_time = modified
    job.billable_time_in_seconds = spec.billable
    job.training_time_in_seconds = spec.training_seconds()
    job.failure_reason = spec.failure_reason
    if spec.status != "Completed":
        job.model_artifacts = None  # only a completed job has a model artifact
    if spec.warm_pool_seconds is not None:
        job.warm_pool_status = {
            "Status": spec.warm_pool_status,
            "ResourceRetainedBillableTimeInSeconds": spec.warm_pool_seconds,
        }
    if spec.tuning_job_arn:
        job.tuning_job_arn = spec.tuning_job_arn
    if spec.auto_ml_job_arn:
        job.auto_ml_job_arn = spec.auto_ml_job_arn
    if spec.experiment_config:
        job.experiment_config = dict(spec.experiment_config)
    if spec.final_metrics:
        job.final_metric_data_list = [
            {"MetricName": metric, "Value": value, "Timestamp": modified}
            for metric, value in spec.final_metrics.items()
        ]
    if spec.selected_type:
        job.resource_config = {
            **job.resource_config,
            "SelectedInstanceType": spec.selected_type,
            "SelectedInstanceCount": spec.selected_count or spec.count,
        }


def _artifact_objects(name: str, spec: JobSpec) -> list[tuple[str, str, int]]:
    """(bucket, key, size) of every object the job left behind."""
    objects = []
    output = f"{spec.output_prefix}/{name}"
    if spec.artifact_bytes:
        objects.append((spec.output_bucket, f"{output}/output/model.tar.gz", spec.artifact_bytes))
    for relative, size in spec.output_files.items():
        objects.append((spec.output_bucket, f"{output}/{relative}", size))
    if spec.checkpoint_bytes:
        bucket = spec.checkpoint_bucket or spec.output_bucket
        objects.append((bucket, f"checkpoints/{name}/checkpoint-1.pt", spec.checkpoint_bytes))
    return objects


def _backend(account_id: str, region: str) -> SageMakerModelBackend:
    from moto.sagemaker.models import sagemaker_backends

    return sagemaker_backends[account_id][region]


def _account_region(arn: str) -> tuple[str, str]:
    # arn:aws:sagemaker:<region>:<account>:training-job/<name>
    parts = arn.split(":")
    return parts[4], parts[3]


def _naive(value: datetime | None) -> datetime | None:
    if value is None or value.tzinfo is None:
        return value
    return value.astimezone(UTC).replace(tzinfo=None)


# -- the demo organisation ----------------------------------------------------------------
@dataclass
class SimJob:
    """One job of the demo organisation; None means AWS did not report that field."""

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
    created: datetime | None = None
    tuning_job_arn: str | None = None
    experiment_config: dict[str, str] | None = None
    hyper_parameters: dict[str, str] = field(default_factory=dict)
    final_metrics: dict[str, float] = field(default_factory=dict)

    def spec(self) -> JobSpec:
        """The :class:`JobSpec` this job is seeded from.

        Times are as given; a job created three minutes before its start unless ``created``
        says otherwise (no start and no ``created``: created now, as moto would); a warm pool
        was kept alive 30 minutes; only a completed job leaves a model artifact.
        """
        start = _naive(self.start)
        created = _naive(self.created) or (
            start - timedelta(minutes=3) if start else datetime.now(UTC)
        )
        return JobSpec(
            instance_type=self.instance_type,
            count=self.count,
            groups=tuple((itype, count) for _, itype, count in self.groups),
            group_names=tuple(group for group, _, _ in self.groups),
            selected_type=self.selected_type,
            selected_count=self.selected_count,
            status=self.status,
            start=self.start,
            end=self.end,
            created=created,
            billable=self.billable_seconds,
            training=self.training_seconds,
            spot=self.spot,
            warm_pool_seconds=self.warm_pool_seconds,
            keep_alive_seconds=1800 if self.warm_pool_seconds is not None else None,
            volume_gb=self.volume_gb,
            max_runtime=self.max_runtime_seconds,
            tags=dict(self.tags),
            role_arn=DEMO_ROLE.format(account=self.account_id),
            output_bucket=self.bucket,
            output_prefix="training",
            artifact_bytes=self.artifact_bytes if self.status == "Completed" else 0,
            checkpoint_bytes=self.checkpoint_bytes,
            failure_reason=self.failure_reason,
            tuning_job_arn=self.tuning_job_arn,
            experiment_config=self.experiment_config,
            hyper_parameters=dict(self.hyper_parameters),
            final_metrics=dict(self.final_metrics),
        )


def clients_for(
    account_id: str, region: str, base_account: str = DEFAULT_ACCOUNT
) -> dict[str, BaseClient]:
    """SageMaker and S3 clients in ``account_id`` (moto honours the account of an assumed role)."""
    import boto3

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


def create_job(clients: Mapping[str, BaseClient], job: SimJob) -> None:
    """Create one demo job through the API; its bucket exists even when it left nothing."""
    ensure_bucket(clients["s3"], job.bucket, job.region)
    seed_job(clients["sagemaker"], job.name, job.spec(), s3=clients["s3"])


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
    """A deterministic organisation: ``count`` jobs over the 60 days before ``now``, then
    the special cases every FinOps question needs (:func:`_special_jobs`)."""
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
    return [*_basic_cases(day, prod, research), *_lineage_jobs(day, prod)]


def _basic_cases(day: datetime, prod: str, research: str) -> list[SimJob]:
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
            # It never started, so only its creation places it in time: relative to ``now``
            # like every other demo job, never the wall clock, or reruns would differ.
            created=day - timedelta(days=2, hours=3),
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


# -- lineage: a tuning sweep, a pipeline execution, a JumpStart fine-tune, registered models ------
PROD_ACCOUNT = ACCOUNTS["prod"][0]
SWEEP = "nlp-llm-sweep-001"
SWEEP_ARN = f"arn:aws:sagemaker:us-east-1:{PROD_ACCOUNT}:hyper-parameter-tuning-job/{SWEEP}"
# Training jobs of a tuning job are named <tuning job>-<NNN>-<8 hex>; the best is the first.
SWEEP_JOBS = (f"{SWEEP}-001-6c1f0a2e", f"{SWEEP}-002-91b4d7c3", f"{SWEEP}-003-2e8a5f10",
              f"{SWEEP}-004-d05b3e77")  # fmt: skip
PIPELINE = "vision-train"
PIPELINE_EXECUTION_ID = "7k2m9x4q1b3z"
PIPELINE_EXECUTION_ARN = (
    f"arn:aws:sagemaker:us-west-2:{PROD_ACCOUNT}:pipeline/{PIPELINE}"
    f"/execution/{PIPELINE_EXECUTION_ID}"
)
# Step jobs named <prefix>-<step>-<10 alphanumerics>, the pipeline's name as the prefix (the
# SDK's PipelineDefinitionConfig(use_custom_job_prefix=True); without it Pipelines names them
# pipelines-<execution id>-<step>-..., too wide for the demo's job table). The tag, not the
# name, ties a job to its execution.
PIPELINE_JOBS = (
    f"{PIPELINE}-Preprocess-q8w2e4r6t1",
    f"{PIPELINE}-Train-a3s5d7f9g2",  # failed first attempt
    f"{PIPELINE}-Train-h4j6k8l1z3",  # its retry, completed
)
JUMPSTART_JOB = "nlp-llm-jumpstart-ft-011"
JUMPSTART_MODEL = "meta-textgeneration-llama-3-8b"
MODEL_PACKAGE_GROUP = "nlp-llm"  # its version 1 is the sweep's best job
PIPELINE_MODEL = "vision-detector-7k2m9x4q1b3z"  # a model of the pipeline's completed training


def _lineage_jobs(day: datetime, prod: str) -> list[SimJob]:
    """A tuning sweep (two completed, one failed, one stopped early) and a JumpStart
    fine-tune in us-east-1; a pipeline execution in us-west-2 (a preprocessing step, a failed
    training attempt and its completed retry), recorded as an experiment run as Pipelines
    does (experiment = pipeline, trial = execution id)."""
    east, west = f"ml-artifacts-{prod}-us-east-1", f"ml-artifacts-{prod}-us-west-2"
    nlp = {"team": "nlp", "project": "llm-finetune", "owner": "chen"}
    sweep_start = day - timedelta(days=8, hours=6)
    sweep = [  # (status, start after the sweep's, billable seconds)
        ("Completed", 0, 7200),
        ("Completed", 0, 5400),
        ("Failed", 2, 1800),
        ("Stopped", 2, 2700),
    ]
    jobs = [
        SimJob(
            name=name,
            account_id=prod,
            region="us-east-1",
            instance_type="ml.g5.2xlarge",
            status=status,
            start=sweep_start + timedelta(hours=after),
            end=sweep_start + timedelta(hours=after, seconds=seconds),
            billable_seconds=seconds,
            training_seconds=seconds,
            failure_reason="AlgorithmError: loss diverged (NaN)" if status == "Failed" else None,
            tags=dict(nlp),
            bucket=east,
            artifact_bytes=600_000,
            tuning_job_arn=SWEEP_ARN,
            # The SageMaker Python SDK json-encodes hyperparameter values: 3 is sent as "3".
            hyper_parameters={"epochs": "3", "learning_rate": '"0.0001"'},
            final_metrics={"train_tokens": 48_000_000.0} if status == "Completed" else {},
        )
        for name, (status, after, seconds) in zip(SWEEP_JOBS, sweep, strict=True)
    ]
    pipeline_start = day - timedelta(days=6, hours=10)
    steps = [  # (instances, status, start after the execution's, billable seconds)
        (1, "Completed", 0, 900),
        (2, "Failed", 1, 1800),
        (2, "Completed", 2, 5400),
    ]
    pipeline_tags = {"team": "vision", "project": "detector", "owner": "dmitri",
                     "sagemaker:pipeline-execution-arn": PIPELINE_EXECUTION_ARN}  # fmt: skip
    jobs += [
        SimJob(
            name=name,
            account_id=prod,
            region="us-west-2",
            instance_type="ml.g5.xlarge",
            count=count,
            status=status,
            start=pipeline_start + timedelta(hours=after),
            end=pipeline_start + timedelta(hours=after, seconds=seconds),
            billable_seconds=seconds,
            training_seconds=seconds,
            failure_reason="ClientError: ResourceLimitExceeded" if status == "Failed" else None,
            tags=dict(pipeline_tags),
            bucket=west,
            artifact_bytes=400_000,
            experiment_config={"ExperimentName": PIPELINE, "TrialName": PIPELINE_EXECUTION_ID},
        )
        for name, (count, status, after, seconds) in zip(PIPELINE_JOBS, steps, strict=True)
    ]
    jobs.append(
        SimJob(
            name=JUMPSTART_JOB,
            account_id=prod,
            region="us-east-1",
            instance_type="ml.g5.2xlarge",
            start=day - timedelta(days=4, hours=3),
            end=day - timedelta(days=4, hours=2),
            billable_seconds=3600,
            training_seconds=3600,
            tags={**nlp, "sagemaker-sdk:jumpstart-model-id": JUMPSTART_MODEL},
            bucket=east,
            artifact_bytes=300_000,
            hyper_parameters={"epoch": '"2"', "instruction_tuned": '"True"'},
            final_metrics={"num_input_tokens_seen": 12_500_000.0},
        )
    )
    return jobs


def seed_models(now: datetime) -> None:
    """Register the demo's models on the moto server in use, through the API: version 1 of the
    model package group ``nlp-llm`` from the sweep's best job, and a model from the pipeline's
    completed training job. Their model data is the jobs' ``ModelArtifacts.S3ModelArtifacts``
    as moto reports it (``<S3OutputPath>/<job name>/output/model.tar.gz``). Created a day and
    half a day before ``now`` (moto stamps the wall clock; set on its objects, as for jobs)."""
    east = clients_for(PROD_ACCOUNT, "us-east-1")["sagemaker"]
    west = clients_for(PROD_ACCOUNT, "us-west-2")["sagemaker"]
    east.create_model_package_group(ModelPackageGroupName=MODEL_PACKAGE_GROUP)
    package_arn = east.create_model_package(
        ModelPackageGroupName=MODEL_PACKAGE_GROUP,
        ModelApprovalStatus="Approved",
        InferenceSpecification={
            "Containers": [{"Image": IMAGE, "ModelDataUrl": _artifact(SWEEP_JOBS[0], "us-east-1")}],
            "SupportedContentTypes": ["application/json"],
            "SupportedResponseMIMETypes": ["application/json"],
        },
    )["ModelPackageArn"]
    west.create_model(
        ModelName=PIPELINE_MODEL,
        ExecutionRoleArn=DEMO_ROLE.format(account=PROD_ACCOUNT),
        PrimaryContainer={"Image": IMAGE, "ModelDataUrl": _artifact(PIPELINE_JOBS[2], "us-west-2")},
    )
    created = _naive(now.replace(microsecond=0))
    _backend(PROD_ACCOUNT, "us-east-1").model_packages[package_arn].creation_time = (
        created - timedelta(days=1)
    )
    _backend(PROD_ACCOUNT, "us-west-2")._models[PIPELINE_MODEL].creation_time = created - timedelta(
        hours=12
    )


def _artifact(job: str, region: str) -> str:
    return f"s3://ml-artifacts-{PROD_ACCOUNT}-{region}/training/{job}/output/model.tar.gz"


def seed_organisation(jobs: Sequence[SimJob]) -> None:
    """Create the demo organisation's buckets and jobs (:func:`demo_jobs`) on the moto server
    in use."""
    clients: dict[tuple[str, str], dict[str, BaseClient]] = {}
    for job in jobs:
        key = (job.account_id, job.region)
        if key not in clients:
            clients[key] = clients_for(job.account_id, job.region)
        create_job(clients[key], job)
