"""Scheduled job ``remeasure``: S3 artifact bytes of recently ended jobs, measured again.

``python -m jobs.remeasure`` runs it once, as ``tracker run remeasure`` does; the body is
:func:`tracker.daemon.tasks.remeasure`.
"""

from __future__ import annotations

from jobs import main
from tracker.daemon.tasks import remeasure as run
from tracker.schedule import DEFAULT_SCHEDULE

__all__ = ["SCHEDULE", "run"]

SCHEDULE = DEFAULT_SCHEDULE["remeasure"]  # 04:00 UTC every day

if __name__ == "__main__":
    raise SystemExit(main(["run", "remeasure"]))
