"""Scheduled job: the monthly showback, as HTML and CSV, to a folder or an S3 prefix.

Run it on the first day of each month (``SCHEDULE``, UTC): it reports the month that has
just ended, with the months before it for the month-over-month change, and writes
``showback-YYYY-MM.html`` (self-contained, inline SVG chart) and ``showback-YYYY-MM.csv``.
Running it again for the same month rewrites the same two files, so a retry is harmless.

``[reports]`` in the config file (all optional)::

    [reports]
    showback_destination = "reports/showback"   # a folder (relative to the config file) or s3://bucket/prefix
    showback_by = "team"                         # rows: team, project, user, account, region, ...
    showback_months = 3                          # months shown, the reported month last (2..24)

Entry points: ``run(settings, store, now)`` for a scheduler or a script; ``run(ctx)`` with
the daemon's JobContext returns a JobOutcome; ``python -m jobs.showback`` runs it once.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

SCHEDULE = "0 6 1 * *"  # 06:00 UTC on the first day of each month
DEFAULT_DESTINATION = "reports/showback"
DEFAULT_MONTHS = 3
ROW_DIMENSIONS = ("team", "project", "user", "instance_type", "account", "region", "status")
KEYS = {"showback_destination", "showback_by", "showback_months"}


@dataclass(frozen=True)
class ReportsSettings:
    """The parsed ``[reports]`` section."""

    showback_destination: str = DEFAULT_DESTINATION
    showback_by: str = "team"
    showback_months: int = DEFAULT_MONTHS

    @property
    def s3(self) -> bool:
        return self.showback_destination.startswith("s3://")


def parse_reports_section(value: Any, ctx: Any) -> ReportsSettings:
    """Validate ``[reports]``; problems go to ``ctx.problem``; relative folders resolve against the config."""
    base = getattr(ctx, "base", Path.cwd())
    default = ReportsSettings(showback_destination=str(Path(base) / DEFAULT_DESTINATION))
    if value is None:
        return default
    if not isinstance(value, dict):
        ctx.problem("reports", f"must be a table ([reports]), got {type(value).__name__}")
        return default
    for key in value:
        if key not in KEYS:
            ctx.problem(f"reports.{key}", f"unknown key; expected one of {', '.join(sorted(KEYS))}")
    destination = value.get("showback_destination", DEFAULT_DESTINATION)
    if not isinstance(destination, str) or not destination.strip():
        ctx.problem(
            "reports.showback_destination",
            f"must be a folder or s3://bucket/prefix, got {destination!r}",
        )
        destination = DEFAULT_DESTINATION
    elif destination.startswith("s3://"):
        if not destination[5:].split("/", 1)[0]:
            ctx.problem(
                "reports.showback_destination",
                f"{destination!r} has no bucket; expected s3://bucket/prefix",
            )
    else:
        destination = str(ctx.resolve(destination))
    by = value.get("showback_by", "team")
    if by not in ROW_DIMENSIONS:
        ctx.problem(
            "reports.showback_by", f"must be one of {', '.join(ROW_DIMENSIONS)}, got {by!r}"
        )
        by = "team"
    months = value.get("showback_months", DEFAULT_MONTHS)
    if isinstance(months, bool) or not isinstance(months, int) or not 2 <= months <= 24:
        ctx.problem(
            "reports.showback_months", f"must be a whole number from 2 to 24, got {months!r}"
        )
        months = DEFAULT_MONTHS
    return ReportsSettings(destination, by, months)


@dataclass(frozen=True)
class ShowbackResult:
    """What one run wrote."""

    month: str
    written: tuple[str, ...]
    rows: int

    def summary(self) -> str:
        return f"showback {self.month}: {self.rows} rows to " + ", ".join(self.written)


def reported_month(now: datetime) -> tuple[date, date]:
    """The first and last day of the month before ``now``'s month (the month just ended)."""
    first_this_month = now.date().replace(day=1)
    last = first_this_month - timedelta(days=1)
    return last.replace(day=1), last


def write_showback(settings: Any, store: Any, now: datetime) -> ShowbackResult:
    """Build the showback of the month before ``now`` and write its HTML and CSV."""
    from tracker.report.render import render as render_report
    from tracker.report.views import ViewRequest, build, month_start

    options: ReportsSettings = settings.feature("reports")
    first, last = reported_month(now)
    request = ViewRequest(
        "showback",
        since=month_start(first, options.showback_months - 1),
        until=last,
        rows_by=options.showback_by,
        cols_by="month",
    )
    report = build(store, request, now)
    report.title = f"Showback {first:%B %Y}: spend by {options.showback_by} and month"
    month = f"{first:%Y-%m}"
    files = {
        f"showback-{month}.html": (render_report(report, "html"), "text/html; charset=utf-8"),
        f"showback-{month}.csv": (render_report(report, "csv"), "text/csv; charset=utf-8"),
    }
    if options.s3:
        written = _to_s3(options.showback_destination, files)
    else:
        written = _to_folder(Path(options.showback_destination), files)
    return ShowbackResult(month, tuple(written), len(report.rows))


def _to_folder(folder: Path, files: dict[str, tuple[str, str]]) -> list[str]:
    from tracker.errors import TrackerError

    written = []
    try:
        folder.mkdir(parents=True, exist_ok=True)
        for name, (text, _) in files.items():
            # Write beside the target and rename, so a reader never sees half a report.
            handle, temp = tempfile.mkstemp(dir=folder, prefix=f".{name}.")
            with os.fdopen(handle, "w", encoding="utf-8") as out:
                out.write(text)
            os.replace(temp, folder / name)
            written.append(str(folder / name))
    except OSError as exc:
        raise TrackerError(
            f"[reports] showback_destination {folder}: cannot write ({exc.strerror})"
        ) from None
    return written


def _to_s3(destination: str, files: dict[str, tuple[str, str]]) -> list[str]:
    from tracker.aws.report_upload import put_report, s3_client

    bucket, _, prefix = destination[5:].partition("/")
    prefix = prefix.strip("/")
    client = s3_client()
    return [
        put_report(
            client, bucket, f"{prefix}/{name}" if prefix else name, text.encode("utf-8"), kind
        )
        for name, (text, kind) in files.items()
    ]


def run(settings: Any, store: Any = None, now: datetime | None = None) -> Any:
    """``run(settings, store, now)`` -> ShowbackResult; ``run(ctx)`` (a JobContext) -> JobOutcome."""
    if store is None and now is None and hasattr(settings, "store") and hasattr(settings, "clock"):
        from jobs import JobOutcome

        ctx = settings
        result = write_showback(ctx.settings, ctx.store, ctx.clock())
        return JobOutcome("ok", result.summary())
    if store is None or now is None:
        raise TypeError("run(settings, store, now) needs all three (or one JobContext)")
    return write_showback(settings, store, now)


def main(argv: list[str] | None = None) -> int:
    """``python -m jobs.showback [--config PATH] [--db URL]``: write last month's showback once."""
    import argparse
    import sys

    from tracker.cli.main import settings_from, store_from
    from tracker.clock import system_clock
    from tracker.errors import TrackerError

    parser = argparse.ArgumentParser(prog="python -m jobs.showback", description=main.__doc__)
    parser.add_argument(
        "--config", help="config file (default $TRACKER_CONFIG, else config/tracker.toml)"
    )
    parser.add_argument("--db", help="database URL, overrides [database] url")
    args = parser.parse_args(argv)
    try:
        settings = settings_from(args)
        result = run(settings, store_from(args, settings), system_clock())
    except TrackerError as exc:
        print(f"Error: {exc}", file=sys.stderr)
        return exc.exit_code
    print(result.summary())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
