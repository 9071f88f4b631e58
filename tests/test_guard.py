"""Launch guardrails (issue 15, docs/guardrails.md): the worst case of a CreateTrainingJob
request, the team's budgets, and the three modes, with boto3 against moto.

The fixture world (``world``), now 2026-12-31 12:00 UTC, rate ml.g5.12xlarge $10/h (overrides
file), ml.m5.xlarge $0.23/h (shipped price book):

    | budget       | scope     | amount  | spent in December                          | forecast |
    |--------------|-----------|---------|--------------------------------------------|----------|
    | nlp-monthly  | team nlp  | $100.00 | "spent": 12-31 00:00-04:00, 1 x $10 = $40  | $40.00   |

The run rate reads the 7 whole days before today (12-24..12-30): nothing finished then, so the
forecast is the actual, $40.00, and the room is $100 - $40 = $60.00.

    | request                                  | worst case                            |
    |------------------------------------------|---------------------------------------|
    | 1 x ml.g5.12xlarge, MaxRuntime 5 h       | 5 x 10 = $50.00 (fits: 40 + 50 <= 100) |
    | 1 x ml.g5.12xlarge, MaxRuntime 7 h       | 7 x 10 = $70.00 (40 + 70 > 100)         |
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws

import tracker.guard
from tests.conftest import run_cli
from tests.factories import make_job
from tracker.cli.main import main
from tracker.cost.engine import CostPolicy, cost_job
from tracker.errors import ConfigError
from tracker.estimate.rules import ESTIMATE_ID_TAG, ESTIMATE_USD_TAG
from tracker.guard import GuardrailRefused
from tracker.guard.rules import request_job, worst_case
from tracker.records import Rates
from tracker.settings import Settings, load_settings
from tracker.store.database import Store
from tracker.store.estimates import EstimateRepository

NOW = datetime(2026, 12, 31, 12, 0, tzinfo=UTC)
ROLE = "arn:aws:iam::123456789012:role/sagemaker"
IMAGE = "123456789012.dkr.ecr.us-east-1.amazonaws.com/train:latest"


@dataclass
class World:
    config: Path
    settings: Settings
    store: Store


def write_config(tmp_path: Path, guard: str = "") -> Path:
    (tmp_path / "over.csv").write_text(
        "region,instance_type,usd_per_hour\nus-east-1,ml.g5.12xlarge,10.00\n"
    )
    config = tmp_path / "tracker.toml"
    config.write_text(
        f'[database]\nurl = "sqlite:///{tmp_path}/t.db"\n'
        '[pricing]\noverrides = "over.csv"\n'
        '[[budgets]]\nname = "nlp-monthly"\nteam = "nlp"\namount_usd = 100\n' + guard
    )
    return config


@pytest.fixture
def world(tmp_path: Path) -> World:
    config = write_config(tmp_path)
    settings = load_settings(str(config))
    store = Store.open(settings.database_url)
    spent = make_job(
        "spent",
        team="nlp",
        instance_type="ml.g5.12xlarge",
        start_time=datetime(2026, 12, 31, 0, 0, tzinfo=UTC),
        seconds=4 * 3600,
    )
    rates = Rates(hourly={"ml.g5.12xlarge": Decimal(10)})
    store.save_jobs([(spent, cost_job(spent, rates, NOW, CostPolicy()), {})], NOW)
    return World(config, settings, store)


def request(name: str, hours: int, *, team: str = "nlp", **extra: Any) -> dict[str, Any]:
    tags = [{"Key": "team", "Value": team}, *extra.pop("tags", [])]
    return {
        "TrainingJobName": name,
        "AlgorithmSpecification": {"TrainingImage": IMAGE, "TrainingInputMode": "File"},
        "RoleArn": ROLE,
        "OutputDataConfig": {"S3OutputPath": "s3://bucket/out"},
        "ResourceConfig": {"InstanceType": "ml.g5.12xlarge", "InstanceCount": 1,
                           "VolumeSizeInGB": 50},
        "StoppingCondition": {"MaxRuntimeInSeconds": hours * 3600},
        "Tags": tags,
        **extra,
    }  # fmt: skip


def job_names(client: Any) -> list[str]:
    return [j["TrainingJobName"] for j in client.list_training_jobs()["TrainingJobSummaries"]]


def sent_counter(client: Any) -> list[str]:
    """Every request the client sends, by operation (botocore's before-send event)."""
    sent: list[str] = []
    client.meta.events.register(
        "before-send.sagemaker", lambda request, **_: sent.append(request.url)
    )
    return sent


# -- the worst case (pure) ---------------------------------------------------------------------
def worst_usd(settings: Settings, params: dict[str, Any]) -> Decimal:
    job = request_job(params, "us-east-1", settings.attribution, NOW)
    return worst_case(job, settings.price_book(), NOW, settings.cost_policy()).total_usd


def test_worst_case_prices_max_runtime_on_every_instance(world: World) -> None:
    """2 x $10/h x 3 h = $60.00; ml.g5 has local NVMe storage, so no volume charge."""
    params = request("two", 3, ResourceConfig={"InstanceType": "ml.g5.12xlarge",
                                               "InstanceCount": 2, "VolumeSizeInGB": 50})  # fmt: skip
    assert worst_usd(world.settings, params) == Decimal("60.00")


def test_worst_case_of_spot_job_is_its_max_runtime_not_its_wait(world: World) -> None:
    """Spot: MaxRuntime 2 h, MaxWait 10 h -> billed at most 2 h: 2 x $10 = $20.00."""
    params = request(
        "spot",
        2,
        EnableManagedSpotTraining=True,
        StoppingCondition={"MaxRuntimeInSeconds": 7200, "MaxWaitTimeInSeconds": 36000},
    )
    assert worst_usd(world.settings, params) == Decimal("20.00")


def test_worst_case_adds_the_warm_pool_keep_alive(world: World) -> None:
    """MaxRuntime 1 h + KeepAlivePeriod 30 min, 1 x $10/h = $10.00 + $5.00 = $15.00."""
    params = request("warm", 1, ResourceConfig={"InstanceType": "ml.g5.12xlarge",
                                                "InstanceCount": 1, "KeepAlivePeriodInSeconds": 1800})  # fmt: skip
    assert worst_usd(world.settings, params) == Decimal("15.00")


def test_worst_case_sums_heterogeneous_instance_groups(world: World) -> None:
    """2 x ml.g5.12xlarge ($10) + 1 x ml.m5.xlarge ($0.23), 1 h = $20.23."""
    groups = [
        {"InstanceGroupName": "gpu", "InstanceType": "ml.g5.12xlarge", "InstanceCount": 2},
        {"InstanceGroupName": "cpu", "InstanceType": "ml.m5.xlarge", "InstanceCount": 1},
    ]
    params = request("hetero", 1, ResourceConfig={"InstanceGroups": groups})
    assert worst_usd(world.settings, params) == Decimal("20.23")


# -- the modes, boto3 against moto -------------------------------------------------------------
@mock_aws
def test_guard_warn_logs_worst_case_and_room_and_sends_the_job(
    world: World, caplog: pytest.LogCaptureFixture
) -> None:
    client = boto3.client("sagemaker", region_name="us-east-1")
    tracker.guard.install(client, config=world.settings, mode="warn", clock=lambda: NOW)
    with caplog.at_level(logging.INFO, logger="tracker.guard"):
        client.create_training_job(**request("big", 7))
    assert job_names(client) == ["big"]
    [line] = [r.getMessage() for r in caplog.records if r.name == "tracker.guard"]
    assert "worst case $70.00" in line
    assert (
        "budget nlp-monthly has $60.00 of room ($100.00, forecast $40.00): would exceed it" in line
    )


@mock_aws
def test_guard_refuse_raises_before_any_aws_call(world: World) -> None:
    session = boto3.Session(region_name="us-east-1")
    tracker.guard.install(session, config=world.settings, mode="refuse", clock=lambda: NOW)
    client = session.client("sagemaker")  # made after install: covered
    sent = sent_counter(client)
    with pytest.raises(GuardrailRefused) as refused:
        client.create_training_job(**request("big", 7))
    assert sent == []
    message = str(refused.value)
    assert "budget nlp-monthly has $60.00 of room" in message
    assert "worst case $70.00" in message
    assert "tag it tracker:guard-override=<who approved it>" in message
    assert isinstance(refused.value, Exception) and refused.value.exit_code == 3
    assert job_names(client) == []


@mock_aws
def test_guard_refuse_lets_a_job_that_fits_through(world: World) -> None:
    client = boto3.client("sagemaker", region_name="us-east-1")
    tracker.guard.install(client, config=world.settings, mode="refuse", clock=lambda: NOW)
    client.create_training_job(**request("fits", 5))
    assert job_names(client) == ["fits"]


@mock_aws
def test_guard_refuse_lets_an_approved_job_through_with_the_override_tag(
    world: World, caplog: pytest.LogCaptureFixture
) -> None:
    client = boto3.client("sagemaker", region_name="us-east-1")
    tracker.guard.install(client, config=world.settings, mode="refuse", clock=lambda: NOW)
    override = [{"Key": "tracker:guard-override", "Value": "cfo-ticket-42"}]
    with caplog.at_level(logging.WARNING, logger="tracker.guard"):
        client.create_training_job(**request("approved", 7, tags=override))
    assert job_names(client) == ["approved"]
    assert "allowed by override tag tracker:guard-override=cfo-ticket-42" in caplog.text


@mock_aws
def test_guard_refuse_ignores_other_teams_budgets(world: World) -> None:
    client = boto3.client("sagemaker", region_name="us-east-1")
    tracker.guard.install(client, config=world.settings, mode="refuse", clock=lambda: NOW)
    client.create_training_job(**request("cv-big", 50, team="cv"))
    assert job_names(client) == ["cv-big"]


@mock_aws
def test_guard_require_estimate_tags_the_job_and_records_the_estimate(world: World) -> None:
    client = boto3.client("sagemaker", region_name="us-east-1")
    tracker.guard.install(client, config=world.settings, mode="require-estimate", clock=lambda: NOW)
    client.create_training_job(**request("tagged", 5))
    arn = client.describe_training_job(TrainingJobName="tagged")["TrainingJobArn"]
    tags = {t["Key"]: t["Value"] for t in client.list_tags(ResourceArn=arn)["Tags"]}
    assert tags[ESTIMATE_USD_TAG] == "50.00"
    assert tags["team"] == "nlp"
    [recorded] = EstimateRepository(world.store).recorded()
    assert recorded.estimate_id == tags[ESTIMATE_ID_TAG]
    assert recorded.usd == Decimal("50.00")
    assert recorded.job_name == "tagged"


@mock_aws
def test_guard_team_mode_in_config_wins_over_install_mode(tmp_path: Path) -> None:
    config = write_config(tmp_path, '[guard]\nmode = "warn"\n[guard.teams]\nnlp = "refuse"\n')
    settings = load_settings(str(config))
    client = boto3.client("sagemaker", region_name="us-east-1")
    tracker.guard.install(client, config=settings, mode="warn", clock=lambda: NOW)
    with pytest.raises(GuardrailRefused, match="worst case \\$110.00"):
        client.create_training_job(**request("too-big", 11))
    assert job_names(client) == []


@mock_aws
def test_install_on_a_client_covers_only_that_client(world: World) -> None:
    guarded = boto3.client("sagemaker", region_name="us-east-1")
    other = boto3.client("sagemaker", region_name="us-east-1")
    tracker.guard.install(guarded, config=world.settings, mode="refuse", clock=lambda: NOW)
    with pytest.raises(GuardrailRefused):
        guarded.create_training_job(**request("big", 7))
    other.create_training_job(**request("big", 7))
    assert job_names(other) == ["big"]


def test_install_refuses_a_target_that_is_not_a_session_or_sagemaker_client(
    world: World,
) -> None:
    with pytest.raises(TypeError, match="expected a boto3 Session"):
        tracker.guard.install(object(), config=world.settings)
    s3 = boto3.client("s3", region_name="us-east-1")
    with pytest.raises(TypeError, match="a s3 client cannot create training jobs"):
        tracker.guard.install(s3, config=world.settings)


# -- [guard] -----------------------------------------------------------------------------------
def test_guard_section_reports_every_problem(tmp_path: Path) -> None:
    config = write_config(
        tmp_path,
        '[guard]\nmode = "block"\noverride_tag = ""\ncolour = 1\n[guard.teams]\nnlp = "stop"\n',
    )
    with pytest.raises(ConfigError) as error:
        load_settings(str(config)).guard  # noqa: B018
    problems = " | ".join(error.value.problems)
    for key in ("guard.mode", "guard.override_tag", "guard.colour", "guard.teams.nlp"):
        assert key in problems


# -- tracker guard check -----------------------------------------------------------------------
def check(world: World, *args: str) -> int:
    return main(["--config", str(world.config), "guard", "check", *args])


def test_cli_guard_check_allows_a_job_that_fits(
    world: World, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TRACKER_NOW", NOW.isoformat())
    code = check(world, "--instance-type", "ml.g5.12xlarge", "--max-runtime-hours", "5",
                 "--team", "nlp", "--mode", "refuse")  # fmt: skip
    assert code == 0
    assert capsys.readouterr().out == (
        "allowed (refuse): training job guard-check (team nlp): worst case $50.00 "
        "(1 x ml.g5.12xlarge for 5 h); budget nlp-monthly has $60.00 of room ($100.00, "
        "forecast $40.00): fits\n"
    )


def test_cli_guard_check_bad_input_exits_2(
    world: World, capsys: pytest.CaptureFixture[str]
) -> None:
    assert check(world, "--instance-type", "ml.g5.12xlarge", "--max-runtime-hours", "0") == 2
    assert capsys.readouterr().err.startswith("Error: --max-runtime-hours 0")


def test_cli_guard_check_refused_exits_3_with_one_error_line(world: World) -> None:
    result = run_cli(
        "--config", str(world.config), "guard", "check", "--instance-type", "ml.g5.12xlarge",
        "--count", "2", "--max-runtime-hours", "3.5", "--spot", "--team", "nlp", "--mode", "refuse",
        env={"TRACKER_NOW": NOW.isoformat()},
    )  # fmt: skip
    assert result.returncode == 3, result.stderr
    assert result.stdout == ""
    assert result.stderr == (
        "Error: refused by the launch guardrail: training job guard-check (team nlp): worst "
        "case $70.00 (2 x ml.g5.12xlarge for 3.5 h); budget nlp-monthly has $60.00 of room "
        "($100.00, forecast $40.00): would exceed it; to launch it anyway, tag it "
        "tracker:guard-override=<who approved it>\n"
    )


def test_guard_lets_a_request_it_cannot_price_through_and_says_so(
    world: World, caplog: pytest.LogCaptureFixture
) -> None:
    from tracker.guard.service import guard_request

    serverless = {"TrainingJobName": "tokens", "Tags": [{"Key": "team", "Value": "nlp"}],
                  "ServerlessJobConfig": {"BaseModelArn": "arn:aws:sagemaker:us-east-1:aws:hub-content/x"}}  # fmt: skip
    with caplog.at_level(logging.INFO, logger="tracker.guard"):
        assert guard_request(world.settings, serverless, "us-east-1", NOW, "refuse") is None
        assert guard_request(world.settings, {"ResourceConfig": {}}, "us-east-1", NOW) is None
    assert caplog.messages == [
        "guard: serverless training job tokens: billed per token, unknown before it runs: "
        "not checked",
        "guard: CreateTrainingJob without a TrainingJobName: not checked",
    ]
