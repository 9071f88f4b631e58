"""The daemon: ``python -m jobs.scheduler`` is ``tracker daemon`` (schedules in ``[schedule]``).

The daemon itself is :class:`tracker.daemon.scheduler.Daemon`.
"""

from __future__ import annotations

from jobs import main
from tracker.daemon.scheduler import Daemon, DaemonLockedError

__all__ = ["Daemon", "DaemonLockedError"]

if __name__ == "__main__":
    raise SystemExit(main(["daemon"]))
