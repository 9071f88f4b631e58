"""Pure mapping of SageMaker API responses to tracker records.

DescribeTrainingJob -> :class:`JobRecord` (every field the cost rules need, and the
attribution from tags); a ListTrainingJobs summary, or a Search TrainingJob record, ->
:class:`JobSummary`. A Search record is DescribeTrainingJob's response without a few fields
(:data:`DESCRIBE_ONLY_FIELDS`) plus ``Tags``: :func:`search_record_parts` splits it into the
two, and :func:`needs_describe` says when the missing fields matter. No boto3,
no database. Datetimes come out aware UTC (naive input is UTC, other zones converted);
a field AWS did not send is None, never invented; unknown statuses are kept as sent.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import ROUND_HALF_UP, Decimal
from typing import Any, Protocol

from tracker.errors import TrackerError
from tracker.records import (
    TEAM_FROM_TAG,
    UNALLOCATED,
    InstanceGroup,
    JobRecord,
    decimal_or_none,
)


class Attribution(Protocol):
    """The tag keys that name a job's team, project and user (``tracker.settings.Attribution``,
    ``[attribution]``): a protocol, so that the settings can import what imports this module."""

    @property
    def team_tag(self) -> str: ...
    @property
    def project_tag(self) -> str: ...
    @property
    def user_tag(self) -> str: ...


STUDIO_USER_TAG = "sagemaker:user-profile-arn"
# The tag SageMaker Pipelines puts on every job a pipeline step starts (the SageMaker Python
# SDK's lineage module reads it back the same way: sagemaker/lineage/context.py).
PIPELINE_EXECUTION_TAG = "sagemaker:pipeline-execution-arn"
# The tags the SageMaker Python SDK puts on JumpStart training jobs
# (sagemaker/jumpstart/enums.py, ``JumpStartTag.MODEL_ID``).
JUMPSTART_MODEL_TAG = "sagemaker-sdk:jumpstart-model-id"
# Fields :func:`job_from_describe` reads that Search's TrainingJob record does not carry
# (botocore's TrainingJob vs DescribeTrainingJobResponse shapes; tests/test_search.py checks
# this against the model and docs/collection.md lists every field Search lacks).
DESCRIBE_ONLY_FIELDS = ("BillableTokenCount", "ServerlessJobConfig")
# The work a job reports, for unit costs (``report --view units``; docs/views/units.md lists
# them). Names are compared ignoring case; the first present with a usable value wins, a final
# metric (``FinalMetricDataList``: what the job reached) before a hyperparameter (what it was
# asked to run, so read only for a Completed job). Search's TrainingJob record carries both
# fields, so a searched job and a described one agree.
EPOCH_METRICS = ("epoch", "epochs")
EPOCH_HYPERPARAMETERS = (
    "epochs", "num_train_epochs", "num_epochs", "n_epochs", "max_epochs", "epoch",
)  # fmt: skip
TOKEN_METRICS = (
    "train_tokens", "training_tokens", "num_train_tokens", "num_input_tokens_seen",
    "total_tokens", "num_tokens", "tokens",
)  # fmt: skip
# Larger values are taken as a mistake, not work (and keep every sum inside 64 bits).
MAX_EPOCHS = Decimal(1_000_000)
MAX_TOKENS = Decimal(10**14)


class ResponseError(TrackerError):
    """An AWS response lacks a field every response must have, or has it in a bad form."""


@dataclass(frozen=True)
class JobSummary:
    """One row of ListTrainingJobs: enough to decide whether to describe the job."""

    name: str
    arn: str
    last_modified_time: datetime
    status: str | None = None


def to_utc(value: Any, field: str = "time") -> datetime | None:
    """A datetime or ISO 8601 text as aware UTC; naive values are taken as UTC."""
    if value is None:
        return None
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
        except ValueError:
            raise ResponseError(f"{field}: {value!r} is not an ISO 8601 time") from None
    if not isinstance(value, datetime):
        raise ResponseError(f"{field}: {value!r} is not a time")
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def summary_from_list(item: Mapping[str, Any]) -> JobSummary:
    """A TrainingJobSummary -> JobSummary (LastModifiedTime falls back to CreationTime)."""
    name = _required(item, "TrainingJobName")
    modified = to_utc(item.get("LastModifiedTime"), "LastModifiedTime") or to_utc(
        item.get("CreationTime"), "CreationTime"
    )
    if modified is None:
        raise ResponseError(f"training job {name}: summary has no LastModifiedTime")
    return JobSummary(
        name=name,
        arn=_required(item, "TrainingJobArn"),
        last_modified_time=modified,
        status=item.get("TrainingJobStatus"),
    )


def search_record_parts(record: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, str]]:
    """A Search TrainingJob record -> (the record as a describe response, its tags)."""
    desc = {k: v for k, v in record.items() if k != "Tags"}
    return desc, tags_from_list(record.get("Tags"))


def tags_from_list(tags: Any) -> dict[str, str]:
    """``[{"Key": k, "Value": v}, ...]`` -> ``{k: v}``, as GetResources and ListTags give them."""
    if not isinstance(tags, list):
        return {}
    return {t["Key"]: t.get("Value", "") for t in tags if isinstance(t, Mapping) and "Key" in t}


def needs_describe(record: Mapping[str, Any]) -> bool:
    """True when a Search record may be a serverless job, whose cost needs the fields Search
    lacks (``ServerlessJobConfig``, ``BillableTokenCount``).

    Search cannot say "serverless" itself; an instance job always names its instances in
    ``ResourceConfig`` (``InstanceType``, ``InstanceGroups`` or ``InstancePreferences``), a
    serverless job has no ResourceConfig. Anything else is described, to be safe.
    """
    resources = _dict(record.get("ResourceConfig"))
    return not any(
        resources.get(key) for key in ("InstanceType", "InstanceGroups", "InstancePreferences")
    )


def job_from_describe(
    desc: Mapping[str, Any],
    account_id: str,
    region: str,
    tags: Mapping[str, str],
    artifact_bytes: int,
    attribution: Attribution,
) -> JobRecord:
    """A DescribeTrainingJob response (plus tags and measured bytes) -> JobRecord."""
    name = _required(desc, "TrainingJobName")
    resources = _dict(desc.get("ResourceConfig"))
    warm_pool = _dict(desc.get("WarmPoolStatus"))
    stopping = _dict(desc.get("StoppingCondition"))
    creation = to_utc(desc.get("CreationTime"), "CreationTime")
    modified = to_utc(desc.get("LastModifiedTime"), "LastModifiedTime")
    if creation is None and modified is None:
        raise ResponseError(f"training job {name}: neither CreationTime nor LastModifiedTime")
    team, project, user = attribute(tags, attribution)
    team_source = UNALLOCATED if team == UNALLOCATED else TEAM_FROM_TAG
    preference = _selected_preference(resources)
    serverless = desc.get("ServerlessJobConfig")
    return JobRecord(
        account_id=account_id,
        region=region,
        name=name,
        arn=_required(desc, "TrainingJobArn"),
        status=str(desc.get("TrainingJobStatus") or "Unknown"),
        creation_time=creation or modified,
        last_modified_time=modified or creation,
        start_time=to_utc(desc.get("TrainingStartTime"), "TrainingStartTime"),
        end_time=to_utc(desc.get("TrainingEndTime"), "TrainingEndTime"),
        secondary_status=desc.get("SecondaryStatus"),
        failure_reason=desc.get("FailureReason"),
        instance_type=resources.get("InstanceType"),
        instance_count=_int(resources.get("InstanceCount")),
        selected_instance_type=resources.get("SelectedInstanceType"),
        selected_instance_count=_int(resources.get("SelectedInstanceCount"))
        or _int(preference.get("InstanceCount")),
        instance_groups=_groups(resources.get("InstanceGroups")),
        volume_gb=_int(resources.get("VolumeSizeInGB")) or 0,
        spot=bool(desc.get("EnableManagedSpotTraining", False)),
        billable_seconds=_int(desc.get("BillableTimeInSeconds")),
        training_seconds=_int(desc.get("TrainingTimeInSeconds")),
        warm_pool_status=warm_pool.get("Status"),
        warm_pool_retained_seconds=_int(warm_pool.get("ResourceRetainedBillableTimeInSeconds")),
        warm_pool_reused_by=warm_pool.get("ReusedByJob"),
        keep_alive_seconds=_int(resources.get("KeepAlivePeriodInSeconds")),
        training_plan_arn=resources.get("TrainingPlanArn")
        or _first(preference, "TrainingPlanArns"),
        # The config, not BillableTokenCount (which instance jobs may carry as 0), marks a
        # serverless job; BaseModelArn is required in it, "" keeps a malformed one serverless.
        serverless_base_model_arn=(
            str(_dict(serverless).get("BaseModelArn") or "")
            if isinstance(serverless, Mapping)
            else None
        ),
        billable_token_count=_int(desc.get("BillableTokenCount")),
        max_runtime_seconds=_int(stopping.get("MaxRuntimeInSeconds")),
        max_wait_seconds=_int(stopping.get("MaxWaitTimeInSeconds")),
        model_artifact_uri=_dict(desc.get("ModelArtifacts")).get("S3ModelArtifacts"),
        output_path_uri=_dict(desc.get("OutputDataConfig")).get("S3OutputPath"),
        checkpoint_uri=_dict(desc.get("CheckpointConfig")).get("S3Uri"),
        artifact_bytes=int(artifact_bytes),
        tags=dict(tags),
        team=team,
        project=project,
        user=user,
        team_source=team_source,
        role_arn=desc.get("RoleArn") if isinstance(desc.get("RoleArn"), str) else None,
        **lineage(desc, tags),
        **work_units(desc),
    )


def work_units(desc: Mapping[str, Any]) -> dict[str, int | None]:
    """The work a DescribeTrainingJob (or Search) record reports: ``milli_epochs`` (thousandths
    of an epoch) and ``train_tokens``; None when it does not say.

    Epochs: the final metric :data:`EPOCH_METRICS`, else (a Completed job only) the
    hyperparameter :data:`EPOCH_HYPERPARAMETERS`. Tokens: the final metric
    :data:`TOKEN_METRICS`, else a serverless job's ``BillableTokenCount``. HyperParameters is
    a map of strings and the SageMaker Python SDK JSON-encodes each value, so the texts
    ``3``, ``3.0`` and ``"3"`` (quotes included) all read 3. Anything not a finite positive
    number (up to :data:`MAX_EPOCHS` epochs or :data:`MAX_TOKENS` tokens) is absent.
    """
    metrics = _final_metrics(desc.get("FinalMetricDataList"))
    epochs = _named(metrics, EPOCH_METRICS, MAX_EPOCHS)
    if epochs is None and desc.get("TrainingJobStatus") == "Completed":
        epochs = _named(
            _hyperparameters(desc.get("HyperParameters")), EPOCH_HYPERPARAMETERS, MAX_EPOCHS
        )
    tokens = _named(metrics, TOKEN_METRICS, MAX_TOKENS)
    if tokens is None and isinstance(desc.get("ServerlessJobConfig"), Mapping):
        tokens = _positive(desc.get("BillableTokenCount"), MAX_TOKENS)
    return {
        "milli_epochs": _whole(epochs * 1000) if epochs is not None else None,
        "train_tokens": _whole(tokens) if tokens is not None else None,
    }


def _final_metrics(value: Any) -> dict[str, Any]:
    """``[{"MetricName": n, "Value": v, ...}]`` -> ``{n lower-cased: v}`` (first kept)."""
    found: dict[str, Any] = {}
    for metric in value if isinstance(value, list) else []:
        if isinstance(metric, Mapping) and isinstance(metric.get("MetricName"), str):
            found.setdefault(metric["MetricName"].strip().lower(), metric.get("Value"))
    return found


def _hyperparameters(value: Any) -> dict[str, Any]:
    """HyperParameters with lower-cased names and values JSON-decoded when they are JSON
    strings (the SDK's ``json.dumps("3")`` is ``"3"`` with its quotes)."""
    found: dict[str, Any] = {}
    for name, text in _dict(value).items():
        if isinstance(name, str) and isinstance(text, str):
            stripped = text.strip()
            if len(stripped) >= 2 and stripped[0] == stripped[-1] == '"':
                try:
                    stripped = json.loads(stripped)
                except ValueError:
                    continue
            found.setdefault(name.strip().lower(), stripped)
    return found


def _named(values: Mapping[str, Any], names: tuple[str, ...], high: Decimal) -> Decimal | None:
    """The value of the first of ``names`` present in ``values`` with a usable number."""
    for name in names:
        number = _positive(values.get(name), high)
        if number is not None:
            return number
    return None


def _positive(value: Any, high: Decimal) -> Decimal | None:
    """A finite number above 0 and at most ``high`` (numbers, or numeric text), else None."""
    number = decimal_or_none(value.strip() if isinstance(value, str) else value)
    return number if number is not None and 0 < number <= high else None


def _whole(number: Decimal) -> int | None:
    """Rounded half up to a whole number; None when that is 0 (too small to count)."""
    whole = int(number.quantize(Decimal(1), rounding=ROUND_HALF_UP))
    return whole or None


def lineage(desc: Mapping[str, Any], tags: Mapping[str, str]) -> dict[str, str | None]:
    """What produced a job, as names, from its DescribeTrainingJob (or Search) record and tags.

    ``tuning_job`` and ``automl_job`` name the job in ``TuningJobArn``/``AutoMLJobArn``;
    ``pipeline`` and ``pipeline_execution`` come from the Pipelines tag
    (``arn:...:pipeline/<pipeline>/execution/<id>`` -> ``<pipeline>`` and
    ``<pipeline>/<id>``); ``experiment`` and ``trial`` from ``ExperimentConfig``;
    ``base_model`` from the JumpStart model-id tag, else ``ServerlessJobConfig.BaseModelArn``
    (its hub-content model name). Anything absent or malformed is None.
    """
    experiment = _dict(desc.get("ExperimentConfig"))
    pipeline, execution = _pipeline_execution(tags.get(PIPELINE_EXECUTION_TAG))
    return {
        "tuning_job": _arn_name(desc.get("TuningJobArn"), "hyper-parameter-tuning-job/"),
        "automl_job": _arn_name(desc.get("AutoMLJobArn"), "automl-job/"),
        "pipeline": pipeline,
        "pipeline_execution": execution,
        "experiment": _text(experiment.get("ExperimentName")),
        "trial": _text(experiment.get("TrialName")),
        "base_model": _tag(tags, JUMPSTART_MODEL_TAG)
        or _base_model(_dict(desc.get("ServerlessJobConfig")).get("BaseModelArn")),
    }


def _text(value: Any) -> str | None:
    return value.strip() or None if isinstance(value, str) else None


def _arn_name(arn: Any, resource: str) -> str | None:
    """The name in ``arn:aws:sagemaker:<region>:<account>:<resource><name>``, else None."""
    text = _text(arn)
    if text is None or f":{resource}" not in text:
        return None
    return text.split(f":{resource}", 1)[1].strip("/") or None


def _pipeline_execution(arn: Any) -> tuple[str | None, str | None]:
    """(pipeline, ``pipeline/execution id``) of a pipeline execution ARN."""
    rest = _arn_name(arn, "pipeline/")
    if rest is None or "/execution/" not in rest:
        return None, None
    pipeline, execution_id = rest.split("/execution/", 1)
    if not pipeline or not execution_id:
        return None, None
    return pipeline, f"{pipeline}/{execution_id}"


def _base_model(arn: Any) -> str | None:
    """The model of a hub-content ARN (``.../hub-content/<hub>/Model/<model>/<version>``), else
    the ARN's last path part."""
    text = _text(arn)
    if text is None:
        return None
    parts = [part for part in text.split(":", 5)[-1].split("/") if part]
    if "Model" in parts[:-1]:
        return parts[parts.index("Model") + 1]
    return parts[-1] if parts else None


def attribute(
    tags: Mapping[str, str], attribution: Attribution
) -> tuple[str, str | None, str | None]:
    """(team, project, user) from the configured tag keys.

    Values are stripped and an empty value counts as missing. Without a user tag the
    user is the profile name ending SageMaker Studio's ``sagemaker:user-profile-arn``;
    without a team tag the team is ``unallocated``.
    """
    team = _tag(tags, attribution.team_tag) or UNALLOCATED
    project = _tag(tags, attribution.project_tag)
    user = _tag(tags, attribution.user_tag) or _studio_user(tags.get(STUDIO_USER_TAG))
    return team, project, user


def _studio_user(profile_arn: str | None) -> str | None:
    # arn:aws:sagemaker:us-east-1:111122223333:user-profile/d-xxxxxxxx/alice -> alice
    if not profile_arn:
        return None
    return profile_arn.strip().rstrip("/").rsplit("/", 1)[-1].strip() or None


def _tag(tags: Mapping[str, str], key: str) -> str | None:
    value = tags.get(key)
    return value.strip() or None if isinstance(value, str) else None


def _required(data: Mapping[str, Any], key: str) -> str:
    value = data.get(key)
    if not isinstance(value, str) or not value:
        raise ResponseError(f"{key}: missing from the AWS response (got {value!r})")
    return value


def _dict(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _selected_preference(resources: Mapping[str, Any]) -> Mapping[str, Any]:
    """The InstancePreferences entry SageMaker launched: the API marks it only by
    ``SelectedInstanceType`` (a type appears at most once in the list)."""
    selected = resources.get("SelectedInstanceType")
    preferences = resources.get("InstancePreferences")
    if not selected or not isinstance(preferences, list):
        return {}
    for preference in preferences:
        if isinstance(preference, Mapping) and preference.get("InstanceType") == selected:
            return preference
    return {}


def _first(data: Mapping[str, Any], key: str) -> str | None:
    """The first non-empty text of a list field (TrainingPlanArns), else None."""
    values = data.get(key)
    if not isinstance(values, list):
        return None
    return next((v for v in values if isinstance(v, str) and v), None)


def _int(value: Any) -> int | None:
    """Whole numbers AWS sends as int (or numeric text); anything else is unknown."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return int(value) if value.is_integer() else None
    if isinstance(value, str):
        try:
            return int(value.strip())
        except ValueError:
            return None
    return None


def _groups(value: Any) -> tuple[InstanceGroup, ...]:
    if not isinstance(value, list):
        return ()
    return tuple(
        InstanceGroup(
            instance_type=str(group.get("InstanceType") or ""),
            count=_int(group.get("InstanceCount")) or 0,
            name=str(group.get("InstanceGroupName") or ""),
        )
        for group in value
        if isinstance(group, Mapping)
    )
