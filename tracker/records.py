"""Plain records passed between the pure stages (parse -> costing -> reports).

Nothing here imports boto3 or a database session. Times are timezone-aware UTC.
Money is ``Decimal`` in US dollars inside the engine; the store keeps exact
integer micro-dollars (see ``to_micros``/``from_micros``).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import ROUND_FLOOR, ROUND_HALF_UP, Decimal, InvalidOperation, localcontext

FINAL_STATUSES = frozenset({"Completed", "Failed", "Stopped"})
RUNNING_STATUSES = frozenset({"InProgress", "Stopping"})
# TrainingJobStatus values the API documents; any other is kept as sent and flagged.
KNOWN_STATUSES = FINAL_STATUSES | RUNNING_STATUSES | {"Deleting"}
UNALLOCATED = "unallocated"
# Where a job's team came from (``JobRecord.team_source``): its team tag, else the name of the
# allocation rule that assigned it, else unallocated.
TEAM_FROM_TAG = "tag"
# What produced a job, from its stored record (``tracker.collect.parse.lineage``): a report
# dimension and a filter each. ``model`` is the registered model (package) whose lineage the job
# is part of, linked by the models collection rather than read from the job's own record.
LINEAGE = (
    "tuning_job", "automl_job", "pipeline", "pipeline_execution", "experiment", "trial",
    "base_model", "model",
)  # fmt: skip
# What a report can group by; here, not in the store, so ``tracker --help`` needs no database code.
DIMENSIONS = (
    "team", "project", "user", "instance_type", "account", "region", "status", "day", "month", "job",
    *LINEAGE, "team_source",
)  # fmt: skip
# What a report, view, export or the dashboard can filter on (equality on the job's value).
FILTERS = (
    "team", "project", "user", "account", "region", "instance_type", "status", *LINEAGE,
    "team_source",
)  # fmt: skip

# The shapes of AWS identifiers the tracker checks input against (config, price files, CLI).
REGION_RE = re.compile(r"^[a-z]{2}(-gov|-iso[a-z]?)?-[a-z]+-\d{1,2}$")
INSTANCE_TYPE_RE = re.compile(r"^ml\.[a-z0-9]+(-[a-z0-9]+)*\.[a-z0-9]+(-[a-z0-9]+)*$")

MICROS = Decimal(1_000_000)
MICROS_PER_CENT = Decimal(10_000)
CENT = Decimal("0.01")
# Wide enough that a share scaled to micro-dollars keeps every digit of a day part (1e-24).
_APPORTION_PRECISION = 80


def to_micros(usd: Decimal) -> int:
    """Dollars -> integer micro-dollars, rounding half up at the sixth decimal."""
    return int((usd * MICROS).quantize(Decimal(1), rounding=ROUND_HALF_UP))


def from_micros(micros: int) -> Decimal:
    return Decimal(micros) / MICROS


def cents(usd: Decimal) -> Decimal:
    """Round to cents for display (half up, as invoices do); never a negative zero."""
    rounded = usd.quantize(CENT, rounding=ROUND_HALF_UP)
    return abs(rounded) if rounded == 0 else rounded


def usd_cents(micros: int | Decimal | None) -> Decimal:
    """Micro-dollars (exact, maybe fractional) -> USD rounded to the cent, as every output shows it."""
    return cents(Decimal(micros or 0) / MICROS)


def largest_remainder(target: int, shares: Sequence[Decimal]) -> list[int]:
    """Whole units per share, summing to ``target``: each share's floor, then the units
    still missing go one each to the largest fractional remainders (earlier share first on
    a tie), or are taken from the smallest when the floors overshoot.

    The one apportioning rule of the tracker: micro-dollars over days and over the parts
    of a total (``tracker.cost.engine``), cents over the shown parts (``cents_parts``)."""
    if not shares:
        return []
    with localcontext() as ctx:
        ctx.prec = _APPORTION_PRECISION
        floors = [int(share.to_integral_value(rounding=ROUND_FLOOR)) for share in shares]
        remainders = [share - floor for share, floor in zip(shares, floors, strict=True)]
    missing = target - sum(floors)
    if missing >= 0:
        order = sorted(range(len(shares)), key=lambda i: (-remainders[i], i))
        step = 1
    else:
        order = sorted(range(len(shares)), key=lambda i: (remainders[i], i))
        step = -1
    for k in range(abs(missing)):
        floors[order[k % len(order)]] += step
    return floors


def cents_parts(total_micros: int, part_micros: Sequence[int]) -> tuple[int, list[int]]:
    """The shown total and shown parts, in whole cents, such that the parts add up to it.

    The total is rounded half up to the cent (``usd_cents``); the cents are then
    apportioned over the parts by largest remainder. Every output that shows a total
    beside its parts (compute + warm pool + storage) takes both from here."""
    total_cents = int((Decimal(total_micros) / MICROS_PER_CENT).quantize(1, ROUND_HALF_UP))
    shares = [Decimal(part) / MICROS_PER_CENT for part in part_micros]
    return total_cents, largest_remainder(total_cents, shares)


def format_usd(usd: Decimal, *, symbol: bool = False) -> str:
    """A USD amount as text, rounded to cents, thousands separated: ``1,234.57``, or
    ``-$1,234.57`` with ``symbol``. Every output formats money through here."""
    text = f"{cents(usd):,.2f}"
    if not symbol:
        return text
    return f"-${text[1:]}" if text.startswith("-") else f"${text}"


def decimal_or_none(value: object, *, finite: bool = True) -> Decimal | None:
    """A Decimal from an int, float, Decimal or numeric text; None for anything else.

    ``finite=False`` also returns infinities and NaN, for callers whose message tells a
    non-finite number apart from text that is no number at all."""
    if isinstance(value, bool):  # True is an int to Python, never a number in a config or a file
        return None
    if isinstance(value, Decimal):
        number = value
    elif isinstance(value, int | float | str):
        try:
            number = Decimal(str(value))
        except InvalidOperation:
            return None
    else:
        return None
    return number if number.is_finite() or not finite else None


def whole_or_none(value: object, low: int, high: int) -> int | None:
    """``value`` when it is a whole number (not a bool) from ``low`` to ``high``; else None."""
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        return None
    return value


@dataclass(frozen=True)
class InstanceGroup:
    """One homogeneous group of instances (a heterogeneous cluster has up to 5)."""

    instance_type: str
    count: int
    name: str = ""


@dataclass(frozen=True)
class JobRecord:
    """Everything the cost rules need about one training job, as AWS reported it.

    ``instance_type``/``instance_count`` are ResourceConfig's requested values;
    ``selected_*`` are set for flexible-instance jobs and win when present;
    ``instance_groups`` is non-empty for heterogeneous clusters and wins over both.
    Fields AWS did not report are None, never invented.
    """

    account_id: str
    region: str
    name: str
    arn: str
    status: str
    creation_time: datetime
    last_modified_time: datetime
    start_time: datetime | None = None
    end_time: datetime | None = None
    secondary_status: str | None = None
    failure_reason: str | None = None
    instance_type: str | None = None
    instance_count: int | None = None
    selected_instance_type: str | None = None
    selected_instance_count: int | None = None
    instance_groups: tuple[InstanceGroup, ...] = ()
    volume_gb: int = 0
    spot: bool = False
    billable_seconds: int | None = None
    training_seconds: int | None = None
    warm_pool_status: str | None = None
    warm_pool_retained_seconds: int | None = None
    warm_pool_reused_by: str | None = None
    keep_alive_seconds: int | None = None
    training_plan_arn: str | None = None
    serverless_base_model_arn: str | None = None
    billable_token_count: int | None = None
    max_runtime_seconds: int | None = None
    max_wait_seconds: int | None = None
    model_artifact_uri: str | None = None
    output_path_uri: str | None = None
    checkpoint_uri: str | None = None
    artifact_bytes: int = 0
    tags: dict[str, str] = field(default_factory=dict)
    team: str = UNALLOCATED
    project: str | None = None
    user: str | None = None
    team_source: str = UNALLOCATED
    role_arn: str | None = None
    # Lineage (names, not ARNs; see LINEAGE): None when the job is not part of one.
    tuning_job: str | None = None
    automl_job: str | None = None
    pipeline: str | None = None
    pipeline_execution: str | None = None
    experiment: str | None = None
    trial: str | None = None
    base_model: str | None = None
    # Work the job reports (``tracker.collect.parse.work_units``): thousandths of a training
    # epoch (epochs may be fractional, e.g. Hugging Face's ``num_train_epochs=1.5``) and
    # training tokens; None when the job does not say.
    milli_epochs: int | None = None
    train_tokens: int | None = None

    @property
    def is_final(self) -> bool:
        return self.status in FINAL_STATUSES

    @property
    def is_serverless(self) -> bool:
        """A serverless job is one DescribeTrainingJob sent a ``ServerlessJobConfig`` for
        (its ``BaseModelArn`` is required); ``BillableTokenCount`` alone, even 0, is not."""
        return self.serverless_base_model_arn is not None

    def billed_groups(self) -> tuple[InstanceGroup, ...]:
        """The instances the job is billed for: groups, else selected, else requested."""
        if self.instance_groups:
            return self.instance_groups
        itype = self.selected_instance_type or self.instance_type
        count = self.selected_instance_count or self.instance_count or 0
        if not itype:
            return ()
        return (InstanceGroup(itype, count),)


@dataclass(frozen=True)
class Rates:
    """The prices one job needs, already looked up from the price book.

    ``hourly`` maps instance type -> on-demand training USD per instance-hour
    (a type missing from it is unpriced). ``discount_pct`` turns list cost into
    effective cost (Savings Plans, private pricing).
    """

    hourly: dict[str, Decimal]
    storage_usd_per_gb_month: Decimal | None = None
    s3_usd_per_gb_month: Decimal | None = None
    usd_per_million_tokens: Decimal | None = None
    discount_pct: Decimal = Decimal(0)


@dataclass(frozen=True)
class PeriodCost:
    """The share of a job's cost that falls in one UTC day."""

    day: str  # ISO date, YYYY-MM-DD
    compute_usd: Decimal
    spot_savings_usd: Decimal
    warm_pool_usd: Decimal
    storage_usd: Decimal
    list_usd: Decimal
    effective_usd: Decimal


@dataclass(frozen=True)
class JobCost:
    """Itemised cost of one job. ``total_usd`` is the list cost the job incurred.

    compute (instance time, or tokens for serverless jobs) + warm_pool + storage
    = list_usd (= total_usd); effective_usd applies
    discounts; spot_savings_usd is what managed spot saved (not part of the total);
    plan_value_usd is the on-demand value of compute covered by a training plan
    (prepaid, not part of the total); artifact_usd_per_month is the S3 run-rate of
    the job's artifacts (not part of the total). ``flags`` say what is not known.
    """

    compute_usd: Decimal = Decimal(0)
    spot_savings_usd: Decimal = Decimal(0)
    warm_pool_usd: Decimal = Decimal(0)
    storage_usd: Decimal = Decimal(0)
    plan_value_usd: Decimal = Decimal(0)
    artifact_usd_per_month: Decimal = Decimal(0)
    list_usd: Decimal = Decimal(0)
    effective_usd: Decimal = Decimal(0)
    unpriced: bool = False
    flags: tuple[str, ...] = ()
    periods: tuple[PeriodCost, ...] = ()

    @property
    def total_usd(self) -> Decimal:
        return self.list_usd


# -- estimates: what the store keeps and what matching reads back -----------------------------
@dataclass(frozen=True)
class EstimateEntry:
    """An itemised estimate as the store records it (``tracker.estimate.rules.Estimate.entry``)."""

    estimate_id: str
    created_at: datetime
    region: str
    instance_type: str
    instance_count: int
    hours: Decimal
    cost: JobCost
    usd_per_hour: Decimal | None = None
    spot_ratio: Decimal | None = None
    volume_gb: int = 0
    team: str | None = None
    job_name: str | None = None
    name_prefix: str | None = None


@dataclass(frozen=True)
class RecordedEstimate:
    """A recorded estimate as the matcher needs it. ``usd`` is the quoted (cents) total."""

    estimate_id: str
    created_at: datetime
    usd: Decimal
    job_name: str | None = None
    name_prefix: str | None = None
    team: str | None = None
