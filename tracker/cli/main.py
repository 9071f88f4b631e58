"""The ``tracker`` command: a thin skin over the library.

Each command parses its arguments, wires stages together and prints. Every TrackerError
becomes one line, ``Error: ...``, with exit code 2 (bad input) or 1 (runtime failure), here
and nowhere else. Heavy imports (boto3, pandas, moto) happen inside the commands that need them.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable, Sequence

from tracker import __version__
from tracker.bounds import DEMO_JOBS, SEED
from tracker.cli import db, estimates, events, guard, init, lineage, ops, views
from tracker.cli.wiring import (
    Parser,
    add_actions,
    add_command,
    add_global_options,
    add_window_and_filters,
    settings_from,
    store_from,
    subcommand,
    whole_arg,
)
from tracker.errors import InputError, TrackerError

log = logging.getLogger("tracker")
COMMANDS: dict[str, Callable[[argparse.Namespace], int]] = {}
# Command modules that add their own subcommands: each has ``add_commands(subparsers)``,
# which adds parsers and sets ``handler=`` on them. Their top-level imports stay light.
COMMAND_MODULES = (init, db, views, ops, estimates, events, guard, lineage)


def command(
    name: str,
) -> Callable[[Callable[[argparse.Namespace], int]], Callable[[argparse.Namespace], int]]:
    def register(fn: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
        COMMANDS[name] = fn
        return fn

    return register


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog="tracker",
        description="SageMaker training spend: collect, cost, report.",
        epilog="Global options work before or after the command, e.g.\n"
        "  tracker report --by team --db sqlite:///tracker.db",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"tracker {__version__}")
    add_global_options(parser, defaults=True)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)

    add_command(
        sub,
        "collect",
        "collect finished and running training jobs from every source",
        ["tracker collect", "tracker collect --config tracker.toml --log-level INFO"],
    )

    report = add_command(
        sub,
        "report",
        "spend grouped by a dimension, or one of the report views",
        [
            "tracker report --by team",
            "tracker report --by team --since 2026-11-01 --until 2026-11-30",
            "tracker report --by project --format json --output spend.json",
            "tracker report --view showback --pivot team,month --format html --output showback.html",
            "tracker report --top 20 --since 2026-11-01",
        ],
    )
    report.add_argument("--by", default="team", choices=_dimensions(), help="dimension to group by")
    add_window_and_filters(report)
    views.add_report_arguments(report)

    prices = add_command(
        sub, "prices", "the price book", ["tracker prices check", "tracker prices refresh"]
    )
    prices_sub = add_actions(prices, "prices_command")
    refresh = add_command(
        prices_sub,
        "refresh",
        "fetch current training rates from the AWS Price List API",
        ["tracker prices refresh --region us-east-1 --region eu-west-1"],
    )
    refresh.add_argument("--region", action="append", help="only this region (repeatable)")
    add_command(
        prices_sub,
        "check",
        "instance types of collected jobs that have no price",
        ["tracker prices check --config tracker.toml"],
    )

    add_command(
        sub,
        "recost",
        "recompute stored costs with the current price book (no AWS calls)",
        ["tracker recost"],
    )

    demo = add_command(
        sub,
        "demo",
        "run the whole pipeline against a simulated AWS organisation",
        ["tracker demo", "tracker demo --dir /tmp/demo --jobs 100 --seed 3"],
    )
    demo.add_argument(
        "--dir",
        help="folder for the demo database and config (default: demo/ in the state directory)",
    )
    demo.add_argument(
        "--jobs",
        type=whole_arg("--jobs", DEMO_JOBS),
        default=360,
        help=f"random training jobs to simulate, {DEMO_JOBS.low} to {DEMO_JOBS.high:,} "
        "(default 360), on top of thirteen special cases",
    )
    demo.add_argument(
        "--seed",
        type=whole_arg("--seed", SEED),
        default=7,
        help="random seed of the simulated organisation (default 7)",
    )

    for module in COMMAND_MODULES:
        module.add_commands(sub)
    return parser


def _dimensions() -> list[str]:
    from tracker.records import DIMENSIONS

    return list(DIMENSIONS)


# -- commands ----------------------------------------------------------------------
@command("collect")
def cmd_collect(args: argparse.Namespace) -> int:
    from tracker.clock import system_clock, wall_clock
    from tracker.collect.service import collect
    from tracker.daemon.runner import record_run
    from tracker.daemon.tasks import JobContext, collect_outcome
    from tracker.report.collection import collection_text

    settings = settings_from(args)
    if not settings.sources:
        if settings.path is None:
            raise InputError(
                "no config file: pass --config PATH (or set TRACKER_CONFIG) to a file "
                "with [[sources]], e.g. a copy of config/tracker.toml"
            )
        raise InputError(
            f"{settings.path}: sources: no [[sources]] configured; add one with name and regions"
        )
    store = store_from(args, settings)
    # Recorded as a run of the collect job, once: `tracker status` shows it like a daemon's.
    summary = record_run(
        "collect",
        JobContext(settings, store, system_clock, wall_clock, "cli"),
        lambda: collect(settings, store, settings.price_book(), clock=system_clock),
        collect_outcome,
    )
    sys.stdout.write(collection_text(summary))
    return 0 if summary.ok else 1


@command("report")
def cmd_report(args: argparse.Namespace) -> int:
    from tracker.cli.views import run_report

    return run_report(args)


UNPRICED_EXTRAS = (
    ("storage-unpriced", "ML storage volume (GB-month)", "storage_usd_per_gb_month"),
    ("artifact-unpriced", "S3 storage (GB-month) for artifacts", "s3_usd_per_gb_month"),
)


@command("prices")
def cmd_prices(args: argparse.Namespace) -> int:
    settings = settings_from(args)
    if args.prices_command == "refresh":
        from tracker.clock import system_clock
        from tracker.collect.recost import refresh_prices

        refreshed = refresh_prices(settings, None, system_clock(), args.region)
        print(f"Wrote {refreshed.rates} training rates to {refreshed.path}")
        if refreshed.storage_path is not None:
            print(f"Wrote {refreshed.storage_rates} storage rates to {refreshed.storage_path}")
        print("Run 'tracker recost' to apply them to stored jobs.")
        return 0
    if args.prices_command == "check":
        store = store_from(args, settings, read_only=True)
        missing = settings.price_book().unpriced_types(store.billed_type_pairs())
        if missing:
            print(
                "No price for these (region, instance type) pairs; their jobs are flagged unpriced:"
            )
            for region, itype in missing:
                print(f"  {region}  {itype}")
            print(
                "Add them to the overrides file ([pricing] overrides) or run 'tracker prices refresh'."
            )
        else:
            print("Every instance type of the collected jobs has a price.")
        for flag, what, key in UNPRICED_EXTRAS:
            regions = store.flagged_by_region(flag)
            if regions:
                listed = ", ".join(f"{region} ({count} jobs)" for region, count in regions.items())
                print(f"No {what} rate, so that part is $0.00 and flagged {flag}: {listed}.")
                print(f"  Set [pricing] {key} for these regions to cost it.")
        return 0
    raise InputError("tracker prices: expected an action: refresh or check")


@command("recost")
def cmd_recost(args: argparse.Namespace) -> int:
    from tracker.clock import system_clock
    from tracker.collect.recost import allocation_of, recost

    settings = settings_from(args)
    store = store_from(args, settings)
    count = recost(
        store,
        settings.price_book(),
        settings.cost_policy(),
        settings.discount_pct,
        system_clock(),
        allocation=allocation_of(settings),
    )
    print(f"Recosted {count} jobs with the current price book and allocation rules.")
    return 0


@command("demo")
def cmd_demo(args: argparse.Namespace) -> int:
    from tracker.demo import run_demo

    return run_demo(args.dir, jobs=args.jobs, seed=args.seed, db_url=args.db)


# -- entry point -----------------------------------------------------------------------
DEFAULT_LOG_LEVEL = "WARNING"
# What `tracker` alone suggests: try it, collect for real, then see the spend.
START_HERE = ("demo", "collect", "report")


def start_here(parser: argparse.ArgumentParser) -> str:
    """The short usage ``tracker`` prints without a command: the first example of each of
    the START_HERE commands, with its summary."""
    lines = ["usage: tracker [global options] COMMAND [options]", "", "Start with:"]
    starters = [subcommand(parser, name) for name in START_HERE]
    width = max(len(starter.examples[0]) for starter in starters)
    for starter in starters:
        lines.append(f"  {starter.examples[0]:<{width}}  {starter.summary}")
    lines += [
        "",
        "tracker init writes a starter config; tracker --help lists every command;",
        "tracker COMMAND --help shows one.",
    ]
    return "\n".join(lines) + "\n"


def configure_logging(level: str, fmt: str) -> None:
    from tracker.logs import configure

    configure(level, fmt)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
        configure_logging(args.log_level or DEFAULT_LOG_LEVEL, args.log_format)
        if not args.command:
            sys.stderr.write(start_here(parser))
            return 2
        handler = getattr(args, "handler", None) or COMMANDS[args.command]
        return handler(args)
    except TrackerError as exc:
        print(f"Error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("Error: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0
    except Exception as exc:  # the last resort (MemoryError too): input is checked where read
        return internal_error(exc)


def internal_error(exc: BaseException) -> int:
    """An exception no check caught (RecursionError, OverflowError, InvalidOperation,
    MemoryError, a bug): one ``Error:`` line and exit 1; the traceback only at DEBUG."""
    from tracker.errors import printable

    first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    detail = printable(f"{type(exc).__name__}: {first}" if first else type(exc).__name__)
    if len(detail) > 200:
        detail = detail[:197] + "..."
    log.debug("internal error", exc_info=exc)
    print(
        f"Error: internal error ({detail}); run with --log-level DEBUG for the traceback",
        file=sys.stderr,
    )
    return 1
