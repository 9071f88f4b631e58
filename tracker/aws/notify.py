"""Alert delivery through AWS: SNS ``publish`` and SES v2 ``send_email`` of a raw message.

Clients come from :func:`tracker.aws.session.make_client` (boto3's standard chain, our
user agent and retries) and honour ``AWS_ENDPOINT_URL`` as everywhere else. Errors are botocore's (``tracker.aws.AWS_ERRORS``); ``tracker.alert.notify`` turns them
into a one-line delivery failure that is retried on the next run.
"""

from __future__ import annotations

import os
from typing import Any

from botocore.client import BaseClient
from botocore.config import Config

from tracker.aws.session import make_client

# Every alert of this tracker goes to one message group of a FIFO topic: one ordered stream.
FIFO_GROUP = "sagemaker-spend-tracker"
# An alert run must not hang on one channel: short timeouts, and the next run retries.
_TIMEOUTS = Config(connect_timeout=5, read_timeout=15)


def sns_client(region: str) -> BaseClient:
    """An SNS client in the topic's region."""
    return make_client("sns", region, config=_TIMEOUTS)


def ses_client(region: str | None) -> BaseClient:
    """An SES (API v2) client in ``region``, else the environment's region, else us-east-1.

    v2's ``SendEmail`` sends a raw MIME message (so it can carry our headers) under the
    same IAM action as a simple one, ``ses:SendEmail``.
    """
    region = (
        region
        or os.environ.get("AWS_REGION")
        or os.environ.get("AWS_DEFAULT_REGION")
        or "us-east-1"
    )
    return make_client("sesv2", region, config=_TIMEOUTS)


def publish_sns(
    topic_arn: str,
    subject: str,
    message: str,
    *,
    idempotency_key: str,
    repeat: bool = False,
    client: BaseClient | None = None,
) -> str:
    """Publish to ``topic_arn`` (in the topic's own region); returns the MessageId.

    Every message carries the message attributes ``idempotency_key`` and ``repeat``. FIFO
    topics also get the key as ``MessageDeduplicationId`` (SNS accepts but does not deliver
    a repeat within its five-minute deduplication interval) and the group ``FIFO_GROUP``.
    """
    region = topic_arn.split(":")[3]
    sns = client or sns_client(region)
    request: dict[str, Any] = {
        "TopicArn": topic_arn,
        "Subject": subject,
        "Message": message,
        "MessageAttributes": {
            "idempotency_key": {"DataType": "String", "StringValue": idempotency_key},
            "repeat": {"DataType": "String", "StringValue": "true" if repeat else "false"},
        },
    }
    if topic_arn.endswith(".fifo"):
        request["MessageGroupId"] = FIFO_GROUP
        request["MessageDeduplicationId"] = idempotency_key
    return sns.publish(**request)["MessageId"]


def send_raw_email(sender: str, to: str, raw: bytes, *, client: BaseClient | None = None) -> str:
    """Send a raw MIME message through SES v2 (``sender`` must be a verified identity)."""
    ses = client or ses_client(None)
    response = ses.send_email(
        FromEmailAddress=sender,
        Destination={"ToAddresses": [to]},
        Content={"Raw": {"Data": raw}},
    )
    return response["MessageId"]
