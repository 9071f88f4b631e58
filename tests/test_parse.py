"""tracker.collect.parse: DescribeTrainingJob and ListTrainingJobs responses -> records (pure)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal

import pytest

from tracker.collect.parse import (
    ResponseError,
    attribute,
    job_from_describe,
    summary_from_list,
    to_utc,
)
from tracker.cost.engine import cost_job
from tracker.records import UNALLOCATED, InstanceGroup, Rates, cents
from tracker.settings import Attribution

ARN = "arn:aws:sagemaker:us-east-1:111122223333:training-job/llm-ft-7"
STUDIO = "arn:aws:sagemaker:us-east-1:111122223333:user-profile/d-abc123/alice"
ATTR = Attribution()
NOW = datetime(2026, 3, 2, tzinfo=UTC)


def describe(**overrides):
    """A DescribeTrainingJob response shaped as boto3 returns it (aware datetimes)."""
    base = {
        "TrainingJobName": "llm-ft-7",
        "TrainingJobArn": ARN,
        "TrainingJobStatus": "Completed",
        "SecondaryStatus": "Completed",
        "CreationTime": datetime(2026, 3, 1, 8, 55, tzinfo=UTC),
        "TrainingStartTime": datetime(2026, 3, 1, 9, 0, tzinfo=UTC),
        "TrainingEndTime": datetime(2026, 3, 1, 11, 0, tzinfo=UTC),
        "LastModifiedTime": datetime(2026, 3, 1, 11, 1, tzinfo=UTC),
        "ResourceConfig": {
            "InstanceType": "ml.g5.2xlarge",
            "InstanceCount": 2,
            "VolumeSizeInGB": 50,
            "KeepAlivePeriodInSeconds": 1800,
        },
        "EnableManagedSpotTraining": True,
        "TrainingTimeInSeconds": 7200,
        "BillableTimeInSeconds": 2880,
        "StoppingCondition": {"MaxRuntimeInSeconds": 86400, "MaxWaitTimeInSeconds": 172800},
        "ModelArtifacts": {"S3ModelArtifacts": "s3://b/out/llm-ft-7/output/model.tar.gz"},
        "OutputDataConfig": {"S3OutputPath": "s3://b/out"},
        "CheckpointConfig": {"S3Uri": "s3://b/ckpt/llm-ft-7", "LocalPath": "/opt/ml/checkpoints"},
        "WarmPoolStatus": {
            "Status": "Reused",
            "ResourceRetainedBillableTimeInSeconds": 600,
            "ReusedByJob": "llm-ft-8",
        },
    }
    base.update(overrides)
    return {k: v for k, v in base.items() if v is not None}


def test_parse_job_maps_every_field_of_a_spot_job():
    tags = {"team": " nlp ", "project": "llm", "owner": "bob"}
    job = job_from_describe(describe(), "111122223333", "us-east-1", tags, 4096, ATTR)

    assert (job.account_id, job.region, job.name, job.arn) == (
        "111122223333", "us-east-1", "llm-ft-7", ARN,
    )  # fmt: skip
    assert (job.status, job.secondary_status, job.failure_reason) == (
        "Completed",
        "Completed",
        None,
    )
    assert job.creation_time == datetime(2026, 3, 1, 8, 55, tzinfo=UTC)
    assert job.start_time == datetime(2026, 3, 1, 9, 0, tzinfo=UTC)
    assert job.end_time == datetime(2026, 3, 1, 11, 0, tzinfo=UTC)
    assert job.last_modified_time == datetime(2026, 3, 1, 11, 1, tzinfo=UTC)
    assert (job.instance_type, job.instance_count, job.volume_gb) == ("ml.g5.2xlarge", 2, 50)
    assert (job.selected_instance_type, job.selected_instance_count) == (None, None)
    assert job.instance_groups == ()
    assert job.billed_groups() == (InstanceGroup("ml.g5.2xlarge", 2),)
    assert (job.spot, job.billable_seconds, job.training_seconds) == (True, 2880, 7200)
    assert (job.warm_pool_status, job.warm_pool_retained_seconds, job.warm_pool_reused_by) == (
        "Reused", 600, "llm-ft-8",
    )  # fmt: skip
    assert job.keep_alive_seconds == 1800
    assert (job.max_runtime_seconds, job.max_wait_seconds) == (86400, 172800)
    assert job.model_artifact_uri == "s3://b/out/llm-ft-7/output/model.tar.gz"
    assert job.output_path_uri == "s3://b/out"
    assert job.checkpoint_uri == "s3://b/ckpt/llm-ft-7"
    assert job.artifact_bytes == 4096
    assert job.tags == tags
    assert (job.team, job.project, job.user) == ("nlp", "llm", "bob")
    assert (job.training_plan_arn, job.serverless_base_model_arn, job.billable_token_count) == (
        None, None, None,
    )  # fmt: skip
    assert job.is_final


def test_parse_job_heterogeneous_groups_win_over_requested_type():
    groups = [
        {"InstanceType": "ml.p4d.24xlarge", "InstanceCount": 2, "InstanceGroupName": "gpu"},
        {"InstanceType": "ml.c5.4xlarge", "InstanceCount": 4, "InstanceGroupName": "data"},
    ]
    desc = describe(ResourceConfig={"InstanceGroups": groups, "VolumeSizeInGB": 100})
    job = job_from_describe(desc, "1", "us-east-1", {}, 0, ATTR)
    assert job.instance_type is None and job.instance_count is None
    assert job.instance_groups == (
        InstanceGroup("ml.p4d.24xlarge", 2, "gpu"),
        InstanceGroup("ml.c5.4xlarge", 4, "data"),
    )
    assert job.billed_groups() == job.instance_groups


def test_parse_job_selected_instance_type_is_billed():
    desc = describe(
        ResourceConfig={
            "InstanceType": "ml.g5.xlarge",
            "InstanceCount": 1,
            "SelectedInstanceType": "ml.g6.2xlarge",
            "SelectedInstanceCount": 3,
            "VolumeSizeInGB": 30,
        }
    )
    job = job_from_describe(desc, "1", "us-east-1", {}, 0, ATTR)
    assert (job.selected_instance_type, job.selected_instance_count) == ("ml.g6.2xlarge", 3)
    assert job.billed_groups() == (InstanceGroup("ml.g6.2xlarge", 3),)


def test_parse_job_training_plan_and_serverless_fields():
    plan = "arn:aws:sagemaker:us-east-1:1:training-plan/p1"
    desc = describe(
        ResourceConfig={
            "InstanceType": "ml.p5.48xlarge",
            "InstanceCount": 1,
            "TrainingPlanArn": plan,
        },
        ServerlessJobConfig={"BaseModelArn": "arn:aws:sagemaker:us-east-1:aws:hub-content/llama"},
        BillableTokenCount=12_500_000,
    )
    job = job_from_describe(desc, "1", "us-east-1", {}, 0, ATTR)
    assert job.training_plan_arn == plan
    assert job.serverless_base_model_arn == "arn:aws:sagemaker:us-east-1:aws:hub-content/llama"
    assert job.billable_token_count == 12_500_000
    assert job.is_serverless
    assert job.volume_gb == 0  # no VolumeSizeInGB sent


def test_parse_job_failed_without_times_or_billable_seconds():
    desc = {
        "TrainingJobName": "boot-fail",
        "TrainingJobArn": ARN,
        "TrainingJobStatus": "Failed",
        "FailureReason": "CapacityError: Unable to provision requested ML compute capacity",
        "CreationTime": datetime(2026, 3, 2, 7, 0, tzinfo=UTC),
        "LastModifiedTime": datetime(2026, 3, 2, 7, 9, tzinfo=UTC),
        "ResourceConfig": {"InstanceType": "ml.p4d.24xlarge", "InstanceCount": 4},
    }
    job = job_from_describe(desc, "1", "us-east-1", {}, 0, ATTR)
    assert job.status == "Failed" and job.is_final
    assert job.failure_reason.startswith("CapacityError")
    assert (job.start_time, job.end_time, job.billable_seconds, job.training_seconds) == (
        None, None, None, None,
    )  # fmt: skip
    assert (job.spot, job.volume_gb, job.warm_pool_status, job.max_runtime_seconds) == (
        False, 0, None, None,
    )  # fmt: skip
    assert (job.model_artifact_uri, job.output_path_uri, job.checkpoint_uri) == (None, None, None)
    assert (job.team, job.project, job.user) == (UNALLOCATED, None, None)


def test_parse_job_minimal_response_gives_none_not_a_crash():
    desc = {
        "TrainingJobName": "x",
        "TrainingJobArn": ARN,
        "LastModifiedTime": datetime(2026, 3, 2, tzinfo=UTC),
        "ResourceConfig": "garbage",
        "WarmPoolStatus": None,
        "BillableTimeInSeconds": "not a number",
        "TrainingTimeInSeconds": "120",
    }
    job = job_from_describe(desc, "1", "us-east-1", {}, 0, ATTR)
    assert job.status == "Unknown"
    assert job.creation_time == job.last_modified_time == datetime(2026, 3, 2, tzinfo=UTC)
    assert (job.instance_type, job.billable_seconds, job.training_seconds) == (None, None, 120)
    assert job.billed_groups() == ()


@pytest.mark.parametrize(
    "status", ["Completed", "Stopped", "Failed", "InProgress", "Deleting", "Paused"]
)
def test_parse_job_keeps_status_as_sent(status):
    job = job_from_describe(describe(TrainingJobStatus=status), "1", "us-east-1", {}, 0, ATTR)
    assert job.status == status
    assert job.is_final == (status in {"Completed", "Stopped", "Failed"})


@pytest.mark.parametrize("field", ["TrainingJobName", "TrainingJobArn"])
def test_parse_job_without_identity_raises_naming_the_field(field):
    with pytest.raises(ResponseError, match=field):
        job_from_describe(describe(**{field: None}), "1", "us-east-1", {}, 0, ATTR)


def test_parse_job_without_any_time_raises():
    with pytest.raises(ResponseError, match="CreationTime"):
        job_from_describe(
            describe(CreationTime=None, LastModifiedTime=None), "1", "us-east-1", {}, 0, ATTR
        )


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (datetime(2026, 3, 1, 12, 0), datetime(2026, 3, 1, 12, 0, tzinfo=UTC)),  # naive = UTC
        (
            datetime(2026, 3, 1, 12, 0, tzinfo=timezone(timedelta(hours=2))),
            datetime(2026, 3, 1, 10, 0, tzinfo=UTC),
        ),
        (
            datetime(2026, 3, 1, 0, 30, tzinfo=timezone(timedelta(hours=-8))),
            datetime(2026, 3, 1, 8, 30, tzinfo=UTC),
        ),
        ("2026-03-01T12:00:00Z", datetime(2026, 3, 1, 12, 0, tzinfo=UTC)),
        ("2026-03-01T12:00:00+01:00", datetime(2026, 3, 1, 11, 0, tzinfo=UTC)),
        (None, None),
    ],
)
def test_to_utc_converts_every_zone(value, expected):
    result = to_utc(value)
    assert result == expected
    if result is not None:
        assert result.utcoffset() == timedelta(0)


def test_parse_job_datetimes_from_other_zones_become_utc():
    cet = timezone(timedelta(hours=1))
    desc = describe(
        TrainingStartTime=datetime(2026, 3, 1, 10, 0, tzinfo=cet),
        TrainingEndTime=datetime(2026, 3, 1, 12, 0),  # naive: already UTC
    )
    job = job_from_describe(desc, "1", "us-east-1", {}, 0, ATTR)
    assert job.start_time == datetime(2026, 3, 1, 9, 0, tzinfo=UTC)
    assert job.end_time == datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
    assert job.start_time.tzinfo is UTC and job.end_time.tzinfo is UTC


@pytest.mark.parametrize("bad", ["yesterday", 1700000000, object()])
def test_to_utc_rejects_what_is_not_a_time(bad):
    with pytest.raises(ResponseError, match="StartTime"):
        to_utc(bad, "StartTime")


CUSTOM = Attribution(team_tag="CostCenter", project_tag="Project", user_tag="CreatedBy")


@pytest.mark.parametrize(
    ("tags", "attribution", "expected"),
    [
        ({"team": "nlp", "project": "llm", "owner": "bob"}, ATTR, ("nlp", "llm", "bob")),
        ({"team": "  vision\t", "project": " ", "owner": ""}, ATTR, ("vision", None, None)),
        ({}, ATTR, (UNALLOCATED, None, None)),
        ({"team": "   "}, ATTR, (UNALLOCATED, None, None)),
        ({"Team": "nlp"}, ATTR, (UNALLOCATED, None, None)),  # tag keys are case-sensitive
        ({"team": "nlp", "sagemaker:user-profile-arn": STUDIO}, ATTR, ("nlp", None, "alice")),
        ({"owner": "bob", "sagemaker:user-profile-arn": STUDIO}, ATTR, (UNALLOCATED, None, "bob")),
        ({"owner": " ", "sagemaker:user-profile-arn": STUDIO}, ATTR, (UNALLOCATED, None, "alice")),
        ({"sagemaker:user-profile-arn": ""}, ATTR, (UNALLOCATED, None, None)),
        (
            {"CostCenter": "ads", "Project": "ctr", "CreatedBy": "eve", "team": "ignored"},
            CUSTOM,
            ("ads", "ctr", "eve"),
        ),
    ],
)
def test_attribute_from_tags(tags, attribution, expected):
    assert attribute(tags, attribution) == expected
    job = job_from_describe(describe(), "1", "us-east-1", tags, 0, attribution)
    assert (job.team, job.project, job.user) == expected


def test_summary_from_list_converts_times_and_falls_back_to_creation_time():
    item = {
        "TrainingJobName": "a",
        "TrainingJobArn": ARN,
        "CreationTime": datetime(2026, 3, 1, 9, 0, tzinfo=timezone(timedelta(hours=1))),
        "TrainingJobStatus": "InProgress",
    }
    summary = summary_from_list(item)
    assert summary.last_modified_time == datetime(2026, 3, 1, 8, 0, tzinfo=UTC)
    assert (summary.name, summary.arn, summary.status) == ("a", ARN, "InProgress")
    item["LastModifiedTime"] = datetime(2026, 3, 1, 10, 0)
    assert summary_from_list(item).last_modified_time == datetime(2026, 3, 1, 10, 0, tzinfo=UTC)
    with pytest.raises(ResponseError, match="no LastModifiedTime"):
        summary_from_list({"TrainingJobName": "a", "TrainingJobArn": ARN})


P4D_PLAN = "arn:aws:sagemaker:us-east-1:111122223333:training-plan/p4d-flex"


def preference_job(**resource_config):
    """A flexible-instance job: InstancePreferences in priority order, SageMaker selected
    1 x ml.p4d.24xlarge (the second preference) and ran it 36,000 s."""
    return describe(
        TrainingStartTime=datetime(2026, 3, 1, 0, 0, tzinfo=UTC),
        TrainingEndTime=datetime(2026, 3, 1, 10, 0, tzinfo=UTC),
        EnableManagedSpotTraining=None,  # mutually exclusive with InstancePreferences
        TrainingTimeInSeconds=36000,
        BillableTimeInSeconds=36000,
        WarmPoolStatus=None,
        ResourceConfig={
            "VolumeSizeInGB": 200,
            "InstancePreferences": [
                {"InstanceType": "ml.p5.48xlarge", "InstanceCount": 1},
                {
                    "InstanceType": "ml.p4d.24xlarge",
                    "InstanceCount": 1,
                    "TrainingPlanArns": [P4D_PLAN],
                },
            ],  # fmt: skip
            "SelectedInstanceType": "ml.p4d.24xlarge",
            **resource_config,
        },
    )


def test_parse_job_training_plan_from_the_selected_instance_preference():
    """36,000 s on 1 x ml.p4d.24xlarge under the selected preference's plan:

    | item           | arithmetic                  | USD    |
    |----------------|-----------------------------|--------|
    | plan value     | 25.251 x 36000 / 3600       | 252.51 |
    | compute (paid) | covered by the plan         | 0.00   |
    | storage        | ml.p4d trains on NVMe       | 0.00   |
    """
    job = job_from_describe(preference_job(), "1", "us-east-1", {}, 0, ATTR)
    assert job.training_plan_arn == P4D_PLAN
    # No SelectedInstanceCount sent: the selected preference's InstanceCount is the count.
    assert job.billed_groups() == (InstanceGroup("ml.p4d.24xlarge", 1),)
    cost = cost_job(job, Rates(hourly={"ml.p4d.24xlarge": Decimal("25.251")}), NOW)
    assert (cents(cost.compute_usd), cents(cost.plan_value_usd), cents(cost.list_usd)) == (
        Decimal("0.00"), Decimal("252.51"), Decimal("0.00"),
    )  # fmt: skip
    assert "training-plan" in cost.flags


def test_parse_job_plan_of_an_unselected_preference_is_not_the_jobs():
    desc = preference_job(SelectedInstanceType="ml.p5.48xlarge", SelectedInstanceCount=1)
    job = job_from_describe(desc, "1", "us-east-1", {}, 0, ATTR)
    assert job.training_plan_arn is None
    assert job.billed_groups() == (InstanceGroup("ml.p5.48xlarge", 1),)


def test_parse_job_selected_instance_count_wins_over_the_preference_count():
    job = job_from_describe(preference_job(SelectedInstanceCount=2), "1", "us-east-1", {}, 0, ATTR)
    assert job.billed_groups() == (InstanceGroup("ml.p4d.24xlarge", 2),)


def test_parse_job_token_count_without_serverless_config_is_an_instance_job():
    job = job_from_describe(describe(BillableTokenCount=0), "1", "us-east-1", {}, 0, ATTR)
    assert job.billable_token_count == 0
    assert job.serverless_base_model_arn is None
    assert not job.is_serverless
    assert job.billed_groups() == (InstanceGroup("ml.g5.2xlarge", 2),)


def test_parse_job_serverless_config_without_tokens_is_serverless():
    desc = describe(
        ServerlessJobConfig={
            "BaseModelArn": "arn:aws:sagemaker:us-east-1:aws:hub-content/llama",
            "JobType": "FineTuning",
        }
    )
    job = job_from_describe(desc, "1", "us-east-1", {}, 0, ATTR)
    assert job.billable_token_count is None
    assert job.is_serverless
