"""SageMaker calls the collector makes: list changed training jobs, describe one job."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Any

from botocore.client import BaseClient
from botocore.exceptions import ClientError

# ListTrainingJobs cannot sort by LastModifiedTime (SortBy is Name | CreationTime | Status);
# order does not matter because the watermark is the maximum seen, applied after commit.
SORT_BY = "CreationTime"
MAX_PAGE_SIZE = 100
NOT_FOUND_CODES = frozenset({"ResourceNotFound", "ResourceNotFoundException"})


def list_changed_jobs(
    client: BaseClient, since: datetime | None, page_size: int = MAX_PAGE_SIZE
) -> Iterator[dict[str, Any]]:
    """Yield TrainingJobSummaries modified after ``since`` (all jobs when None).

    botocore's paginator follows NextToken until it is absent, including through EMPTY
    pages that still carry a token (SageMaker, and moto, filter after paginating).
    """
    request: dict[str, Any] = {"SortBy": SORT_BY, "SortOrder": "Ascending"}
    if since is not None:
        request["LastModifiedTimeAfter"] = since
    pages = client.get_paginator("list_training_jobs").paginate(
        **request, PaginationConfig={"PageSize": max(1, min(page_size, MAX_PAGE_SIZE))}
    )
    for page in pages:
        yield from page.get("TrainingJobSummaries", [])


def describe_job(client: BaseClient, name: str) -> dict[str, Any] | None:
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


def list_tags(client: BaseClient, arn: str) -> dict[str, str]:
    """All tags of one SageMaker resource via ListTags (the per-job fallback)."""
    tags: dict[str, str] = {}
    for page in client.get_paginator("list_tags").paginate(ResourceArn=arn):
        tags.update({t["Key"]: t.get("Value", "") for t in page.get("Tags", [])})
    return tags
