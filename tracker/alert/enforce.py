"""Runaway-job enforcement rules (``[enforce]``): which running jobs to stop, and the message
each stop (or would-stop) sends. Pure: plain records in, decisions and messages out.

Rules, checked in this order; the first that holds decides (one stop per job):

- ``over-estimate``: the job has cost more than ``estimate_factor`` times its estimate so far;
- ``over-budget``: the job's team budget (a budget scoped to that team alone) is spent past its
  amount, counting this job's cost so far;
- ``spot-restarts``: a managed-spot job without a ``CheckpointConfig`` restarted more than
  ``max_spot_restarts`` times (``Restarting``/``Interrupted`` in its SecondaryStatusTransitions).

Modes: ``dry-run`` (the default: alert "would stop"), ``approve`` (alert with the exact stop
command), ``stop`` (the service calls StopTrainingJob once, then alerts). Alert key:
``enforce:<arn>:<mode>``; docs/enforcement-and-anomalies.md.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from tracker.alert.channels import Message
from tracker.records import cents, format_usd

MODES = ("dry-run", "approve", "stop")
RULES = ("over-estimate", "over-budget", "spot-restarts")
RESTART_STATES = ("Restarting", "Interrupted")
STOP_CHANNEL = "action:stop-training-job"  # the ledger row of the StopTrainingJob call itself


@dataclass(frozen=True)
class EnforceSettings:
    """The ``[enforce]`` section. Nothing is enforced unless ``enabled``."""

    enabled: bool = False
    mode: str = "dry-run"
    rules: tuple[str, ...] = RULES
    estimate_factor: Decimal = Decimal(2)
    max_spot_restarts: int = 3


@dataclass(frozen=True)
class RunningJob:
    """What the rules need about one running job."""

    name: str
    arn: str
    region: str
    team: str | None
    cost_usd: Decimal  # so far
    estimate_usd: Decimal | None = None
    estimate_source: str = ""
    spot: bool = False
    checkpoints: bool = False
    restarts: int = 0
    exempt: bool = False  # tagged ``tracker:enforce = off``: never stopped


EXEMPT_TAG = "tracker:enforce"  # value "off": the job is exempt (the IAM statement agrees)


@dataclass(frozen=True)
class TeamBudget:
    """A budget scoped to one team: its amount and its actual spend (running jobs included)."""

    name: str
    team: str
    amount_usd: Decimal
    actual_usd: Decimal
    period: str


@dataclass(frozen=True)
class Decision:
    job: RunningJob
    rule: str
    reason: str
    mode: str

    @property
    def key(self) -> str:
        return f"enforce:{self.job.arn}:{self.mode}"

    @property
    def command(self) -> str:
        return (
            f"aws sagemaker stop-training-job --training-job-name {self.job.name} "
            f"--region {self.job.region}"
        )


def restarts(raw: Mapping[str, Any]) -> int:
    """Restarts of a job from its DescribeTrainingJob/Search record: the number of
    ``Restarting`` transitions, or of ``Interrupted`` ones where no restart is listed."""
    states = [t.get("Status") for t in raw.get("SecondaryStatusTransitions") or []]
    return max(states.count(s) for s in RESTART_STATES)


def has_checkpoints(raw: Mapping[str, Any]) -> bool:
    return bool((raw.get("CheckpointConfig") or {}).get("S3Uri"))


def decide(
    jobs: Iterable[RunningJob], budgets: Sequence[TeamBudget], settings: EnforceSettings
) -> list[Decision]:
    """One decision per running job a rule holds for; none unless enforcement is enabled."""
    if not settings.enabled:
        return []
    over = {b.team: b for b in budgets if b.actual_usd > b.amount_usd}
    decisions = []
    for job in jobs:
        if job.exempt:
            continue
        reason = _first_reason(job, over, settings)
        if reason is not None:
            decisions.append(Decision(job, reason[0], reason[1], settings.mode))
    return decisions


def _first_reason(
    job: RunningJob, over: Mapping[str, TeamBudget], settings: EnforceSettings
) -> tuple[str, str] | None:
    cost = format_usd(job.cost_usd, symbol=True)
    for rule in settings.rules:
        if rule == "over-estimate" and job.estimate_usd and job.estimate_usd > 0:
            limit = job.estimate_usd * settings.estimate_factor
            if job.cost_usd > limit:
                return rule, (
                    f"cost {cost} so far, more than {settings.estimate_factor} x its estimate of "
                    f"{format_usd(job.estimate_usd, symbol=True)} ({job.estimate_source})"
                )
        if rule == "over-budget" and job.team in over:
            budget = over[job.team]
            return rule, (
                f"team {job.team}'s budget {budget.name} is spent past its "
                f"{format_usd(budget.amount_usd, symbol=True)} for {budget.period} "
                f"({format_usd(budget.actual_usd, symbol=True)}, this job's {cost} so far included)"
            )
        if (
            rule == "spot-restarts"
            and job.spot
            and not job.checkpoints
            and job.restarts > settings.max_spot_restarts
        ):
            return rule, (
                f"managed spot without checkpoints restarted {job.restarts} times "
                f"(more than {settings.max_spot_restarts}): every restart starts from scratch"
            )
    return None


def message(decision: Decision, now: datetime, *, stopped: bool = False) -> Message:
    """The alert of one decision; ``stopped``: StopTrainingJob was called for it."""
    job = decision.job
    cost = format_usd(job.cost_usd, symbol=True)
    verb = {
        "stop": "was stopped",
        "approve": "should be stopped (approval needed)",
        "dry-run": "would be stopped",
    }[decision.mode]
    if decision.mode == "stop" and not stopped:
        verb = "is being stopped"
    subject = f"Running job {job.name} {verb} ({decision.rule}): cost {cost} so far"
    lines = [
        f"Job:       {job.name} (running, team {job.team or 'unallocated'}, {job.region})",
        f"Rule:      {decision.rule}: {decision.reason}",
        f"Cost:      {cost} at {now:%Y-%m-%d %H:%M} UTC",
        f"Mode:      {decision.mode}",
    ]
    if decision.mode == "stop":
        lines.append("Action:    StopTrainingJob was called; the job ends as Stopped.")
    elif decision.mode == "approve":
        lines.append(f"To stop it: {decision.command}")
    else:
        lines.append(
            '[enforce] mode = "dry-run": nothing was stopped. To stop it: ' + decision.command
        )
    fields = {
        "job": job.name, "arn": job.arn, "region": job.region, "team": job.team,
        "rule": decision.rule, "reason": decision.reason, "mode": decision.mode,
        "cost_usd": str(cents(job.cost_usd)), "command": decision.command,
        "at": f"{now:%Y-%m-%dT%H:%M:%SZ}",
    }  # fmt: skip
    return Message(decision.key, f"enforce-{decision.mode}", subject, "\n".join(lines), fields)
