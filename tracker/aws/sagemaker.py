"""SageMaker calls the collector makes: search or list changed training jobs, describe one job.

Search (``Resource="TrainingJob"``) returns up to 100 whole TrainingJob records a call, tags
included; docs/collection.md compares its record with DescribeTrainingJob's response.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime
from typing import Any

from botocore.client import BaseClient
from botocore.exceptions import ClientError

# ListTrainingJobs cannot sort by LastModifiedTime (SortBy is Name | CreationTime | Status);
# order does not matter because the watermark is the maximum seen, applied after commit.
SORT_BY = "CreationTime"
MAX_PAGE_SIZE = 100
NOT_FOUND_CODES = frozenset({"ResourceNotFound", "ResourceNotFoundException"})
NOT_FOUND_PHRASES = ("could not find", "not found", "does not exist")
# Search: MaxResults is 1..100; a Filter Value is at most 1024 characters; a SearchExpression
# holds at most 20 Filters (botocore's model, the API reference).
SEARCH_RESOURCE = "TrainingJob"
FILTER_VALUE_MAX = 1024
FILTERS_MAX = 20
NAMES_PER_SEARCH = 100  # names re-read by one Search call (one page of results)


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
    return describe_or_none(client.describe_training_job, TrainingJobName=name)


def describe_or_none(
    describe: Callable[..., dict[str, Any]], **params: str
) -> dict[str, Any] | None:
    """One Describe call's response without ResponseMetadata; None when the resource no
    longer exists (:func:`not_found`), any other error raised."""
    try:
        response = describe(**params)
    except ClientError as exc:
        if not_found(exc):
            return None
        raise
    response.pop("ResponseMetadata", None)
    return response


def not_found(exc: ClientError) -> bool:
    """Whether a Describe call failed because the resource no longer exists."""
    error = exc.response.get("Error", {})
    code, message = error.get("Code", ""), str(error.get("Message", "")).lower()
    # SageMaker answers ResourceNotFound; some endpoints (and moto) a ValidationException:
    # "Could not find model ...", "Model package ... not found", "... does not exist".
    return code in NOT_FOUND_CODES or (
        code == "ValidationException" and any(phrase in message for phrase in NOT_FOUND_PHRASES)
    )


def list_tags(client: BaseClient, arn: str) -> dict[str, str]:
    """All tags of one SageMaker resource via ListTags (the per-job fallback)."""
    tags: dict[str, str] = {}
    for page in client.get_paginator("list_tags").paginate(ResourceArn=arn):
        tags.update({t["Key"]: t.get("Value", "") for t in page.get("Tags", [])})
    return tags


def search_changed_jobs(
    client: BaseClient, since: datetime | None, page_size: int = MAX_PAGE_SIZE
) -> Iterator[dict[str, Any]]:
    """Yield the TrainingJob records of jobs modified after ``since`` (all jobs when None),
    oldest LastModifiedTime first, following NextToken.

    One call returns up to 100 records; an unchanged account answers with one call.
    """
    request: dict[str, Any] = {
        "Resource": SEARCH_RESOURCE,
        "SortBy": "LastModifiedTime",
        "SortOrder": "Ascending",
        "MaxResults": max(1, min(page_size, MAX_PAGE_SIZE)),
    }
    if since is not None:
        request["SearchExpression"] = {
            "Filters": [
                {"Name": "LastModifiedTime", "Operator": "GreaterThan", "Value": _time(since)}
            ]
        }
    yield from _search(client, request)


def search_jobs_by_name(client: BaseClient, names: Sequence[str]) -> Iterator[dict[str, Any]]:
    """Yield the TrainingJob records of the named jobs (those that still exist).

    ``TrainingJobName In "a,b,c"`` filters, each Value at most 1024 characters, OR-ed in
    one SearchExpression: up to 100 names a call (a job name is at most 63 characters).
    """
    unique = list(dict.fromkeys(names))
    for start in range(0, len(unique), NAMES_PER_SEARCH):
        filters = [
            {"Name": "TrainingJobName", "Operator": "In", "Value": value}
            for value in _joined(unique[start : start + NAMES_PER_SEARCH])
        ]
        for chunk in range(0, len(filters), FILTERS_MAX):
            request = {
                "Resource": SEARCH_RESOURCE,
                "SearchExpression": {
                    "Filters": filters[chunk : chunk + FILTERS_MAX],
                    "Operator": "Or",
                },
                "MaxResults": MAX_PAGE_SIZE,
            }
            yield from _search(client, request)


def _search(client: BaseClient, request: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for page in client.get_paginator("search").paginate(**request):
        for result in page.get("Results", []):
            record = result.get("TrainingJob")
            if record:
                yield record


def _joined(names: Sequence[str]) -> list[str]:
    """Names joined by commas into values of at most FILTER_VALUE_MAX characters."""
    values: list[str] = []
    current = ""
    for name in names:
        candidate = f"{current},{name}" if current else name
        if len(candidate) > FILTER_VALUE_MAX and current:
            values.append(current)
            candidate = name
        current = candidate
    if current:
        values.append(current)
    return values


def _time(value: datetime) -> str:
    """ISO 8601 UTC text for a Search filter Value (a timestamp property)."""
    aware = value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    # Whole seconds, rounded down: the overlap dwarfs the lost fraction.
    return aware.strftime("%Y-%m-%dT%H:%M:%SZ")
