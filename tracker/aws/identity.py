"""Who the current AWS profile is: its account (STS GetCallerIdentity) and region, for
``tracker init``'s starter config.

A lookup that cannot resolve (no credentials, an unknown profile, no network) is not an
error: it says why, and ``init`` writes placeholders instead. It must answer in seconds, so
its one call has short timeouts and no retries.
"""

from __future__ import annotations

from dataclasses import dataclass

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from tracker.aws.session import make_client

# STS answers in every region; us-east-1 when the profile names none.
FALLBACK_REGION = "us-east-1"
LOOKUP_CONFIG = Config(
    connect_timeout=3,
    read_timeout=5,
    retries={"mode": "standard", "total_max_attempts": 1},
)


@dataclass(frozen=True)
class CallerIdentity:
    """The current profile's account and region; ``account_id`` None says ``problem``."""

    profile: str | None
    region: str | None
    account_id: str | None
    problem: str | None = None


def caller_identity(session: boto3.Session | None = None) -> CallerIdentity:
    """The account and region of boto3's standard chain (or ``session``), never raising."""
    try:
        session = session or boto3.Session()
    except BotoCoreError as exc:
        return CallerIdentity(None, None, None, _one_line(exc))
    profile, region = session.profile_name, session.region_name
    try:
        if session.get_credentials() is None:
            return CallerIdentity(profile, region, None, "no AWS credentials found")
        sts = make_client("sts", region or FALLBACK_REGION, session=session, config=LOOKUP_CONFIG)
        account = sts.get_caller_identity()["Account"]
    except (BotoCoreError, ClientError) as exc:
        return CallerIdentity(profile, region, None, _one_line(exc))
    return CallerIdentity(profile, region, str(account))


def _one_line(exc: Exception) -> str:
    return " ".join(str(exc).split())
