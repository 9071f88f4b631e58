"""Scheduled job ``showback``: the monthly showback, as HTML and CSV, to a folder or S3 prefix.

Runs on the first day of each month (``SCHEDULE``, UTC) and publishes the month that has just
ended with :func:`tracker.report.publish.write_showback`; ``[reports]`` in the config file
says where (docs/reports.md). Run it once with ``tracker run showback``.
"""

from __future__ import annotations

from jobs.context import JobContext, JobOutcome
from tracker.report.publish import write_showback
from tracker.schedule import DEFAULT_SCHEDULE

SCHEDULE = DEFAULT_SCHEDULE["showback"]  # 06:00 UTC on the first day of each month


def run(ctx: JobContext) -> JobOutcome:
    """Write last month's showback once."""
    result = write_showback(ctx.settings, ctx.store, ctx.clock())
    return JobOutcome("ok", result.summary())
