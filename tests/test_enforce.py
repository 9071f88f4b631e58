"""Issue 15, runaway-job enforcement: ``[enforce]`` stops (or would stop) a running job past
2x its estimate exactly once through the alert ledger, alerts once, and ``tracker status``
shows it. SageMaker is moto (seeded by tracker/aws/simulate.py); moto has no
StopTrainingJob, so a botocore ``before-call`` handler on the real client counts the calls and
answers them with the real (empty) response, as botocore's Stubber does.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from moto import mock_aws

from tracker.alert.enforce import (
    EnforceSettings,
    RunningJob,
    TeamBudget,
    decide,
    has_checkpoints,
    restarts,
)
from tracker.alert.service import run_alerts
from tracker.settings import parse_settings
from tracker.store.database import Store

ACCOUNT = "123456789012"
D = Decimal


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


class Stops:
    """StopTrainingJob through a real boto3 client, every call counted and short-circuited."""

    def __init__(self) -> None:
        from tracker.aws.session import make_client

        self.calls: list[dict[str, Any]] = []
        self.client = make_client("sagemaker", "us-east-1")
        self.client.meta.events.register("before-call.sagemaker.StopTrainingJob", self._answer)

    def _answer(self, params: dict[str, Any], **_: Any) -> tuple[Any, dict[str, Any]]:
        from botocore.awsrequest import AWSResponse

        self.calls.append(json.loads(params["body"]))
        return (AWSResponse(None, 200, {}, None), {"ResponseMetadata": {"HTTPStatusCode": 200}})

    def __call__(self, name: str, region: str) -> None:
        from tracker.aws.enforce import stop_training_job

        assert region == "us-east-1"
        stop_training_job(self.client, name)


class World:
    def __init__(self, tmp: Path, mode: str) -> None:
        from tracker.aws.simulate import SimJob, clients_for, create_job

        (tmp / "overrides.csv").write_text(
            "region,instance_type,usd_per_hour,source,source_date\n"
            "us-east-1,ml.g5.2xlarge,1.00,test,2026-11-01\n"
        )
        (tmp / "tracker.toml").write_text(
            f'[database]\nurl = "sqlite:///{tmp / "run.db"}"\n'
            '[[sources]]\nname = "prod"\nregions = ["us-east-1"]\n'
            '[pricing]\noverrides = "overrides.csv"\n'
            f'[enforce]\nenabled = true\nmode = "{mode}"\n'
        )
        create_job(
            clients_for(ACCOUNT, "us-east-1"),
            SimJob("llm-sweep", ACCOUNT, "us-east-1", instance_type="ml.g5.2xlarge", count=2,
                   status="InProgress", start=at("2026-11-10T09:00:00"), max_runtime_seconds=36000,
                   tags={"team": "nlp", "tracker:estimate-usd": "4.00"}),
        )  # fmt: skip
        self.settings = parse_settings(tmp / "tracker.toml")
        self.store = Store.open(self.settings.database_url)
        self.stops = Stops()

    def tick(self, now: datetime, **kw: Any):
        from tracker.collect.service import collect

        collect(self.settings, self.store, self.settings.price_book(), clock=lambda: now)
        return run_alerts(
            self.settings, self.store, now=now, wall=lambda: now, stop=self.stops, **kw
        )


def enforced(run: Any) -> list[str]:
    """The states of this run's enforcement outcomes (the stop call, then each channel)."""
    return [o.state for o in run.outcomes if o.key.startswith("enforce:")]


@pytest.fixture
def aws() -> Iterator[None]:
    with mock_aws():
        yield


def test_stop_mode_stops_a_job_past_twice_its_estimate_exactly_once(tmp_path: Path, aws) -> None:
    """2 x $1/h since 09:00, estimate $4: $6 at 12:00 (1.5x), $10 at 14:00 (2.5x: stop).

    A second run at 14:15 (the job still InProgress in moto) neither stops nor alerts again.
    """
    world = World(tmp_path, "stop")
    assert world.tick(at("2026-11-10T12:00:00")).count("stopped") == 0
    assert world.stops.calls == []
    first = world.tick(at("2026-11-10T14:00:00"))
    assert world.stops.calls == [{"TrainingJobName": "llm-sweep"}]
    assert first.count("stopped") == 1
    [alert] = [a for a in first.alerts if a.message.kind == "enforce-stop"]
    assert alert.message.subject == (
        "Running job llm-sweep was stopped (over-estimate): cost $10.00 so far"
    )
    assert "more than 2 x its estimate of $4.00" in alert.message.text
    assert [o.state for o in first.outcomes if o.key == alert.key] == ["stopped", "sent"]
    second = world.tick(at("2026-11-10T14:15:00"))
    assert world.stops.calls == [{"TrainingJobName": "llm-sweep"}]  # still exactly one call
    assert enforced(second) == ["already-sent"]
    assert {o.state for o in second.outcomes if o.key == alert.key} == {"already-sent"}


def test_dry_run_mode_alerts_once_and_never_calls_stop(tmp_path: Path, aws) -> None:
    world = World(tmp_path, "dry-run")
    first = world.tick(at("2026-11-10T14:00:00"))
    [alert] = [a for a in first.alerts if a.message.kind == "enforce-dry-run"]
    assert alert.message.subject == (
        "Running job llm-sweep would be stopped (over-estimate): cost $10.00 so far"
    )
    assert (
        "To stop it: aws sagemaker stop-training-job --training-job-name llm-sweep "
        "--region us-east-1" in alert.message.text
    )
    assert enforced(first) == ["sent"]  # the log channel; the job rules' own alert aside
    second = world.tick(at("2026-11-10T14:30:00"))
    assert enforced(second) == ["already-sent"]
    assert world.stops.calls == []


def test_approve_mode_alert_carries_the_exact_stop_command(tmp_path: Path, aws) -> None:
    world = World(tmp_path, "approve")
    result = world.tick(at("2026-11-10T14:00:00"))
    [alert] = [a for a in result.alerts if a.message.kind == "enforce-approve"]
    assert alert.message.fields["command"] == (
        "aws sagemaker stop-training-job --training-job-name llm-sweep --region us-east-1"
    )
    assert world.stops.calls == []


def test_alerts_dry_run_flag_never_stops_in_stop_mode(tmp_path: Path, aws) -> None:
    world = World(tmp_path, "stop")
    result = world.tick(at("2026-11-10T14:00:00"), dry_run=True)
    assert result.count("would-stop") == 1
    assert world.stops.calls == []


def test_failed_stop_is_retried_next_run_and_alerts_only_after_success(tmp_path: Path, aws) -> None:
    world = World(tmp_path, "stop")
    real = world.stops
    failing: list[str] = []

    def broken(name: str, region: str) -> None:
        failing.append(name)
        raise RuntimeError("throttled")

    world.stops = broken  # type: ignore[assignment]
    first = world.tick(at("2026-11-10T14:00:00"))
    assert failing == ["llm-sweep"] and enforced(first) == ["failed"]  # no alert yet
    world.stops = real
    second = world.tick(at("2026-11-10T14:15:00"))
    assert real.calls == [{"TrainingJobName": "llm-sweep"}]
    assert enforced(second) == ["stopped", "sent"]


def test_status_lists_enforcement_stops(tmp_path: Path, aws) -> None:
    from tracker.cli.ops import render_status, status_report

    world = World(tmp_path, "stop")
    world.tick(at("2026-11-10T14:00:00"))
    report = status_report(
        world.settings, world.store, now=at("2026-11-10T14:05:00"), wall=at("2026-11-10T14:05:00")
    )
    [row] = report["enforcement"]
    assert row["job"] == "llm-sweep" and row["rule"] == "over-estimate"
    assert row["state"] == "stopped" and row["cost_usd"] == "10.00"
    assert "llm-sweep  over-estimate  stopped  $10.00" in render_status(report)


def job(**kw: Any) -> RunningJob:
    base: dict[str, Any] = dict(name="j", arn="arn:j", region="us-east-1", team="nlp",
                                cost_usd=D(10))  # fmt: skip
    return RunningJob(**{**base, **kw})


ON = EnforceSettings(enabled=True)


@pytest.mark.parametrize(
    ("running", "budgets", "settings", "rule"),
    [
        (job(estimate_usd=D(5)), [], ON, None),  # exactly 2x: not past it
        (job(estimate_usd=D("4.99")), [], ON, "over-estimate"),
        (job(estimate_usd=D("4.99")), [], EnforceSettings(), None),  # not enabled
        (job(estimate_usd=D("4.99"), exempt=True), [], ON, None),  # tracker:enforce = off
        (job(), [TeamBudget("b", "nlp", D(100), D("100.01"), "2026-11")], ON, "over-budget"),
        (job(), [TeamBudget("b", "nlp", D(100), D(100), "2026-11")], ON, None),
        (job(), [TeamBudget("b", "cv", D(1), D(5), "2026-11")], ON, None),  # another team
        (job(spot=True, restarts=4), [], ON, "spot-restarts"),
        (job(spot=True, restarts=3), [], ON, None),
        (job(spot=True, restarts=9, checkpoints=True), [], ON, None),
        (job(spot=False, restarts=9), [], ON, None),
        (job(estimate_usd=D(1)), [], EnforceSettings(True, rules=("spot-restarts",)), None),
    ],
)
def test_decide_enforcement_rules_table(running, budgets, settings, rule) -> None:
    found = decide([running], budgets, settings)
    assert [d.rule for d in found] == ([rule] if rule else [])


def test_restarts_counts_secondary_status_transitions() -> None:
    raw = {
        "SecondaryStatusTransitions": [
            {"Status": "Starting"}, {"Status": "Training"}, {"Status": "Interrupted"},
            {"Status": "Restarting"}, {"Status": "Training"}, {"Status": "Interrupted"},
            {"Status": "Restarting"}, {"Status": "Training"},
        ],
        "CheckpointConfig": {"S3Uri": "s3://b/ck"},
    }  # fmt: skip
    assert restarts(raw) == 2
    assert restarts({"SecondaryStatusTransitions": [{"Status": "Interrupted"}]}) == 1
    assert restarts({}) == 0
    assert has_checkpoints(raw) is True and has_checkpoints({}) is False


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ('mode = "kill"', "enforce.mode: must be one of dry-run, approve, stop, got 'kill'"),
        ("estimate_factor = 1e308", "enforce.estimate_factor: must be a number from 1 to 1,000"),
        ("max_spot_restarts = -1", "enforce.max_spot_restarts: must be a whole number of restarts"),
        ('rules = ["x"]', "enforce.rules: must be a list of over-estimate, over-budget"),
        ("stop = true", "enforce.stop: unknown key"),
    ],
)
def test_enforce_section_rejects_bad_values(tmp_path: Path, text: str, problem: str) -> None:
    from tracker.errors import ConfigError

    (tmp_path / "t.toml").write_text(f"[enforce]\n{text}\n")
    with pytest.raises(ConfigError) as caught:
        _ = parse_settings(tmp_path / "t.toml").enforce
    assert any(p.startswith(problem) for p in caught.value.problems), caught.value.problems
