"""Alert delivery through AWS: SNS ``publish`` and SES ``send_email``.

Clients come from :func:`tracker.aws.session.make_client` (boto3's standard chain, our
user agent and retries) and honour ``AWS_ENDPOINT_URL`` as everywhere else. Errors are botocore's (``tracker.aws.AWS_ERRORS``); ``tracker.alert.notify`` turns them
into a one-line delivery failure that is retried on the next run.
"""

from __future__ import annotations

import hashlib
import os
from typing import Any

from botocore.client import BaseClient
from botocore.config import Config

from tracker.aws.session import make_client

FIFO_GROUP = "sagemaker-spend-tracker"
# An alert run must not hang on one channel: short timeouts, and the next run retries.
_TIMEOUTS = Config(connect_timeout=5, read_timeout=15)


def sns_client(region: str) -> BaseClient:
    """An SNS client in the topic's region."""
    return make_client("sns", region, config=_TIMEOUTS)


def ses_client(region: str | None) -> BaseClient:
    """An SES client in ``region``, else the environment's region, else us-east-1."""
    region = (
        region
        or os.environ.get("AWS_REGION")
        or os.environ.get("AWS_DEFAULT_REGION")
        or "us-east-1"
    )
    return make_client("ses", region, config=_TIMEOUTS)


def publish_sns(
    topic_arn: str,
    subject: str,
    message: str,
    *,
    dedup_id: str | None = None,
    client: BaseClient | None = None,
) -> str:
    """Publish to ``topic_arn`` (in the topic's own region); returns the MessageId.

    FIFO topics get a fixed message group and a deduplication id derived from ``dedup_id``,
    so SNS itself drops a repeat within its five-minute window.
    """
    region = topic_arn.split(":")[3]
    sns = client or sns_client(region)
    request: dict[str, Any] = {"TopicArn": topic_arn, "Subject": subject, "Message": message}
    if topic_arn.endswith(".fifo"):
        request["MessageGroupId"] = FIFO_GROUP
        seed = dedup_id or message
        request["MessageDeduplicationId"] = hashlib.sha256(seed.encode()).hexdigest()[:64]
    return sns.publish(**request)["MessageId"]


def send_email(
    sender: str,
    to: str,
    subject: str,
    text: str,
    *,
    region: str | None = None,
    client: BaseClient | None = None,
) -> str:
    """Send a plain-text email through SES (``sender`` must be a verified identity)."""
    ses = client or ses_client(region)
    response = ses.send_email(
        Source=sender,
        Destination={"ToAddresses": [to]},
        Message={
            "Subject": {"Data": subject, "Charset": "UTF-8"},
            "Body": {"Text": {"Data": text, "Charset": "UTF-8"}},
        },
    )
    return response["MessageId"]
