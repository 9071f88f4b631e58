"""Scheduled job ``reconcile``: the tracker's costs against the AWS bill.

:func:`tracker.reconcile.service.reconcile_bill` fetches the bill from the ``[reconcile]
source`` (Cost Explorer by default) for last month and this month, stores its lines and
compares them with the tracker per team and period. Drift in a settled period becomes a
``bill-drift`` alert on the next alerts run (the daemon runs alerts right after this job when
alerts follow collection).
"""

from __future__ import annotations

from jobs.context import JobContext, JobOutcome
from tracker.reconcile.service import reconcile_bill


def run(ctx: JobContext) -> JobOutcome:
    """Fetch and compare the bill once."""
    report = reconcile_bill(ctx.settings, ctx.store, ctx.clock())
    drift = len(report.findings)
    detail = (
        f"{report.source} {report.since}..{report.until}: {report.stored} bill lines stored, "
        f"{len(report.rows)} team-period rows, {drift} drift finding(s)"
    )
    if report.notes:
        detail += "; " + "; ".join(report.notes[:3])
    return JobOutcome("ok", detail)
