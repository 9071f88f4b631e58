"""Estimates: what a training job will cost, itemised by the same engine as actual costs.

An estimate is a hypothetical :class:`JobRecord` (instance type, count, hours, optional spot
ratio and volume) costed with :func:`tracker.cost.engine.cost_job` and the same price book as the
jobs that really ran, so an estimate and an actual compare line by line. Which estimate belongs
to a finished job is decided by :func:`resolve_estimate` (the precedence is in
docs/reconciliation.md).

Everything here is pure: no clock, no database, no AWS. :mod:`tracker.estimate.service`
records estimates in the store, and :func:`tracker.estimate.api.estimate_job` is the Python
API for launch scripts.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from tracker import bounds
from tracker.bounds import INSTANCE_COUNT, JOB_HOURS, USD, VOLUME_GB
from tracker.cost.engine import CostPolicy, cost_job, job_micros
from tracker.cost.prices import PriceBook
from tracker.errors import InputError
from tracker.records import (
    CENT,
    INSTANCE_TYPE_RE,
    REGION_RE,
    UNALLOCATED,
    EstimateEntry,
    JobCost,
    JobRecord,
    RecordedEstimate,
    cents,
    cents_parts,
    decimal_or_none,
)

ESTIMATE_ID_TAG = "tracker:estimate-id"
ESTIMATE_USD_TAG = "tracker:estimate-usd"
ESTIMATE_ACCOUNT = "estimate"

# Where a job's estimate came from, strongest first (docs/reconciliation.md).
SOURCE_ESTIMATE_ID = "estimate-id"
SOURCE_JOB_NAME = "job-name"
SOURCE_NAME_PREFIX = "name-prefix"
SOURCE_USD_TAG = "estimate-usd-tag"
SOURCE_WORST_CASE = "worst-case"
SOURCE_NONE = "none"
SOURCES = (
    SOURCE_ESTIMATE_ID,
    SOURCE_JOB_NAME,
    SOURCE_NAME_PREFIX,
    SOURCE_USD_TAG,
    SOURCE_WORST_CASE,
    SOURCE_NONE,
)
RECORDED_SOURCES = frozenset({SOURCE_ESTIMATE_ID, SOURCE_JOB_NAME, SOURCE_NAME_PREFIX})

SECONDS_PER_HOUR = Decimal(3600)
DEFAULT_POLICY = CostPolicy()


def to_decimal(value: object, name: str) -> Decimal:
    """A finite Decimal from an int, float, Decimal or numeric text; InputError otherwise."""
    number = decimal_or_none(value, finite=False)
    if number is None:
        raise InputError(f"{name} {value!r}: expected a number")
    if not number.is_finite():
        raise InputError(f"{name} {value!r}: expected a finite number")
    return number


def _whole_seconds(value: Decimal) -> int:
    return int(value.quantize(Decimal(1), rounding=ROUND_HALF_UP))


@dataclass(frozen=True)
class EstimateRequest:
    """What a team plans to run. ``spot_ratio`` is the share of training time that managed
    spot bills (BillableTimeInSeconds / TrainingTimeInSeconds, 0 < ratio <= 1); None means
    on-demand. Values are validated on construction (InputError names the bad one)."""

    instance_type: str
    instance_count: int
    hours: Decimal
    region: str = "us-east-1"
    spot_ratio: Decimal | None = None
    volume_gb: int = 0
    team: str | None = None
    job_name: str | None = None
    name_prefix: str | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.instance_type, str) or not INSTANCE_TYPE_RE.match(
            self.instance_type
        ):
            raise InputError(
                f"--instance-type {self.instance_type!r}: expected a SageMaker instance type "
                "like ml.g5.2xlarge"
            )
        # The one range check of every estimate, from the CLI and from the Python API alike:
        # the bounds keep the largest estimate inside USD and a 64-bit count of micro-dollars.
        object.__setattr__(
            self, "instance_count", bounds.whole("--count", self.instance_count, INSTANCE_COUNT)
        )
        object.__setattr__(
            self, "hours", bounds.decimal("--hours", self.hours, JOB_HOURS, positive=True)
        )
        if not isinstance(self.region, str) or not REGION_RE.match(self.region):
            raise InputError(f"--region {self.region!r}: expected an AWS region like us-east-1")
        if self.spot_ratio is not None:
            ratio = to_decimal(self.spot_ratio, "--spot-ratio")
            if ratio <= 0 or ratio > 1:
                raise InputError(
                    f"--spot-ratio {self.spot_ratio}: expected the billed share of training "
                    "time, greater than 0 and at most 1 (e.g. 0.3)"
                )
            object.__setattr__(self, "spot_ratio", ratio)
        object.__setattr__(
            self, "volume_gb", bounds.whole("--volume-gb", self.volume_gb, VOLUME_GB)
        )
        if self.job_name is not None and self.name_prefix is not None:
            raise InputError("--job-name and --name-prefix: give one of them, not both")
        for name, value in (
            ("--job-name", self.job_name),
            ("--name-prefix", self.name_prefix),
            ("--team", self.team),
        ):
            if value is not None and (not isinstance(value, str) or not value.strip()):
                raise InputError(f"{name} {value!r}: expected a non-empty name")

    @property
    def training_seconds(self) -> int:
        return _whole_seconds(self.hours * SECONDS_PER_HOUR)

    @property
    def billable_seconds(self) -> int:
        if self.spot_ratio is None:
            return self.training_seconds
        return _whole_seconds(self.training_seconds * self.spot_ratio)


def hypothetical_job(request: EstimateRequest, now: datetime, estimate_id: str = "") -> JobRecord:
    """The JobRecord of a job that runs exactly as the request says, starting at ``now``."""
    start = now.astimezone(UTC)
    end = start + timedelta(seconds=request.training_seconds)
    name = request.job_name or request.name_prefix or "estimate"
    return JobRecord(
        account_id=ESTIMATE_ACCOUNT,
        region=request.region,
        name=name,
        arn=f"estimate:{estimate_id or name}",
        status="Completed",
        creation_time=start,
        last_modified_time=end,
        start_time=start,
        end_time=end,
        instance_type=request.instance_type,
        instance_count=request.instance_count,
        volume_gb=request.volume_gb,
        spot=request.spot_ratio is not None,
        billable_seconds=request.billable_seconds,
        training_seconds=request.training_seconds,
        team=request.team or UNALLOCATED,
    )


@dataclass(frozen=True)
class Estimate:
    """An itemised estimate. ``total_usd`` (the list cost rounded to cents) is the figure quoted
    to the user, put on the ``tracker:estimate-usd`` tag and compared with the actual cost."""

    request: EstimateRequest
    cost: JobCost
    usd_per_hour: Decimal | None
    created_at: datetime
    estimate_id: str | None = None

    @property
    def total_usd(self) -> Decimal:
        return self._shown_parts()[0]

    def _shown_parts(self) -> tuple[Decimal, list[Decimal]]:
        """Total, then compute, warm pool and storage in cents that add up to it (the
        stored micro-dollars, rounded by the one rule every output uses)."""
        micros = job_micros(self.cost)
        total, parts = cents_parts(
            micros["list_micros"],
            [micros["compute_micros"], micros["warm_pool_micros"], micros["storage_micros"]],
        )
        return total * CENT, [part * CENT for part in parts]

    @property
    def unpriced(self) -> bool:
        return self.cost.unpriced

    def tags(self) -> dict[str, str]:
        """The tags to put on the training job: the estimate id (when recorded) and amount."""
        tags = {ESTIMATE_USD_TAG: f"{self.total_usd:.2f}"}
        if self.estimate_id:
            tags = {ESTIMATE_ID_TAG: self.estimate_id, **tags}
        return tags

    def entry(self) -> EstimateEntry:
        """What the store records (only an estimate with an id can be recorded)."""
        if not self.estimate_id:
            raise ValueError("only an estimate with an id can be recorded")
        request = self.request
        return EstimateEntry(
            estimate_id=self.estimate_id,
            created_at=self.created_at,
            region=request.region,
            instance_type=request.instance_type,
            instance_count=request.instance_count,
            hours=request.hours,
            cost=self.cost,
            usd_per_hour=self.usd_per_hour,
            spot_ratio=request.spot_ratio,
            volume_gb=request.volume_gb,
            team=request.team,
            job_name=request.job_name,
            name_prefix=request.name_prefix,
        )

    def sagemaker_tags(self) -> list[dict[str, str]]:
        """``tags()`` in CreateTrainingJob's ``Tags`` shape: ``[{"Key": ..., "Value": ...}]``."""
        return [{"Key": key, "Value": value} for key, value in self.tags().items()]

    def to_dict(self) -> dict[str, Any]:
        """Plain values for JSON: money as cents-rounded Decimal, flags as a list."""
        request = self.request
        total, shown = self._shown_parts()
        return {
            "estimate_id": self.estimate_id,
            "recorded": self.estimate_id is not None,
            "region": request.region,
            "instance_type": request.instance_type,
            "instance_count": request.instance_count,
            "hours": request.hours,
            "spot_ratio": request.spot_ratio,
            "volume_gb": request.volume_gb,
            "team": request.team,
            "job_name": request.job_name,
            "name_prefix": request.name_prefix,
            "usd_per_hour": self.usd_per_hour,
            "billable_seconds": request.billable_seconds,
            "compute_usd": shown[0],
            "spot_savings_usd": cents(self.cost.spot_savings_usd),
            "warm_pool_usd": shown[1],
            "storage_usd": shown[2],
            "total_usd": total,
            "effective_usd": cents(self.cost.effective_usd),
            "unpriced": self.unpriced,
            "flags": list(self.cost.flags),
            "tags": self.tags(),
        }


def build_estimate(
    request: EstimateRequest,
    price_book: PriceBook,
    now: datetime,
    policy: CostPolicy = DEFAULT_POLICY,
    discount_pct: Decimal = Decimal(0),
    estimate_id: str | None = None,
) -> Estimate:
    """Cost the hypothetical job with the price book (pure: no clock, no database)."""
    record = hypothetical_job(request, now, estimate_id or "")
    rates = price_book.rates_for(record, discount_pct)
    cost = cost_job(record, rates, now, policy)
    return Estimate(
        request=request,
        cost=cost,
        usd_per_hour=rates.hourly.get(request.instance_type),
        created_at=now,
        estimate_id=estimate_id,
    )


def new_estimate_id() -> str:
    """A fresh, short, unique estimate id (``est-`` and 12 hex digits)."""
    return f"est-{uuid.uuid4().hex[:12]}"


# -- worst case from StoppingCondition ------------------------------------------------------
def worst_case_seconds(job: JobRecord) -> int | None:
    """The longest the job could have been billed per instance: MaxWaitTimeInSeconds for a
    managed spot job (waiting plus running), else MaxRuntimeInSeconds; None when unknown."""
    runtime = job.max_runtime_seconds if (job.max_runtime_seconds or 0) > 0 else None
    if job.spot and (job.max_wait_seconds or 0) > 0:
        return max(job.max_wait_seconds, runtime or 0)
    return runtime


def worst_case_job(job: JobRecord) -> JobRecord | None:
    """The job as if it had run, on demand, for its whole StoppingCondition (plus its warm-pool
    keep-alive period); None for serverless jobs and jobs without a stopping condition."""
    seconds = worst_case_seconds(job)
    if seconds is None or job.is_serverless:
        return None
    start = job.start_time or job.creation_time
    keep_alive = job.keep_alive_seconds if (job.keep_alive_seconds or 0) > 0 else None
    return replace(
        job,
        status="Completed",
        start_time=start,
        end_time=start + timedelta(seconds=seconds),
        billable_seconds=seconds,
        training_seconds=seconds,
        spot=False,
        warm_pool_retained_seconds=keep_alive,
    )


# -- which estimate belongs to a job ---------------------------------------------------------
@dataclass(frozen=True)
class ResolvedEstimate:
    """The estimate chosen for one job: its amount in USD (cents), where it came from, the
    recorded estimate's id if any, and a note when something was skipped on the way."""

    source: str
    usd: Decimal | None = None
    estimate_id: str | None = None
    note: str | None = None


@dataclass
class EstimateIndex:
    """Recorded estimates indexed for matching: by id, by exact job name, by name prefix."""

    by_id: dict[str, RecordedEstimate] = field(default_factory=dict)
    by_name: dict[str, list[RecordedEstimate]] = field(default_factory=dict)
    by_prefix: dict[str, list[RecordedEstimate]] = field(default_factory=dict)

    @classmethod
    def build(cls, estimates: Iterable[RecordedEstimate]) -> EstimateIndex:
        index = cls()
        for estimate in estimates:
            index.by_id[estimate.estimate_id] = estimate
            if estimate.job_name:
                index.by_name.setdefault(estimate.job_name, []).append(estimate)
            if estimate.name_prefix:
                index.by_prefix.setdefault(estimate.name_prefix, []).append(estimate)
        return index

    def by_longest_prefix(self, name: str) -> list[RecordedEstimate]:
        """The estimates of the longest recorded prefix that ``name`` starts with."""
        matching = [prefix for prefix in self.by_prefix if name.startswith(prefix)]
        return self.by_prefix[max(matching, key=len)] if matching else []


def _pick(candidates: list[RecordedEstimate], created: datetime) -> RecordedEstimate:
    """The latest estimate recorded at or before the job was created, else the latest."""
    before = [c for c in candidates if c.created_at <= created]
    pool = before or candidates
    return max(pool, key=lambda c: (c.created_at, c.estimate_id))


def parse_usd_tag(value: str) -> Decimal | None:
    """``tracker:estimate-usd`` text (``12.34``, ``$12.34``, ``1,234.50``) -> cents; None if bad."""
    text = value.strip().removeprefix("$").replace(",", "").strip()
    number = decimal_or_none(text)
    if number is None or number < 0:
        return None
    return cents(number)


def resolve_estimate(
    job_name: str,
    tags: Mapping[str, str],
    created: datetime,
    index: EstimateIndex,
    worst_case_usd: Decimal | None = None,
) -> ResolvedEstimate:
    """Pick a job's estimate, strongest source first:

    1. the recorded estimate named by the job's ``tracker:estimate-id`` tag;
    2. a recorded estimate for the job's exact name;
    3. a recorded estimate for the longest name prefix the job's name starts with;
    4. the amount in the job's ``tracker:estimate-usd`` tag;
    5. the worst case implied by the job's StoppingCondition (``worst_case_usd``);
    6. none.
    """
    notes: list[str] = []
    tag_id = (tags.get(ESTIMATE_ID_TAG) or "").strip()
    if tag_id:
        found = index.by_id.get(tag_id)
        if found is not None:
            return ResolvedEstimate(SOURCE_ESTIMATE_ID, found.usd, found.estimate_id)
        notes.append(f"{ESTIMATE_ID_TAG} {tag_id!r} is not a recorded estimate")
    for source, candidates in (
        (SOURCE_JOB_NAME, index.by_name.get(job_name, [])),
        (SOURCE_NAME_PREFIX, index.by_longest_prefix(job_name)),
    ):
        if candidates:
            chosen = _pick(candidates, created)
            return ResolvedEstimate(source, chosen.usd, chosen.estimate_id, _note(notes))
    tag_usd = tags.get(ESTIMATE_USD_TAG)
    if tag_usd is not None:
        usd = parse_usd_tag(tag_usd)
        if usd is not None:
            return ResolvedEstimate(SOURCE_USD_TAG, usd, None, _note(notes))
        notes.append(f"{ESTIMATE_USD_TAG} {tag_usd!r} is not an amount in USD")
    if worst_case_usd is not None:
        return ResolvedEstimate(SOURCE_WORST_CASE, cents(worst_case_usd), None, _note(notes))
    return ResolvedEstimate(SOURCE_NONE, None, None, _note(notes))


def _note(notes: list[str]) -> str | None:
    return "; ".join(notes) if notes else None


def require_priced(estimate: Estimate) -> None:
    """An estimate of an unpriced instance type would say $0: refuse it with the fix; one
    above the largest amount of money (bounds.USD) can only come from an absurd rate."""
    request = estimate.request
    if estimate.unpriced:
        raise InputError(
            f"no training rate for {request.instance_type} in {request.region}: add it to the "
            "overrides file ([pricing] overrides) or run 'tracker prices refresh'"
        )
    if estimate.total_usd > USD.high:
        # Only an absurd rate in the overrides file gets here (the inputs are bounded).
        raise InputError(
            f"the estimate of {request.instance_count:,} x {request.instance_type} for "
            f"{request.hours} h comes to more than {USD.high:,} USD: check the rate "
            f"({estimate.usd_per_hour} USD per hour) in the price book or overrides file"
        )


# -- configuration (parsed from [estimates] by tracker.settings) -----------------------------
@dataclass(frozen=True)
class EstimateSettings:
    """``[estimates]``: ``tolerance_pct`` decides within/over/under (None: use
    ``[reconcile] tolerance_pct``, 10 by default)."""

    tolerance_pct: Decimal | None = None
