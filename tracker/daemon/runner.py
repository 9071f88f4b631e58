"""Run one scheduled job once: record it in ``job_runs`` (start, finish, result, duration)
for ``tracker status``, log it, and never raise: a failing job is reported and retried on its
next tick, it never takes the daemon down.
"""

from __future__ import annotations

import logging
import os
import socket
import time
import traceback
from collections.abc import Callable
from typing import TypeVar

from tracker.daemon.tasks import JobContext, JobOutcome, task
from tracker.errors import TrackerError
from tracker.store.ops import JobRunLog

log = logging.getLogger("tracker.jobs")
T = TypeVar("T")


def owner_id() -> str:
    """``host:pid``: who runs a job or holds the daemon lock."""
    return f"{socket.gethostname()}:{os.getpid()}"


def run_job(
    name: str, ctx: JobContext, function: Callable[[JobContext], JobOutcome] | None = None
) -> JobOutcome:
    """Run one job once, recording and logging it; exceptions become a ``failed`` outcome."""
    runs = JobRunLog(ctx.store)
    began = time.monotonic()
    run_id = _start(runs, name, ctx)
    log.info("job %s started", name, extra={"job": name, "trigger": ctx.trigger})
    try:
        outcome = (function or task(name))(ctx)
    except Exception as exc:  # noqa: BLE001 - reported, recorded, retried next tick
        outcome = JobOutcome("failed", _describe(exc))
        log.error("job %s failed: %s", name, outcome.detail, extra={"job": name},
                  exc_info=not _is_tracker_error(exc))  # fmt: skip
    seconds = time.monotonic() - began
    _finish(runs, run_id, outcome, ctx, seconds)
    level = logging.INFO if outcome.ok else logging.WARNING
    log.log(level, "job %s %s in %.1f s: %s", name, outcome.status, seconds, outcome.detail,
            extra={"job": name, "status": outcome.status, "seconds": round(seconds, 3)})  # fmt: skip
    return outcome


def record_run(
    name: str, ctx: JobContext, body: Callable[[], T], outcome: Callable[[T], JobOutcome]
) -> T:
    """Run ``body`` once as a run of job ``name``, recorded in ``job_runs`` as :func:`run_job`
    records one, and return its result. For commands that do a job's work themselves
    (``tracker collect``), so that ``tracker status`` sees their runs too; unlike
    :func:`run_job` an exception propagates (recorded as ``failed`` first), so the command
    maps it to its exit code. A run that cannot even be recorded (a read-only database) fails
    before ``body`` with that error, which ``body`` would meet on its first write anyway."""
    runs = JobRunLog(ctx.store)
    began = time.monotonic()
    run_id = runs.start(name, ctx.trigger, ctx.owner or owner_id(), ctx.wall())
    try:
        result = body()
    except BaseException as exc:
        failed = JobOutcome("failed", _describe(exc))
        _finish(runs, run_id, failed, ctx, time.monotonic() - began)
        raise
    _finish(runs, run_id, outcome(result), ctx, time.monotonic() - began)
    return result


def _start(runs: JobRunLog, name: str, ctx: JobContext) -> int | None:
    try:
        return runs.start(name, ctx.trigger, ctx.owner or owner_id(), ctx.wall())
    except Exception as exc:  # noqa: BLE001 - the job may still be able to run
        log.error("job %s: cannot record its start: %s", name, _describe(exc))
        return None


def _finish(
    runs: JobRunLog, run_id: int | None, outcome: JobOutcome, ctx: JobContext, seconds: float
) -> None:
    if run_id is None:
        return
    try:
        runs.finish(run_id, outcome.status, outcome.detail, ctx.wall(), seconds)
    except Exception as exc:  # noqa: BLE001
        log.error("cannot record the end of job run %s: %s", run_id, _describe(exc))


def _is_tracker_error(exc: BaseException) -> bool:
    return isinstance(exc, TrackerError)


def _describe(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    head = text[0] if text else ""
    if _is_tracker_error(exc):
        return head or type(exc).__name__
    where = traceback.extract_tb(exc.__traceback__)[-1:] if exc.__traceback__ else []
    place = f" at {where[0].filename.rsplit('/', 1)[-1]}:{where[0].lineno}" if where else ""
    return f"{type(exc).__name__}: {head}{place}"
