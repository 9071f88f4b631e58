"""``tracker guard check``: the launch guardrail's decision from the command line
(docs/guardrails.md). Exit 0 allowed, 3 refused, 2 bad input."""

from __future__ import annotations

import argparse
from dataclasses import replace
from decimal import ROUND_HALF_UP, Decimal

from tracker.bounds import JOB_HOURS
from tracker.cli.wiring import (
    add_actions,
    add_command,
    add_job_shape,
    decimal_arg,
    settings_from,
    store_from,
)
from tracker.errors import InputError
from tracker.guard.policy import MODES, GuardrailRefused

CHECK_JOB_NAME = "guard-check"


def add_commands(sub: argparse._SubParsersAction) -> None:
    """Register ``tracker guard check``."""
    guard = add_command(
        sub,
        "guard",
        "launch guardrails: would a training job break its team's budget",
        ["tracker guard check --instance-type ml.p4d.24xlarge --count 4 --max-runtime-hours 48 "
         "--team nlp"],
    )  # fmt: skip
    actions = add_actions(guard, "guard_command")
    check = add_command(
        actions,
        "check",
        "price a job's worst case and check its team's budgets (exit 3 when refused)",
        [
            "tracker guard check --instance-type ml.g5.2xlarge --count 2 --max-runtime-hours 10 "
            "--team nlp",
            "tracker guard check --instance-type ml.p4d.24xlarge --max-runtime-hours 24 --spot "
            "--team cv --mode refuse",
        ],
    )
    add_job_shape(check)
    check.add_argument(
        "--max-runtime-hours",
        type=decimal_arg("--max-runtime-hours", JOB_HOURS, positive=True),
        required=True,
        help="StoppingCondition.MaxRuntimeInSeconds in hours, more than 0 and at most "
        f"{JOB_HOURS.high:,}",
    )
    check.add_argument(
        "--spot",
        action="store_true",
        help="managed spot (the worst case is the same: the wait for capacity is not billed)",
    )
    check.add_argument("--team", help="the job's team (its team tag); default unallocated")
    check.add_argument("--region", help="AWS region (default: first configured source region)")
    check.add_argument(
        "--mode",
        choices=MODES,
        help="decide as this mode (default: the team's [guard.teams] mode, else [guard] mode)",
    )
    check.set_defaults(handler=cmd_check)
    guard.set_defaults(handler=_missing_action)


def _missing_action(args: argparse.Namespace) -> int:
    raise InputError("tracker guard: expected an action: check")


def cmd_check(args: argparse.Namespace) -> int:
    from tracker.clock import system_clock
    from tracker.estimate.service import default_region
    from tracker.guard.service import check_request

    settings = settings_from(args)
    seconds = int((args.max_runtime_hours * 3600).quantize(Decimal(1), rounding=ROUND_HALF_UP))
    stopping = {"MaxRuntimeInSeconds": max(seconds, 1)}
    if args.spot:
        stopping["MaxWaitTimeInSeconds"] = stopping["MaxRuntimeInSeconds"]
    params = {
        "TrainingJobName": CHECK_JOB_NAME,
        "ResourceConfig": {
            "InstanceType": args.instance_type,
            "InstanceCount": args.count,
            "VolumeSizeInGB": args.volume_gb,
        },
        "StoppingCondition": stopping,
        "EnableManagedSpotTraining": bool(args.spot),
        "Tags": [{"Key": settings.attribution.team_tag, "Value": args.team}] if args.team else [],
    }
    store = store_from(args, settings, read_only=True) if settings.budgets else None
    region = args.region or default_region(settings)
    decision = check_request(settings, store, params, region, system_clock())
    if args.mode is not None:  # the option wins over the team's configured mode
        decision = replace(decision, mode=args.mode)
    if decision.unpriced and not decision.refused:
        raise InputError(decision.summary())
    if decision.refused:
        raise GuardrailRefused(decision.refusal())
    print(f"allowed ({decision.mode}): {decision.summary()}")
    return 0
