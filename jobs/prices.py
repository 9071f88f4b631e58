"""Scheduled job ``prices``: refresh training rates from the AWS Price List API, then recost.

``python -m jobs.prices`` runs it once, as ``tracker run prices`` does; the body is
:func:`tracker.daemon.tasks.prices`.
"""

from __future__ import annotations

from jobs import main
from tracker.daemon.tasks import prices as run

__all__ = ["run"]

if __name__ == "__main__":
    raise SystemExit(main(["run", "prices"]))
