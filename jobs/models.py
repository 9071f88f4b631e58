"""Scheduled job ``models``: model packages and models, and the jobs that produced them.

``python -m jobs.models`` runs it once, as ``tracker run models`` does; the body is
:func:`tracker.daemon.tasks.models`.
"""

from __future__ import annotations

from jobs import main
from tracker.daemon.tasks import models as run
from tracker.schedule import DEFAULT_SCHEDULE

__all__ = ["SCHEDULE", "run"]

SCHEDULE = DEFAULT_SCHEDULE["models"]  # every hour, on the hour

if __name__ == "__main__":
    raise SystemExit(main(["run", "models"]))
