"""Anomaly rules (``[anomalies]``): a finished job far above its peers, a team-day far above
its baseline. Pure: plain records in, findings and messages out.

- ``job``: a finished job whose cost is more than ``job_factor`` times the median cost of its
  peers (at least ``min_peers`` other finished jobs). Peers are tried in this order and the
  first group with enough members decides: the same name once trailing numbers and
  timestamps are removed (:func:`name_family`), the same estimate, the same instance type and
  team.
- ``team-day``: a team's spend on one day more than ``day_factor`` times its baseline, the
  MEAN daily spend of the 28 days before (days without spend count as $0). A team needs
  spend on the 28th day before or earlier (28 days of history) and a baseline above $0.

Alert keys: ``anomaly:job:<arn>``, ``anomaly:team-day:<team>:<day>``.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal

from tracker.alert.channels import Message
from tracker.records import cents, format_usd

BASELINE_DAYS = 28
TRAILING_NUMBERS = re.compile(r"(?:[-_.:]*\d+)+$")


@dataclass(frozen=True)
class AnomalySettings:
    """The ``[anomalies]`` section. ``enabled`` turns on the alerts; the view always works."""

    enabled: bool = False
    job_factor: Decimal = Decimal(3)
    day_factor: Decimal = Decimal(3)
    min_peers: int = 5
    lookback_days: int = 90


def name_family(name: str) -> str:
    """A job name without its trailing numbers and timestamps: the name prefix peers share.

    ``bert-ft-2026-11-10-12-30-00-123`` -> ``bert-ft``; ``xgb-run-42`` -> ``xgb-run``;
    ``sweep7`` -> ``sweep``; a name of digits only stays itself.
    """
    stripped = TRAILING_NUMBERS.sub("", name)
    return stripped or name


@dataclass(frozen=True)
class FinishedJob:
    name: str
    arn: str
    team: str | None
    instance_type: str | None
    cost_usd: Decimal
    estimate: str | None = None  # an estimate's identity (source and amount), when matched
    ended: date | None = None


@dataclass(frozen=True)
class JobAnomaly:
    job: FinishedJob
    peers: str  # how the peers were chosen, e.g. "name prefix bert-ft"
    peer_count: int
    median_usd: Decimal

    @property
    def factor(self) -> Decimal:
        return self.job.cost_usd / self.median_usd


PEER_RULES: tuple[tuple[str, Callable[[FinishedJob], str | None]], ...] = (
    ("name prefix", lambda j: name_family(j.name)),
    ("estimate", lambda j: j.estimate),
    ("instance type and team",
     lambda j: f"{j.instance_type} / {j.team}" if j.instance_type and j.team else None),
)  # fmt: skip


def _median_without(values: Sequence[Decimal], index: int) -> Decimal:
    """The median of sorted ``values`` with the element at ``index`` left out."""
    size = len(values) - 1

    def at(position: int) -> Decimal:
        return values[position if position < index else position + 1]

    return (at((size - 1) // 2) + at(size // 2)) / 2


def job_anomalies(
    candidates: Iterable[FinishedJob], population: Sequence[FinishedJob], settings: AnomalySettings
) -> list[JobAnomaly]:
    """Anomalies among ``candidates``; peers come from ``population`` (candidates included)."""
    groups: list[dict[str, list[tuple[Decimal, str]]]] = []
    for _, key_of in PEER_RULES:
        grouped: dict[str, list[tuple[Decimal, str]]] = defaultdict(list)
        for job in population:
            key = key_of(job)
            if key is not None:
                grouped[key].append((job.cost_usd, job.arn))
        for members in grouped.values():
            members.sort()
        groups.append(grouped)
    found = []
    for job in candidates:
        for (label, key_of), grouped in zip(PEER_RULES, groups, strict=True):
            key = key_of(job)
            members = grouped.get(key, []) if key is not None else []
            if len(members) - 1 < settings.min_peers:
                continue
            index = members.index((job.cost_usd, job.arn))
            median = _median_without([cost for cost, _ in members], index)
            if median > 0 and job.cost_usd > settings.job_factor * median:
                found.append(JobAnomaly(job, f"{label} {key}", len(members) - 1, median))
            break
    return sorted(found, key=lambda a: (-a.job.cost_usd, a.job.name))


@dataclass(frozen=True)
class TeamDayAnomaly:
    team: str
    day: date
    spend_usd: Decimal
    baseline_usd: Decimal
    top_jobs: tuple[tuple[str, Decimal], ...] = field(default=())

    @property
    def factor(self) -> Decimal:
        return self.spend_usd / self.baseline_usd


def team_day_anomalies(
    spend: Mapping[tuple[str, date], Decimal], days: Iterable[date], settings: AnomalySettings
) -> list[TeamDayAnomaly]:
    """Team-days among ``days`` above ``day_factor`` x the mean of their 28 days before.

    ``spend`` must hold every (team, day) with spend from 28 days before the first of ``days``.
    """
    first_seen: dict[str, date] = {}
    for team, seen in spend:
        first_seen[team] = min(seen, first_seen.get(team, seen))
    found = []
    for day in days:
        for team in sorted(first_seen):
            today = spend.get((team, day), Decimal(0))
            if today <= 0 or first_seen[team] > day - timedelta(days=BASELINE_DAYS):
                continue  # nothing spent, or fewer than 28 days of history to compare with
            window = (day - timedelta(days=n) for n in range(1, BASELINE_DAYS + 1))
            baseline = sum((spend.get((team, d), Decimal(0)) for d in window), Decimal(0))
            baseline /= BASELINE_DAYS
            if baseline > 0 and today > settings.day_factor * baseline:
                found.append(TeamDayAnomaly(team, day, today, baseline))
    return sorted(found, key=lambda a: (a.day, a.team))


def _x(factor: Decimal) -> str:
    return f"{factor.quantize(Decimal('0.1'))}x"


def job_message(anomaly: JobAnomaly, settings: AnomalySettings) -> Message:
    job = anomaly.job
    cost, median = (
        format_usd(job.cost_usd, symbol=True),
        format_usd(anomaly.median_usd, symbol=True),
    )
    subject = (
        f"Anomaly: job {job.name} cost {cost}, {_x(anomaly.factor)} its peers' median of {median}"
    )
    lines = [
        f"Job:       {job.name} (team {job.team or 'unallocated'}, {job.instance_type or '-'})",
        f"Cost:      {cost}",
        f"Peers:     {anomaly.peer_count} finished jobs with the same {anomaly.peers}; median {median}",
        f"Factor:    {_x(anomaly.factor)} (the rule: more than {settings.job_factor}x)",
        "See more:",
        "  tracker report --view anomalies",
        f"  tracker report --by job --team {job.team or 'unallocated'} --format table",
    ]
    fields = {"job": job.name, "arn": job.arn, "team": job.team, "cost_usd": str(cents(job.cost_usd)),
              "median_usd": str(cents(anomaly.median_usd)), "peers": anomaly.peers,
              "peer_count": anomaly.peer_count, "factor": str(anomaly.factor.quantize(Decimal("0.01")))}  # fmt: skip
    return Message(f"anomaly:job:{job.arn}", "anomaly-job", subject, "\n".join(lines), fields)


def team_day_message(anomaly: TeamDayAnomaly, settings: AnomalySettings) -> Message:
    spend = format_usd(anomaly.spend_usd, symbol=True)
    baseline = format_usd(anomaly.baseline_usd, symbol=True)
    subject = (
        f"Anomaly: team {anomaly.team} spent {spend} on {anomaly.day}, "
        f"{_x(anomaly.factor)} its 28-day mean of {baseline}"
    )
    lines = [
        f"Team:      {anomaly.team}",
        f"Day:       {anomaly.day}: {spend}",
        f"Baseline:  {baseline} a day (mean of the {BASELINE_DAYS} days before)",
        f"Factor:    {_x(anomaly.factor)} (the rule: more than {settings.day_factor}x)",
    ]
    if anomaly.top_jobs:
        lines.append("Top jobs that day:")
        lines += [f"  {name}  {format_usd(usd, symbol=True)}" for name, usd in anomaly.top_jobs]
    lines += [
        "See more:",
        f"  tracker report --by job --team {anomaly.team} --since {anomaly.day} --until {anomaly.day}",
    ]
    fields = {"team": anomaly.team, "day": str(anomaly.day), "spend_usd": str(cents(anomaly.spend_usd)),
              "baseline_usd": str(cents(anomaly.baseline_usd)),
              "factor": str(anomaly.factor.quantize(Decimal("0.01"))),
              "top_jobs": [name for name, _ in anomaly.top_jobs]}  # fmt: skip
    key = f"anomaly:team-day:{anomaly.team}:{anomaly.day}"
    return Message(key, "anomaly-team-day", subject, "\n".join(lines), fields)
