"""``tracker init``: write a commented starter ``tracker.toml`` and say what to run next.

Its ``[[sources]]`` is the current AWS profile's account and region when they resolve
(:func:`tracker.aws.identity.caller_identity`), else a commented-out placeholder, so the
file always loads; optional settings are shown commented out with an example value.
"""

from __future__ import annotations

import argparse
import json
import shlex
from pathlib import Path
from typing import TYPE_CHECKING

from tracker.cli.wiring import add_command
from tracker.errors import InputError

if TYPE_CHECKING:
    from tracker.aws.identity import CallerIdentity

CONFIG_NAME = "tracker.toml"
SOURCE_NAME = "main"
PLACEHOLDER_REGION = "us-east-1"

HEADER = """\
# SageMaker Spend Tracker configuration, written by `tracker init`.
# Relative paths resolve against this file's folder. Every problem in it is reported at once
# by any command that reads it, e.g. `tracker --config tracker.toml prices check`.
# Optional settings are commented out with an example value: uncomment to change one.

[database]
# SQLite in one file next to this one; any SQLAlchemy URL for a shared deployment,
# e.g. "postgresql+psycopg://tracker@db.internal/tracker" (pip install '.[postgres]').
url = "sqlite:///tracker.db"
"""

FOUND = """
# One [[sources]] per AWS account: account {account} of AWS profile {profile}, found by
# `tracker init`; list every region you train in. When the tracker runs, credentials come
# from boto3's standard chain (environment, profile, instance role).
[[sources]]
name = {name}
regions = {regions}
"""

PLACEHOLDER = """
# One [[sources]] per AWS account. `tracker init` could not fill this one in:
#   {problem}.
# Set your account's regions and uncomment these lines; until then `tracker collect` says
# that no [[sources]] is configured. When the tracker runs, credentials come from boto3's
# standard chain (environment, profile, instance role).
# [[sources]]
# name = {name}
# regions = {regions}
"""

REST = """
# Another account, through a role the tracker assumes there (its policy: config/iam-policy.json
# in the source repository):
# [[sources]]
# name = "other"
# regions = ["us-east-1"]
# role_arn = "arn:aws:iam::123456789012:role/SpendTrackerRead"
# external_id = "..."              # if the role's trust policy requires one

# [attribution]                    # the tag keys that name a job's team, project and user
# team_tag = "team"
# project_tag = "project"
# user_tag = "owner"

# [pricing]                        # your rates win when you set overrides = "FILE.csv"
# discount_pct = 0                 # Savings Plans / private pricing: effective = list x (1 - pct/100)

# [[budgets]]                      # `tracker budgets`, and alerts from `tracker alerts`
# name = "team-monthly"
# team = "nlp"
# period = "monthly"               # monthly | quarterly | yearly
# amount_usd = 5000
# thresholds_pct = [50, 80, 100]
# notify = ["log"]

# [schedule]                       # `tracker daemon`: cron expressions (UTC)
# collect = "*/15 * * * *"
# alerts = "after collect"

# [[allocation.rules]]             # a team for untagged jobs (docs/allocation.md); first match wins
# name = "sweeps"
# team = "research"
# name_glob = "sweep-*"            # or name_regex, role_arn, account, domain, user_profile, field

# [[allocation.shared]]            # split a pool over the teams per month (showback shared_usd)
# name = "untagged"
# pool = "unallocated"             # or team = "platform", or monthly_usd = 1200
# method = "proportional"          # or "even"
"""


def add_commands(sub: argparse._SubParsersAction) -> None:
    """Add ``tracker init``."""
    parser = add_command(
        sub,
        "init",
        "write a commented starter tracker.toml for the current AWS profile",
        ["tracker init", "tracker init --dir ~/.config/tracker --force"],
    )
    parser.add_argument(
        "--dir", default=".", help="folder to write tracker.toml into (default: this folder)"
    )
    parser.add_argument(
        "--force", action="store_true", help="overwrite an existing tracker.toml there"
    )
    parser.set_defaults(handler=cmd_init)


def source_problem(identity: CallerIdentity) -> str | None:
    """Why ``identity`` cannot fill in a [[sources]], or None when it can."""
    if identity.account_id is None:
        return f"no AWS account found: {identity.problem or 'unknown reason'}"
    if identity.region is None:
        return f"account {identity.account_id} found, but the AWS profile names no region"
    return None


def starter_toml(identity: CallerIdentity) -> str:
    """The starter config for ``identity``: a live [[sources]] when its account and region
    are known, else a commented-out one with whatever is known filled in."""
    profile = identity.profile or "default"
    name = json.dumps(profile if profile != "default" else SOURCE_NAME)
    regions = json.dumps([identity.region or PLACEHOLDER_REGION])
    problem = source_problem(identity)
    if problem is None:
        sources = FOUND.format(
            account=identity.account_id, profile=json.dumps(profile), name=name, regions=regions
        )
    else:
        sources = PLACEHOLDER.format(problem=problem, name=name, regions=regions)
    return HEADER + sources + REST


def cmd_init(args: argparse.Namespace) -> int:
    """Write DIR/tracker.toml (never over an existing one without --force)."""
    from tracker.aws.identity import caller_identity

    folder = Path(args.dir).expanduser()
    path = folder / CONFIG_NAME
    if path.exists() and not args.force:
        raise InputError(f"{path} already exists; pass --force to overwrite it")
    if folder.exists() and not folder.is_dir():
        raise InputError(f"--dir {folder}: not a folder")
    identity = caller_identity()
    text = starter_toml(identity)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        # "x" refuses a file that appeared since the check above.
        with path.open("w" if args.force else "x", encoding="utf-8") as handle:
            handle.write(text)
    except FileExistsError:
        raise InputError(f"{path} already exists; pass --force to overwrite it") from None
    except OSError as exc:
        raise InputError(f"{path}: cannot write ({exc.strerror or exc})") from None
    print(next_steps(path, identity), end="")
    return 0


def next_steps(path: Path, identity: CallerIdentity) -> str:
    """What ``init`` wrote and the commands to run next, with the path as the user gave it."""
    config = shlex.quote(str(path))
    where = path.resolve()
    problem = source_problem(identity)
    if problem is None:
        lines = [
            f"Wrote {where} with one source: account {identity.account_id}, region "
            f"{identity.region}.",
            "Add the other regions and accounts you train in, then run:",
        ]
    else:
        lines = [
            f"Wrote {where} with a placeholder source ({problem}).",
            f"Fill in [[sources]] in {config} and uncomment it, then run:",
        ]
    lines += [
        f"  tracker --config {config} collect",
        f"  tracker --config {config} report --by team",
    ]
    return "\n".join(lines) + "\n"
