"""Scheduled job ``collect``: every configured source and region, incrementally.

``python -m jobs.collect`` runs it once, as ``tracker run collect`` does; the body is
:func:`tracker.daemon.tasks.collect`.
"""

from __future__ import annotations

from jobs import main
from tracker.daemon.tasks import collect as run

__all__ = ["run"]

if __name__ == "__main__":
    raise SystemExit(main(["run", "collect"]))
