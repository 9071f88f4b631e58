"""Scheduled job ``reconcile``: the tracker's costs against the AWS bill.

The reconciliation itself belongs to the estimates-and-reconciliation feature: this job
calls :data:`RECONCILE_ENTRY` (``tracker.reconcile.service.reconcile_bill``), which fetches
the bill from the ``[reconcile] source`` (Cost Explorer by default) for last month and this
month, stores its lines and compares them with the tracker per team and period. Drift in a
settled period becomes a ``bill-drift`` alert on the next alerts run (the daemon runs alerts
right after this job when alerts follow collection).
"""

from __future__ import annotations

import importlib
from typing import Any

from jobs import JobContext, JobOutcome

RECONCILE_ENTRY = "tracker.reconcile.service:reconcile_bill"


def entry_point() -> Any:
    """The function RECONCILE_ENTRY names, or None when that feature is not installed."""
    module_name, _, function = RECONCILE_ENTRY.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name and module_name.startswith(exc.name):
            return None
        raise
    return getattr(module, function, None)


def run(ctx: JobContext) -> JobOutcome:
    """Fetch and compare the bill once; ``failed`` if the feature is missing."""
    function = entry_point()
    if function is None:
        return JobOutcome(
            "failed", f"bill reconciliation is not available ({RECONCILE_ENTRY} not found)"
        )
    report = function(ctx.settings, ctx.store, ctx.clock())
    drift = len(report.findings)
    detail = (
        f"{report.source} {report.since}..{report.until}: {report.stored} bill lines stored, "
        f"{len(report.rows)} team-period rows, {drift} drift finding(s)"
    )
    if report.notes:
        detail += "; " + "; ".join(report.notes[:3])
    return JobOutcome("ok", detail)
