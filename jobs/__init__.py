"""Scheduled entry points for external schedulers: one module per job, and the daemon.

The jobs themselves live in the library (:mod:`tracker.daemon`); each module here is the
thin entry point a cron line or a Kubernetes CronJob runs, the same as ``tracker run JOB``
(``python -m jobs.collect``), and ``python -m jobs.scheduler`` is ``tracker daemon``. Global
options (``--config``, ``--db``, ``--log-level``) pass through.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from tracker.cli.main import main as tracker_main
from tracker.daemon.runner import owner_id, run_job
from tracker.daemon.tasks import TASKS as JOBS
from tracker.daemon.tasks import JobContext, JobOutcome
from tracker.daemon.tasks import task as job_function

__all__ = ["JOBS", "JobContext", "JobOutcome", "job_function", "owner_id", "run_job", "main"]


def main(command: Sequence[str], argv: Sequence[str] | None = None) -> int:
    """``tracker [options] COMMAND``: the options from ``argv`` (default the command line)."""
    options = list(sys.argv[1:] if argv is None else argv)
    return tracker_main([*options, *command])
