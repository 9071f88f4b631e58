"""``tracker daemon``: APScheduler 3.x (blocking scheduler) running the scheduled jobs.

- Schedules come from ``[schedule]`` (cron expressions, UTC; see :mod:`tracker.schedule`):
  collect every 15 minutes, alerts right after each collection (and after each bill
  reconciliation, so a drift finding goes out at once), bill reconciliation daily, price
  refresh weekly, the monthly showback on the first day of each month.
- One instance of each job at a time (``max_instances=1``), missed runs coalesced into one,
  run late up to ``misfire_grace_seconds``.
- One daemon per database: a lock row (``daemon_lock``) with a heartbeat. A second daemon
  refuses to start; a holder silent for ``stale_after_seconds`` is presumed dead.
- SIGTERM or SIGINT: no new job starts, the running one finishes, the daemon exits 0.
- A failing job is logged and recorded; it runs again on its next tick.
- With ``[events] queues``, the event listener (:mod:`tracker.collect.listen`) runs in a
  thread of its own beside the schedule, and the collect poll becomes an hourly safety net
  unless ``[schedule] collect`` says otherwise (docs/events.md). A listener that fails is
  logged and started again after ``LISTENER_RESTART_SECONDS``.
- ``[daemon] metrics_port`` (0: off) serves Prometheus metrics (:mod:`tracker.report.metrics`)
  on ``metrics_host`` for as long as the daemon holds its lock.
"""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from types import FrameType
from typing import TYPE_CHECKING, Any

from prometheus_client import start_http_server

from tracker.clock import wall_clock
from tracker.daemon.runner import owner_id, run_job
from tracker.daemon.tasks import JobContext, JobOutcome, task
from tracker.errors import TrackerError
from tracker.report.metrics import metrics_registry
from tracker.schedule import JOB_NAMES, is_after_collect, make_trigger
from tracker.settings import Settings
from tracker.store.database import Store
from tracker.store.ops import DaemonLockRow

if TYPE_CHECKING:
    from wsgiref.simple_server import WSGIServer

    from apscheduler.schedulers.blocking import BlockingScheduler

log = logging.getLogger("tracker.daemon")
LISTENER_RESTART_SECONDS = 5.0


# -- the daemon --------------------------------------------------------------------------------------
class DaemonLockedError(TrackerError):
    """Another daemon holds this database's lock."""


class Daemon:
    """Runs the scheduled jobs until SIGTERM/SIGINT; one per database.

    ``functions`` replaces job functions (tests); ``clock`` is the business clock handed to
    jobs, ``wall`` the real time used for triggers, heartbeats and run history.
    """

    def __init__(
        self,
        settings: Settings,
        store: Store,
        *,
        clock: Callable[[], datetime],
        wall: Callable[[], datetime] = wall_clock,
        functions: Mapping[str, Callable[[JobContext], JobOutcome]] | None = None,
        owner: str | None = None,
        notes: Sequence[str] = (),
    ):
        self.settings = settings
        self.store = store
        self.clock = clock
        self.wall = wall
        self.functions = dict(functions or {})
        self.owner = owner or f"{owner_id()}:{id(self):x}"
        self.notes = tuple(notes)  # logged once the lock is ours (e.g. the schema upgrade)
        self.schedule = settings.schedule
        self.options = settings.daemon
        self.scheduler: BlockingScheduler | None = None
        self._stopping = threading.Event()
        self._stopped = threading.Event()
        self._shutdown_thread: threading.Thread | None = None
        self._lost_lock = False

    # -- lifecycle ---------------------------------------------------------------------------
    def run(self, *, install_signals: bool = True) -> int:
        """Take the lock, schedule the jobs, block until stopped; returns the exit code."""
        lock = DaemonLockRow(
            self.store, self.wall, timedelta(seconds=self.options.stale_after_seconds)
        )
        holder = lock.acquire(self.owner)
        if holder is not None:
            age = (self.wall() - holder.heartbeat_at).total_seconds()
            wait = max(self.options.stale_after_seconds - age, 0)
            raise DaemonLockedError(
                f"another tracker daemon ({holder.owner}) is running on this database (heartbeat "
                f"{age:.0f} s ago); stop it first, or if it died, wait {wait:.0f} s for its lock to expire"
            )
        heartbeat = threading.Thread(
            target=self._heartbeat, args=(lock,), name="tracker-heartbeat", daemon=True
        )
        listener = None
        events_thread: threading.Thread | None = None
        try:
            listener = self._start_metrics()
            self.scheduler = self._build_scheduler()
            if install_signals:
                self._install_signals()
            heartbeat.start()
            events_thread = self._start_listener()
            log.info(
                "daemon started (%s) on %s: %s",
                self.owner,
                _safe_url(self.store),
                self._describe_schedule(),
            )
            for note in self.notes:
                log.info(note)
            if not self._stopping.is_set():
                self.scheduler.start()  # blocks until shutdown
        finally:
            self._stopping.set()  # the listener returns after its current long poll
            # The scheduler's loop can return as soon as shutdown() marks it stopped, before
            # shutdown() has waited for the running job: wait for that job here, before the
            # lock is released, so a stop never leaves a job running behind a free lock.
            if self._shutdown_thread is not None:
                self._shutdown_thread.join()
            self._stopped.set()
            if events_thread is not None:
                events_thread.join(self.settings.events.wait_seconds + 60)
            if listener is not None:
                self._stop_metrics(*listener)
            lock.release(self.owner)
        log.info("daemon stopped")
        return 1 if self._lost_lock else 0

    def request_stop(self, reason: str = "stop requested") -> None:
        """Stop taking new jobs, let the running one finish, then return from ``run``."""
        if self._stopping.is_set():
            return
        self._stopping.set()
        log.info("daemon stopping (%s): waiting for the running job to finish", reason)
        self._shutdown_thread = threading.Thread(target=self._shutdown, name="tracker-shutdown")
        self._shutdown_thread.start()

    def _shutdown(self) -> None:
        from apscheduler.schedulers import SchedulerNotRunningError

        if self.scheduler is None:
            return
        try:
            self.scheduler.pause()  # the main loop submits nothing more
            self.scheduler.shutdown(wait=True)  # waits for the running job
        except SchedulerNotRunningError:
            pass

    def _install_signals(self) -> None:
        def handler(signum: int, _frame: FrameType | None) -> None:
            self.request_stop(signal.Signals(signum).name)

        signal.signal(signal.SIGTERM, handler)
        signal.signal(signal.SIGINT, handler)

    def _heartbeat(self, lock: DaemonLockRow) -> None:
        while not self._stopped.wait(self.options.heartbeat_seconds):
            try:
                still_ours = lock.heartbeat(self.owner)
            except Exception as exc:  # noqa: BLE001 - a database blip: try again next beat
                log.warning("daemon heartbeat failed: %s", exc)
                continue
            if not still_ours:
                log.error("daemon lock was taken over by another daemon; stopping")
                self._lost_lock = True
                self.request_stop("lock lost")
                return

    # -- the event listener ----------------------------------------------------------------------
    def _start_listener(self) -> threading.Thread | None:
        """The listener thread when ``[events] queues`` are configured, else None."""
        if not self.settings.events.queues:
            return None
        thread = threading.Thread(target=self._listen, name="tracker-listener", daemon=True)
        thread.start()
        log.info("event listener started on %d queue(s)", len(self.settings.events.queues))
        return thread

    def _listen(self) -> None:
        from tracker.collect.listen import Listener

        context = JobContext(self.settings, self.store, self.clock, self.wall, "daemon", self.owner)

        def alerts() -> str:
            outcome = run_job("alerts", context, self.functions.get("alerts") or task("alerts"))
            return f"{outcome.status}: {outcome.detail}"

        while not self._stopping.is_set():
            try:
                listener = Listener(
                    self.settings, self.store, self.settings.price_book(), clock=self.clock,
                    wall=self.wall, alerts=alerts, trigger="daemon", owner=self.owner,
                )  # fmt: skip
                listener.run(self._stopping)
            except Exception as exc:  # noqa: BLE001 - logged; the listener starts again
                log.error("event listener failed: %s; restarting in %.0f s", exc,
                          LISTENER_RESTART_SECONDS, exc_info=not isinstance(exc, TrackerError))  # fmt: skip
                self._stopping.wait(LISTENER_RESTART_SECONDS)

    # -- metrics -------------------------------------------------------------------------------
    def _start_metrics(self) -> tuple[WSGIServer, threading.Thread] | None:
        """The metrics listener when ``[daemon] metrics_port`` is set; it reads the store at
        each scrape, so it shows the same numbers as ``tracker serve``'s /metrics."""
        port, host = self.options.metrics_port, self.options.metrics_host
        if not port:
            return None
        registry = metrics_registry(self.store, self.settings, self.clock)
        try:
            server, thread = start_http_server(port, addr=host, registry=registry)
        except OSError as exc:
            raise TrackerError(
                f"daemon.metrics_port: cannot listen on {host}:{port} ({exc.strerror or exc}); "
                "choose a free port, or metrics_port = 0 for no metrics listener"
            ) from None
        if host not in ("127.0.0.1", "::1", "localhost"):
            log.warning(
                "metrics listener on %s, not a loopback address: anyone who can reach port %s "
                "sees every team's spend",
                host,
                port,
            )
        log.info("metrics on http://%s:%s/metrics", host, port)
        return server, thread

    def _stop_metrics(self, server: WSGIServer, thread: threading.Thread) -> None:
        server.shutdown()
        server.server_close()
        thread.join(5)

    # -- scheduling ----------------------------------------------------------------------------
    def _build_scheduler(self) -> BlockingScheduler:
        from apscheduler.executors.pool import ThreadPoolExecutor
        from apscheduler.schedulers.blocking import BlockingScheduler

        scheduler = BlockingScheduler(
            timezone=UTC,
            executors={"default": ThreadPoolExecutor(max_workers=4)},
            job_defaults={
                "coalesce": True,
                "max_instances": 1,
                "misfire_grace_time": self.schedule.misfire_grace_seconds,
            },
        )
        chained = is_after_collect(self.schedule.alerts)
        for job in JOB_NAMES:
            trigger = make_trigger(
                self.schedule.expression(job), allow_after_collect=job == "alerts"
            )
            if trigger is None:
                continue
            follow = ("alerts",) if job in ("collect", "reconcile") and chained else ()
            kwargs: dict[str, Any] = {}
            if job == "collect" and self.options.collect_on_start:
                kwargs["next_run_time"] = self.wall()
            scheduler.add_job(self._tick, trigger, args=(job, follow), id=job, name=job, **kwargs)
        return scheduler

    def _tick(self, job: str, follow: tuple[str, ...] = ()) -> None:
        """One scheduled run of ``job`` (and the jobs chained after it); never raises."""
        for name in (job, *follow):
            if self._stopping.is_set() and name != job:
                break
            context = JobContext(
                self.settings, self.store, self.clock, self.wall, "daemon", self.owner
            )
            run_job(name, context, self.functions.get(name) or task(name))

    def _describe_schedule(self) -> str:
        parts = []
        for job in JOB_NAMES:
            parts.append(f"{job}={self.schedule.expression(job)}")
        return ", ".join(parts)


def _safe_url(store: Store) -> str:
    """The database URL without its password, for the start-up line."""
    return store.engine.url.render_as_string(hide_password=True)
