"""Seed SageMaker training jobs (and their S3 artifacts) into moto.

A small factory with defaults that each test overrides: ``seed_job(client, name,
billable=1800, spot=True, ...)``. Jobs are created through the real
CreateTrainingJob API; the fields moto does not produce (billable and training
seconds, statuses other than Completed, warm pools, selected instance types,
times) are then set on moto's backend object, whose snake_case attributes moto
returns as the CamelCase keys of DescribeTrainingJob. Moto wants naive UTC there.

``seed_job_fast`` writes the same objects straight into moto's backends, without
HTTP, for the benchmark and the demo, where tens of thousands of API calls would
dominate the run.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

DEFAULT_ACCOUNT = "123456789012"
DEFAULT_REGION = "us-east-1"
ROLE_ARN = "arn:aws:iam::123456789012:role/SageMakerTraining"
IMAGE = "763104351884.dkr.ecr.us-east-1.amazonaws.com/pytorch-training:2.3-gpu-py311"
T0 = datetime(2026, 10, 1, 9, 0, 0)  # naive UTC, a Thursday morning
SECONDARY = {"Completed": "Completed", "Failed": "Failed", "Stopped": "Stopped",
             "InProgress": "Training", "Stopping": "Stopping"}  # fmt: skip
MISSING = object()  # "leave the field out of the response" where None means "default"


@dataclass(frozen=True)
class JobSpec:
    """Everything a seeded job can vary. Times are UTC (naive or aware).

    ``training`` defaults to ``billable``; ``end`` defaults to ``start + training``
    (None for InProgress jobs); ``modified`` defaults to ``end`` (else ``start``).
    ``billable=None`` leaves BillableTimeInSeconds out (as for many failed jobs);
    ``start=None`` leaves the start and end times out.
    """

    instance_type: str = "ml.m5.xlarge"
    count: int = 1
    billable: int | None = 3600
    training: Any = MISSING
    spot: bool = False
    status: str = "Completed"
    start: datetime | None = T0
    end: Any = MISSING
    created: datetime | None = None
    modified: datetime | None = None
    tags: Mapping[str, str] = field(default_factory=lambda: {"team": "ml"})
    warm_pool_seconds: int | None = None
    warm_pool_status: str = "Terminated"
    groups: Sequence[tuple[str, int]] = ()
    selected_type: str | None = None
    selected_count: int | None = None
    volume_gb: int = 30
    output_bucket: str = "sm-artifacts"
    artifact_bytes: int = 0
    output_files: Mapping[str, int] = field(default_factory=dict)
    checkpoint_bytes: int = 0
    checkpoint_bucket: str | None = None
    failure_reason: str | None = None
    training_plan_arn: str | None = None
    keep_alive_seconds: int | None = None
    max_runtime: int = 86400
    max_wait: int | None = None

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
        created = _naive(self.created) or (start or T0) - timedelta(minutes=4)
        modified = _naive(self.modified) or end or start or created
        return start, end, created, modified

    def checkpoint_uri(self, name: str) -> str | None:
        if not (self.checkpoint_bytes or self.checkpoint_bucket):
            return None
        return f"s3://{self.checkpoint_bucket or self.output_bucket}/checkpoints/{name}"


def create_request(name: str, spec: JobSpec) -> dict[str, Any]:
    """The CreateTrainingJob request a real user would send for ``spec``."""
    resource: dict[str, Any] = {"VolumeSizeInGB": spec.volume_gb}
    if spec.groups:
        resource["InstanceGroups"] = [
            {"InstanceType": t, "InstanceCount": c, "InstanceGroupName": f"group-{i + 1}"}
            for i, (t, c) in enumerate(spec.groups)
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
        "RoleArn": ROLE_ARN,
        "OutputDataConfig": {"S3OutputPath": f"s3://{spec.output_bucket}/output"},
        "ResourceConfig": resource,
        "StoppingCondition": stopping,
        "EnableManagedSpotTraining": spec.spot,
        "Tags": [{"Key": k, "Value": v} for k, v in spec.tags.items()],
    }
    checkpoint = spec.checkpoint_uri(name)
    if checkpoint:
        request["CheckpointConfig"] = {"S3Uri": checkpoint}
    return request


def seed_job(client: Any, name: str, *, s3: Any = None, **overrides: Any) -> str:
    """Create one training job through the API, then set what moto cannot; returns its ARN.

    ``client`` is a sagemaker client (its credentials pick the account); ``s3`` an S3
    client in the same account, needed only when the job has artifact bytes.
    """
    spec = JobSpec(**overrides)
    arn = client.create_training_job(**create_request(name, spec))["TrainingJobArn"]
    account_id, region = _account_region(arn)
    _finish(_backend(account_id, region).training_jobs[name], spec)
    if s3 is not None:
        _put_artifacts_api(s3, region, name, spec)
    elif _artifact_objects(name, spec):
        raise ValueError(f"{name}: artifact bytes need an s3 client (seed_job(..., s3=...))")
    return arn


def seed_job_fast(
    name: str, *, account_id: str = DEFAULT_ACCOUNT, region: str = DEFAULT_REGION, **overrides: Any
) -> str:
    """Like :func:`seed_job` but straight into moto's backends (no HTTP); returns the ARN."""
    spec = JobSpec(**overrides)
    request = create_request(name, spec)
    job = _backend(account_id, region).create_training_job(
        training_job_name=name,
        hyper_parameters=None,
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
    _put_artifacts_backend(account_id, region, name, spec)
    return job.arn


def update_job(account_id: str, region: str, name: str, **fields: Any) -> None:
    """Change a seeded job as AWS would (e.g. ``status="Completed"``), bumping its times."""
    job = _backend(account_id, region).training_jobs[name]
    for key, value in fields.items():
        setattr(job, key, _naive(value) if isinstance(value, datetime) else value)


def _finish(job: Any, spec: JobSpec) -> None:
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
    if spec.selected_type:
        job.resource_config = {
            **job.resource_config,
            "SelectedInstanceType": spec.selected_type,
            "SelectedInstanceCount": spec.selected_count or spec.count,
        }


def _artifact_objects(name: str, spec: JobSpec) -> list[tuple[str, str, int]]:
    """(bucket, key, size) of every object the job left behind."""
    objects = []
    if spec.artifact_bytes:
        objects.append((spec.output_bucket, f"output/{name}/output/model.tar.gz",
                        spec.artifact_bytes))  # fmt: skip
    for relative, size in spec.output_files.items():
        objects.append((spec.output_bucket, f"output/{name}/{relative}", size))
    if spec.checkpoint_bytes:
        bucket = spec.checkpoint_bucket or spec.output_bucket
        objects.append((bucket, f"checkpoints/{name}/checkpoint-1.pt", spec.checkpoint_bytes))
    return objects


def _put_artifacts_api(s3: Any, region: str, name: str, spec: JobSpec) -> None:
    for bucket, key, size in _artifact_objects(name, spec):
        ensure_bucket(s3, bucket, region)
        s3.put_object(Bucket=bucket, Key=key, Body=b"\0" * size)


def ensure_bucket(s3: Any, bucket: str, region: str) -> None:
    """Create ``bucket`` unless this account already has it."""
    existing = {b["Name"] for b in s3.list_buckets().get("Buckets", [])}
    if bucket in existing:
        return
    if region == "us-east-1":
        s3.create_bucket(Bucket=bucket)
    else:
        s3.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": region})


def _put_artifacts_backend(account_id: str, region: str, name: str, spec: JobSpec) -> None:
    objects = _artifact_objects(name, spec)
    if not objects:
        return
    from moto.s3.models import s3_backends

    backend = s3_backends[account_id]["aws"]
    for bucket, key, size in objects:
        if bucket not in backend.buckets:
            backend.create_bucket(bucket, region)
        backend.put_object(bucket, key, b"\0" * size)


def _backend(account_id: str, region: str) -> Any:
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
