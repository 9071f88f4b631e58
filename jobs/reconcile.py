"""Scheduled job ``reconcile``: the tracker's costs against the AWS bill.

``python -m jobs.reconcile`` runs it once, as ``tracker run reconcile`` does; the body is
:func:`tracker.daemon.tasks.reconcile`.
"""

from __future__ import annotations

from jobs import main
from tracker.daemon.tasks import reconcile as run

__all__ = ["run"]

if __name__ == "__main__":
    raise SystemExit(main(["run", "reconcile"]))
