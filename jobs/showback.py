"""Scheduled job ``showback``: the monthly showback, as HTML and CSV, to a folder or S3 prefix.

``python -m jobs.showback`` runs it once, as ``tracker run showback`` does; the body is
:func:`tracker.daemon.tasks.showback`.
"""

from __future__ import annotations

from jobs import main
from tracker.daemon.tasks import showback as run
from tracker.schedule import DEFAULT_SCHEDULE

__all__ = ["SCHEDULE", "run"]

SCHEDULE = DEFAULT_SCHEDULE["showback"]  # 06:00 UTC on the first day of each month

if __name__ == "__main__":
    raise SystemExit(main(["run", "showback"]))
