"""Pure cost engine: one JobRecord + its Rates + ``now`` -> an itemised JobCost.

No boto3, no database. The rules, as equations with worked examples, are in
docs/cost-model.md; ``tests/test_cost_model_doc.py`` runs every example there
against this module so the two cannot drift.

Money stays ``Decimal`` here and nothing is rounded: ``job_micros`` and ``period_micros``
are the one place that turns dollars into integer micro-dollars, with the largest-remainder
method, so a job's parts add up exactly to its total and its days exactly to the job.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta
from decimal import ROUND_DOWN, Decimal, localcontext

from tracker.records import (
    KNOWN_STATUSES,
    MICROS,
    RUNNING_STATUSES,
    InstanceGroup,
    JobCost,
    JobRecord,
    PeriodCost,
    Rates,
    decimal_or_none,
    largest_remainder,
    to_micros,
)

# Significant digits for the cost items (28 is Python's default; a little more is free).
ENGINE_PRECISION = 34
# Wide enough that a day part quantized to _PART_QUANTUM plus the residual day is exact.
_SPLIT_PRECISION = 80
_PART_QUANTUM = Decimal("1e-24")

ZERO = Decimal(0)
SECONDS_PER_HOUR = Decimal(3600)
BYTES_PER_GIB = Decimal(2**30)
TOKENS_PER_MILLION = Decimal(1_000_000)
_ONE_MICROSECOND = timedelta(microseconds=1)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
# DescribeTrainingJob WarmPoolStatus.Status values whose retained time is still growing:
# ResourceRetainedBillableTimeInSeconds is reported only once the pool is Terminated or Reused.
OPEN_WARM_POOL_STATUSES = frozenset({"Available", "InUse"})
WARM_POOL_OPEN_FLAG = "warm-pool-open"

# Families whose training instances have NVMe instance storage, so SageMaker provisions no
# billed ML storage (EBS gp2) volume. AWS API Reference, ResourceConfig.VolumeSizeInGB:
# "When using an ML instance with NVMe SSD volumes, SageMaker doesn't provision Amazon EBS
# General Purpose SSD (gp2) storage ... ML instance families with the NVMe-type instance
# storage include ml.p4d, ml.g4dn, and ml.g5 ... ML instance families that use EBS volumes
# include ml.c5 and ml.p2", and for the rest points to the EC2 instance-type tables. Each
# other family below is there because its EC2 counterpart lists NVMe SSD instance store
# volumes in "Amazon EC2 instance type specifications" (docs.aws.amazon.com/ec2/latest/
# instancetypes/: ac.html accelerated, gp.html general purpose, co.html compute optimized,
# mo.html memory optimized). A family not listed here (ml.m5, ml.c5,
# ml.p3, ml.r5, ml.t3, ml.inf2, ...) is EBS-backed: its volume is billed. docs/cost-model.md,
# rule 5, repeats this table; settings.py takes its default from here (one list).
DEFAULT_LOCAL_STORAGE_FAMILIES = frozenset(
    {
        "ml.p4d",  # named by AWS (VolumeSizeInGB)
        "ml.g4dn",  # named by AWS (VolumeSizeInGB)
        "ml.g5",  # named by AWS (VolumeSizeInGB)
        "ml.p3dn",  # ac.html: NVMe SSD instance store
        "ml.p4de",  # ac.html: NVMe SSD instance store
        "ml.p5",  # ac.html: NVMe SSD instance store
        "ml.p5e",  # ac.html: NVMe SSD instance store
        "ml.p5en",  # ac.html: NVMe SSD instance store
        "ml.p6-b200",  # ac.html: NVMe SSD instance store
        # ac.html lists NVMe SSD instance store for p6-b300.48xlarge; a public benchmark log
        # of a running p6-b300.48xlarge shows it as a 28 TB RAID0 at /mnt/nvme.
        "ml.p6-b300",
        # ac.html, as copied into a public node-profile README (Instance store table):
        # "p6e-gb200.36xlarge | 3 x 7500 GB | NVMe SSD".
        "ml.p6e-gb200",
        "ml.g6",  # ac.html: NVMe SSD instance store
        "ml.g6e",  # ac.html: NVMe SSD instance store
        # g7e.2xlarge: "Instance Store | NVMe SSD 1.9 TB (nvme1n1) - included by default
        # with instance type" (a public g7e deployment guide quoting the EC2 spec).
        "ml.g7e",
        "ml.trn1",  # ac.html: NVMe SSD instance store
        "ml.trn1n",  # ac.html: NVMe SSD instance store
        "ml.trn2",  # ac.html: NVMe SSD instance store
        "ml.m5d",  # gp.html: NVMe SSD instance store
        "ml.m6id",  # gp.html: NVMe SSD instance store
        "ml.c5d",  # co.html: NVMe SSD instance store
        "ml.c6id",  # co.html: NVMe SSD instance store
        "ml.r5d",  # mo.html: NVMe SSD instance store
    }
)

# The items whose sum is the list total, as job_micros keys them.
_PARTS = (
    ("compute_micros", "compute_usd"),
    ("warm_pool_micros", "warm_pool_usd"),
    ("storage_micros", "storage_usd"),
)
# Items split over days before list and effective are derived from them.
_DAY_ITEMS = ("compute_usd", "spot_savings_usd", "warm_pool_usd", "storage_usd")
# Items a PeriodCost carries, in the order period_micros reports them.
_PERIOD_ITEMS = (
    ("compute_micros", "compute_usd"),
    ("spot_savings_micros", "spot_savings_usd"),
    ("warm_pool_micros", "warm_pool_usd"),
    ("storage_micros", "storage_usd"),
    ("list_micros", "list_usd"),
    ("effective_micros", "effective_usd"),
)


@dataclass(frozen=True)
class CostPolicy:
    """Choices the cost rules leave to configuration.

    ``local_storage_families``: instance families (``ml.p4d`` for ``ml.p4d.24xlarge``)
    that train on local NVMe and get no billed ML storage volume.
    """

    local_storage_families: frozenset[str] = DEFAULT_LOCAL_STORAGE_FAMILIES

    def __post_init__(self) -> None:
        # Config may hand over a list; keep the engine's type exact.
        object.__setattr__(self, "local_storage_families", frozenset(self.local_storage_families))


def hours_in_month(day: date) -> int:
    """Hours of the UTC calendar month ``day`` falls in: 744, 720, 696 or 672."""
    if day.month == 12:  # December has 31 days, and 9999-12 has no following month
        return 31 * 24
    following = date(day.year, day.month + 1, 1)
    return (following - day.replace(day=1)).days * 24


def instance_family(instance_type: str) -> str:
    """``ml.p4d.24xlarge`` -> ``ml.p4d``: everything before the size."""
    return instance_type.rsplit(".", 1)[0]


@dataclass
class _Flags:
    """Collects what the engine could not know; sorted and unique on the way out."""

    names: set[str] = field(default_factory=set)

    def add(self, name: str) -> None:
        self.names.add(name)

    def nonnegative(self, value: Decimal, flag: str) -> Decimal:
        """Clamp a negative quantity to 0 and say so."""
        if value < 0:
            self.add(flag)
            return ZERO
        return value

    def as_tuple(self) -> tuple[str, ...]:
        return tuple(sorted(self.names))


@dataclass(frozen=True)
class _Times:
    """The job's instants in aware UTC; ``anchor`` is the day everything falls on
    when there is no interval to split over."""

    start: datetime | None
    end: datetime | None
    now: datetime
    anchor: datetime
    final: bool


_Window = tuple[datetime, datetime]
# The training and warm-pool intervals; None means "all on the anchor day".
_Windows = tuple[_Window | None, _Window | None]


@dataclass(frozen=True)
class _Items:
    """Unrounded cost items before the training-plan and discount rules."""

    compute: Decimal = ZERO
    spot_savings: Decimal = ZERO
    warm_pool: Decimal = ZERO
    storage_training: Decimal = ZERO
    storage_warm: Decimal = ZERO


def cost_job(
    job: JobRecord, rates: Rates, now: datetime, policy: CostPolicy = CostPolicy()
) -> JobCost:
    """Itemised cost of one job as of ``now`` (used only for running jobs); never raises."""
    flags = _Flags()
    if job.status not in KNOWN_STATUSES:
        flags.add("unknown-status")
    with localcontext() as ctx:
        ctx.prec = ENGINE_PRECISION
        times = _times(job, now)
        windows = _windows(job, times)
        if job.is_serverless:
            items, unpriced = _serverless_items(job, rates, times, flags)
        else:
            items, unpriced = _instance_items(job, rates, times, windows, policy, flags)
        plan_value = ZERO
        if job.training_plan_arn:
            flags.add("training-plan")
            plan_value = items.compute + items.warm_pool
            items = _Items(storage_training=items.storage_training, storage_warm=items.storage_warm)
        artifact = _artifact_usd_per_month(job, rates, flags)
        factor = _effective_factor(rates, flags)
    with localcontext() as ctx:
        ctx.prec = _SPLIT_PRECISION  # exact sums of items computed at ENGINE_PRECISION
        storage = items.storage_training + items.storage_warm
        list_usd = items.compute + items.warm_pool + storage
        # Savings Plans and private pricing discount instance usage, never the volume.
        effective = (items.compute + items.warm_pool) * factor + storage
        periods = _periods(items, list_usd, factor, times, windows)
    return JobCost(
        compute_usd=items.compute,
        spot_savings_usd=items.spot_savings,
        warm_pool_usd=items.warm_pool,
        storage_usd=storage,
        plan_value_usd=plan_value,
        artifact_usd_per_month=artifact,
        list_usd=list_usd,
        effective_usd=effective,
        unpriced=unpriced,
        flags=flags.as_tuple(),
        periods=periods,
    )


def job_micros(cost: JobCost) -> dict[str, int]:
    """The integer micro-dollars the store keeps for a job, keyed by column.

    The total comes first, ``list_micros = to_micros(list_usd)``; compute, warm pool and
    storage are then apportioned over it with the largest-remainder method, so the stored
    parts add up to the stored total exactly (each part is within one micro-dollar of
    ``to_micros`` of itself). Items outside the total are ``to_micros`` of their own.
    """
    list_micros = to_micros(cost.list_usd)
    parts = largest_remainder(list_micros, _in_micros(getattr(cost, attr) for _, attr in _PARTS))
    micros = {key: part for (key, _), part in zip(_PARTS, parts, strict=True)}
    return {
        "compute_micros": micros["compute_micros"],
        "spot_savings_micros": to_micros(cost.spot_savings_usd),
        "warm_pool_micros": micros["warm_pool_micros"],
        "storage_micros": micros["storage_micros"],
        "list_micros": list_micros,
        "effective_micros": to_micros(cost.effective_usd),
        "artifact_micros_per_month": to_micros(cost.artifact_usd_per_month),
        "plan_value_micros": to_micros(cost.plan_value_usd),
    }


def period_micros(cost: JobCost) -> list[tuple[date, dict[str, int]]]:
    """Per-day integer micro-dollars whose days sum exactly to the job's ``job_micros``.

    Keys: compute_micros, spot_savings_micros, warm_pool_micros, storage_micros,
    list_micros, effective_micros. Each item but list is apportioned over the days on its
    own with the largest-remainder method (ties go to the earlier day); a day's list is
    the sum of its compute, warm pool and storage, so every day adds up as the job does.
    """
    days = [date.fromisoformat(p.day) for p in cost.periods]
    targets = job_micros(cost)
    if not days:
        if any(targets[key] for key, _ in _PERIOD_ITEMS):
            raise ValueError("JobCost has money but no periods; build it with cost_job()")
        return []
    columns = {
        key: largest_remainder(targets[key], _in_micros(getattr(p, attr) for p in cost.periods))
        for key, attr in _PERIOD_ITEMS
        if key != "list_micros"
    }
    columns["list_micros"] = [
        sum(values) for values in zip(*(columns[key] for key, _ in _PARTS), strict=True)
    ]
    return [(day, {key: columns[key][i] for key, _ in _PERIOD_ITEMS}) for i, day in enumerate(days)]


def _in_micros(amounts: Iterable[Decimal]) -> list[Decimal]:
    """Dollars scaled to micro-dollars with every digit kept (no rounding yet)."""
    with localcontext() as ctx:
        ctx.prec = _SPLIT_PRECISION
        return [amount * MICROS for amount in amounts]


# --- rules 1-5: instance jobs ---------------------------------------------------------


def _instance_items(
    job: JobRecord,
    rates: Rates,
    times: _Times,
    windows: _Windows,
    policy: CostPolicy,
    flags: _Flags,
) -> tuple[_Items, bool]:
    """Compute, spot savings, warm pool and storage of an instance-based job (rules 1-5)."""
    groups = job.billed_groups()
    hourly_usd, unpriced = _hourly_usd(groups, rates, flags)
    billed_seconds = _billed_seconds(job, times, flags)
    retained_seconds = _retained_seconds(job, times, flags)
    items = _Items(
        compute=hourly_usd * billed_seconds / SECONDS_PER_HOUR,
        spot_savings=_spot_savings(job, hourly_usd, flags),
        warm_pool=hourly_usd * retained_seconds / SECONDS_PER_HOUR,
    )
    volume_gb_instances = _volume_gb_instances(job, groups, policy, flags)
    if volume_gb_instances == 0:
        return items, unpriced
    storage_rate = decimal_or_none(rates.storage_usd_per_gb_month)
    if storage_rate is None or storage_rate < 0:
        flags.add("storage-unpriced")
        return items, unpriced
    usd_per_month = volume_gb_instances * storage_rate
    training_seconds = _storage_seconds(job, times, billed_seconds, flags)
    training_window, warm_window = windows
    return (
        replace(
            items,
            storage_training=_storage_usd(usd_per_month, training_seconds, training_window, times),
            storage_warm=_storage_usd(usd_per_month, retained_seconds, warm_window, times),
        ),
        unpriced,
    )


def _storage_usd(
    usd_per_month: Decimal, seconds: Decimal, window: _Window | None, times: _Times
) -> Decimal:
    """Rule 5: GB-month x the hours of each calendar month the volume was held in.

    The seconds are spread over the months as the window falls on them; without a window
    they are all in the anchor day's month. One division per month, at ENGINE_PRECISION.
    """
    if seconds == 0:
        return ZERO
    by_month: dict[int, Decimal] = {}
    for day, part in _day_seconds(*window) if window else []:
        hours = hours_in_month(day)
        by_month[hours] = by_month.get(hours, ZERO) + part
    window_seconds = sum(by_month.values(), ZERO)
    if window_seconds <= 0:
        return usd_per_month * seconds / (SECONDS_PER_HOUR * hours_in_month(times.anchor.date()))
    return sum(
        (
            usd_per_month * seconds * part / (window_seconds * SECONDS_PER_HOUR * hours)
            for hours, part in by_month.items()
        ),
        ZERO,
    )


def _hourly_usd(
    groups: Sequence[InstanceGroup], rates: Rates, flags: _Flags
) -> tuple[Decimal, bool]:
    """Sum of rate x count over the priced groups, and whether any group is unpriced."""
    if not groups:
        flags.add("no-instance-type")
        return ZERO, True
    hourly_usd = ZERO
    unpriced = False
    for group in groups:
        count = _group_count(group, flags)
        if not group.instance_type:
            flags.add("no-instance-type")
            unpriced = True
            continue
        rate = decimal_or_none(rates.hourly.get(group.instance_type))
        if rate is None or rate < 0:
            flags.add(f"unpriced:{group.instance_type}")
            unpriced = True
            continue
        hourly_usd += rate * count
    return hourly_usd, unpriced


def _group_count(group: InstanceGroup, flags: _Flags) -> Decimal:
    count = decimal_or_none(group.count)
    if count is None or count == 0:
        flags.add("no-instance-count")
        return ZERO
    return flags.nonnegative(count, "negative-quantity")


def _billed_seconds(job: JobRecord, times: _Times, flags: _Flags) -> Decimal:
    """Rule 2: seconds billed per instance, or seconds so far for a running job."""
    if not times.final:
        flags.add("running")
        if times.start is None:
            flags.add("no-billable-time")
            return ZERO
        return flags.nonnegative(_seconds(times.start, times.now), "negative-duration")
    billable = _known_nonnegative(job.billable_seconds, flags)
    if billable is not None:
        return billable
    if times.start is not None and times.end is not None:
        flags.add("billable-from-interval")
        return flags.nonnegative(_seconds(times.start, times.end), "negative-duration")
    flags.add("no-billable-time")
    return ZERO


def _spot_savings(job: JobRecord, hourly_usd: Decimal, flags: _Flags) -> Decimal:
    """Rule 3: on-demand value of the seconds spot did not bill; 0 when unknown."""
    if not job.spot:
        return ZERO
    training = _known_nonnegative(job.training_seconds, flags)
    billable = _known_nonnegative(job.billable_seconds, flags)
    if training is None or billable is None or training <= billable:
        return ZERO
    return hourly_usd * (training - billable) / SECONDS_PER_HOUR


def _retained_seconds(job: JobRecord, times: _Times, flags: _Flags) -> Decimal:
    """Rule 4: warm-pool seconds per instance; for an open pool, an estimate so far.

    While the pool is Available or InUse, AWS has not reported the retained time yet, so
    the time since the job ended (now - end) stands in for it, flagged ``warm-pool-open``;
    the collector re-describes the job every run and the reported seconds replace the
    estimate once the pool is Terminated or Reused.
    """
    if times.final and job.warm_pool_status in OPEN_WARM_POOL_STATUSES:
        flags.add(WARM_POOL_OPEN_FLAG)
        if times.end is None:
            return ZERO
        return max(_seconds(times.end, times.now), ZERO)
    return _known_nonnegative(job.warm_pool_retained_seconds, flags) or ZERO


def _volume_gb_instances(
    job: JobRecord, groups: Sequence[InstanceGroup], policy: CostPolicy, flags: _Flags
) -> Decimal:
    """Rule 5: GB of ML storage volume billed at once (volume x EBS-backed instances)."""
    volume_gb = _known_nonnegative(job.volume_gb, flags, "negative-quantity") or ZERO
    ebs_instances = ZERO
    for group in groups:
        if group.instance_type and instance_family(group.instance_type) in (
            policy.local_storage_families
        ):
            continue
        count = decimal_or_none(group.count) or ZERO
        ebs_instances += max(count, ZERO)
    return volume_gb * ebs_instances


def _storage_seconds(
    job: JobRecord, times: _Times, billed_seconds: Decimal, flags: _Flags
) -> Decimal:
    """Rule 5: training seconds, else end - start, else the seconds rule 2 billed."""
    training = _known_nonnegative(job.training_seconds, flags)
    if training is not None:
        return training
    if times.start is not None and times.end is not None:
        return flags.nonnegative(_seconds(times.start, times.end), "negative-duration")
    return billed_seconds


# --- rules 7-9 --------------------------------------------------------------------------


def _serverless_items(
    job: JobRecord, rates: Rates, times: _Times, flags: _Flags
) -> tuple[_Items, bool]:
    """Rule 7: tokens x price per million; no instance time, no storage volume."""
    if not times.final:
        flags.add("running")
    tokens = _known_nonnegative(job.billable_token_count, flags, "negative-quantity")
    if tokens is None:
        if times.final:
            flags.add("no-billable-tokens")
        tokens = ZERO
    price = decimal_or_none(rates.usd_per_million_tokens)
    if price is None or price < 0:
        flags.add("unpriced:tokens")
        return _Items(), True
    return _Items(compute=tokens * price / TOKENS_PER_MILLION), False


def _artifact_usd_per_month(job: JobRecord, rates: Rates, flags: _Flags) -> Decimal:
    """Rule 9: the S3 run-rate of the job's artifacts, per month."""
    artifact_bytes = _known_nonnegative(job.artifact_bytes, flags, "negative-quantity") or ZERO
    if artifact_bytes == 0:
        return ZERO
    rate = decimal_or_none(rates.s3_usd_per_gb_month)
    if rate is None or rate < 0:
        flags.add("artifact-unpriced")
        return ZERO
    return artifact_bytes / BYTES_PER_GIB * rate


def _effective_factor(rates: Rates, flags: _Flags) -> Decimal:
    """Rule 8: 1 - discount_pct/100, the discount clamped to 0..100."""
    pct = decimal_or_none(rates.discount_pct)
    if pct is None:
        if rates.discount_pct is not None:
            flags.add("discount-out-of-range")
        return Decimal(1)
    if pct < 0 or pct > 100:
        flags.add("discount-out-of-range")
        pct = min(max(pct, ZERO), Decimal(100))
    return 1 - pct / 100


# --- rule 10: periods -------------------------------------------------------------------


def _periods(
    items: _Items, list_usd: Decimal, factor: Decimal, times: _Times, windows: _Windows
) -> tuple[PeriodCost, ...]:
    """Split the items over the UTC days of the training and warm-pool intervals."""
    training_window, warm_window = windows
    by_day: dict[date, dict[str, Decimal]] = {}

    def spread(window: _Window | None, amounts: dict[str, Decimal], storage: Decimal) -> None:
        shares = _day_seconds(*window) if window else [(times.anchor.date(), Decimal(1))]
        # Storage follows the seconds weighted by 1/hours of their month (rule 5).
        by_hours = [(d, part / hours_in_month(d)) for d, part in shares]
        for item, amount, weights in (
            *((item, amount, shares) for item, amount in amounts.items()),
            ("storage_usd", storage, by_hours),
        ):
            if not amount:
                continue
            for day, part in _apportion(amount, weights):
                day_items = by_day.setdefault(day, dict.fromkeys(_DAY_ITEMS, ZERO))
                day_items[item] += part

    spread(
        training_window,
        {"compute_usd": items.compute, "spot_savings_usd": items.spot_savings},
        items.storage_training,
    )
    spread(warm_window, {"warm_pool_usd": items.warm_pool}, items.storage_warm)
    if not by_day:
        by_day[times.anchor.date()] = dict.fromkeys(_DAY_ITEMS, ZERO)
    days = sorted(by_day)
    list_parts = _with_residual(
        list_usd,
        [
            by_day[day]["compute_usd"] + by_day[day]["warm_pool_usd"] + by_day[day]["storage_usd"]
            for day in days[:-1]
        ],
    )
    effective_usd = (items.compute + items.warm_pool) * factor + (
        items.storage_training + items.storage_warm
    )
    effective_parts = _with_residual(
        effective_usd,
        [
            (by_day[day]["compute_usd"] + by_day[day]["warm_pool_usd"]) * factor
            + by_day[day]["storage_usd"]
            for day in days[:-1]
        ],
    )
    return tuple(
        PeriodCost(
            day=day.isoformat(), **by_day[day], list_usd=list_part, effective_usd=effective_part
        )
        for day, list_part, effective_part in zip(days, list_parts, effective_parts, strict=True)
    )


def _windows(job: JobRecord, times: _Times) -> _Windows:
    """The training and warm-pool intervals; None means "all on the anchor day"."""
    start, end = times.start, times.end
    if not times.final:
        training = (start, times.now) if start is not None and times.now > start else None
        return training, None
    if start is None or end is None:
        return None, None
    training = (start, end) if end > start else None
    retained = _retained_seconds(job, times, _Flags())
    if retained <= 0:
        return training, None
    try:
        warm_end = end + timedelta(seconds=float(retained))
    except OverflowError:
        return training, None
    return training, (end, warm_end)


def _day_seconds(start: datetime, end: datetime) -> list[tuple[date, Decimal]]:
    """Seconds of [start, end) falling on each UTC day, days with no seconds left out."""
    shares = []
    cursor = start
    while cursor < end:
        try:
            midnight = datetime.combine(cursor.date() + timedelta(days=1), datetime.min.time(), UTC)
        except OverflowError:  # 9999-12-31 has no next day
            midnight = end
        stop = min(midnight, end)
        shares.append((cursor.date(), _seconds(cursor, stop)))
        cursor = stop
    return shares


def _apportion(
    amount: Decimal, weights: Sequence[tuple[date, Decimal]]
) -> list[tuple[date, Decimal]]:
    """Split ``amount`` pro rata to the weights; the last share takes the exact remainder.

    Every share but the last is rounded down at 1e-24 dollars, so (with non-negative
    amount and weights) no share is negative and the shares sum to ``amount`` exactly.
    """
    total = sum((weight for _, weight in weights), ZERO)
    if total <= 0:
        head = [ZERO] * (len(weights) - 1)
    else:
        head = [
            (amount * weight / total).quantize(_PART_QUANTUM, rounding=ROUND_DOWN)
            for _, weight in weights[:-1]
        ]
    return [
        (day, part) for (day, _), part in zip(weights, _with_residual(amount, head), strict=True)
    ]


def _with_residual(amount: Decimal, head: Sequence[Decimal]) -> list[Decimal]:
    """``head`` plus one last part, ``amount - sum(head)``, so the parts sum to ``amount``."""
    return [*head, amount - sum(head, ZERO)]


# --- small helpers ------------------------------------------------------------------------


def _times(job: JobRecord, now: datetime) -> _Times:
    start, end = _utc(job.start_time), _utc(job.end_time)
    anchor = end or start or _utc(job.creation_time) or _EPOCH
    now_utc = _utc(now) or anchor  # a missing `now` is the caller's bug; cost nothing more
    return _Times(start=start, end=end, now=now_utc, anchor=anchor, final=_finished(job))


def _finished(job: JobRecord) -> bool:
    """A final status, or a status not known to be running that has an end time: a status
    AWS adds later (flagged unknown-status) must not be costed as running forever."""
    if job.is_final:
        return True
    return job.status not in RUNNING_STATUSES and job.end_time is not None


def _utc(moment: object) -> datetime | None:
    """Aware UTC; a naive datetime is taken to be UTC (moto and the store use naive UTC)."""
    if not isinstance(moment, datetime):
        return None
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    try:
        return moment.astimezone(UTC)
    except (OverflowError, ValueError):  # an offset that pushes it past year 1 or 9999
        return moment.replace(tzinfo=UTC)


def _seconds(start: datetime, end: datetime) -> Decimal:
    """Exact seconds from start to end (negative when end is earlier)."""
    return Decimal((end - start) // _ONE_MICROSECOND) / MICROS


def _known_nonnegative(
    value: object, flags: _Flags, flag: str = "negative-duration"
) -> Decimal | None:
    """A reported number as Decimal (None stays None), negatives clamped to 0 and flagged."""
    number = decimal_or_none(value)
    if number is None:
        return None
    return flags.nonnegative(number, flag)


__all__ = [
    "DEFAULT_LOCAL_STORAGE_FAMILIES",
    "OPEN_WARM_POOL_STATUSES",
    "WARM_POOL_OPEN_FLAG",
    "CostPolicy",
    "cost_job",
    "hours_in_month",
    "instance_family",
    "job_micros",
    "period_micros",
]
