"""Training, ML storage and S3 Standard rates from the AWS Price List API (``get_products``).

The Price List API is served only from us-east-1, eu-central-1 and ap-south-1 (the
prices it returns cover every region). The caller passes the client, from
:func:`tracker.aws.session.pricing_client`, which honours ``AWS_ENDPOINT_URL_PRICING`` and
``AWS_ENDPOINT_URL``. IAM: ``pricing:GetProducts``.

What is kept, by the attributes real products carry (tests/fixtures/aws/README.md):

- instance rates: ``AmazonSageMaker`` products of family ``ML Instance`` whose
  ``platoinstancetype`` is ``Training`` and whose usage type is
  ``<prefix>-Train:ml.<family>.<size>`` (e.g. ``USE1-Train:ml.g5.2xlarge``), unit ``Hrs``.
  SpotTraining, Hosting, Cluster (HyperPod), Notebook, Studio, Processing and the training
  plan fee (``TrainingPlanUpfrontFee``) are dropped: their rates can differ from the
  training rate, and a job is billed at the training rate;
- ML storage: ``AmazonSageMaker`` products of family ``Storage`` with usage type
  ``<prefix>-Train:VolumeUsage.gp2``, unit ``GB-Mo`` (the training job volume; the
  Hosting, Processing and Notebook volumes are other usage types);
- S3 Standard: ``AmazonS3`` products of family ``Storage``, ``volumeType`` ``Standard``,
  ``storageClass`` ``General Purpose``, usage type ``[<prefix>-]TimedStorage-ByteHrs``:
  the first tier (the dimension that begins at 0 GB), unit ``GB-Mo``.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from botocore.exceptions import BotoCoreError, ClientError

from tracker.cost.prices import (
    INSTANCE_TYPE_RE,
    ML_STORAGE,
    REGION_RE,
    S3_STANDARD,
    PriceRow,
    StorageRow,
    write_snapshot,
    write_storage_snapshot,
)
from tracker.errors import InputError, TrackerError

if TYPE_CHECKING:
    from botocore.client import BaseClient

log = logging.getLogger(__name__)

PRICING_API_REGIONS = ("us-east-1", "eu-central-1", "ap-south-1")
DEFAULT_PRICING_REGION = "us-east-1"
SERVICE_CODE = "AmazonSageMaker"
S3_SERVICE_CODE = "AmazonS3"
PRODUCT_FAMILY = "ML Instance"
STORAGE_FAMILY = "Storage"
TRAINING_PLATO_TYPE = "Training"
S3_STANDARD_FILTERS = (("volumeType", "Standard"), ("storageClass", "General Purpose"))
PAGE_SIZE = 100

_TRAIN_USAGE_RE = re.compile(r"^[A-Z0-9]+-Train:(?P<type>.+)$")
_TRAIN_VOLUME_RE = re.compile(r"^[A-Z0-9]+-Train:VolumeUsage\.gp2$")
_S3_STANDARD_USAGE_RE = re.compile(r"^([A-Z0-9]+-)?TimedStorage-ByteHrs$")
_DATE_RE = re.compile(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}")

_Row = TypeVar("_Row", PriceRow, StorageRow)


@dataclass(frozen=True)
class Refreshed:
    """What one refresh wrote: the training snapshot and, when any was found, the storage one."""

    path: Path
    rates: int
    storage_path: Path | None
    storage_rates: int


def _filters(
    family: str, region: str | None, extra: Iterable[tuple[str, str]] = ()
) -> list[dict[str, str]]:
    filters = [{"Type": "TERM_MATCH", "Field": "productFamily", "Value": family}]
    if region is not None:
        filters.append({"Type": "TERM_MATCH", "Field": "regionCode", "Value": region})
    filters.extend({"Type": "TERM_MATCH", "Field": f, "Value": v} for f, v in extra)
    return filters


def _price_list(
    client: BaseClient,
    region: str | None,
    *,
    service: str = SERVICE_CODE,
    family: str = PRODUCT_FAMILY,
    extra: Iterable[tuple[str, str]] = (),
) -> Iterator[str]:
    """Every PriceList entry (a JSON string) for one query, following NextToken."""
    pages = client.get_paginator("get_products").paginate(
        ServiceCode=service,
        Filters=_filters(family, region, extra),
        FormatVersion="aws_v1",
        PaginationConfig={"PageSize": PAGE_SIZE},
    )
    try:
        for response in pages:
            yield from response.get("PriceList", [])
    except (ClientError, BotoCoreError) as exc:
        where = region or "all regions"
        raise TrackerError(
            f"AWS Price List API get_products ({service}, {where}) failed: {exc}"
        ) from exc


def _unit_prices(
    terms: dict[str, Any], unit: str, *, first_tier: bool = False
) -> tuple[set[Decimal], str]:
    """The distinct USD prices per ``unit`` in a product's OnDemand terms, and an effective
    date; with ``first_tier``, only the dimension that begins at 0 (S3 is tiered by volume)."""
    prices: set[Decimal] = set()
    effective = ""
    for term in terms.get("OnDemand", {}).values():
        for dimension in term.get("priceDimensions", {}).values():
            if dimension.get("unit") != unit:
                continue
            if first_tier and str(dimension.get("beginRange", "")) != "0":
                continue
            try:
                prices.add(Decimal(dimension["pricePerUnit"]["USD"]))
            except (KeyError, TypeError, InvalidOperation):
                continue
            match = _DATE_RE.match(str(term.get("effectiveDate", "")))
            effective = effective or (match.group(0) if match else "")
    return prices, effective


def _document(item: str) -> dict[str, Any]:
    try:
        doc = json.loads(item)
    except (TypeError, ValueError) as exc:
        raise TrackerError(f"AWS Price List API returned an entry that is not JSON: {exc}") from exc
    return doc if isinstance(doc, dict) else {}


def _one_price(
    doc: dict[str, Any], unit: str, usagetype: str, *, first_tier: bool = False
) -> tuple[Decimal, str] | None:
    """The product's single positive price per ``unit`` and its date, else None (logged)."""
    prices, effective = _unit_prices(doc.get("terms", {}), unit, first_tier=first_tier)
    sku = doc.get("product", {}).get("sku", "")
    if len(prices) != 1:
        count = len(prices)
        log.warning("skipping SKU %s (%s): %d on-demand prices per %s", sku, usagetype, count, unit)
        return None
    (usd,) = prices
    if usd <= 0:
        log.warning("skipping SKU %s (%s): non-positive price %s", sku, usagetype, usd)
        return None
    return usd, effective


def _source(doc: dict[str, Any], usagetype: str) -> str:
    sku = doc.get("product", {}).get("sku", "")
    return f"AWS Price List API get_products, SKU {sku}, usagetype {usagetype}"


def parse_price_item(item: str, fetch_date: str = "") -> PriceRow | None:
    """One PriceList JSON string -> an on-demand training PriceRow, or None if not one."""
    doc = _document(item)
    attributes = doc.get("product", {}).get("attributes", {})
    usagetype = attributes.get("usagetype", "")
    match = _TRAIN_USAGE_RE.match(usagetype)
    if not match or attributes.get("platoinstancetype") != TRAINING_PLATO_TYPE:
        return None
    instance_type = match.group("type")
    region = attributes.get("regionCode", "")
    if not INSTANCE_TYPE_RE.match(instance_type) or not REGION_RE.match(region):
        return None
    named = attributes.get("instanceName", instance_type)
    if named != instance_type:
        log.warning("skipping %s: instanceName %s differs from the usage type", usagetype, named)
        return None
    priced = _one_price(doc, "Hrs", usagetype)
    if priced is None:
        return None
    usd, effective = priced
    return PriceRow(
        region=region,
        instance_type=instance_type,
        usd_per_hour=usd,
        source=_source(doc, usagetype),
        source_date=effective or fetch_date,
    )


def parse_storage_item(item: str, fetch_date: str = "") -> StorageRow | None:
    """One PriceList JSON string -> a training ML storage or S3 Standard StorageRow, or None."""
    doc = _document(item)
    product = doc.get("product", {})
    attributes = product.get("attributes", {})
    usagetype = attributes.get("usagetype", "")
    service = attributes.get("servicecode") or doc.get("serviceCode", "")
    if service == SERVICE_CODE and _TRAIN_VOLUME_RE.match(usagetype):
        kind, first_tier = ML_STORAGE, False
    elif (
        service == S3_SERVICE_CODE
        and _S3_STANDARD_USAGE_RE.match(usagetype)
        and all(attributes.get(name) == value for name, value in S3_STANDARD_FILTERS)
    ):
        kind, first_tier = S3_STANDARD, True
    else:
        return None
    region = attributes.get("regionCode", "")
    if product.get("productFamily") != STORAGE_FAMILY or not REGION_RE.match(region):
        return None
    priced = _one_price(doc, "GB-Mo", usagetype, first_tier=first_tier)
    if priced is None:
        return None
    usd, effective = priced
    return StorageRow(
        region=region,
        kind=kind,
        usd_per_gb_month=usd,
        source=_source(doc, usagetype),
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


def _fetch_date(now: datetime | None) -> str:
    return f"{now:%Y-%m-%d}" if now is not None else ""


def _without_conflicts(
    items: Iterable[str],
    parse: Callable[[str, str], _Row | None],
    key: Callable[[_Row], tuple[str, str]],
    value: Callable[[_Row], Decimal],
    fetch_date: str,
) -> list[_Row]:
    """Parsed rows, one per key; a key two SKUs price differently is left out, with a
    warning, rather than guessing between them."""
    found: dict[tuple[str, str], _Row] = {}
    conflicts: set[tuple[str, str]] = set()
    for item in items:
        row = parse(item, fetch_date)
        if row is None:
            continue
        if key(row) in found and value(found[key(row)]) != value(row):
            conflicts.add(key(row))
        found.setdefault(key(row), row)
    for conflict in sorted(conflicts):
        log.warning("no rate for %s %s: the Price List has conflicting rates", *conflict)
        del found[conflict]
    return sorted(found.values(), key=key)


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
    wanted = _regions(regions)
    items = (item for region in wanted for item in _price_list(pricing_client, region))
    return _without_conflicts(
        items,
        parse_price_item,
        lambda r: (r.region, r.instance_type),
        lambda r: r.usd_per_hour,
        _fetch_date(now),
    )


def fetch_storage_rates(
    pricing_client: BaseClient,
    regions: Iterable[str] | None = None,
    *,
    now: datetime | None = None,
) -> list[StorageRow]:
    """Training ML storage and S3 Standard (first tier) rates per GB-month, sorted.

    One query per region for SageMaker's storage products and one for S3 Standard; a
    (region, kind) the Price List prices twice differently is left out with a warning.
    """
    wanted = _regions(regions)

    def items() -> Iterator[str]:
        for region in wanted:
            yield from _price_list(pricing_client, region, family=STORAGE_FAMILY)
        for region in wanted:
            yield from _price_list(
                pricing_client,
                region,
                service=S3_SERVICE_CODE,
                family=STORAGE_FAMILY,
                extra=S3_STANDARD_FILTERS,
            )

    return _without_conflicts(
        items(),
        parse_storage_item,
        lambda r: (r.region, r.kind),
        lambda r: r.usd_per_gb_month,
        _fetch_date(now),
    )


def refresh(
    pricing_client: BaseClient,
    snapshot_dir: Path,
    now: datetime,
    regions: Iterable[str] | None = None,
) -> Refreshed:
    """Fetch training and storage rates; write ``refreshed-YYYYMMDD.csv`` and, when any storage
    rate was found, ``refreshed-storage-YYYYMMDD.csv``.

    Refuses to write an empty training snapshot: an empty answer means a wrong filter,
    region or endpoint, and an empty file would hide that. Storage is fetched only after
    the training rates came back; a region without a storage rate is logged and stays as
    the shipped file and the ``[pricing]`` settings have it.
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
    storage = fetch_storage_rates(pricing_client, regions, now=now)
    for region in regions or []:
        for kind in (ML_STORAGE, S3_STANDARD):
            if not any(row.region == region and row.kind == kind for row in storage):
                log.warning(
                    "no %s rate for %s in the Price List; the shipped or configured "
                    "rate, if any, stays",
                    kind,
                    region,
                )
    path = write_snapshot(rows, snapshot_dir, now)
    storage_path = write_storage_snapshot(storage, snapshot_dir, now) if storage else None
    return Refreshed(path, len(rows), storage_path, len(storage))
