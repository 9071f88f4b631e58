"""When the scheduled jobs run: the ``[schedule]`` and ``[daemon]`` settings and their triggers.

A cron expression has 5 fields (minute hour day month weekday, weekday 0 or 7 = Sunday as in
crontab) or 6 with a leading seconds field; ``@every 30s|5m|2h|1d`` (or a bare number of
seconds) is an interval; ``off`` disables a job; for alerts, ``after collect`` (the default)
chains them to each collection. Times are UTC. The daemon itself is :mod:`tracker.daemon.scheduler`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from apscheduler.triggers.base import BaseTrigger

# The scheduled jobs, in the order the daemon and ``tracker status`` list them.
JOB_NAMES = ("collect", "alerts", "reconcile", "prices", "showback", "remeasure", "models")
AFTER_COLLECT = "after collect"
OFF = "off"
DEFAULT_SCHEDULE = {
    "collect": "*/15 * * * *",
    "alerts": AFTER_COLLECT,
    "reconcile": "30 6 * * *",
    "prices": "0 5 * * 1",
    "showback": "0 6 1 * *",  # the month just ended, on the 1st
    "remeasure": "0 4 * * *",  # S3 artifacts of recently ended jobs, daily
    "models": "0 * * * *",  # model packages and models, and the jobs that made them, hourly
}
# With [events] queues configured, the poll is a safety net (docs/events.md): hourly by default.
EVENTS_SAFETY_NET = "0 * * * *"
EVERY_RE = re.compile(r"^@every\s+(\d+)\s*(s|m|h|d)$")
UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}
MACROS = {"@hourly": "0 * * * *", "@daily": "0 0 * * *", "@midnight": "0 0 * * *",
          "@weekly": "0 0 * * 0", "@monthly": "0 0 1 * *", "@yearly": "0 0 1 1 *"}  # fmt: skip
CRON_DAYS = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")


@dataclass(frozen=True)
class ScheduleSettings:
    """``[schedule]``: when each job runs."""

    collect: str = DEFAULT_SCHEDULE["collect"]
    alerts: str = DEFAULT_SCHEDULE["alerts"]
    reconcile: str = DEFAULT_SCHEDULE["reconcile"]
    prices: str = DEFAULT_SCHEDULE["prices"]
    showback: str = DEFAULT_SCHEDULE["showback"]
    remeasure: str = DEFAULT_SCHEDULE["remeasure"]
    models: str = DEFAULT_SCHEDULE["models"]
    misfire_grace_seconds: int = 300

    def expression(self, job: str) -> str:
        return getattr(self, job)


@dataclass(frozen=True)
class DaemonSettings:
    """``[daemon]``: the lock's heartbeat, whether to collect at start-up, and the metrics
    listener (``metrics_port`` 0: none)."""

    heartbeat_seconds: int = 15
    stale_after_seconds: int = 60
    collect_on_start: bool = True
    metrics_port: int = 0
    metrics_host: str = "127.0.0.1"


# -- triggers --------------------------------------------------------------------------------------
def _normal(expression: str) -> str:
    return " ".join(expression.strip().lower().replace("after-collect", AFTER_COLLECT).split())


def is_after_collect(expression: str) -> bool:
    return _normal(expression) == AFTER_COLLECT


def make_trigger(expression: str, *, allow_after_collect: bool = False) -> BaseTrigger | None:
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
