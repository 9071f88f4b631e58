"""``tracker daemon``: APScheduler 3.x (blocking scheduler) running the jobs in ``jobs/``.

- Schedules come from ``[schedule]`` (cron expressions, UTC): collect every 15 minutes,
  alerts right after each collection (and after each bill reconciliation, so a drift finding
  goes out at once), bill reconciliation daily, price refresh weekly, the monthly showback
  on the first day of each month.
  A cron expression has 5 fields (minute hour day month weekday, weekday 0 or 7 = Sunday as
  in crontab) or 6 with a leading seconds field; ``@every 30s|5m|2h|1d`` (or a bare number of
  seconds) is an interval;
  ``off`` disables a job; for alerts, ``after collect`` (the default) chains them.
- One instance of each job at a time (``max_instances=1``), missed runs coalesced into one,
  run late up to ``misfire_grace_seconds``.
- One daemon per database: a lock row (``daemon_lock``) with a heartbeat. A second daemon
  refuses to start; a holder silent for ``stale_after_seconds`` is presumed dead.
- SIGTERM or SIGINT: no new job starts, the running one finishes, the daemon exits 0.
- A failing job is logged and recorded; it runs again on its next tick.
"""

from __future__ import annotations

import logging
import re
import signal
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from jobs import JOB_NAMES, JobContext, JobOutcome, job_function, owner_id, run_job
from tracker.errors import TrackerError

log = logging.getLogger("tracker.daemon")

AFTER_COLLECT = "after collect"
OFF = "off"
DEFAULT_SCHEDULE = {
    "collect": "*/15 * * * *",
    "alerts": AFTER_COLLECT,
    "reconcile": "30 6 * * *",
    "prices": "0 5 * * 1",
    "showback": "0 6 1 * *",  # jobs.showback.SCHEDULE: the month just ended, on the 1st
}
SCHEDULE_KEYS = {*JOB_NAMES, "misfire_grace_seconds"}
DAEMON_KEYS = {"heartbeat_seconds", "stale_after_seconds", "collect_on_start"}
EVERY_RE = re.compile(r"^@every\s+(\d+)\s*(s|m|h|d)$")
UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}
MACROS = {"@hourly": "0 * * * *", "@daily": "0 0 * * *", "@midnight": "0 0 * * *",
          "@weekly": "0 0 * * 0", "@monthly": "0 0 1 * *", "@yearly": "0 0 1 1 *"}  # fmt: skip
CRON_DAYS = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")


def wall_clock() -> datetime:
    """Real UTC time for scheduling, heartbeats and run history (TRACKER_NOW does not apply)."""
    return datetime.now(UTC)


# -- configuration ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class ScheduleSettings:
    """``[schedule]``: when each job runs."""

    collect: str = DEFAULT_SCHEDULE["collect"]
    alerts: str = DEFAULT_SCHEDULE["alerts"]
    reconcile: str = DEFAULT_SCHEDULE["reconcile"]
    prices: str = DEFAULT_SCHEDULE["prices"]
    showback: str = DEFAULT_SCHEDULE["showback"]
    misfire_grace_seconds: int = 300

    def expression(self, job: str) -> str:
        return getattr(self, job)


@dataclass(frozen=True)
class DaemonSettings:
    """``[daemon]``: the lock's heartbeat and whether to collect at start-up."""

    heartbeat_seconds: int = 15
    stale_after_seconds: int = 60
    collect_on_start: bool = True


def parse_schedule(value: Any, ctx: Any) -> ScheduleSettings:
    """``[schedule]`` -> ScheduleSettings; every bad expression goes to ``ctx.problem``."""
    if value is None:
        return ScheduleSettings()
    if not isinstance(value, dict):
        ctx.problem("schedule", "must be a table ([schedule])")
        return ScheduleSettings()
    for key in value:
        if key not in SCHEDULE_KEYS:
            ctx.problem(
                f"schedule.{key}",
                f"unknown key; expected one of {', '.join(sorted(SCHEDULE_KEYS))}",
            )
    chosen = dict(DEFAULT_SCHEDULE)
    for job in JOB_NAMES:
        if job not in value:
            continue
        expression = value[job]
        try:
            if isinstance(expression, int) and not isinstance(expression, bool):
                expression = f"@every {expression}s"  # a bare number: every N seconds
            if not isinstance(expression, str):
                raise ValueError("not a string")
            make_trigger(expression, allow_after_collect=job == "alerts")
            chosen[job] = " ".join(expression.split())
        except ValueError as exc:
            extra = ", 'after collect'" if job == "alerts" else ""
            ctx.problem(
                f"schedule.{job}",
                f"{expression!r} is not a schedule ({exc}); expected a cron expression like "
                f"'*/15 * * * *' (or 6 fields with leading seconds), '@every 10m', a number of "
                f"seconds, 'off'{extra}",
            )
    grace = value.get("misfire_grace_seconds", 300)
    if isinstance(grace, bool) or not isinstance(grace, int) or not 1 <= grace <= 86400:
        ctx.problem(
            "schedule.misfire_grace_seconds",
            f"must be a whole number from 1 to 86400, got {grace!r}",
        )
        grace = 300
    return ScheduleSettings(**chosen, misfire_grace_seconds=grace)


def parse_daemon(value: Any, ctx: Any) -> DaemonSettings:
    """``[daemon]`` -> DaemonSettings."""
    if value is None:
        return DaemonSettings()
    if not isinstance(value, dict):
        ctx.problem("daemon", "must be a table ([daemon])")
        return DaemonSettings()
    for key in value:
        if key not in DAEMON_KEYS:
            ctx.problem(
                f"daemon.{key}", f"unknown key; expected one of {', '.join(sorted(DAEMON_KEYS))}"
            )
    numbers = {}
    for key, default in (("heartbeat_seconds", 15), ("stale_after_seconds", 60)):
        number = value.get(key, default)
        if isinstance(number, bool) or not isinstance(number, int) or not 1 <= number <= 3600:
            ctx.problem(
                f"daemon.{key}", f"must be a whole number of seconds from 1 to 3600, got {number!r}"
            )
            number = default
        numbers[key] = number
    if numbers["stale_after_seconds"] <= numbers["heartbeat_seconds"]:
        ctx.problem(
            "daemon.stale_after_seconds",
            "must be longer than heartbeat_seconds (e.g. 4 x heartbeat)",
        )
    on_start = value.get("collect_on_start", True)
    if not isinstance(on_start, bool):
        ctx.problem("daemon.collect_on_start", f"must be true or false, got {on_start!r}")
        on_start = True
    return DaemonSettings(**numbers, collect_on_start=on_start)


# -- triggers --------------------------------------------------------------------------------------
def _normal(expression: str) -> str:
    return " ".join(expression.strip().lower().replace("after-collect", AFTER_COLLECT).split())


def is_after_collect(expression: str) -> bool:
    return _normal(expression) == AFTER_COLLECT


def make_trigger(expression: str, *, allow_after_collect: bool = False) -> Any:
    """An APScheduler trigger (UTC) for ``expression``; None for ``off`` and ``after collect``."""
    text = _normal(expression)
    if text == OFF:
        return None
    if text == AFTER_COLLECT:
        if not allow_after_collect:
            raise ValueError("'after collect' is only for alerts")
        return None
    every = EVERY_RE.match(text)
    if every:
        from apscheduler.triggers.interval import IntervalTrigger

        amount = int(every.group(1))
        if amount < 1:
            raise ValueError("an interval must be at least 1")
        return IntervalTrigger(timezone=UTC, **{UNITS[every.group(2)]: amount})
    text = MACROS.get(text, text)
    fields = text.split()
    if len(fields) == 5:
        fields = ["0", *fields]
    if len(fields) != 6:
        raise ValueError(f"{len(fields)} fields; a cron expression has 5, or 6 with seconds first")
    from apscheduler.triggers.cron import CronTrigger

    second, minute, hour, day, month, weekday = fields
    return CronTrigger(
        second=second, minute=minute, hour=hour, day=day, month=month,
        day_of_week=cron_weekdays(weekday), timezone=UTC,
    )  # fmt: skip


def cron_weekdays(field: str) -> str:
    """A crontab weekday field (0 or 7 = Sunday, names allowed) in APScheduler's terms.

    APScheduler 3 numbers weekdays from Monday = 0; crontab from Sunday = 0. Names avoid
    the mismatch: the field is expanded to the set of days and written as names.
    """
    if field in ("*", "?"):
        return "*"
    days: set[int] = set()
    for item in field.split(","):
        body, _, step_text = item.partition("/")
        step = int(step_text) if step_text else 1
        if step < 1:
            raise ValueError(f"weekday step {step_text!r}")
        if body in ("*", "?"):
            low, high = 0, 6
        elif "-" in body:
            low_text, high_text = body.split("-", 1)
            low, high = _weekday(low_text), _weekday(high_text)
            if high == 0 and low > 0:
                high = 7  # "5-7" or "fri-sun": through Sunday
        else:
            low = high = _weekday(body)
        if low > high:
            raise ValueError(f"weekday range {body!r} runs backwards")
        days.update(d % 7 for d in range(low, high + 1, step))
    if len(days) == 7:
        return "*"
    return ",".join(CRON_DAYS[d] for d in sorted(days))


def _weekday(text: str) -> int:
    if text.isdigit() and 0 <= int(text) <= 7:
        return int(text) % 7 if int(text) != 7 else 7
    if text[:3] in CRON_DAYS:
        return CRON_DAYS.index(text[:3])
    raise ValueError(f"weekday {text!r}; expected 0-7 or sun..sat")


def next_runs(schedule: ScheduleSettings, now: datetime) -> dict[str, datetime | str | None]:
    """Each job's next run after ``now``: a time, ``after collect``, or None (off)."""
    out: dict[str, datetime | str | None] = {}
    for job in JOB_NAMES:
        expression = schedule.expression(job)
        trigger = make_trigger(expression, allow_after_collect=job == "alerts")
        if trigger is None:
            out[job] = AFTER_COLLECT if is_after_collect(expression) else None
            continue
        out[job] = trigger.get_next_fire_time(None, now)
    return out


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
        settings: Any,
        store: Any,
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
        self.schedule: ScheduleSettings = settings.feature("schedule")
        self.options: DaemonSettings = settings.feature("daemon")
        self.scheduler: Any = None
        self._stopping = threading.Event()
        self._stopped = threading.Event()
        self._lost_lock = False

    # -- lifecycle ---------------------------------------------------------------------------
    def run(self, *, install_signals: bool = True) -> int:
        """Take the lock, schedule the jobs, block until stopped; returns the exit code."""
        from tracker.store.ops import DaemonLockRow

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
        try:
            self.scheduler = self._build_scheduler()
            if install_signals:
                self._install_signals()
            heartbeat.start()
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
            self._stopped.set()
            lock.release(self.owner)
        log.info("daemon stopped")
        return 1 if self._lost_lock else 0

    def request_stop(self, reason: str = "stop requested") -> None:
        """Stop taking new jobs, let the running one finish, then return from ``run``."""
        if self._stopping.is_set():
            return
        self._stopping.set()
        log.info("daemon stopping (%s): waiting for the running job to finish", reason)
        threading.Thread(target=self._shutdown, name="tracker-shutdown").start()

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
        def handler(signum: int, _frame: Any) -> None:
            self.request_stop(signal.Signals(signum).name)

        signal.signal(signal.SIGTERM, handler)
        signal.signal(signal.SIGINT, handler)

    def _heartbeat(self, lock: Any) -> None:
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

    # -- scheduling ----------------------------------------------------------------------------
    def _build_scheduler(self) -> Any:
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
            run_job(name, context, self.functions.get(name) or job_function(name))

    def _describe_schedule(self) -> str:
        parts = []
        for job in JOB_NAMES:
            parts.append(f"{job}={self.schedule.expression(job)}")
        return ", ".join(parts)


def _safe_url(store: Any) -> str:
    """The database URL without its password, for the start-up line."""
    return store.engine.url.render_as_string(hide_password=True)
