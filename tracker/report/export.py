"""Export the tracker's own costs: FOCUS 1.2 rows, or a plain per-job table (CSV or Parquet).

FOCUS rows: one per job, UTC day and cost item (instance time, warm pool, ML storage volume),
from the per-day split in the database, with every column FOCUS 1.2 makes mandatory plus
ResourceId (the job ARN), ResourceName, Tags and a few ``x_`` columns (``x_UsageType`` in
AWS's usage-type form, so a FOCUS export of the tracker reads back like an AWS bill). Money is
written to the micro-dollar, exactly as stored, so reading the export back as a bill and
reconciling it gives a zero delta. Item rows of a day add up exactly to that day's list and
effective cost (a day's remainder of a micro-dollar goes to its largest item).
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import os
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tracker.cost.items import CHARGE_ITEMS
from tracker.errors import InputError, printable
from tracker.records import cents, from_micros
from tracker.report.spend import shown_usd
from tracker.store.bills import BillRepository, JobDayCost

if TYPE_CHECKING:
    import pyarrow as pa

    from tracker.cost.prices import PriceBook
    from tracker.store.database import Store
    from tracker.store.schema import Job

FORMATS = ("focus", "csv", "parquet")
MICRO = Decimal("0.000001")
QUANTITY = Decimal("0.000000001")

FOCUS_MANDATORY = (
    "BilledCost", "BillingAccountId", "BillingAccountName", "BillingCurrency",
    "BillingPeriodEnd", "BillingPeriodStart", "ChargeCategory", "ChargeClass",
    "ChargeDescription", "ChargePeriodEnd", "ChargePeriodStart", "ContractedCost",
    "EffectiveCost", "InvoiceIssuerName", "ListCost", "PricingQuantity", "PricingUnit",
    "ProviderName", "PublisherName", "ServiceCategory", "ServiceName",
)  # fmt: skip
FOCUS_COLUMNS = (
    *FOCUS_MANDATORY,
    "ChargeFrequency", "ConsumedQuantity", "ConsumedUnit", "PricingCategory", "RegionId",
    "ResourceId", "ResourceName", "ResourceType", "ServiceSubcategory", "SubAccountId",
    "SubAccountName", "Tags", "x_ServiceCode", "x_UsageType", "x_TrackerItem", "x_TrackerFlags",
)  # fmt: skip
MONEY_COLUMNS = ("BilledCost", "ContractedCost", "EffectiveCost", "ListCost")
QUANTITY_COLUMNS = ("PricingQuantity", "ConsumedQuantity")
TIME_COLUMNS = ("BillingPeriodStart", "BillingPeriodEnd", "ChargePeriodStart", "ChargePeriodEnd")

PLAIN_COLUMNS = (
    "job", "arn", "team", "project", "user", "account", "region", "status", "instance_type",
    "instance_count", "spot", "creation_time", "start_time", "end_time", "billable_seconds",
    "compute_usd", "spot_savings_usd", "warm_pool_usd", "storage_usd", "total_usd",
    "effective_usd", "artifact_usd_per_month", "unpriced", "flags",
)  # fmt: skip
PLAIN_MONEY = (
    "compute_usd", "spot_savings_usd", "warm_pool_usd", "storage_usd", "total_usd",
    "effective_usd", "artifact_usd_per_month",
)  # fmt: skip

# AWS usage-type region prefixes (as on bills and in the Price List).
REGION_PREFIX = {
    "us-east-1": "USE1", "us-east-2": "USE2", "us-west-1": "USW1", "us-west-2": "USW2",
    "ca-central-1": "CAN1", "eu-west-1": "EU", "eu-west-2": "EUW2", "eu-west-3": "EUW3",
    "eu-central-1": "EUC1", "eu-central-2": "EUC2", "eu-north-1": "EUN1", "eu-south-1": "EUS1",
    "ap-northeast-1": "APN1", "ap-northeast-2": "APN2", "ap-northeast-3": "APN3",
    "ap-southeast-1": "APS1", "ap-southeast-2": "APS2", "ap-south-1": "APS3",
    "sa-east-1": "SAE1", "me-south-1": "MES1", "af-south-1": "AFS1", "ap-east-1": "APE1",
}  # fmt: skip


def output_kind(path: str, fmt: str) -> str:
    """``csv`` or ``parquet`` from the output file name, checked against ``--format``."""
    lower = path.lower()
    if lower.endswith(".parquet"):
        kind = "parquet"
    elif lower.endswith((".csv", ".csv.gz")):
        kind = "csv"
    else:
        raise InputError(f"--output {path}: expected a file name ending .csv, .csv.gz or .parquet")
    if fmt in ("csv", "parquet") and kind != fmt:
        raise InputError(f"--output {path}: --format {fmt} writes a .{fmt} file")
    return kind


# -- FOCUS -----------------------------------------------------------------------------------
@dataclass(frozen=True)
class _Item:
    name: str  # compute | warm-pool | storage
    list_micros: int
    effective_micros: int


def usage_prefix(region: str) -> str:
    return REGION_PREFIX.get(region, region.upper())


def _split_effective(items: list[tuple[str, int]], list_total: int, effective: int) -> list[_Item]:
    """Item list micros fixed to sum to the day's list (the largest item absorbs the day's
    rounding); storage's effective cost is its list (discounts apply to instance usage
    only, docs/cost-model.md rule 8) and the rest of the day's effective micros is shared
    pro rata by list over the instance items with the largest-remainder method, so the
    items add up exactly to the day."""
    drift = list_total - sum(micros for _, micros in items)
    largest = max(range(len(items)), key=lambda i: (abs(items[i][1]), -i))
    items = [(n, m + (drift if i == largest else 0)) for i, (n, m) in enumerate(items)]
    shares = [min(max(m, 0), effective) if n == "storage" else 0 for n, m in items]
    rest = effective - sum(shares)
    discounted = [i for i, (n, _) in enumerate(items) if n != "storage"]
    base = sum(items[i][1] for i in discounted)
    if not base:
        shares[largest] += rest
    else:
        exact = {i: divmod(rest * items[i][1], base) for i in discounted}
        for i, (whole, _) in exact.items():
            shares[i] = whole
        by_remainder = sorted(discounted, key=lambda i: (-exact[i][1], i))
        for i in by_remainder[: rest - sum(shares[i] for i in discounted)]:
            shares[i] += 1
    return [_Item(n, m, s) for (n, m), s in zip(items, shares, strict=True)]


def day_items(cost: JobDayCost) -> list[_Item]:
    """The FOCUS item rows of one job-day; a day without cost keeps one zero instance row."""
    items = [
        ("compute", cost.compute_micros),
        ("warm-pool", cost.warm_pool_micros),
        ("storage", cost.storage_micros),
    ]
    split = _split_effective(items, cost.list_micros, cost.effective_micros)
    kept = [item for item in split if item.list_micros or item.effective_micros]
    return kept or [_Item("compute", 0, 0)]


def _instant(day: date) -> datetime:
    return datetime.combine(day, time.min, tzinfo=UTC)


def _month_bounds(day: date) -> tuple[datetime, datetime]:
    start = day.replace(day=1)
    end = (start + timedelta(days=32)).replace(day=1)
    return _instant(start), _instant(end)


def _usd(micros: int) -> Decimal:
    return from_micros(micros).quantize(MICRO)


def _share(total: Decimal, part: int, whole: int) -> Decimal:
    if whole == 0:
        return Decimal(0)
    return (total * Decimal(part) / Decimal(whole)).quantize(QUANTITY, rounding=ROUND_HALF_UP)


def _billed_hours(job: Job) -> Decimal:
    seconds = job.billable_seconds
    if seconds is None and job.start_time and job.end_time:
        seconds = max(0, int((job.end_time - job.start_time).total_seconds()))
    return Decimal(seconds or 0) / Decimal(3600)


def _quantity(cost: JobDayCost, item: _Item, price_book: PriceBook | None) -> tuple[Decimal, str]:
    job = cost.job
    count = Decimal(job.instance_count or 0)
    if item.name == "compute":
        return _share(_billed_hours(job) * count, cost.compute_micros, job.compute_micros), "Hours"
    if item.name == "warm-pool":
        hours = Decimal(job.warm_pool_retained_seconds or 0) / Decimal(3600) * count
        return _share(hours, cost.warm_pool_micros, job.warm_pool_micros), "Hours"
    rate = price_book.storage_usd_per_gb_month(job.region) if price_book is not None else None
    if not rate:
        return Decimal(0), "GB-Months"
    return (from_micros(item.list_micros) / rate).quantize(QUANTITY, ROUND_HALF_UP), "GB-Months"


def _usage_type(job: Job, item: str) -> str:
    prefix = usage_prefix(job.region)
    itype = job.instance_type or "unknown"
    if item == "storage":
        return f"{prefix}-Train:VolumeUsage.gp2"
    if item == "warm-pool":
        return f"{prefix}-Train-WarmPool:{itype}"
    return f"{prefix}-TrSpt:{itype}" if job.spot else f"{prefix}-Train:{itype}"


def _description(job: Job, item: str) -> str:
    what = f"{job.instance_type or 'unknown type'} x{job.instance_count}"
    if item == "storage":
        return f"SageMaker training ML storage volume, {job.volume_gb} GB per instance ({what})"
    if item == "warm-pool":
        return f"SageMaker training warm pool, {what}"
    return f"SageMaker training instance time, {what}" + (", managed spot" if job.spot else "")


def _pricing_category(job: Job) -> str:
    if job.training_plan_arn:
        return "Committed"
    return "Dynamic" if job.spot else "Standard"


def focus_rows(
    costs: Sequence[JobDayCost], accounts: dict[str, str], price_book: PriceBook | None = None
) -> list[dict[str, Any]]:
    """FOCUS 1.2 rows (dicts keyed by FOCUS_COLUMNS) for the stored job-day costs."""
    rows = []
    for cost in costs:
        job = cost.job
        period_start, period_end = _month_bounds(cost.day)
        tags = json.loads(job.tags_json or "{}")
        for item in day_items(cost):
            quantity, unit = _quantity(cost, item, price_book)
            effective = _usd(item.effective_micros)
            rows.append({
                "BilledCost": effective,
                "BillingAccountId": job.account_id,
                "BillingAccountName": accounts.get(job.account_id, job.account_id),
                "BillingCurrency": "USD",
                "BillingPeriodEnd": period_end,
                "BillingPeriodStart": period_start,
                "ChargeCategory": "Usage",
                "ChargeClass": None,
                "ChargeDescription": _description(job, item.name),
                "ChargePeriodEnd": _instant(cost.day + timedelta(days=1)),
                "ChargePeriodStart": _instant(cost.day),
                "ContractedCost": effective,
                "EffectiveCost": effective,
                "InvoiceIssuerName": "AWS",
                "ListCost": _usd(item.list_micros),
                "PricingQuantity": quantity,
                "PricingUnit": unit,
                "ProviderName": "AWS",
                "PublisherName": "AWS",
                "ServiceCategory": "AI and Machine Learning",
                "ServiceName": "Amazon SageMaker",
                "ChargeFrequency": "Usage-Based",
                "ConsumedQuantity": quantity,
                "ConsumedUnit": unit,
                "PricingCategory": _pricing_category(job),
                "RegionId": job.region,
                "ResourceId": job.arn,
                "ResourceName": job.name,
                "ResourceType": "Training Job",
                "ServiceSubcategory": "AI Platforms",
                "SubAccountId": job.account_id,
                "SubAccountName": accounts.get(job.account_id, job.account_id),
                "Tags": json.dumps(tags, sort_keys=True),
                "x_ServiceCode": "AmazonSageMaker",
                "x_UsageType": _usage_type(job, item.name),
                "x_TrackerItem": item.name,
                "x_TrackerFlags": job.flags or "",
            })  # fmt: skip
    return rows


def plain_rows(totals: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """The plain per-job table: one row per job, money in cents for the window's days."""
    rows = []
    for total in totals:
        job = total["job"]
        micros = {item.name: int(total[item.name]) for item in CHARGE_ITEMS}
        shown = shown_usd(micros, CHARGE_ITEMS)
        rows.append({
            "job": job.name, "arn": job.arn, "team": job.team, "project": job.project,
            "user": job.user, "account": job.account_id, "region": job.region,
            "status": job.status, "instance_type": job.instance_type,
            "instance_count": job.instance_count, "spot": job.spot,
            "creation_time": _aware(job.creation_time), "start_time": _aware(job.start_time),
            "end_time": _aware(job.end_time), "billable_seconds": job.billable_seconds,
            **{key: shown[key] for key in (
                "compute_usd", "spot_savings_usd", "warm_pool_usd", "storage_usd", "total_usd",
                "effective_usd",
            )},
            "artifact_usd_per_month": cents(from_micros(job.artifact_micros_per_month)),
            "unpriced": job.unpriced, "flags": job.flags or "",
        })  # fmt: skip
    return rows


def _aware(value: datetime | None) -> datetime | None:
    return None if value is None else value.replace(tzinfo=UTC)


# -- writing -----------------------------------------------------------------------------------
def export(
    store: Store,
    fmt: str,
    output: str,
    *,
    since: date | None = None,
    until: date | None = None,
    filters: dict[str, str] | None = None,
    price_book: PriceBook | None = None,
) -> int:
    """Write the export file; returns the number of rows written. ``filters`` restrict the
    jobs by team, project, user, account, region, instance_type or status."""
    if fmt not in FORMATS:
        raise InputError(f"--format {fmt!r}: expected one of {', '.join(FORMATS)}")
    kind = output_kind(output, fmt)
    repo = BillRepository(store)
    if fmt == "focus":
        rows = focus_rows(
            repo.job_day_costs(since, until, filters), repo.account_names(), price_book
        )
        columns = FOCUS_COLUMNS
    else:
        rows = plain_rows(repo.job_totals(since, until, filters))
        columns = PLAIN_COLUMNS
    if kind == "parquet":
        data = _parquet_bytes(rows, columns, fmt)
    else:
        data = _csv_bytes(rows, columns, safe=fmt != "focus")
    if output.lower().endswith(".gz"):
        data = gzip.compress(data, mtime=0)
    _write_atomic(Path(output), data)
    return len(rows)


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _csv_bytes(rows: Sequence[dict[str, Any]], columns: Sequence[str], safe: bool) -> bytes:
    """CSV text; ``safe`` shows text cells (tag values, job names) as the report CSV does:
    control and bidi characters as escapes (:func:`tracker.errors.printable`, the one rule),
    then spreadsheet formulas defused. The FOCUS file (and Parquet) keeps every value as it
    is: it is data for billing tools, like JSON."""
    from tracker.report.render import neutralise

    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(columns)
    for row in rows:
        values = [row.get(c) for c in columns]
        cells = [_text(v) for v in values]
        if safe:
            cells = [
                neutralise(printable(t)) if isinstance(v, str) else t
                for t, v in zip(cells, values, strict=True)
            ]
        writer.writerow(cells)
    return buffer.getvalue().encode("utf-8")


def _arrow_type(column: str, fmt: str) -> pa.DataType:
    import pyarrow as pa

    if fmt == "focus":
        if column in MONEY_COLUMNS:
            return pa.decimal128(24, 6)
        if column in QUANTITY_COLUMNS:
            return pa.decimal128(30, 9)
        if column in TIME_COLUMNS:
            return pa.timestamp("us", tz="UTC")
        return pa.string()
    if column in PLAIN_MONEY:
        return pa.decimal128(18, 2)
    if column in ("creation_time", "start_time", "end_time"):
        return pa.timestamp("us", tz="UTC")
    if column in ("instance_count", "billable_seconds"):
        return pa.int64()
    if column in ("spot", "unpriced"):
        return pa.bool_()
    return pa.string()


def _parquet_bytes(rows: Sequence[dict[str, Any]], columns: Sequence[str], fmt: str) -> bytes:
    import pyarrow as pa
    import pyarrow.parquet as pq

    schema = pa.schema([(c, _arrow_type(c, fmt)) for c in columns])
    table = pa.Table.from_pylist([{c: row.get(c) for c in columns} for row in rows], schema=schema)
    buffer = io.BytesIO()
    pq.write_table(table, buffer)
    return buffer.getvalue()


def _write_atomic(path: Path, data: bytes) -> None:
    folder = path.parent if str(path.parent) else Path(".")
    if not folder.is_dir():
        raise InputError(f"--output {path}: folder {folder} does not exist")
    tmp = None
    try:
        fd, tmp = tempfile.mkstemp(dir=folder, prefix=f".{path.name}.", suffix=".tmp")
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.replace(tmp, path)
    except OSError as exc:
        if tmp is not None:
            Path(tmp).unlink(missing_ok=True)
        raise InputError(f"--output {path}: cannot write ({exc.strerror or exc})") from None
