"""SageMaker calls the collector makes: list changed training jobs, describe one job."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Any

from botocore.exceptions import ClientError

# ListTrainingJobs cannot sort by LastModifiedTime (SortBy is Name | CreationTime | Status);
# order does not matter because the watermark is the maximum seen, applied after commit.
SORT_BY = "CreationTime"
MAX_PAGE_SIZE = 100
NOT_FOUND_CODES = frozenset({"ResourceNotFound", "ResourceNotFoundException"})


def list_changed_jobs(
    client: Any, since: datetime | None, page_size: int = MAX_PAGE_SIZE
) -> Iterator[dict[str, Any]]:
    """Yield TrainingJobSummaries modified after ``since`` (all jobs when None).

    Follows NextToken until it is absent, including through EMPTY pages that still
    carry a token (SageMaker, and moto, filter after paginating).
    """
    request: dict[str, Any] = {
        "MaxResults": max(1, min(page_size, MAX_PAGE_SIZE)),
        "SortBy": SORT_BY,
        "SortOrder": "Ascending",
    }
    if since is not None:
        request["LastModifiedTimeAfter"] = since
    while True:
        page = client.list_training_jobs(**request)
        yield from page.get("TrainingJobSummaries", [])
        token = page.get("NextToken")
        if not token:
            return
        request["NextToken"] = token


def describe_job(client: Any, name: str) -> dict[str, Any] | None:
    """The DescribeTrainingJob response for one job, without ResponseMetadata.

    None when the job no longer exists (deleted between listing and describing).
    """
    try:
        response = client.describe_training_job(TrainingJobName=name)
    except ClientError as exc:
        if _not_found(exc):
            return None
        raise
    response.pop("ResponseMetadata", None)
    return response


def _not_found(exc: ClientError) -> bool:
    error = exc.response.get("Error", {})
    code, message = error.get("Code", ""), str(error.get("Message", "")).lower()
    # SageMaker answers ResourceNotFound; some endpoints (and moto) a ValidationException.
    return code in NOT_FOUND_CODES or (
        code == "ValidationException" and "could not find" in message
    )


def list_tags(client: Any, arn: str) -> dict[str, str]:
    """All tags of one SageMaker resource via ListTags (the per-job fallback)."""
    tags: dict[str, str] = {}
    request: dict[str, Any] = {"ResourceArn": arn}
    while True:
        page = client.list_tags(**request)
        tags.update({t["Key"]: t.get("Value", "") for t in page.get("Tags", [])})
        token = page.get("NextToken")
        if not token:
            return tags
        request["NextToken"] = token
