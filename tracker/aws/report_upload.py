"""Upload a rendered report to S3 (the scheduled showback's S3 destination).

Credentials come from boto3's standard chain and the endpoint honours ``AWS_ENDPOINT_URL``
(moto in tests); the bucket lives in the account running the tracker.
"""

from __future__ import annotations

from botocore.client import BaseClient
from botocore.exceptions import BotoCoreError, ClientError

from tracker.aws.session import make_client
from tracker.errors import TrackerError


def s3_client() -> BaseClient:
    """An S3 client from the default session, in boto3's default region."""
    return make_client("s3")


def put_report(client: BaseClient, bucket: str, key: str, body: bytes, content_type: str) -> str:
    """Write one object; returns its ``s3://`` URI. Failures become one-line TrackerErrors."""
    try:
        client.put_object(Bucket=bucket, Key=key, Body=body, ContentType=content_type)
    except ClientError as exc:
        error = exc.response.get("Error", {})
        raise TrackerError(
            f"s3://{bucket}/{key}: cannot write the report ({error.get('Code', 'error')}: "
            f"{error.get('Message', '')})"
        ) from None
    except BotoCoreError as exc:
        raise TrackerError(f"s3://{bucket}/{key}: cannot write the report ({exc})") from None
    return f"s3://{bucket}/{key}"
