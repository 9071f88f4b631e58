"""EventBridge and SQS calls of event-driven collection (docs/events.md).

``setup`` creates, idempotently, in one (account, region): a dead-letter queue, the queue
EventBridge delivers SageMaker training-job state changes to (its redrive policy sends a
message to the dead-letter queue after ``MAX_RECEIVES`` receives), the queue policy letting
the rule (and only it) send, the rule and its target. ``teardown`` removes them. The
listener's calls are :func:`receive`, :func:`delete` and :func:`queue_depth`. Every client
comes from :func:`tracker.aws.session.make_client` (through an AwsContext).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from botocore.client import BaseClient
from botocore.exceptions import ClientError

PREFIX = "sagemaker-spend-tracker"
RULE_NAME = f"{PREFIX}-training-jobs"
QUEUE_NAME = f"{PREFIX}-events"
DLQ_NAME = f"{PREFIX}-events-dlq"
TARGET_ID = f"{PREFIX}-queue"
SOURCE = "aws.sagemaker"
DETAIL_TYPE = "SageMaker Training Job State Change"
EVENT_PATTERN = {"source": [SOURCE], "detail-type": [DETAIL_TYPE]}
MAX_RECEIVES = 5  # a message received this often without being deleted goes to the DLQ
VISIBILITY_SECONDS = 120  # a batch is collected and committed well within this
RETENTION_SECONDS = 1_209_600  # 14 days, SQS's longest
WAIT_SECONDS = 20  # SQS's longest long poll
BATCH_MESSAGES = 10  # SQS's most per ReceiveMessage / DeleteMessageBatch
QUEUE_MISSING = frozenset(
    {"AWS.SimpleQueueService.NonExistentQueue", "QueueDoesNotExist", "NonExistentQueue"}
)


@dataclass
class SetupResult:
    """What ``setup`` (or ``teardown``) did in one (account, region)."""

    account_id: str
    region: str
    rule_arn: str = ""
    queue_url: str = ""
    queue_arn: str = ""
    dlq_url: str = ""
    created: list[str] = field(default_factory=list)
    found: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "account_id": self.account_id,
            "region": self.region,
            "rule_arn": self.rule_arn,
            "queue_url": self.queue_url,
            "queue_arn": self.queue_arn,
            "dlq_url": self.dlq_url,
            "created": list(self.created),
            "found": list(self.found),
            "removed": list(self.removed),
        }


def queue_arn(account_id: str, region: str, name: str = QUEUE_NAME) -> str:
    return f"arn:aws:sqs:{region}:{account_id}:{name}"


def setup(events: BaseClient, sqs: BaseClient, account_id: str, region: str) -> SetupResult:
    """Create what is missing, leave what exists (its settings made equal to ours)."""
    result = SetupResult(account_id, region)
    result.dlq_url, dlq_arn = _ensure_queue(sqs, DLQ_NAME, {}, result)
    attributes = {
        "RedrivePolicy": json.dumps(
            {"deadLetterTargetArn": dlq_arn, "maxReceiveCount": str(MAX_RECEIVES)}
        ),
        "VisibilityTimeout": str(VISIBILITY_SECONDS),
        "MessageRetentionPeriod": str(RETENTION_SECONDS),
        "ReceiveMessageWaitTimeSeconds": str(WAIT_SECONDS),
    }
    result.queue_url, result.queue_arn = _ensure_queue(sqs, QUEUE_NAME, attributes, result)
    result.rule_arn = _ensure_rule(events, result)
    sqs.set_queue_attributes(
        QueueUrl=result.queue_url,
        Attributes={
            **attributes,
            "Policy": json.dumps(send_permission(result.queue_arn, result.rule_arn)),
        },
    )
    targets = events.list_targets_by_rule(Rule=RULE_NAME).get("Targets", [])
    if any(t.get("Id") == TARGET_ID and t.get("Arn") == result.queue_arn for t in targets):
        result.found.append(f"target {TARGET_ID}")
    else:
        events.put_targets(Rule=RULE_NAME, Targets=[{"Id": TARGET_ID, "Arn": result.queue_arn}])
        result.created.append(f"target {TARGET_ID}")
    return result


def send_permission(queue: str, rule_arn: str) -> dict[str, Any]:
    """EventBridge may send to the queue, for this rule only (aws:SourceArn)."""
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "EventBridgeSendsSageMakerTrainingJobEvents",
                "Effect": "Allow",
                "Principal": {"Service": "events.amazonaws.com"},
                "Action": "sqs:SendMessage",
                "Resource": queue,
                "Condition": {"ArnEquals": {"aws:SourceArn": rule_arn}},
            }
        ],
    }


def teardown(events: BaseClient, sqs: BaseClient, account_id: str, region: str) -> SetupResult:
    """Remove the target, the rule and both queues; what was absent is not an error."""
    result = SetupResult(account_id, region)
    try:
        events.describe_rule(Name=RULE_NAME)
    except ClientError as exc:
        if _code(exc) != "ResourceNotFoundException":
            raise
    else:
        targets = events.list_targets_by_rule(Rule=RULE_NAME).get("Targets", [])
        if targets:
            events.remove_targets(Rule=RULE_NAME, Ids=[t["Id"] for t in targets])
        events.delete_rule(Name=RULE_NAME)
        result.removed.append(f"rule {RULE_NAME}")
    for name in (QUEUE_NAME, DLQ_NAME):
        url = _queue_url(sqs, name)
        if url is not None:
            sqs.delete_queue(QueueUrl=url)
            result.removed.append(f"queue {name}")
    return result


def _ensure_queue(
    sqs: BaseClient, name: str, attributes: dict[str, str], result: SetupResult
) -> tuple[str, str]:
    url = _queue_url(sqs, name)
    if url is None:
        url = sqs.create_queue(QueueName=name, Attributes=attributes)["QueueUrl"]
        result.created.append(f"queue {name}")
    else:
        result.found.append(f"queue {name}")
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    return url, arn


def _ensure_rule(events: BaseClient, result: SetupResult) -> str:
    pattern = json.dumps(EVENT_PATTERN)
    try:
        rule = events.describe_rule(Name=RULE_NAME)
    except ClientError as exc:
        if _code(exc) != "ResourceNotFoundException":
            raise
        rule = None
    if rule is not None and json.loads(rule.get("EventPattern") or "{}") == EVENT_PATTERN:
        result.found.append(f"rule {RULE_NAME}")
        return str(rule["Arn"])
    arn = events.put_rule(
        Name=RULE_NAME,
        EventPattern=pattern,
        State="ENABLED",
        Description="SageMaker training job state changes for sagemaker-spend-tracker",
    )["RuleArn"]
    result.created.append(f"rule {RULE_NAME}")
    return str(arn)


def _queue_url(sqs: BaseClient, name: str, owner: str | None = None) -> str | None:
    request = {"QueueName": name}
    if owner:
        request["QueueOwnerAWSAccountId"] = owner
    try:
        return str(sqs.get_queue_url(**request)["QueueUrl"])
    except ClientError as exc:
        if _code(exc) in QUEUE_MISSING:
            return None
        raise


def resolve_queue_url(sqs: BaseClient, queue: str) -> str:
    """The URL of a queue given as its URL or its ARN."""
    if not queue.startswith("arn:"):
        return queue
    parts = queue.split(":")
    url = _queue_url(sqs, parts[5], parts[4])
    if url is None:
        raise ClientError(
            {"Error": {"Code": "QueueDoesNotExist", "Message": f"no queue {queue}"}},
            "GetQueueUrl",
        )
    return url


# -- the listener's calls ----------------------------------------------------------------------
def receive(
    sqs: BaseClient, queue_url: str, *, wait_seconds: int = WAIT_SECONDS
) -> list[dict[str, Any]]:
    """Up to 10 messages, long-polling ``wait_seconds``; with SentTimestamp and
    ApproximateReceiveCount."""
    response = sqs.receive_message(
        QueueUrl=queue_url,
        MaxNumberOfMessages=BATCH_MESSAGES,
        WaitTimeSeconds=wait_seconds,
        AttributeNames=["SentTimestamp", "ApproximateReceiveCount"],
    )
    return list(response.get("Messages", []))


def delete(sqs: BaseClient, queue_url: str, receipts: list[str]) -> int:
    """Delete messages by receipt handle, 10 a call; returns how many SQS refused."""
    failed = 0
    for start in range(0, len(receipts), BATCH_MESSAGES):
        chunk = receipts[start : start + BATCH_MESSAGES]
        response = sqs.delete_message_batch(
            QueueUrl=queue_url,
            Entries=[{"Id": str(i), "ReceiptHandle": r} for i, r in enumerate(chunk)],
        )
        failed += len(response.get("Failed", []))
    return failed


def queue_depth(sqs: BaseClient, queue_url: str) -> tuple[int, int]:
    """(visible, in flight) messages, SQS's approximate counts."""
    attributes = sqs.get_queue_attributes(
        QueueUrl=queue_url,
        AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
    )["Attributes"]
    return (
        int(attributes.get("ApproximateNumberOfMessages", 0)),
        int(attributes.get("ApproximateNumberOfMessagesNotVisible", 0)),
    )


def _code(exc: ClientError) -> str:
    error = exc.response.get("Error", {})
    return str(error.get("QueryErrorCode") or error.get("Code", ""))
