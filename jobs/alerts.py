"""Scheduled job ``alerts``: evaluate budgets and job rules, deliver what is new.

``python -m jobs.alerts`` runs it once, as ``tracker run alerts`` does; the body is
:func:`tracker.daemon.tasks.alerts`.
"""

from __future__ import annotations

from jobs import main
from tracker.daemon.tasks import alerts as run

__all__ = ["run"]

if __name__ == "__main__":
    raise SystemExit(main(["run", "alerts"]))
