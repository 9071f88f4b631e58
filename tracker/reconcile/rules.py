"""Pure reconciliation: actual cost vs estimates, and the tracker's costs vs the AWS bill.

Inputs are plain records (jobs with their resolved estimates, per-day tracker costs, bill
lines) and ``now``; nothing here imports boto3 or a database session. Money is exact
``Decimal`` until ``to_dict``, which rounds each figure to cents once (half up); a delta is
the rounded exact difference, never the difference of rounded figures. The matching rules
are written out in docs/reconciliation.md.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from tracker.bounds import day_after
from tracker.errors import InputError
from tracker.estimate.rules import RECORDED_SOURCES, SOURCE_NONE, SOURCE_USD_TAG, ResolvedEstimate
from tracker.records import UNALLOCATED, cents, format_usd, from_micros

ZERO = Decimal(0)
PCT = Decimal("0.01")
HUNDRED = Decimal(100)

VERDICTS = ("within", "over", "under", "no-estimate")
STATUSES = ("ok", "drift", "unsettled")
GRANULARITIES = ("daily", "monthly")

# Usage classes. The first five are training and are compared with the tracker; the last two
# are shown but never compared (prepaid capacity, and SageMaker usage that is not training).
KIND_INSTANCE = "instance"
KIND_SPOT = "spot"
KIND_VOLUME = "volume"
KIND_WARM_POOL = "warm-pool"
KIND_UNRECOGNISED = "unrecognised"
KIND_TRAINING_PLAN = "training-plan"
KIND_OTHER = "other"
COMPARED_KINDS = (KIND_INSTANCE, KIND_SPOT, KIND_VOLUME, KIND_WARM_POOL, KIND_UNRECOGNISED)

UNMATCHED = "__unmatched__"
MATCH_RESOURCE = "resource-id"
MATCH_TEAM_PERIOD = "team-period"
MATCH_UNMATCHED = "unmatched"

# <region prefix>-<operation>:<detail>, e.g. USE1-Train:ml.g5.2xlarge, EU-Train:VolumeUsage.gp2
_USAGE_RE = re.compile(
    r"^(?:(?P<prefix>[A-Z]{2,5}\d?)-)?(?P<op>[A-Za-z][A-Za-z-]*):(?P<detail>.+)$"
)
_INSTANCE_RE = re.compile(r"^ml\.[a-z0-9-]+\.[a-z0-9-]+(\+ml\.[a-z0-9-]+\.[a-z0-9-]+)*$")
_SPOT_OPS = {"trspt", "trainspot", "train-spot", "spottrain"}
_TRAINING_HINT = re.compile(r"train|trspt", re.IGNORECASE)


def classify_usage_type(usage_type: str) -> str:
    """Which kind of SageMaker usage a usage type bills (see the KIND_* constants).

    ``Train:ml.*`` is instance time, ``TrSpt:ml.*`` (or a ``Spot`` suffix) managed spot,
    ``Train:VolumeUsage*`` the ML storage volume, anything with ``WarmPool`` warm-pool time,
    ``TrainingPlan*`` a training plan fee. Anything else that mentions training is
    ``unrecognised`` (kept and reported); everything else is ``other`` (not training).
    """
    text = (usage_type or "").strip()
    if "trainingplan" in text.lower().replace("-", ""):
        return KIND_TRAINING_PLAN
    match = _USAGE_RE.match(text)
    if match:
        op, detail = match["op"].lower(), match["detail"]
        lowered = detail.lower()
        if "warm" in op or "warmpool" in lowered.replace("-", ""):
            return KIND_WARM_POOL if _TRAINING_HINT.search(text) else KIND_OTHER
        if op in _SPOT_OPS or (op == "train" and lowered.endswith("spot")):
            return KIND_SPOT
        if op == "train" and lowered.startswith("volumeusage"):
            return KIND_VOLUME
        if op == "train" and _INSTANCE_RE.match(detail):
            return KIND_INSTANCE
    return KIND_UNRECOGNISED if _TRAINING_HINT.search(text) else KIND_OTHER


def _pct(delta: Decimal, base: Decimal) -> Decimal | None:
    if base == 0:
        return None
    return (delta / base * HUNDRED).quantize(PCT, rounding=ROUND_HALF_UP)


# == actual vs estimate ===========================================================================
@dataclass(frozen=True)
class EstimateRow:
    """One finished job against its estimate. ``actual`` is exact; ``resolved.usd`` is cents."""

    job: str
    arn: str
    team: str
    actual: Decimal
    resolved: ResolvedEstimate
    verdict: str
    unpriced: bool = False

    @property
    def estimate(self) -> Decimal | None:
        return self.resolved.usd

    @property
    def delta(self) -> Decimal | None:
        return None if self.estimate is None else self.actual - self.estimate

    def exact(self) -> dict[str, Decimal]:
        """The money columns unrounded, for totals that are rounded once."""
        if self.estimate is None:
            return {}
        return {"estimate_usd": self.estimate, "actual_usd": self.actual, "delta_usd": self.delta}

    def to_dict(self) -> dict[str, Any]:
        delta = self.delta
        return {
            "job": self.job,
            "team": self.team,
            "estimate_usd": self.estimate,
            "actual_usd": cents(self.actual),
            "delta_usd": None if delta is None else cents(delta),
            "delta_pct": None if delta is None else _pct(delta, self.estimate),
            "estimate_source": self.resolved.source,
            "verdict": self.verdict,
            "estimate_id": self.resolved.estimate_id,
            "arn": self.arn,
            "unpriced": self.unpriced,
            "note": self.resolved.note,
        }


def verdict(estimate: Decimal | None, actual: Decimal, tolerance_pct: Decimal) -> str:
    """within / over / under / no-estimate: within when |actual - estimate| <= tolerance% of
    the estimate (a zero estimate is met only by a zero actual)."""
    if estimate is None:
        return "no-estimate"
    delta = actual - estimate
    if estimate == 0:
        return "within" if delta == 0 else ("over" if delta > 0 else "under")
    if abs(delta) * HUNDRED <= tolerance_pct * estimate:
        return "within"
    return "over" if delta > 0 else "under"


def estimate_row(
    job: str,
    arn: str,
    team: str,
    actual: Decimal,
    resolved: ResolvedEstimate,
    tolerance_pct: Decimal,
    unpriced: bool = False,
) -> EstimateRow:
    """Compare one job's exact actual cost with its resolved estimate."""
    return EstimateRow(
        job=job,
        arn=arn,
        team=team,
        actual=actual,
        resolved=resolved,
        verdict=verdict(resolved.usd, actual, tolerance_pct),
        unpriced=unpriced,
    )


@dataclass(frozen=True)
class TeamEstimateRow:
    """Per-team roll-up. Sums cover the jobs with a real estimate (recorded or tagged); jobs
    measured only against their worst case, or with none, are counted apart."""

    team: str
    jobs: int
    estimated_jobs: int
    worst_case_jobs: int
    no_estimate_jobs: int
    estimate: Decimal
    actual: Decimal
    unestimated_actual: Decimal
    over: int
    under: int
    within: int
    verdict: str

    def exact(self) -> dict[str, Decimal]:
        """The money columns unrounded, for totals that are rounded once."""
        out = {"unestimated_actual_usd": self.unestimated_actual}
        if self.estimated_jobs:
            out.update(
                estimate_usd=self.estimate,
                actual_usd=self.actual,
                delta_usd=self.actual - self.estimate,
            )
        return out

    def to_dict(self) -> dict[str, Any]:
        delta = self.actual - self.estimate
        has = self.estimated_jobs > 0
        return {
            "team": self.team,
            "jobs": self.jobs,
            "estimated_jobs": self.estimated_jobs,
            "estimate_usd": cents(self.estimate) if has else None,
            "actual_usd": cents(self.actual) if has else None,
            "delta_usd": cents(delta) if has else None,
            "delta_pct": _pct(delta, self.estimate) if has else None,
            "verdict": self.verdict,
            "over": self.over,
            "under": self.under,
            "within": self.within,
            "worst_case_jobs": self.worst_case_jobs,
            "no_estimate_jobs": self.no_estimate_jobs,
            "unestimated_actual_usd": cents(self.unestimated_actual),
        }


def team_rollup(rows: Iterable[EstimateRow], tolerance_pct: Decimal) -> list[TeamEstimateRow]:
    """Roll job rows up per team, sorted by team."""
    by_team: dict[str, list[EstimateRow]] = defaultdict(list)
    for row in rows:
        by_team[row.team].append(row)
    out = []
    for team in sorted(by_team):
        group = by_team[team]
        real = [r for r in group if r.resolved.source in RECORDED_SOURCES | {SOURCE_USD_TAG}]
        rest = [r for r in group if r not in real]
        estimate = sum((r.estimate for r in real), ZERO)
        actual = sum((r.actual for r in real), ZERO)
        out.append(
            TeamEstimateRow(
                team=team,
                jobs=len(group),
                estimated_jobs=len(real),
                worst_case_jobs=sum(1 for r in rest if r.resolved.source != SOURCE_NONE),
                no_estimate_jobs=sum(1 for r in rest if r.resolved.source == SOURCE_NONE),
                estimate=estimate,
                actual=actual,
                unestimated_actual=sum((r.actual for r in rest), ZERO),
                over=sum(1 for r in real if r.verdict == "over"),
                under=sum(1 for r in real if r.verdict == "under"),
                within=sum(1 for r in real if r.verdict == "within"),
                verdict=verdict(estimate, actual, tolerance_pct) if real else "no-estimate",
            )
        )
    return out


# == tracker vs bill ==============================================================================
@dataclass(frozen=True)
class BillLine:
    """One billed amount: a CE group of one period, or CUR/FOCUS lines of one day aggregated.

    ``period_end`` is exclusive. ``list_usd`` is the on-demand (list) cost, compared with the
    tracker's list cost; ``effective_usd`` is after Savings Plans, reservations and discounts.
    """

    source: str
    period_start: date
    period_end: date
    team: str
    usage_type: str
    kind: str
    list_usd: Decimal
    effective_usd: Decimal
    resource_id: str | None = None
    account_id: str | None = None
    line_type: str = "Usage"


@dataclass(frozen=True)
class TrackerDay:
    """One job's tracker cost on one UTC day (from the per-day split), in micro-dollars."""

    arn: str
    job: str
    team: str
    day: date
    list_micros: int
    effective_micros: int


@dataclass(frozen=True)
class BillPolicy:
    """``settle_days``: how long after a period ends its billing data counts as final;
    ``drift_pct``: a settled difference above this percentage of the tracker's cost is drift."""

    settle_days: int = 2
    drift_pct: Decimal = Decimal(5)


def period_key(day: date, granularity: str) -> str:
    """``2026-11-20`` (daily) or ``2026-11`` (monthly)."""
    if granularity == "daily":
        return day.isoformat()
    if granularity == "monthly":
        return f"{day:%Y-%m}"
    raise InputError(f"--granularity {granularity!r}: expected one of {', '.join(GRANULARITIES)}")


def period_end(key: str) -> date | None:
    """The exclusive end day of a period key; None for the calendar's last day or month
    (``9999-12-31``, ``9999-12``), which no day follows."""
    if len(key) == 7:
        year, month = int(key[:4]), int(key[5:7])
        last = date(year, 12, 31) if month == 12 else date(year, month + 1, 1) - timedelta(days=1)
        return day_after(last)
    return day_after(date.fromisoformat(key))


def is_settled(key: str, now: datetime, settle_days: int) -> bool:
    """A period is settled once ``settle_days`` whole days have passed since it ended; one
    that ends with the calendar never is."""
    end = period_end(key)
    return end is not None and (now.date() - end).days >= settle_days


@dataclass
class _Sums:
    tracker_list: Decimal = ZERO
    tracker_effective: Decimal = ZERO
    billed_list: Decimal = ZERO
    billed_effective: Decimal = ZERO
    by_kind: dict[str, Decimal] = field(default_factory=lambda: defaultdict(lambda: ZERO))
    unrecognised: set[str] = field(default_factory=set)
    jobs: set[str] = field(default_factory=set)
    excluded: Decimal = ZERO
    excluded_types: set[str] = field(default_factory=set)

    def add_tracker(self, day: TrackerDay) -> None:
        self.tracker_list += from_micros(day.list_micros)
        self.tracker_effective += from_micros(day.effective_micros)
        self.jobs.add(day.arn)

    def add_excluded(self, line: BillLine) -> None:
        """Billed usage that is not compared (not training, prepaid plans): shown only."""
        self.excluded += line.list_usd
        self.excluded_types.add(line.usage_type)

    def add_line(self, line: BillLine) -> None:
        self.billed_list += line.list_usd
        self.billed_effective += line.effective_usd
        self.by_kind[line.kind] += line.list_usd
        if line.kind == KIND_UNRECOGNISED:
            self.unrecognised.add(line.usage_type)


@dataclass(frozen=True)
class BillRow:
    """Tracker vs bill for one (team, period), or for one job (``job`` set) or bucket."""

    team: str
    period: str | None
    tracker_list: Decimal
    billed_list: Decimal
    tracker_effective: Decimal
    billed_effective: Decimal
    by_kind: Mapping[str, Decimal]
    unrecognised_usage_types: tuple[str, ...]
    settled: bool
    status: str
    job: str | None = None
    arn: str | None = None
    match: str | None = None
    excluded: Decimal = ZERO
    excluded_usage_types: tuple[str, ...] = ()

    @property
    def delta(self) -> Decimal:
        return self.billed_list - self.tracker_list

    @property
    def delta_pct(self) -> Decimal | None:
        return _pct(self.delta, self.tracker_list)

    def exact(self) -> dict[str, Decimal]:
        """The money columns unrounded, for totals that are rounded once."""
        return {
            "tracker_usd": self.tracker_list,
            "billed_usd": self.billed_list,
            "delta_usd": self.delta,
            "tracker_effective_usd": self.tracker_effective,
            "billed_effective_usd": self.billed_effective,
            "effective_delta_usd": self.billed_effective - self.tracker_effective,
            "unrecognised_usd": self.by_kind.get(KIND_UNRECOGNISED, ZERO),
        }

    def to_dict(self) -> dict[str, Any]:
        row: dict[str, Any] = {}
        if self.match is not None:
            row.update(job=self.job, match=self.match)
        row.update(
            team=self.team,
            period=self.period,
            tracker_usd=cents(self.tracker_list),
            billed_usd=cents(self.billed_list),
            delta_usd=cents(self.delta),
            delta_pct=self.delta_pct,
            status=self.status,
            tracker_effective_usd=cents(self.tracker_effective),
            billed_effective_usd=cents(self.billed_effective),
            effective_delta_usd=cents(self.billed_effective - self.tracker_effective),
            instance_usd=cents(self.by_kind.get(KIND_INSTANCE, ZERO)),
            spot_usd=cents(self.by_kind.get(KIND_SPOT, ZERO)),
            volume_usd=cents(self.by_kind.get(KIND_VOLUME, ZERO)),
            warm_pool_usd=cents(self.by_kind.get(KIND_WARM_POOL, ZERO)),
            unrecognised_usd=cents(self.by_kind.get(KIND_UNRECOGNISED, ZERO)),
            unrecognised_usage_types=list(self.unrecognised_usage_types),
            excluded_usd=cents(self.excluded),
            excluded_usage_types=list(self.excluded_usage_types),
            settled=self.settled,
        )
        if self.match is not None:
            row["arn"] = self.arn
        return row


def status_for(sums: _Sums, settled: bool, policy: BillPolicy) -> str:
    """unsettled before the settle time; ok when the difference rounds to $0.00 or stays
    within ``drift_pct`` of the tracker's cost; drift otherwise."""
    if not settled:
        return "unsettled"
    delta = sums.billed_list - sums.tracker_list
    if cents(abs(delta)) == 0:
        return "ok"
    if sums.tracker_list == 0:
        return "drift"
    return "drift" if abs(delta) * HUNDRED > policy.drift_pct * abs(sums.tracker_list) else "ok"


def _row(
    sums: _Sums,
    team: str,
    period: str | None,
    settled: bool,
    policy: BillPolicy,
    **extra: Any,
) -> BillRow:
    return BillRow(
        team=team,
        period=period,
        tracker_list=sums.tracker_list,
        billed_list=sums.billed_list,
        tracker_effective=sums.tracker_effective,
        billed_effective=sums.billed_effective,
        by_kind=dict(sums.by_kind),
        unrecognised_usage_types=tuple(sorted(sums.unrecognised)),
        settled=settled,
        status=status_for(sums, settled, policy),
        excluded=sums.excluded,
        excluded_usage_types=tuple(sorted(sums.excluded_types)),
        **extra,
    )


def compared(lines: Iterable[BillLine]) -> list[BillLine]:
    """The lines that are compared with the tracker (training usage, recognised or not)."""
    return [line for line in lines if line.kind in COMPARED_KINDS]


def attribute_lines(lines: Iterable[BillLine], arn_teams: Mapping[str, str]) -> list[BillLine]:
    """Lines whose resource id is a known job's ARN take that job's team (the tracker's
    attribution); the others keep the team of their cost-allocation tag."""
    out = []
    for line in lines:
        team = arn_teams.get((line.resource_id or "").lower())
        if team is not None and team != line.team:
            line = BillLine(**{**line.__dict__, "team": team})
        out.append(line)
    return out


def team_rows(
    tracker: Iterable[TrackerDay],
    lines: Iterable[BillLine],
    granularity: str,
    now: datetime,
    policy: BillPolicy = BillPolicy(),
) -> list[BillRow]:
    """One row per (team, period) that has tracker cost or compared billed cost, by period.
    Billed usage that is not compared is shown on its row (``excluded_usd``), never summed."""
    groups: dict[tuple[str, str], _Sums] = defaultdict(_Sums)
    for day in tracker:
        groups[(day.team or UNALLOCATED, period_key(day.day, granularity))].add_tracker(day)
    for line in lines:
        sums = groups[(line.team or UNALLOCATED, period_key(line.period_start, granularity))]
        if line.kind in COMPARED_KINDS:
            sums.add_line(line)
        else:
            sums.add_excluded(line)
    rows = []
    for (team, period), sums in sorted(groups.items(), key=lambda item: (item[0][1], item[0][0])):
        if sums.tracker_list == 0 and sums.billed_list == 0 and not sums.by_kind:
            continue  # no training cost on either side (at most usage that is not compared)
        rows.append(_row(sums, team, period, is_settled(period, now, policy.settle_days), policy))
    return rows


def job_rows(
    tracker: Sequence[TrackerDay],
    lines: Iterable[BillLine],
    granularity: str,
    now: datetime,
    policy: BillPolicy = BillPolicy(),
) -> list[BillRow]:
    """Per-job reconciliation for bills that carry resource ids (CUR 2.0, FOCUS).

    1. A line whose resource id is a stored job's ARN is that job's (``resource-id`` rows).
    2. The other lines without a known ARN are compared, per (team, period), with the
       tracker cost of the jobs that no line named (``team-period`` rows).
    3. What cannot be paired at all, lines naming a training job the tracker never stored
       and billed cost of a (team, period) where the tracker has none, goes to an explicit
       ``unmatched`` bucket per (team, period).
    """
    by_arn: dict[str, list[TrackerDay]] = defaultdict(list)
    for day in tracker:
        by_arn[day.arn.lower()].append(day)
    job_sums: dict[str, _Sums] = {}
    pool_lines: list[BillLine] = []
    unmatched_lines: list[BillLine] = []
    for line in compared(lines):
        arn = (line.resource_id or "").lower()
        if arn and arn in by_arn:
            job_sums.setdefault(arn, _Sums()).add_line(line)
        elif ":training-job/" in arn:
            unmatched_lines.append(line)
        else:
            pool_lines.append(line)
    rows: list[BillRow] = []
    for arn in sorted(job_sums, key=lambda a: by_arn[a][0].job):
        days = by_arn[arn]
        sums = job_sums[arn]
        for day in days:
            sums.add_tracker(day)
        last = max(period_key(d.day, granularity) for d in days)
        first = days[0]
        settled = is_settled(last, now, policy.settle_days)
        rows.append(
            _row(
                sums,
                first.team,
                None,
                settled,
                policy,
                job=first.job,
                arn=first.arn,
                match=MATCH_RESOURCE,
            )  # fmt: skip
        )
    pool_tracker = [d for arn, days in by_arn.items() if arn not in job_sums for d in days]
    pooled = team_rows(pool_tracker, pool_lines, granularity, now, policy)
    for row in pooled:
        if row.tracker_list == 0 and row.billed_list != 0:
            unmatched_lines.extend(
                line for line in pool_lines
                if (line.team or UNALLOCATED) == row.team
                and period_key(line.period_start, granularity) == row.period
            )  # fmt: skip
            continue
        rows.append(BillRow(**{**row.__dict__, "job": None, "match": MATCH_TEAM_PERIOD}))
    for row in team_rows([], unmatched_lines, granularity, now, policy):
        rows.append(BillRow(**{**row.__dict__, "job": UNMATCHED, "match": MATCH_UNMATCHED}))
    return rows


# == findings for the alerting feature ===========================================================
@dataclass(frozen=True)
class Finding:
    """A reconciliation result worth telling someone about (sent by the alerting feature).

    ``kind`` is ``bill-drift`` (a settled period where the bill and the tracker differ by more
    than the drift threshold) or ``estimate-over`` (a job that cost more than its estimate
    allows). ``key`` is stable for the same finding, so a sender can deliver it once.
    """

    kind: str
    team: str
    period: str
    tracker_usd: Decimal
    billed_usd: Decimal
    delta_usd: Decimal
    delta_pct: Decimal | None
    message: str
    key: str
    source: str = ""
    job: str | None = None


def drift_findings(rows: Iterable[BillRow], drift_pct: Decimal, source: str = "") -> list[Finding]:
    """A ``bill-drift`` Finding for every settled (team, period) row whose bill differs from the
    tracker by more than ``drift_pct`` percent of the tracker's cost (or at all when the
    tracker has nothing for it). Unsettled periods never drift."""
    policy = BillPolicy(drift_pct=Decimal(drift_pct))
    out = []
    for row in rows:
        if row.match is not None or not row.settled or row.period is None:
            continue
        sums = _Sums(tracker_list=row.tracker_list, billed_list=row.billed_list)
        if status_for(sums, True, policy) != "drift":
            continue
        pct = row.delta_pct
        shown = "n/a" if pct is None else f"{pct:+}%"
        where = f" ({source})" if source else ""
        out.append(
            Finding(
                kind="bill-drift",
                team=row.team,
                period=row.period,
                tracker_usd=cents(row.tracker_list),
                billed_usd=cents(row.billed_list),
                delta_usd=cents(row.delta),
                delta_pct=pct,
                message=(
                    f"SageMaker training bill{where} for team {row.team}, {row.period}: billed "
                    f"{format_usd(row.billed_list, symbol=True)} vs tracker {format_usd(row.tracker_list, symbol=True)} "
                    f"(delta {format_usd(row.delta, symbol=True)}, {shown}; threshold {drift_pct}%)"
                ),
                key=f"bill-drift:{source}:{row.team}:{row.period}",
                source=source,
            )
        )
    return out


def estimate_findings(rows: Iterable[EstimateRow]) -> list[Finding]:
    """An ``estimate-over`` Finding for every job whose verdict is ``over``."""
    out = []
    for row in rows:
        if row.verdict != "over" or row.estimate is None:
            continue
        delta = row.actual - row.estimate
        pct = _pct(delta, row.estimate)
        shown = "n/a" if pct is None else f"{pct:+}%"
        period = ""
        out.append(
            Finding(
                kind="estimate-over",
                team=row.team,
                period=period,
                tracker_usd=cents(row.actual),
                billed_usd=row.estimate,
                delta_usd=cents(delta),
                delta_pct=pct,
                message=(
                    f"Training job {row.job} (team {row.team}) cost {format_usd(row.actual, symbol=True)}, "
                    f"over its estimate {format_usd(row.estimate, symbol=True)} ({row.resolved.source}; {shown})"
                ),
                key=f"estimate-over:{row.arn}",
                source=row.resolved.source,
                job=row.job,
            )
        )
    return out


# == configuration: the [reconcile] section (parsed by tracker.settings) =======================================================
@dataclass(frozen=True)
class ReconcileSettings:
    """``[reconcile]``: settle time and drift threshold for the bill, the default bill source
    and granularity, and the estimate tolerance (``[estimates] tolerance_pct`` wins over it)."""

    settle_days: int = 2
    drift_pct: Decimal = Decimal(5)
    tolerance_pct: Decimal = Decimal(10)
    granularity: str = "daily"
    source: str = "ce"

    @property
    def policy(self) -> BillPolicy:
        return BillPolicy(settle_days=self.settle_days, drift_pct=self.drift_pct)
