"""On-demand SageMaker training rates from the AWS Price List API (``pricing.get_products``).

The Price List API is served only from us-east-1, eu-central-1 and ap-south-1 (the
prices it returns cover every region). The caller passes the client, from
:func:`tracker.aws.session.pricing_client`, which honours ``AWS_ENDPOINT_URL_PRICING`` and
``AWS_ENDPOINT_URL``. IAM: ``pricing:GetProducts``.

Only on-demand Training rows are kept: usage type ``<prefix>-Train:ml.<family>.<size>``
(e.g. ``USE1-Train:ml.g5.2xlarge``), unit ``Hrs``. Managed spot (``TrSpt``), training
plan fees (``TrainingPlanUpfrontFee``), HyperPod (``Cluster``), Notebook, Studio,
Hosting, Processing and the other components are dropped: their rates can differ from
the training rate, and a job is billed at the training rate.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterable, Iterator
from datetime import datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError

from tracker.cost.prices import INSTANCE_TYPE_RE, REGION_RE, PriceRow, write_snapshot
from tracker.errors import InputError, TrackerError

if TYPE_CHECKING:
    from botocore.client import BaseClient

log = logging.getLogger(__name__)

PRICING_API_REGIONS = ("us-east-1", "eu-central-1", "ap-south-1")
DEFAULT_PRICING_REGION = "us-east-1"
SERVICE_CODE = "AmazonSageMaker"
PRODUCT_FAMILY = "ML Instance"
TRAINING_COMPONENT = "Training"
PAGE_SIZE = 100

_TRAIN_USAGE_RE = re.compile(r"^[A-Z0-9]+-Train:(?P<type>.+)$")
_DATE_RE = re.compile(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}")


def _filters(region: str | None) -> list[dict[str, str]]:
    filters = [{"Type": "TERM_MATCH", "Field": "productFamily", "Value": PRODUCT_FAMILY}]
    if region is not None:
        filters.append({"Type": "TERM_MATCH", "Field": "regionCode", "Value": region})
    return filters


def _price_list(client: BaseClient, region: str | None) -> Iterator[str]:
    """Every PriceList entry (a JSON string) for one region, following NextToken."""
    pages = client.get_paginator("get_products").paginate(
        ServiceCode=SERVICE_CODE,
        Filters=_filters(region),
        FormatVersion="aws_v1",
        PaginationConfig={"PageSize": PAGE_SIZE},
    )
    try:
        for response in pages:
            yield from response.get("PriceList", [])
    except (ClientError, BotoCoreError) as exc:
        where = region or "all regions"
        raise TrackerError(
            f"AWS Price List API get_products ({SERVICE_CODE}, {where}) failed: {exc}"
        ) from exc


def _hourly_usd(terms: dict[str, Any]) -> tuple[set[Decimal], str]:
    """The distinct USD/Hrs prices in a product's OnDemand terms, and an effective date."""
    prices: set[Decimal] = set()
    effective = ""
    for term in terms.get("OnDemand", {}).values():
        for dimension in term.get("priceDimensions", {}).values():
            if dimension.get("unit") != "Hrs":
                continue
            try:
                prices.add(Decimal(dimension["pricePerUnit"]["USD"]))
            except (KeyError, TypeError, InvalidOperation):
                continue
            match = _DATE_RE.match(str(term.get("effectiveDate", "")))
            effective = effective or (match.group(0) if match else "")
    return prices, effective


def parse_price_item(item: str, fetch_date: str = "") -> PriceRow | None:
    """One PriceList JSON string -> an on-demand training PriceRow, or None if not one."""
    try:
        doc = json.loads(item)
    except (TypeError, ValueError) as exc:
        raise TrackerError(f"AWS Price List API returned an entry that is not JSON: {exc}") from exc
    product = doc.get("product", {})
    attributes = product.get("attributes", {})
    usagetype = attributes.get("usagetype", "")
    match = _TRAIN_USAGE_RE.match(usagetype)
    if not match or attributes.get("component", TRAINING_COMPONENT) != TRAINING_COMPONENT:
        return None
    instance_type = match.group("type")
    region = attributes.get("regionCode", "")
    if not INSTANCE_TYPE_RE.match(instance_type) or not REGION_RE.match(region):
        return None
    prices, effective = _hourly_usd(doc.get("terms", {}))
    sku = product.get("sku", "")
    if len(prices) != 1:
        log.warning("skipping SKU %s (%s): %d hourly on-demand prices", sku, usagetype, len(prices))
        return None
    (usd,) = prices
    if usd <= 0:
        log.warning("skipping SKU %s (%s): non-positive price %s", sku, usagetype, usd)
        return None
    return PriceRow(
        region=region,
        instance_type=instance_type,
        usd_per_hour=usd,
        source=f"AWS Price List API get_products, SKU {sku}, usagetype {usagetype}",
        source_date=effective or fetch_date,
    )


def _regions(regions: Iterable[str] | None) -> list[str | None]:
    if regions is None:
        return [None]
    wanted = list(dict.fromkeys(regions))
    for region in wanted:
        if not REGION_RE.match(region):
            raise InputError(
                f"regions: {region!r} is not an AWS region code; expected one like us-east-1"
            )
    return list(wanted)


def fetch_training_rates(
    pricing_client: BaseClient,
    regions: Iterable[str] | None = None,
    *,
    now: datetime | None = None,
) -> list[PriceRow]:
    """On-demand training rates for ``regions`` (None: every region), sorted.

    ``source_date`` is the offer's effective date, else the date of ``now`` (else
    empty). Two SKUs with different rates for one (region, type) leave it out, with a
    warning, rather than guessing between them.
    """
    fetch_date = f"{now:%Y-%m-%d}" if now is not None else ""
    found: dict[tuple[str, str], PriceRow] = {}
    conflicts: set[tuple[str, str]] = set()
    for region in _regions(regions):
        for item in _price_list(pricing_client, region):
            row = parse_price_item(item, fetch_date)
            if row is None:
                continue
            key = (row.region, row.instance_type)
            if key in found and found[key].usd_per_hour != row.usd_per_hour:
                conflicts.add(key)
            found.setdefault(key, row)
    for key in sorted(conflicts):
        log.warning("no rate for %s %s: the Price List has conflicting training rates", *key)
        del found[key]
    return sorted(found.values(), key=lambda r: (r.region, r.instance_type))


def refresh(
    pricing_client: BaseClient,
    snapshot_dir: Path,
    now: datetime,
    regions: Iterable[str] | None = None,
) -> tuple[Path, int]:
    """Fetch training rates and write ``refreshed-YYYYMMDD.csv``; return (path, rows).

    Refuses to write an empty snapshot: an empty answer means a wrong filter, region
    or endpoint, and an empty file would hide that.
    """
    regions = list(regions) if regions is not None else None
    rows = fetch_training_rates(pricing_client, regions, now=now)
    if not rows:
        where = ", ".join(regions) if regions is not None else "any region"
        raise TrackerError(
            f"the AWS Price List API returned no on-demand SageMaker training rates for "
            f"{where}; no snapshot written (check the region codes and that the pricing "
            f"client uses one of {', '.join(PRICING_API_REGIONS)})"
        )
    return write_snapshot(rows, snapshot_dir, now), len(rows)
