"""Tags for many training jobs at once (Resource Groups Tagging API), with a ListTags fallback."""

from __future__ import annotations

from collections.abc import Sequence

from botocore.client import BaseClient
from botocore.exceptions import ClientError

from tracker.aws.sagemaker import list_tags

BATCH = 100  # GetResources accepts at most 100 ARNs per ResourceARNList

# Codes meaning "this principal or partition cannot use GetResources": fall back to ListTags.
FALLBACK_CODES = frozenset(
    {
        "AccessDenied",
        "AccessDeniedException",
        "UnauthorizedOperation",
        "UnrecognizedClientException",
        "InvalidParameterException",
        "UnsupportedOperation",
        "NotImplemented",
    }
)


def tags_for_arns(
    tagging_client: BaseClient, sagemaker_client: BaseClient, arns: Sequence[str]
) -> dict[str, dict[str, str]]:
    """``{arn: {key: value}}`` for every ARN given; an ARN GetResources omits has no tags.

    Uses GetResources in batches of 100 ARNs, following PaginationToken. If the
    Tagging API is denied or unsupported, every job's tags come from SageMaker ListTags.
    """
    tags: dict[str, dict[str, str]] = {arn: {} for arn in arns}
    unique = list(tags)
    try:
        for start in range(0, len(unique), BATCH):
            tags.update(_get_resources(tagging_client, unique[start : start + BATCH]))
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") not in FALLBACK_CODES:
            raise
        return {arn: list_tags(sagemaker_client, arn) for arn in unique}
    return tags


def _get_resources(client: BaseClient, arns: list[str]) -> dict[str, dict[str, str]]:
    found: dict[str, dict[str, str]] = {}
    for page in client.get_paginator("get_resources").paginate(ResourceARNList=arns):
        for mapping in page.get("ResourceTagMappingList", []):
            tags = {t["Key"]: t.get("Value", "") for t in mapping.get("Tags", [])}
            found.setdefault(mapping["ResourceARN"], {}).update(tags)
    return found
