"""Publishing the monthly showback: HTML and CSV of the month just ended, to a folder or S3.

It reports the month before ``now``, with the months before it for the month-over-month
change, and writes ``showback-YYYY-MM.html`` (self-contained, inline SVG chart) and
``showback-YYYY-MM.csv``. Writing again for the same month rewrites the same two files, so a
retry is harmless. Where, by what and over how many months come from ``[reports]``
(:class:`tracker.settings.ReportsSettings`); the scheduled job is :func:`tracker.daemon.tasks.showback`.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path

from tracker.errors import TrackerError
from tracker.report.render import render as render_report
from tracker.report.views import ViewRequest, build, month_start
from tracker.settings import Settings
from tracker.store.database import Store


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


def write_showback(settings: Settings, store: Store, now: datetime) -> ShowbackResult:
    """Build the showback of the month before ``now`` and write its HTML and CSV."""
    options = settings.reports
    first, last = reported_month(now)
    request = ViewRequest(
        "showback",
        since=month_start(first, options.showback_months - 1),
        until=last,
        rows_by=options.showback_by,
        cols_by="month",
        shared=settings.allocation.shared,
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
