"""The AWS bill: Cost Explorer ``GetCostAndUsage`` and CUR 2.0 / FOCUS files in S3.

Cost Explorer is asked for Amazon SageMaker only (``SERVICE = Amazon SageMaker``), grouped by
the team cost-allocation tag and ``USAGE_TYPE``, following ``NextPageToken`` until the last
page. Cost Explorer's filter matches dimension values exactly (its ``MatchOptions`` do not
apply to ``GetCostAndUsage``), so training usage types are picked out of the answer by
:func:`tracker.reconcile.rules.classify_usage_type`; nothing is dropped on the way.
IAM: ``ce:GetCostAndUsage``; ``s3:ListBucket`` and ``s3:GetObject`` for files in S3.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any

import boto3
from botocore.client import BaseClient
from botocore.exceptions import BotoCoreError, ClientError

from tracker.aws import describe_error, error_code
from tracker.aws.paging import PageLimitError, follow_token
from tracker.aws.s3 import split_s3_uri
from tracker.aws.session import make_client
from tracker.bounds import BILL_FILES
from tracker.errors import InputError, TrackerError
from tracker.reconcile.bill_files import BillFile, check_bill_files, is_bill_file
from tracker.reconcile.rules import KIND_UNRECOGNISED, BillLine, classify_usage_type
from tracker.records import UNALLOCATED, decimal_or_none

if TYPE_CHECKING:
    from tracker.settings import CollectionSettings

CE_REGION = "us-east-1"  # Cost Explorer's endpoint is global, served from us-east-1
SERVICE_NAME = "Amazon SageMaker"
METRICS = ("UnblendedCost", "NetAmortizedCost", "UsageQuantity")
# Which metric is the list (on-demand) cost and which the effective cost, in preference order.
LIST_METRICS = ("PublicOnDemandCost", "ListCost", "UnblendedCost", "BlendedCost", "BilledCost")
EFFECTIVE_METRICS = ("NetAmortizedCost", "AmortizedCost", "NetUnblendedCost")
GRANULARITY = {"daily": "DAILY", "monthly": "MONTHLY"}
MAX_PAGES = 1000


def ce_client(
    collection: CollectionSettings | None = None, session: boto3.Session | None = None
) -> BaseClient:
    """A Cost Explorer client (honours AWS_ENDPOINT_URL and AWS_ENDPOINT_URL_COST_EXPLORER)."""
    return make_client("ce", CE_REGION, collection=collection, session=session)


def s3_client(
    collection: CollectionSettings | None = None, session: boto3.Session | None = None
) -> BaseClient:
    """An S3 client for bill files, in boto3's default region (S3 redirects to the bucket's)."""
    return make_client("s3", collection=collection, session=session)


def cost_and_usage_request(
    start: date, end_exclusive: date, granularity: str, team_tag: str
) -> dict[str, Any]:
    """The GetCostAndUsage request: SageMaker, grouped by team tag and usage type."""
    return {
        "TimePeriod": {"Start": start.isoformat(), "End": end_exclusive.isoformat()},
        "Granularity": GRANULARITY[granularity],
        "Metrics": list(METRICS),
        "Filter": {"Dimensions": {"Key": "SERVICE", "Values": [SERVICE_NAME]}},
        "GroupBy": [
            {"Type": "TAG", "Key": team_tag},
            {"Type": "DIMENSION", "Key": "USAGE_TYPE"},
        ],
    }


def cost_and_usage_pages(client: BaseClient, request: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Every page of GetCostAndUsage, following NextPageToken (botocore has no paginator)."""
    try:
        yield from follow_token(
            client.get_cost_and_usage, request, "NextPageToken", max_pages=MAX_PAGES
        )
    except (ClientError, BotoCoreError) as exc:
        raise TrackerError(f"Cost Explorer GetCostAndUsage failed: {describe_error(exc)}") from exc
    except PageLimitError:
        raise TrackerError(
            f"Cost Explorer GetCostAndUsage: more than {MAX_PAGES} pages; narrow --since/--until"
        ) from None


def fetch_ce_lines(
    client: BaseClient, start: date, end_exclusive: date, granularity: str, team_tag: str
) -> list[BillLine]:
    """Every SageMaker cost line of the window, one per (period, team, usage type)."""
    request = cost_and_usage_request(start, end_exclusive, granularity, team_tag)
    lines: list[BillLine] = []
    for page in cost_and_usage_pages(client, request):
        lines.extend(lines_from_page(page, team_tag))
    return lines


def lines_from_page(page: dict[str, Any], team_tag: str) -> list[BillLine]:
    """The lines of one GetCostAndUsage page. Tag group keys look like ``team$nlp``; an empty
    value (``team$``) is untagged cost and becomes ``unallocated``."""
    positions = _key_positions(page)
    lines = []
    for result in page.get("ResultsByTime", []):
        period = result.get("TimePeriod", {})
        start = _day(period.get("Start"), "TimePeriod.Start")
        end = _day(period.get("End"), "TimePeriod.End")
        groups = result.get("Groups") or []
        if not groups and result.get("Total"):
            # An ungrouped answer: the period's total, with neither team nor usage type.
            groups = [{"Keys": [], "Metrics": result["Total"]}]
        for group in groups:
            keys = [str(k) for k in group.get("Keys", [])]
            team, usage_type = _keys(keys, positions)
            metrics = group.get("Metrics", {})
            list_usd = _metric(metrics, LIST_METRICS + EFFECTIVE_METRICS) or Decimal(0)
            effective = _metric(metrics, EFFECTIVE_METRICS)
            lines.append(
                BillLine(
                    source="ce",
                    period_start=start,
                    period_end=end,
                    team=team,
                    usage_type=usage_type or "",
                    # A line without a usage type is SageMaker cost of an unknown kind:
                    # counted and reported, never dropped.
                    kind=classify_usage_type(usage_type) if usage_type else KIND_UNRECOGNISED,
                    list_usd=list_usd,
                    effective_usd=effective if effective is not None else list_usd,
                )
            )
    return lines


def _key_positions(page: dict[str, Any]) -> tuple[int, int] | None:
    """Where the tag and the usage type sit in each group's Keys (the GroupBy order), or None
    when the page has no GroupDefinitions (then a key with ``$`` is the tag)."""
    definitions = page.get("GroupDefinitions") or []
    if not definitions:
        return None
    tag_index, usage_index = -1, -1
    for index, definition in enumerate(definitions):
        if definition.get("Type") == "TAG":
            tag_index = index
        elif definition.get("Key") == "USAGE_TYPE":
            usage_index = index
    return tag_index, usage_index


def _keys(keys: list[str], positions: tuple[int, int] | None) -> tuple[str, str | None]:
    """(team, usage type) of a group; an empty tag value (``team$``) is ``unallocated``."""
    if positions is None:
        tag = next((k for k in keys if "$" in k), None)
        usage = next((k for k in keys if "$" not in k), None)
    else:
        tag_index, usage_index = positions
        tag = keys[tag_index] if 0 <= tag_index < len(keys) else None
        usage = keys[usage_index] if 0 <= usage_index < len(keys) else None
    value = tag.split("$", 1)[1].strip() if tag and "$" in tag else ""
    return value or UNALLOCATED, usage


def _metric(metrics: dict[str, Any], names: tuple[str, ...]) -> Decimal | None:
    for name in names:
        if name in metrics:
            amount = metrics[name].get("Amount")
            value = decimal_or_none(amount, finite=False)
            if value is None:
                raise TrackerError(
                    f"Cost Explorer returned {name} Amount {amount!r}, which is not a number"
                )
            if value.is_finite():
                return value
    return None


def _day(value: Any, field: str) -> date:
    try:
        return date.fromisoformat(str(value)[:10])
    except ValueError:
        raise TrackerError(
            f"Cost Explorer returned {field} {value!r}, which is not a date"
        ) from None


# -- CUR / FOCUS files in S3 -----------------------------------------------------------------
#: Bytes of an S3 object copied to its temporary file per read: memory per object stays this.
CHUNK_BYTES = 1 << 20


def s3_bill_files(client: BaseClient, uri: str) -> list[BillFile]:
    """Every bill file (.parquet, .csv, .csv.gz) under an s3://bucket/prefix, at most
    ``tracker.bounds.BILL_FILES`` of them (the listing stops one past it).

    Nothing is fetched here: each file's ``fetch`` streams its object to a temporary file in
    chunks just before it is read (:func:`tracker.reconcile.bill_files.read_bill`), so memory
    holds one chunk, never an object (CUR parts run to gigabytes), and disk one object."""
    where = split_s3_uri(uri)
    if where is None:
        raise InputError(f"--source {uri}: expected an S3 URI like s3://bucket/prefix/")
    bucket, prefix = where
    keys = _list_keys(client, bucket, prefix, uri)
    check_bill_files(f"--source {uri}", len(keys), "under this prefix")
    if not keys:
        raise InputError(
            f"--source {uri}: no .parquet, .csv or .csv.gz objects under this prefix; expected "
            "CUR 2.0 or FOCUS export files"
        )
    return [BillFile(f"s3://{bucket}/{key}", fetch=_fetcher(client, bucket, key)) for key in keys]


def _fetcher(client: BaseClient, bucket: str, key: str) -> Callable[[Path], None]:
    """Writes the object to a local file, ``CHUNK_BYTES`` at a time."""

    def fetch(target: Path) -> None:
        try:
            body = client.get_object(Bucket=bucket, Key=key)["Body"]
            with body, open(target, "wb") as out:
                for chunk in body.iter_chunks(CHUNK_BYTES):
                    out.write(chunk)
        except (ClientError, BotoCoreError) as exc:
            raise TrackerError(f"s3://{bucket}/{key}: cannot read ({describe_error(exc)})") from exc

    return fetch


def _list_keys(client: BaseClient, bucket: str, prefix: str, uri: str) -> list[str]:
    """The bill files' keys, sorted; the listing stops once it holds one past BILL_FILES."""
    keys: list[str] = []
    limit = int(BILL_FILES.high) + 1
    try:
        for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
            keys.extend(obj["Key"] for obj in page.get("Contents", []) if is_bill_file(obj["Key"]))
            if len(keys) >= limit:
                return sorted(keys)[:limit]
    except (ClientError, BotoCoreError) as exc:
        if error_code(exc) in ("NoSuchBucket", "AccessDenied", "InvalidBucketName"):
            raise InputError(f"--source {uri}: cannot list ({describe_error(exc)})") from None
        raise TrackerError(f"--source {uri}: cannot list ({describe_error(exc)})") from exc
    return sorted(keys)
