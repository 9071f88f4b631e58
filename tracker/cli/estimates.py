"""``tracker estimate``, ``tracker reconcile`` and ``tracker export``: thin wiring and output."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Protocol

from tracker.bounds import JOB_HOURS, PERCENT, SPOT_RATIO
from tracker.cli.wiring import (
    add_command,
    add_format_option,
    add_job_shape,
    add_window_and_filters,
    check_file_name,
    decimal_arg,
    filters_from,
    parse_day,
    settings_from,
    store_from,
    write_output,
)
from tracker.errors import InputError, printable
from tracker.records import format_usd

if TYPE_CHECKING:
    from tracker.report.table import Table

if TYPE_CHECKING:
    from tracker.settings import Settings
    from tracker.store.database import Store

OUTPUT_FORMATS = ("table", "csv", "json")

ESTIMATE_JOB_COLUMNS = (
    "job", "team", "estimate_usd", "actual_usd", "delta_usd", "delta_pct", "estimate_source",
    "verdict",
)  # fmt: skip
ESTIMATE_TEAM_COLUMNS = (
    "team", "jobs", "estimated_jobs", "estimate_usd", "actual_usd", "delta_usd", "delta_pct",
    "verdict", "over", "under", "within", "worst_case_jobs", "no_estimate_jobs",
    "unestimated_actual_usd",
)  # fmt: skip
BILL_TEAM_TABLE = (
    "team", "period", "tracker_usd", "billed_usd", "delta_usd", "delta_pct", "status",
    "tracker_effective_usd", "billed_effective_usd", "unrecognised_usd",
)  # fmt: skip
BILL_JOB_TABLE = (
    "job", "match", "team", "period", "tracker_usd", "billed_usd", "delta_usd", "delta_pct",
    "status",
)  # fmt: skip
COUNTED = (
    "jobs", "estimated_jobs", "over", "under", "within", "worst_case_jobs", "no_estimate_jobs",
)  # fmt: skip


def add_commands(sub: argparse._SubParsersAction) -> None:
    """Add ``estimate``, ``reconcile`` and ``export`` to the tracker's subcommands."""
    _add_estimate(sub)
    _add_reconcile(sub)
    _add_export(sub)


def _add_estimate(sub: argparse._SubParsersAction) -> None:
    parser = add_command(
        sub,
        "estimate",
        "estimate a training job with the same price book and cost engine as actual costs",
        [
            "tracker estimate --instance-type ml.g5.2xlarge --count 2 --hours 3",
            "tracker estimate --instance-type ml.p4d.24xlarge --hours 10 --spot-ratio 0.3 "
            "--team nlp --job-name bert-large-1 --record",
        ],
    )
    add_job_shape(parser)
    parser.add_argument(
        "--hours",
        type=decimal_arg("--hours", JOB_HOURS, positive=True),
        required=True,
        help=f"training hours, more than 0 and at most {JOB_HOURS.high:,} (a leap year)",
    )
    parser.add_argument("--region", help="AWS region (default: first configured source region)")
    parser.add_argument(
        "--spot-ratio",
        type=decimal_arg("--spot-ratio", SPOT_RATIO, positive=True),
        help="managed spot: the share of training time billed, 0 < F <= 1 (e.g. 0.3)",
    )
    parser.add_argument("--team", help="team the job belongs to")
    names = parser.add_mutually_exclusive_group()
    names.add_argument("--job-name", help="match this estimate to the job with this exact name")
    names.add_argument("--name-prefix", help="match it to jobs whose names start with this")
    parser.add_argument(
        "--record", action="store_true", help="store it to match it to the job later"
    )
    add_format_option(parser, ["table", "json"])
    parser.set_defaults(handler=cmd_estimate)


def _add_reconcile(sub: argparse._SubParsersAction) -> None:
    parser = add_command(
        sub,
        "reconcile",
        "actual cost vs estimates, or the tracker vs the AWS bill",
        [
            "tracker reconcile --against estimates --since 2026-11-01 --by team",
            "tracker reconcile --against bill --source ce --granularity daily",
            "tracker reconcile --against bill --source s3://billing-bucket/cur2/ --by job",
        ],
    )
    parser.add_argument(
        "--against",
        required=True,
        choices=["estimates", "bill"],
        help="what to compare actual cost with: recorded estimates or the AWS bill",
    )
    parser.add_argument(
        "--source",
        help="bill source: 'ce' (Cost Explorer), a CUR 2.0 / FOCUS file or folder, or "
        "s3://bucket/prefix (default [reconcile] source, else ce)",
    )
    parser.add_argument("--since", type=parse_day, help="first UTC day, inclusive (YYYY-MM-DD)")
    parser.add_argument("--until", type=parse_day, help="last UTC day, inclusive (YYYY-MM-DD)")
    parser.add_argument("--team", help="only this team")
    parser.add_argument(
        "--by",
        choices=["job", "team"],
        help="estimates: job (default) or a per-team roll-up; bill: team (default, per team "
        "and period) or job (per job by resource id, with the unmatched bucket)",
    )
    parser.add_argument("--granularity", choices=["daily", "monthly"], help="bill periods")
    parser.add_argument(
        "--tolerance",
        type=decimal_arg("--tolerance", PERCENT),
        help=f"estimates: within +/- this percent, {PERCENT.low} to {PERCENT.high:,} (default 10)",
    )
    add_format_option(parser, OUTPUT_FORMATS)
    parser.add_argument("--output", help="write to this file instead of standard output")
    parser.set_defaults(handler=cmd_reconcile)


def _add_export(sub: argparse._SubParsersAction) -> None:
    parser = add_command(
        sub,
        "export",
        "write per-job costs as FOCUS 1.2 rows or as a plain CSV/Parquet table",
        [
            "tracker export --output focus.csv.gz --since 2026-11-01",
            "tracker export --format parquet --output jobs.parquet --team nlp",
        ],
    )
    add_format_option(parser, ["focus", "csv", "parquet"], default="focus")
    parser.add_argument(
        "--output", required=True, help="FILE.csv, FILE.csv.gz or FILE.parquet to write"
    )
    add_window_and_filters(parser)
    parser.set_defaults(handler=cmd_export)


# -- estimate -------------------------------------------------------------------------------
def cmd_estimate(args: argparse.Namespace) -> int:
    from tracker.clock import system_clock
    from tracker.estimate.rules import EstimateRequest
    from tracker.estimate.service import default_region, price_estimate, record_estimate

    settings = settings_from(args)
    request = EstimateRequest(
        instance_type=args.instance_type,
        instance_count=args.count,
        hours=args.hours,
        region=args.region or default_region(settings),
        spot_ratio=args.spot_ratio,
        volume_gb=args.volume_gb,
        team=args.team,
        job_name=args.job_name,
        name_prefix=args.name_prefix,
    )
    estimate = price_estimate(settings, request, system_clock(), recorded=args.record)
    if args.record:
        record_estimate(store_from(args, settings), estimate)
    if args.format == "json":
        from tracker.report.render import json_text

        sys.stdout.write(json_text(estimate.to_dict()))
    else:
        sys.stdout.write(render_estimate(estimate.to_dict()))
    return 0


def render_estimate(data: dict[str, Any]) -> str:
    """The itemised estimate as text."""
    mode = (
        "on-demand" if data["spot_ratio"] is None else f"managed spot, {data['spot_ratio']} billed"
    )
    head = (
        f"Estimate {data['estimate_id']} (recorded)"
        if data["recorded"]
        else "Estimate (not recorded)"
    )
    lines = [
        head,
        f"  {data['instance_count']} x {data['instance_type']} in {data['region']} for "
        f"{data['hours']} h ({mode}), volume {data['volume_gb']} GB",
        f"  rate          {data['usd_per_hour']} USD per instance-hour",
        f"  compute       {format_usd(data['compute_usd']):>12}",
        f"  warm pool     {format_usd(data['warm_pool_usd']):>12}",
        f"  storage       {format_usd(data['storage_usd']):>12}",
        f"  total         {format_usd(data['total_usd']):>12} USD",
        f"  effective     {format_usd(data['effective_usd']):>12} USD (after the configured discount)",
        f"  spot savings  {format_usd(data['spot_savings_usd']):>12} USD (not part of the total)",
    ]
    if data["flags"]:
        lines.append(f"  flags: {', '.join(data['flags'])}")
    tags = ", ".join(f"{k}={v}" for k, v in data["tags"].items())
    lines.append(f"Tags for the training job: {tags}")
    if not data["recorded"]:
        lines.append("Pass --record to store it and match it to the job after it runs.")
    return "\n".join(lines) + "\n"


# -- reconcile --------------------------------------------------------------------------------
def cmd_reconcile(args: argparse.Namespace) -> int:
    from tracker.clock import system_clock

    if args.since and args.until and args.since > args.until:
        raise InputError(f"--since {args.since} is after --until {args.until}")
    if args.against == "estimates":
        for flag, value in (("--source", args.source), ("--granularity", args.granularity)):
            if value:
                raise InputError(f"{flag} applies to --against bill, not --against estimates")
    elif args.tolerance is not None:
        raise InputError(
            "--tolerance applies to --against estimates; the bill uses [reconcile] drift_pct"
        )
    settings = settings_from(args)
    # --against bill stores the bill's lines; comparing with estimates only reads.
    store = store_from(args, settings, read_only=args.against == "estimates", must_exist=True)
    now = system_clock()
    if args.against == "estimates":
        return _reconcile_estimates(args, settings, store, now)
    return _reconcile_bill(args, settings, store, now)


def _reconcile_estimates(
    args: argparse.Namespace, settings: Settings, store: Store, now: datetime
) -> int:
    from tracker.reconcile.rules import team_rollup
    from tracker.reconcile.service import estimate_tolerance, reconcile_estimates

    if args.tolerance is not None and args.tolerance < 0:
        raise InputError(f"--tolerance {args.tolerance}: expected a percentage >= 0")
    tolerance = args.tolerance if args.tolerance is not None else estimate_tolerance(settings)
    rows = reconcile_estimates(
        settings, store, now, since=args.since, until=args.until, team=args.team,
        tolerance_pct=tolerance,
    )  # fmt: skip
    shown = team_rollup(rows, tolerance) if args.by == "team" else rows
    columns = ESTIMATE_TEAM_COLUMNS if args.by == "team" else ESTIMATE_JOB_COLUMNS
    notes = [f"{r.job}: {r.resolved.note}" for r in rows if r.resolved.note]
    empty = "No finished jobs in this window."
    write_output(render(shown, columns, args.format, notes, empty), args.output)
    _notes_to_stderr(notes, args.format)
    return 0


def _reconcile_bill(
    args: argparse.Namespace, settings: Settings, store: Store, now: datetime
) -> int:
    from tracker.reconcile.service import reconcile_bill

    report = reconcile_bill(
        settings, store, now, source=args.source, since=args.since, until=args.until,
        granularity=args.granularity, team=args.team, by_job=args.by == "job",
    )  # fmt: skip
    shown = report.job_rows if args.by == "job" else report.rows
    columns = BILL_JOB_TABLE if args.by == "job" else BILL_TEAM_TABLE
    head = (
        f"Bill source {report.source}, {report.since} to {report.until}, {report.granularity}; "
        f"{len(report.lines)} billed line(s) stored."
    )
    notes = [head, *report.notes]
    empty = "No tracker cost and no billed SageMaker training cost in this window."
    write_output(render(shown, columns, args.format, notes, empty), args.output)
    _notes_to_stderr(notes, args.format)
    return 0


def _notes_to_stderr(notes: Sequence[str], fmt: str) -> None:
    """Machine formats keep standard output clean: their notes go to standard error."""
    if fmt != "table":
        for note in notes:
            print(f"note: {note}", file=sys.stderr)


# -- export -----------------------------------------------------------------------------------
def cmd_export(args: argparse.Namespace) -> int:
    from tracker.report.export import export, output_kind

    if args.since and args.until and args.since > args.until:
        raise InputError(f"--since {args.since} is after --until {args.until}")
    check_file_name("--output", args.output)
    output_kind(args.output, args.format)  # a bad file name fails before the database opens
    settings = settings_from(args)
    store = store_from(args, settings, read_only=True)
    count = export(
        store, args.format, args.output, since=args.since, until=args.until,
        filters=filters_from(args),
        price_book=settings.price_book() if args.format == "focus" else None,
    )  # fmt: skip
    what = "FOCUS 1.2 rows" if args.format == "focus" else "jobs"
    print(f"Wrote {count} {what} to {printable(args.output)}")
    return 0


# -- rendering ---------------------------------------------------------------------------------
class ResultRow(Protocol):
    """A row of ``estimate``/``reconcile`` results (reconcile.rules rows and roll-ups)."""

    def to_dict(self) -> dict[str, Any]: ...

    def exact(self) -> dict[str, Decimal]: ...


def render(
    items: Sequence[ResultRow], columns: Sequence[str], fmt: str, notes: Sequence[str], empty: str
) -> str:
    """Row objects (with ``to_dict`` and ``exact``) as a table with a TOTAL row and the notes,
    or as CSV or JSON with every key."""
    from tracker.report.render import json_text
    from tracker.report.render import render as render_table

    if fmt not in OUTPUT_FORMATS:
        raise InputError(f"--format {fmt!r}: expected one of {', '.join(OUTPUT_FORMATS)}")
    if fmt == "json":
        # Each row keeps exactly its own keys (a bill row has ``job``/``match`` only when matched).
        return json_text([item.to_dict() for item in items])
    return str(render_table(result_table(items, columns, notes, empty), fmt))


def result_table(
    items: Sequence[ResultRow], columns: Sequence[str], notes: Sequence[str], empty: str
) -> Table:
    """The rows of ``estimate``/``reconcile`` as a Table: ``columns`` for people, every key
    for CSV and JSON; a missing value reads ``-``."""
    from tracker.report.table import Table, count, infer_all

    rows = [item.to_dict() for item in items]
    counted = {key: count(key) for key in COUNTED}
    return Table(
        title="",
        columns=infer_all(columns, **counted),
        rows=rows,
        total=total_row(items, columns) if rows else None,
        notes=list(notes),
        record_columns=infer_all(list(rows[0]) if rows else columns, **counted),
        blank="-",
        empty=empty,
        titled=False,
    )


def total_row(items: Sequence[ResultRow], columns: Sequence[str]) -> dict[str, Any]:
    """Counts summed, money summed exactly and rounded to cents once."""
    from tracker.records import cents

    total: dict[str, Any] = {columns[0]: "TOTAL"}
    exact = [item.exact() for item in items]
    rows = [item.to_dict() for item in items]
    for column in columns[1:]:
        if column in COUNTED:
            total[column] = sum(int(r.get(column) or 0) for r in rows)
        elif any(column in e for e in exact):
            total[column] = cents(sum((e[column] for e in exact if column in e), Decimal(0)))
    return total
