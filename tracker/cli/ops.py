"""Operations commands: ``alerts``, ``budgets``, ``daemon``, ``run JOB``, ``status``."""

from __future__ import annotations

import argparse
import sys
from datetime import datetime
from typing import TYPE_CHECKING, Any

from tracker.cli.wiring import add_command, add_format_option, settings_from, store_from
from tracker.schedule import JOB_NAMES as JOBS

if TYPE_CHECKING:
    from tracker.settings import Settings
    from tracker.store.database import Store
    from tracker.store.schema import Watermark


def add_commands(sub: argparse._SubParsersAction) -> None:
    """Register the operations subcommands on the ``tracker`` parser."""
    alerts = add_command(
        sub,
        "alerts",
        "evaluate budgets and job rules; deliver new alerts once per channel",
        ["tracker alerts --dry-run", "tracker alerts --format json"],
    )
    alerts.add_argument(
        "--dry-run", action="store_true", help="show what would be sent; send and record nothing"
    )
    add_format_option(alerts, ["table", "json"])
    alerts.set_defaults(handler=cmd_alerts)

    budgets = add_command(
        sub,
        "budgets",
        "each budget: actual, forecast at period end, thresholds crossed",
        ["tracker budgets", "tracker budgets --format json --config tracker.toml"],
    )
    add_format_option(budgets, ["table", "json"])
    budgets.set_defaults(handler=cmd_budgets)

    daemon = add_command(
        sub,
        "daemon",
        "run collect, alerts, reconcile, prices and showback on their schedules",
        ["tracker daemon --config tracker.toml --log-format json"],
    )
    daemon.set_defaults(handler=cmd_daemon)

    run = add_command(
        sub,
        "run",
        "run one scheduled job once and exit (for cron)",
        ["tracker run collect", "tracker run showback --config tracker.toml"],
    )
    run.add_argument("job", choices=JOBS, help="the job to run")
    run.set_defaults(handler=cmd_run)

    models = add_command(
        sub,
        "collect-models",
        "collect model packages and models; link each job to the model it helped produce",
        ["tracker collect-models", "tracker collect-models --format json --config tracker.toml"],
    )
    add_format_option(models, ["table", "json"])
    models.set_defaults(handler=cmd_collect_models)

    status = add_command(
        sub,
        "status",
        "jobs' last and next runs, collection lag per account and region",
        ["tracker status", "tracker status --format json"],
    )
    add_format_option(status, ["table", "json"])
    status.set_defaults(handler=cmd_status)


def _wiring(args: argparse.Namespace, *, read_only: bool = False) -> tuple[Settings, Store]:
    settings = settings_from(args)
    return settings, store_from(args, settings, read_only=read_only)


def _json(value: Any) -> str:
    from tracker.report.render import json_text

    return json_text(value)


# -- alerts and budgets ------------------------------------------------------------------------
def cmd_alerts(args: argparse.Namespace) -> int:
    from tracker.alert.service import run_alerts
    from tracker.clock import system_clock, wall_clock

    settings, store = _wiring(args)
    result = run_alerts(settings, store, now=system_clock(), wall=wall_clock, dry_run=args.dry_run)
    if args.format == "json":
        rows = [
            {
                "alert": o.key,
                "channel": o.channel,
                "state": o.state,
                "subject": o.subject,
                "error": o.error,
                # sent under an idempotency key an earlier attempt already used (after a
                # crash): the receiver may have it twice and drops one by the key
                "repeat": o.repeat,
            }
            for o in result.outcomes
        ]
        sys.stdout.write(
            _json(
                {
                    "as_of": result.as_of,
                    "dry_run": result.dry_run,
                    **result.summary(),
                    "deliveries": rows,
                }
            )
        )
    else:
        sys.stdout.write(result.render())
    return 0 if result.ok else 1


def cmd_budgets(args: argparse.Namespace) -> int:
    from tracker.alert.service import budget_statuses
    from tracker.clock import system_clock
    from tracker.report.budgets import budget_table
    from tracker.report.render import text_table

    settings, store = _wiring(args, read_only=True)
    statuses = budget_statuses(settings, store, system_clock())
    if args.format == "json":
        sys.stdout.write(_json([s.row() for s in statuses]))
        return 0
    if not statuses:
        where = settings.path or "config/tracker.toml"
        print(
            f"No budgets configured; add [[budgets]] to {where} (see docs/budgets-and-alerts.md)."
        )
        return 0
    sys.stdout.write(text_table(budget_table(statuses)))
    return 0


# -- daemon and jobs ------------------------------------------------------------------------------
def cmd_daemon(args: argparse.Namespace) -> int:
    from tracker.clock import system_clock
    from tracker.daemon.scheduler import Daemon
    from tracker.store.migrate import upgrade

    settings = settings_from(args)
    _daemon_logging(args)
    # A long-running process brings its database to the schema it knows before anything else.
    schema = upgrade(args.db if args.db is not None else settings.database_url)
    store = store_from(args, settings)
    return Daemon(settings, store, clock=system_clock, notes=(schema,)).run()


def _daemon_logging(args: argparse.Namespace) -> None:
    """A daemon reports every run: INFO unless --log-level says otherwise; APScheduler's
    own warnings (misfires, skipped runs) go to the same handler and format."""
    import logging

    root = logging.getLogger("tracker")
    if args.log_level is None:
        root.setLevel(logging.INFO)
    aps = logging.getLogger("apscheduler")
    aps.handlers[:] = list(root.handlers)
    aps.setLevel(logging.WARNING)
    aps.propagate = False


def cmd_run(args: argparse.Namespace) -> int:
    from tracker.clock import system_clock, wall_clock
    from tracker.daemon.runner import run_job
    from tracker.daemon.tasks import JobContext

    settings, store = _wiring(args)
    started = wall_clock()
    outcome = run_job(args.job, JobContext(settings, store, system_clock, wall_clock, "cli"))
    seconds = (wall_clock() - started).total_seconds()
    print(f"{args.job}: {outcome.status} in {seconds:.1f} s: {outcome.detail}")
    return 0 if outcome.ok else 1


# -- collect-models --------------------------------------------------------------------------------
def cmd_collect_models(args: argparse.Namespace) -> int:
    from tracker.clock import system_clock, wall_clock
    from tracker.collect.models import collect_models
    from tracker.daemon.runner import record_run
    from tracker.daemon.tasks import JobContext, JobOutcome

    settings, store = _wiring(args)
    # Recorded as a run of the models job: `tracker status` shows it like a daemon's.
    summary = record_run(
        "models",
        JobContext(settings, store, system_clock, wall_clock, "cli"),
        lambda: collect_models(settings, store, clock=system_clock),
        lambda result: JobOutcome(result.status, result.detail()),
    )
    if args.format == "json":
        sys.stdout.write(_json(summary.to_dict()))
    else:
        print(f"Models: {summary.detail()}")
        for pair in summary.pairs:
            counts = f"{pair.listed} listed, {pair.described} new, {pair.removed} removed"
            what = f"error: {pair.error}" if pair.error else counts
            print(f"  {pair.account_id or '?':<12}  {pair.region:<14}  {pair.source}: {what}")
        if not summary.pairs:
            print("No account and region collected yet: run 'tracker collect' first.")
    return 0 if summary.status == "ok" else 1


# -- status ----------------------------------------------------------------------------------------
def cmd_status(args: argparse.Namespace) -> int:
    from tracker.clock import system_clock, wall_clock

    settings, store = _wiring(args, read_only=True)
    report = status_report(settings, store, now=system_clock(), wall=wall_clock())
    sys.stdout.write(_json(report) if args.format == "json" else render_status(report))
    return 0


def status_report(
    settings: Settings, store: Store, *, now: datetime, wall: datetime
) -> dict[str, Any]:
    """What an operator needs: the daemon, each job's last and next run, collection lag, alerts.

    ``now`` is the business clock (watermarks are stamped with it), ``wall`` real time (run
    history, schedules and heartbeats are).
    """
    from datetime import timedelta

    from tracker.schedule import next_runs
    from tracker.store.ops import AlertLedger, DaemonLockRow, JobRunLog

    schedule = settings.schedule
    daemon_options = settings.daemon
    holder = DaemonLockRow(
        store, lambda: wall, timedelta(seconds=daemon_options.stale_after_seconds)
    ).holder()
    daemon: dict[str, Any] = {"running": False}
    if holder is not None:
        age = (wall - holder.heartbeat_at).total_seconds()
        daemon = {
            "running": age <= daemon_options.stale_after_seconds,
            "owner": holder.owner,
            "since": holder.acquired_at,
            "heartbeat_seconds_ago": round(age, 1),
        }
    latest = JobRunLog(store).latest(JOBS)
    upcoming = next_runs(schedule, wall)
    jobs = []
    for job in JOBS:
        run = latest.get(job)
        jobs.append({
            "job": job,
            "schedule": schedule.expression(job),
            "last_run": run.started_at if run else None,
            "result": run.status if run else None,
            "duration_seconds": round(run.seconds, 3) if run and run.seconds is not None else None,
            "next_run": upcoming[job],
            "trigger": run.trigger if run else None,
            "detail": run.detail if run else "",
        })  # fmt: skip
    collection = []
    for mark in _current(store.watermarks()):
        success = _aware(mark.last_success_at)
        collection.append({
            "account": mark.account_id,
            "region": mark.region,
            "source": mark.source,
            "last_success_at": success,
            "lag_seconds": round((now - success).total_seconds()) if success else None,
            "watermark": _aware(mark.last_modified),
            "last_attempt_at": _aware(mark.last_attempt_at),
            "last_error": mark.last_error,
        })  # fmt: skip
    from tracker.alert.service import enforcement_log

    counts = AlertLedger(store, lambda: wall).counts()
    return {
        "as_of": now,
        "daemon": daemon,
        "jobs": jobs,
        "collection": collection,
        "events": _listener_status(settings, store),
        "alerts": {"sent": counts.get("sent", 0), "failed": counts.get("failed", 0),
                   "sending": counts.get("sending", 0),
                   "unconfirmed": counts.get("unconfirmed", 0)},
        "enforcement": enforcement_log(store),
    }  # fmt: skip


def _listener_status(settings: Settings, store: Store) -> list[dict[str, Any]]:
    """Per ``[events]`` queue, its listener's last recorded state (a ``listen:`` job run).

    ``lag_seconds``: how long the oldest message of the listener's last non-empty receive had
    waited when it was received (SentTimestamp to receipt); 0 when that receive was empty.
    ``waiting``: SQS's ApproximateNumberOfMessages after the last batch. Both are as of
    ``last_receive_at``; SQS's own ApproximateAgeOfOldestMessage is a CloudWatch metric the
    tracker does not read.
    """
    import json

    from tracker.collect.listen import job_name
    from tracker.store.ops import JobRunLog

    queues = settings.events.queues
    latest = JobRunLog(store).latest([job_name(q) for q in queues])
    out = []
    for queue in queues:
        run = latest.get(job_name(queue))
        detail: dict[str, Any] = {}
        if run is not None:
            try:
                detail = json.loads(run.detail or "{}")
            except ValueError:
                detail = {}
        received = _instant(detail.get("last_receive_at"))
        oldest = _instant(detail.get("oldest_sent_at"))
        lag = None
        if received is not None:
            lag = round((received - oldest).total_seconds()) if oldest else 0
        out.append({
            "queue": queue.url, "account": queue.account_id, "region": queue.region,
            "listener": run.status if run else None, "started_at": run.started_at if run else None,
            "last_event_at": _instant(detail.get("last_event_at")),
            "last_receive_at": received, "lag_seconds": lag, "waiting": detail.get("visible"),
            "messages": detail.get("messages", 0), "jobs": detail.get("jobs", 0),
            "poison": detail.get("poison", 0), "last_error": detail.get("last_error"),
        })  # fmt: skip
    return out


def _instant(value: object) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        return None


def _current(marks: list[Watermark]) -> list[Watermark]:
    """The watermarks without the failures a later success of the same region superseded.

    A region whose AWS account could not be learnt (STS failed) records its failure under a
    stand-in account; once a run of that source and region succeeds under its real account,
    that failure is history, not a standing error.
    """
    succeeded: dict[tuple[str | None, str], datetime] = {}
    for mark in marks:
        key = (mark.source, mark.region)
        if mark.last_success_at is not None and mark.last_success_at > succeeded.get(
            key, datetime.min
        ):
            succeeded[key] = mark.last_success_at

    def superseded(mark: Watermark) -> bool:
        later = succeeded.get((mark.source, mark.region))
        return (
            mark.last_success_at is None
            and later is not None
            and (mark.last_attempt_at is None or later >= mark.last_attempt_at)
        )

    return [mark for mark in marks if not superseded(mark)]


def _aware(value: datetime | None) -> datetime | None:
    from tracker.store.database import aware_utc

    return aware_utc(value)


def render_status(report: dict[str, Any]) -> str:
    """The status report as text for a terminal."""
    daemon = report["daemon"]
    if daemon.get("owner") and daemon["running"]:
        head = (f"Daemon: running ({daemon['owner']}), since {_when(daemon['since'])}, "
                f"heartbeat {daemon['heartbeat_seconds_ago']:.0f} s ago")  # fmt: skip
    elif daemon.get("owner"):
        head = (f"Daemon: NOT RESPONDING ({daemon['owner']}), last heartbeat "
                f"{daemon['heartbeat_seconds_ago']:.0f} s ago")  # fmt: skip
    else:
        head = "Daemon: not running (no daemon holds this database's lock)"
    out = [head, "", "Jobs (times UTC):"]
    rows = []
    for job in report["jobs"]:
        nxt = job["next_run"]
        rows.append({
            "job": job["job"], "schedule": job["schedule"],
            "last_run": _when(job["last_run"]) if job["last_run"] else "never",
            "result": job["result"] or "-", "trigger": job["trigger"] or "-",
            "duration": f"{job['duration_seconds']:.1f} s" if job["duration_seconds"] is not None else "-",
            "next_run": _when(nxt) if isinstance(nxt, datetime) else (nxt or "off"),
            "detail": _short(job["detail"]),
        })  # fmt: skip
    out.append(_table(STATUS_JOB_COLUMNS, rows))
    out += ["", "Collection lag per account and region:"]
    if not report["collection"]:
        out.append("  nothing collected yet (run: tracker run collect)")
    else:
        rows = []
        for mark in report["collection"]:
            error = "-"
            if mark["last_error"]:
                error = f"{_when(mark['last_attempt_at'])}: {_short(mark['last_error'], 80)}"
            rows.append({
                "account": mark["account"], "region": mark["region"], "source": mark["source"] or "-",
                "last_success": _when(mark["last_success_at"]) if mark["last_success_at"] else "never",
                "lag": _duration(mark["lag_seconds"]),
                "watermark": _when(mark["watermark"]) if mark["watermark"] else "-", "last_error": error,
            })  # fmt: skip
        out.append(_table(STATUS_COLLECTION_COLUMNS, rows))
    if report.get("events"):
        out += ["", "Event listener per queue (lag: how long the oldest message of the last "
                "receive had waited):"]  # fmt: skip
        rows = []
        for q in report["events"]:
            rows.append({
                "queue": f"{q['account']}/{q['region']}", "listener": q["listener"] or "never ran",
                "last_event": _when(q["last_event_at"]) if q["last_event_at"] else "-",
                "messages": str(q["messages"]), "jobs": str(q["jobs"]), "poison": str(q["poison"]),
                "waiting": "-" if q["waiting"] is None else str(q["waiting"]),
                "lag": "-" if q["lag_seconds"] is None else f"{q['lag_seconds']} s",
                "last_receive": _when(q["last_receive_at"]) if q["last_receive_at"] else "-",
                "last_error": _short(q["last_error"], 60) if q["last_error"] else "-",
            })  # fmt: skip
        out.append(_table(STATUS_EVENTS_COLUMNS, rows))
    alerts = report["alerts"]
    line = f"Alerts: {alerts['sent']} delivered"
    if alerts["failed"]:
        line += f", {alerts['failed']} failed (retried on the next alerts run)"
    if alerts["sending"]:
        line += f", {alerts['sending']} being sent"
    if alerts["unconfirmed"]:
        line += (
            f", {alerts['unconfirmed']} unconfirmed (resent once after a crash, whose sender "
            "died too; never sent again: check the receiver)"
        )
    out += ["", line]
    if report.get("enforcement"):
        out += ["", "Enforcement ([enforce]; cost when the rule fired):"]
        out += [f"  {e['at']}  {e['job']}  {e['rule']}  {e['state']}  ${e['cost_usd']}  "
                f"{e['reason']}" for e in report["enforcement"]]  # fmt: skip
    return "\n".join(out) + "\n"


STATUS_JOB_COLUMNS = (
    ("job", "job"), ("schedule", "schedule"), ("last_run", "last run"), ("result", "result"),
    ("trigger", "by"), ("duration", "duration"), ("next_run", "next run"), ("detail", "detail"),
)  # fmt: skip
STATUS_COLLECTION_COLUMNS = (
    ("account", "account"), ("region", "region"), ("source", "source"),
    ("last_success", "last success"), ("lag", "lag"), ("watermark", "newest job change"),
    ("last_error", "last error"),
)  # fmt: skip


STATUS_EVENTS_COLUMNS = (
    ("queue", "queue"), ("listener", "listener"), ("last_event", "last event"),
    ("messages", "messages"), ("jobs", "jobs"), ("poison", "poison"), ("waiting", "waiting"),
    ("lag", "lag"), ("last_receive", "last receive"), ("last_error", "last error"),
)  # fmt: skip


def _table(columns: tuple[tuple[str, str], ...], rows: list[dict[str, str]]) -> str:
    """Already-worded cells (times, durations, "never") as an indented text table."""
    from tracker.report.render import text_table
    from tracker.report.table import Table, text

    table = Table("", [text(key, label) for key, label in columns], rows)
    return text_table(table, indent="  ").rstrip("\n")


def _when(value: datetime | None) -> str:
    return f"{value:%Y-%m-%d %H:%M:%S}" if value else "-"


def _duration(seconds: int | None) -> str:
    if seconds is None:
        return "never collected"
    seconds = max(seconds, 0)
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days}d {hours}h"
    if hours:
        return f"{hours}h {minutes}m"
    return f"{minutes}m {secs}s"


def _short(text: str | None, limit: int = 60) -> str:
    text = (text or "").replace("\n", " ")
    return text if len(text) <= limit else text[: limit - 3] + "..."
