"""Event plumbing: ``tracker events setup|teardown`` against moto, the real event's shape,
parsing the EventBridge envelope (poison cases) and the ``[events]`` settings."""

from __future__ import annotations

import json
from pathlib import Path

import boto3
import botocore.session
import pytest
from moto import mock_aws

from tracker.aws import events as aws_events
from tracker.collect.listen import PoisonMessage, parse_event
from tracker.errors import ConfigError
from tracker.settings import SectionContext, Settings, parse_events

FIXTURE = (
    Path(__file__).parent / "fixtures" / "aws" / "events" / "training-job-state-change-docs.json"
)
ACCOUNT = "123456789012"


def load_event() -> dict:
    return json.loads(FIXTURE.read_text(encoding="utf-8"))


# -- setup and teardown (moto) --------------------------------------------------------------------
@pytest.fixture
def clients():
    with mock_aws():
        session = boto3.Session()
        yield (
            session.client("events", region_name="us-east-1"),
            session.client("sqs", region_name="us-east-1"),
        )


def test_setup_events_twice_creates_once_and_finds_the_second_time(clients) -> None:
    events, sqs = clients
    first = aws_events.setup(events, sqs, ACCOUNT, "us-east-1")
    second = aws_events.setup(events, sqs, ACCOUNT, "us-east-1")

    assert first.created == [
        "queue sagemaker-spend-tracker-events-dlq", "queue sagemaker-spend-tracker-events",
        "rule sagemaker-spend-tracker-training-jobs", "target sagemaker-spend-tracker-queue",
    ]  # fmt: skip
    assert second.created == []
    assert second.found == first.created
    assert (second.queue_url, second.rule_arn) == (first.queue_url, first.rule_arn)
    assert sorted(sqs.list_queues()["QueueUrls"]) == sorted([first.queue_url, first.dlq_url])
    assert [r["Name"] for r in events.list_rules()["Rules"]] == [aws_events.RULE_NAME]
    targets = events.list_targets_by_rule(Rule=aws_events.RULE_NAME)["Targets"]
    assert [(t["Id"], t["Arn"]) for t in targets] == [(aws_events.TARGET_ID, first.queue_arn)]


def test_setup_events_sets_pattern_redrive_and_a_policy_for_the_rule_only(clients) -> None:
    events, sqs = clients
    result = aws_events.setup(events, sqs, ACCOUNT, "us-east-1")

    rule = events.describe_rule(Name=aws_events.RULE_NAME)
    assert json.loads(rule["EventPattern"]) == {
        "source": ["aws.sagemaker"], "detail-type": ["SageMaker Training Job State Change"]
    }  # fmt: skip
    attributes = sqs.get_queue_attributes(QueueUrl=result.queue_url, AttributeNames=["All"])[
        "Attributes"
    ]
    redrive = json.loads(attributes["RedrivePolicy"])
    assert (
        redrive["deadLetterTargetArn"] == f"arn:aws:sqs:us-east-1:{ACCOUNT}:{aws_events.DLQ_NAME}"
    )
    assert int(redrive["maxReceiveCount"]) == 5
    statement = json.loads(attributes["Policy"])["Statement"][0]
    assert statement["Principal"] == {"Service": "events.amazonaws.com"}
    assert statement["Action"] == "sqs:SendMessage"
    assert statement["Condition"] == {"ArnEquals": {"aws:SourceArn": result.rule_arn}}


def test_teardown_events_removes_everything_and_twice_is_harmless(clients) -> None:
    events, sqs = clients
    aws_events.setup(events, sqs, ACCOUNT, "us-east-1")
    removed = aws_events.teardown(events, sqs, ACCOUNT, "us-east-1")
    again = aws_events.teardown(events, sqs, ACCOUNT, "us-east-1")

    assert removed.removed == [
        "rule sagemaker-spend-tracker-training-jobs", "queue sagemaker-spend-tracker-events",
        "queue sagemaker-spend-tracker-events-dlq",
    ]  # fmt: skip
    assert again.removed == []
    assert sqs.list_queues().get("QueueUrls", []) == []
    assert events.list_rules()["Rules"] == []


def test_setup_events_routes_a_put_event_to_the_queue(clients) -> None:
    events, sqs = clients
    result = aws_events.setup(events, sqs, ACCOUNT, "us-east-1")
    detail = load_event()["detail"]
    events.put_events(Entries=[{"Source": "aws.sagemaker", "DetailType": aws_events.DETAIL_TYPE,
                                "Detail": json.dumps(detail)}])  # fmt: skip
    events.put_events(Entries=[{"Source": "aws.ec2", "DetailType": "EC2 Instance State-change",
                                "Detail": "{}"}])  # fmt: skip

    messages = aws_events.receive(sqs, result.queue_url, wait_seconds=0)
    assert len(messages) == 1
    assert parse_event(messages[0]["Body"]).arn == detail["TrainingJobArn"]


# -- the real event's shape -----------------------------------------------------------------------
def test_event_fixture_detail_uses_describe_training_job_members_except_tags() -> None:
    """The detail mirrors DescribeTrainingJob: every member but ``Tags`` (a map in the event,
    not in the response) is a member of botocore's DescribeTrainingJobResponse, and the three
    the listener reads are the shape's strings. Timestamps are epoch-millisecond text in the
    event, not the response's timestamps: the listener reads none of them."""
    model = botocore.session.get_session().get_service_model("sagemaker")
    shape = model.operation_model("DescribeTrainingJob").output_shape
    detail = load_event()["detail"]

    assert sorted(set(detail) - set(shape.members)) == ["Tags"]
    for name in ("TrainingJobName", "TrainingJobArn", "TrainingJobStatus"):
        assert shape.members[name].type_name == "string"
        assert isinstance(detail[name], str)
    assert detail["TrainingJobStatus"] in shape.members["TrainingJobStatus"].enum


def test_parse_event_reads_the_documented_example() -> None:
    event = parse_event(json.dumps(load_event()))

    assert event.arn == "arn:aws:sagemaker:us-east-1:123456789012:training-job/kmeans-1"
    assert event.name == "89c96cc8-dded-4739-afcc-6f1dc936701d"
    assert (event.region, event.status) == ("us-east-1", "Completed")
    assert event.time is not None and event.time.isoformat() == "2018-10-06T12:26:13+00:00"


def test_parse_event_without_a_name_takes_it_from_the_arn() -> None:
    body = load_event()
    del body["detail"]["TrainingJobName"]
    assert parse_event(json.dumps(body)).name == "kmeans-1"


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ("{not json", "not JSON"),
        ("[1, 2]", "not an EventBridge event"),
        (json.dumps({"source": "aws.ec2", "detail-type": "x", "detail": {}}), "not a SageMaker"),
        (json.dumps({"source": "aws.sagemaker", "detail-type": aws_events.DETAIL_TYPE}),
         "without a detail"),
        (json.dumps({"source": "aws.sagemaker", "detail-type": aws_events.DETAIL_TYPE,
                     "detail": {"TrainingJobArn": "arn:aws:sagemaker:us-east-1:1:endpoint/e"}}),
         "not a training job ARN"),
    ],
)  # fmt: skip
def test_parse_event_refuses_poison_with_its_reason(body: str, reason: str) -> None:
    with pytest.raises(PoisonMessage, match=reason):
        parse_event(body)


# -- [events] -------------------------------------------------------------------------------------
def parse(table: object) -> tuple[object, list[str]]:
    ctx = SectionContext(None, Path.cwd(), [])
    return parse_events(table, ctx), ctx.problems


def test_parse_events_infers_account_and_region_from_url_and_arn() -> None:
    events, problems = parse({"queues": [
        {"url": "https://sqs.eu-west-1.amazonaws.com/111122223333/q", "source": "prod"},
        "arn:aws:sqs:us-east-1:444455556666:q",
        {"url": "http://127.0.0.1:5000/123456789012/q", "region": "us-west-2"},
    ]})  # fmt: skip

    assert problems == []
    assert [(q.account_id, q.region, q.source) for q in events.queues] == [
        ("111122223333", "eu-west-1", "prod"), ("444455556666", "us-east-1", None),
        ("123456789012", "us-west-2", None),
    ]  # fmt: skip
    assert (events.wait_seconds, events.drain_messages) == (20, 10_000)


@pytest.mark.parametrize(
    ("table", "problem"),
    [
        ({"queues": "q"}, "events.queues: must be a list of 1 to 100 queues"),
        ({"queues": [{"url": "not a url"}]}, "events.queues[0].url: 'not a url' is not an SQS"),
        ({"queues": [{"url": "http://localhost/123456789012/q"}]},
         "events.queues[0].region: the URL"),
        ({"queues": [{"url": "arn:aws:sqs:us-east-1:444455556666:q", "region": "eu-west-1"}]},
         "events.queues[0].region: 'eu-west-1' disagrees with the queue's region 'us-east-1'"),
        ({"queues": ["arn:aws:sqs:us-east-1:444455556666:q"] * 2},
         "events.queues[1].url: 'arn:aws:sqs:us-east-1:444455556666:q' is listed twice"),
        ({"queues": [], "wait_seconds": 21},
         "events.wait_seconds: must be a whole number of seconds from 1 to 20"),
        ({"queues": [], "drain_messages": 0},
         "events.drain_messages: must be a whole number of messages from 1 to 1000000"),
        ({"queues": [], "poll": 1}, "events.poll: unknown key"),
    ],
)  # fmt: skip
def test_parse_events_names_the_key_of_each_mistake(table: dict, problem: str) -> None:
    _, problems = parse(table)
    assert any(p.startswith(problem) for p in problems), problems


def test_schedule_with_events_makes_the_poll_hourly_unless_collect_is_set() -> None:
    queue = {"queues": ["arn:aws:sqs:us-east-1:444455556666:q"]}
    assert Settings(document={}).schedule.collect == "*/15 * * * *"
    assert Settings(document={"events": queue}).schedule.collect == "0 * * * *"
    explicit = {"events": queue, "schedule": {"collect": "*/5 * * * *"}}
    assert Settings(document=explicit).schedule.collect == "*/5 * * * *"


def test_settings_events_bad_section_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="events.wait_seconds"):
        _ = Settings(document={"events": {"wait_seconds": 0}}).events
