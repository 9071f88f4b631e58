"""Scheduled job ``reconcile``: the tracker's costs against the AWS bill (Cost Explorer).

The reconciliation itself belongs to the estimates-and-reconciliation feature
(``tracker/reconcile.py``); this job only calls it, through :data:`RECONCILE_ENTRY`, a
``module:function`` taking ``(settings, store, now)`` and returning an object with
``status`` (ok | partial | failed) and ``detail`` (one line), or a (status, detail) pair.
"""

from __future__ import annotations

import importlib
from typing import Any

from jobs import JobContext, JobOutcome

RECONCILE_ENTRY = "tracker.reconcile:scheduled_reconcile"


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
    """Reconcile the settled billing periods; ``failed`` if the feature is missing."""
    function = entry_point()
    if function is None:
        return JobOutcome(
            "failed", f"bill reconciliation is not available ({RECONCILE_ENTRY} not found)"
        )
    result = function(ctx.settings, ctx.store, ctx.clock())
    if isinstance(result, tuple):
        status, detail = result
    else:
        status, detail = getattr(result, "status", "ok"), getattr(result, "detail", str(result))
    return JobOutcome(str(status), str(detail))
