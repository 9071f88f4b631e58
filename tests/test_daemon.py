"""The daemon: schedules, one job at a time, clean shutdown, the single-daemon lock, run
history; in-process with injected job functions, and as a real ``tracker daemon`` subprocess
against the session moto server (collect -> alerts, exactly once across ticks and a restart).
"""

from __future__ import annotations

import json
import signal
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import boto3
import pytest

from jobs import JobContext, JobOutcome
from jobs.scheduler import Daemon, DaemonLockedError
from tests.conftest import REPO, run_cli
from tests.processes import Child
from tests.webhook_server import WebhookServer
from tracker.schedule import cron_weekdays, make_trigger, next_runs
from tracker.settings import SectionContext, parse_schedule, parse_settings
from tracker.store.database import Store
from tracker.store.ops import DaemonLockRow, JobRunLog

ACCOUNT = "123456789012"


# -- schedules -----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("field", "expected"),
    [
        ("*", "*"), ("0", "sun"), ("7", "sun"), ("1-5", "mon,tue,wed,thu,fri"), ("0-6", "*"),
        ("0-7", "*"), ("mon-fri", "mon,tue,wed,thu,fri"), ("5-7", "sun,fri,sat"), ("fri-sun", "sun,fri,sat"),
        ("*/2", "sun,tue,thu,sat"), ("1,3", "mon,wed"),
    ],
)  # fmt: skip
def test_cron_weekdays_follow_crontab_numbering(field: str, expected: str) -> None:
    assert cron_weekdays(field) == expected


@pytest.mark.parametrize(
    ("expression", "after", "expected"),
    [
        ("*/15 * * * *", "2026-11-26T12:07:00", "2026-11-26T12:15:00"),
        ("0 5 * * 1", "2026-11-26T12:00:00", "2026-11-30T05:00:00"),  # Thursday -> Monday
        ("30 6 * * *", "2026-11-30T23:00:00", "2026-12-01T06:30:00"),
        ("*/2 * * * * *", "2026-11-26T12:00:01", "2026-11-26T12:00:02"),  # seconds first
        ("@daily", "2026-12-31T13:00:00", "2027-01-01T00:00:00"),
    ],
)
def test_make_trigger_next_fire_time(expression: str, after: str, expected: str) -> None:
    now = datetime.fromisoformat(after).replace(tzinfo=UTC)
    assert make_trigger(expression).get_next_fire_time(None, now) == datetime.fromisoformat(
        expected
    ).replace(tzinfo=UTC)


def test_make_trigger_interval_and_off() -> None:
    assert make_trigger("@every 5s").interval == timedelta(seconds=5)
    assert make_trigger("@every 2h").interval == timedelta(hours=2)
    assert make_trigger("off") is None
    assert make_trigger("after collect", allow_after_collect=True) is None
    with pytest.raises(ValueError):
        make_trigger("after collect")


@pytest.mark.parametrize(
    "bad", ["every 15 minutes", "61 * * * *", "* * *", "0 5 * * 9", "@every 0s", "* * * * * * *"]
)
def test_make_trigger_rejects(bad: str) -> None:
    with pytest.raises(ValueError):
        make_trigger(bad)


def test_parse_schedule_defaults_and_problems() -> None:
    ctx = SectionContext(None, Path.cwd(), [])
    defaults = parse_schedule(None, ctx)
    assert (defaults.collect, defaults.alerts, defaults.reconcile, defaults.prices) == (
        "*/15 * * * *", "after collect", "30 6 * * *", "0 5 * * 1",
    )  # fmt: skip
    parse_schedule(
        {"collect": "every day", "prices": [5], "reconcile": "after collect", "colour": 1}, ctx
    )
    text = "\n".join(ctx.problems)
    for key in ("schedule.collect", "schedule.prices", "schedule.reconcile", "schedule.colour"):
        assert key in text
    upcoming = next_runs(defaults, datetime(2026, 11, 26, 12, 7, tzinfo=UTC))
    assert upcoming["alerts"] == "after collect"
    assert upcoming["collect"] == datetime(2026, 11, 26, 12, 15, tzinfo=UTC)


def test_bad_schedule_config_exits_2(tmp_path: Path) -> None:
    config = tmp_path / "tracker.toml"
    config.write_text(
        '[schedule]\ncollect = "every quarter hour"\n[daemon]\nheartbeat_seconds = 0\n'
    )
    result = run_cli("--config", str(config), "daemon")
    assert result.returncode == 2
    assert result.stderr.startswith("Error: ") and result.stderr.count("\n") == 1
    assert "schedule.collect" in result.stderr and "daemon.heartbeat_seconds" in result.stderr


# -- in-process daemon ------------------------------------------------------------------------------
def daemon_config(tmp: Path, collect: str = "@every 1s", extra: str = "") -> Path:
    config = tmp / "tracker.toml"
    config.write_text(
        f'[database]\nurl = "sqlite:///{tmp / "d.db"}"\n'
        f'[schedule]\ncollect = "{collect}"\nalerts = "off"\nreconcile = "off"\nprices = "off"\n'
        "[daemon]\nheartbeat_seconds = 1\nstale_after_seconds = 3\n" + extra
    )
    return config


def start(daemon: Daemon) -> tuple[threading.Thread, list[int]]:
    codes: list[int] = []
    thread = threading.Thread(target=lambda: codes.append(daemon.run(install_signals=False)))
    thread.start()
    return thread, codes


def wait_for(condition: Callable[[], bool], seconds: float = 10) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.02)


@pytest.fixture
def setup(tmp_path: Path) -> Iterator[tuple]:
    settings = parse_settings(daemon_config(tmp_path))
    store = Store.open(settings.database_url)
    yield settings, store
    store.engine.dispose()


def test_stop_lets_the_running_job_finish(setup: tuple) -> None:
    settings, store = setup
    began, finished = threading.Event(), threading.Event()

    def slow(_ctx: JobContext) -> JobOutcome:
        began.set()
        time.sleep(0.8)
        finished.set()
        return JobOutcome("ok", "slow job done")

    daemon = Daemon(
        settings,
        store,
        clock=lambda: datetime(2026, 11, 26, tzinfo=UTC),
        functions={"collect": slow},
    )
    thread, codes = start(daemon)
    assert began.wait(5)
    daemon.request_stop("test")
    thread.join(10)
    assert finished.is_set() and codes == [0]
    [run] = JobRunLog(store).history("collect")
    assert (run.status, run.detail, run.trigger) == ("ok", "slow job done", "daemon")
    assert DaemonLockRow(store, lambda: datetime.now(UTC), timedelta(seconds=3)).holder() is None


def test_failing_job_is_logged_and_retried_next_tick(
    setup: tuple, caplog: pytest.LogCaptureFixture
) -> None:
    settings, store = setup
    calls = []

    def flaky(_ctx: JobContext) -> JobOutcome:
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("transient failure")
        return JobOutcome("ok", f"call {len(calls)}")

    daemon = Daemon(
        settings,
        store,
        clock=lambda: datetime(2026, 11, 26, tzinfo=UTC),
        functions={"collect": flaky},
    )
    thread, codes = start(daemon)
    wait_for(lambda: len(calls) >= 2 and JobRunLog(store).history("collect")[0].status == "ok")
    daemon.request_stop()
    thread.join(10)
    assert codes == [0]
    history = [r.status for r in reversed(JobRunLog(store).history("collect"))]
    assert history[:2] == ["failed", "ok"]
    failed = JobRunLog(store).history("collect")[-1]
    assert "RuntimeError: transient failure" in failed.detail
    assert "job collect failed" in caplog.text


def lock_owner(store: Store) -> str | None:
    holder = DaemonLockRow(store, lambda: datetime.now(UTC), timedelta(seconds=3)).holder()
    return holder.owner if holder else None


def test_second_daemon_refuses_then_stale_lock_is_taken_over(setup: tuple) -> None:
    settings, store = setup
    idle = {"collect": lambda _ctx: JobOutcome("ok")}

    def daemon(owner: str) -> Daemon:
        return Daemon(settings, store, clock=lambda: datetime.now(UTC), functions=idle, owner=owner)

    first = daemon("host:1")
    thread, codes = start(first)
    wait_for(lambda: lock_owner(store) == "host:1")
    with pytest.raises(DaemonLockedError, match=r"another tracker daemon \(host:1\) is running"):
        daemon("host:2").run(install_signals=False)
    first.request_stop()
    thread.join(10)
    assert codes == [0] and lock_owner(store) is None

    # A daemon that died without releasing: its heartbeat ages past stale_after_seconds.
    ten_seconds_ago = lambda: datetime.now(UTC) - timedelta(seconds=10)  # noqa: E731
    assert DaemonLockRow(store, ten_seconds_ago, timedelta(seconds=3)).acquire("dead:9") is None
    third = daemon("host:3")
    thread, codes = start(third)
    wait_for(lambda: lock_owner(store) == "host:3")
    third.request_stop()
    thread.join(10)
    assert codes == [0]


# -- the real daemon, as a subprocess, against moto ---------------------------------------------------
def lock_rows(db: Path) -> int:
    try:
        with sqlite3.connect(db) as conn:
            return conn.execute("select count(*) from daemon_lock").fetchone()[0]
    except sqlite3.OperationalError:
        return 0


def runs(db: Path, job: str, status: str | None = None) -> int:
    """Runs of ``job`` recorded so far (0 while the daemon is still creating the schema)."""
    query = "select count(*) from job_runs where job = ?" + (" and status = ?" if status else "")
    try:
        with sqlite3.connect(db) as conn:
            return conn.execute(query, (job, status) if status else (job,)).fetchone()[0]
    except sqlite3.OperationalError:
        return 0


@pytest.fixture
def spawn() -> Iterator[Callable[[Path, dict[str, str], Path], Child]]:
    """Starts ``tracker daemon`` processes (tests/processes.py), their stdout and stderr
    appended to ``log``; kills any a failing test left running."""
    import os

    started: list[Child] = []

    def launch(config: Path, env: dict[str, str], log: Path) -> Child:
        args = ["--config", str(config), "--log-format", "json", "daemon"]
        process = Child("tracker", args, env={**os.environ, **env}, cwd=REPO, output=log)
        started.append(process)
        return process

    yield launch
    for process in started:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=10)
        process.close()


def stop(process: Child, db: Path) -> int:
    """SIGTERM while a job runs (if one is caught running within a few seconds)."""
    deadline = time.monotonic() + 5
    while (
        time.monotonic() < deadline
        and not runs(db, "collect", "running")
        and not runs(db, "alerts", "running")
    ):
        time.sleep(0.005)
    process.send_signal(signal.SIGTERM)
    return process.wait(timeout=20)


@pytest.mark.e2e
def test_daemon_collects_alerts_once_across_ticks_and_restart_then_stops_cleanly(
    tmp_path: Path,
    moto_endpoint: str,
    spawn: Callable[[Path, dict[str, str], Path], Child],
) -> None:
    """Budget $10 for team nlp in November (TRACKER_NOW 2026-11-26); ml.g5.2xlarge at $1.00/h
    (override), local NVMe so no storage cost; thresholds 50 and 80, no forecast alerts.

    | session | jobs collected            | actual | new alert |
    |---------|---------------------------|--------|-----------|
    | 1       | a: 6 h x 1 = $6           | $6     | 50%       |
    | 2       | + b: 3 h x 1 = $3         | $9     | 80%       |
    """
    from moto.sns.models import sns_backends

    from tracker.aws.simulate import SimJob, clients_for, create_job

    (tmp_path / "overrides.csv").write_text(
        "region,instance_type,usd_per_hour,source,source_date\nus-east-1,ml.g5.2xlarge,1.00,test,2026-11-01\n"
    )
    topic = boto3.client("sns", region_name="us-east-1").create_topic(Name="budget-alerts")[
        "TopicArn"
    ]
    db = tmp_path / "daemon.db"
    config = tmp_path / "tracker.toml"
    config.write_text(
        f'[database]\nurl = "sqlite:///{db}"\n'
        '[[sources]]\nname = "prod"\nregions = ["us-east-1"]\n'
        '[pricing]\noverrides = "overrides.csv"\n'
        '[schedule]\ncollect = "* * * * * *"\nalerts = "after collect"\nreconcile = "off"\nprices = "off"\n'
        "[daemon]\nheartbeat_seconds = 1\nstale_after_seconds = 5\n"
        '[[budgets]]\nname = "nlp-monthly"\nteam = "nlp"\namount_usd = 10\nthresholds_pct = [50, 80]\n'
        f'forecast_pct = []\nnotify = ["log", "webhook:env:HOOK", "sns:{topic}"]\n'
    )
    clients = clients_for(ACCOUNT, "us-east-1")
    start_a = datetime(2026, 11, 20, 8, tzinfo=UTC)
    create_job(clients, SimJob("a", ACCOUNT, "us-east-1", instance_type="ml.g5.2xlarge", start=start_a,
                               end=start_a + timedelta(hours=6), billable_seconds=21600,
                               training_seconds=21600, tags={"team": "nlp"}))  # fmt: skip
    log = tmp_path / "daemon.log"
    with WebhookServer() as hook:
        env = {
            "AWS_ENDPOINT_URL": moto_endpoint,
            "TRACKER_NOW": "2026-11-26T12:00:00Z",
            "HOOK": hook.url,
        }
        first = spawn(config, env, log)
        wait_for(lambda: lock_rows(db) == 1, seconds=30)
        refused = spawn(config, env, tmp_path / "refused.log")  # starts while the first ticks
        wait_for(lambda: runs(db, "alerts", "ok") >= 2, seconds=30)
        assert refused.wait(timeout=30) == 1
        error = (tmp_path / "refused.log").read_text()
        assert error.startswith("Error: another tracker daemon") and error.count("\n") == 1
        assert stop(first, db) == 0

        start_b = datetime(2026, 11, 21, 8, tzinfo=UTC)
        create_job(clients, SimJob("b", ACCOUNT, "us-east-1", instance_type="ml.g5.2xlarge", start=start_b,
                                   end=start_b + timedelta(hours=3), billable_seconds=10800,
                                   training_seconds=10800, tags={"team": "nlp"}))  # fmt: skip
        before = runs(db, "alerts", "ok")
        second = spawn(config, env, log)
        wait_for(lambda: runs(db, "alerts", "ok") >= before + 2, seconds=30)
        assert stop(second, db) == 0

    subjects = [text.splitlines()[0] for text in hook.texts()]
    assert subjects == [
        "Budget nlp-monthly crossed 50% of $10.00 for 2026-11 (spent $6.00)",
        "Budget nlp-monthly crossed 80% of $10.00 for 2026-11 (spent $9.00)",
    ]
    assert [
        n[2] for n in sns_backends[ACCOUNT]["us-east-1"].topics[topic].sent_notifications
    ] == subjects
    assert runs(db, "collect", "running") == 0 and runs(db, "alerts", "running") == 0
    assert lock_rows(db) == 0
    lines = [json.loads(line) for line in log.read_text().splitlines() if line.startswith("{")]
    assert any(entry["message"].startswith("job collect ok") for entry in lines)
    assert sum(entry["message"].startswith("ALERT ") for entry in lines) == 2
    assert hook.url not in log.read_text()

    from tracker.cli.ops import status_report

    settings = parse_settings(config)
    store = Store.open(settings.database_url)
    report = status_report(
        settings, store, now=datetime(2026, 11, 26, 12, tzinfo=UTC), wall=datetime.now(UTC)
    )
    store.engine.dispose()
    jobs = {j["job"]: j for j in report["jobs"]}
    assert jobs["collect"]["result"] == "ok" and jobs["collect"]["duration_seconds"] is not None
    assert jobs["alerts"]["next_run"] == "after collect" and jobs["reconcile"]["next_run"] is None
    assert jobs["collect"]["next_run"] is not None and jobs["collect"]["last_run"] is not None
    assert jobs["collect"]["trigger"] == "daemon"
    [region] = report["collection"]
    assert (region["account"], region["region"], region["last_error"]) == (
        ACCOUNT,
        "us-east-1",
        None,
    )
    assert region["lag_seconds"] == 0  # TRACKER_NOW is pinned: collected "now"
    assert report["daemon"]["running"] is False and report["alerts"]["sent"] == 6


@pytest.mark.e2e
def test_cli_run_job_once_and_status_shows_region_error(tmp_path: Path, moto_endpoint: str) -> None:
    db = tmp_path / "run.db"
    config = tmp_path / "tracker.toml"
    config.write_text(
        f'[database]\nurl = "sqlite:///{db}"\n[[sources]]\nname = "prod"\nregions = ["us-east-1"]\n'
        "[collection]\nmax_attempts = 1\n"
    )
    env = {"AWS_ENDPOINT_URL": moto_endpoint, "TRACKER_NOW": "2026-11-26T12:00:00Z"}
    failing = {**env, "AWS_ENDPOINT_URL_STS": "http://127.0.0.1:9"}  # nothing listens there
    result = run_cli("--config", str(config), "run", "collect", env=failing)
    assert result.returncode == 1
    assert result.stdout.startswith("collect: failed in "), result.stdout + result.stderr
    ok = run_cli("--config", str(config), "run", "alerts", env=env)
    assert ok.returncode == 0, ok.stderr
    assert ok.stdout.startswith("alerts: ok in ")
    text = run_cli("--config", str(config), "status", env=env).stdout
    for expected in ("Daemon: not running", "collect    */15 * * * *", "failed", "alerts     after collect",
                     "ok", "us-east-1", "never", "EndpointConnectionError"):  # fmt: skip
        assert expected in text, text


@pytest.mark.e2e
def test_status_shows_plain_collect_runs_and_drops_an_error_a_later_run_fixed(
    tmp_path: Path, moto_endpoint: str
) -> None:
    """``tracker collect`` (not the daemon, not ``tracker run``) twice: STS unreachable, then
    reachable. Each run is one collect run in the history (none counted twice), and the
    region's error, recorded under a stand-in account while STS was down, is gone."""
    db = tmp_path / "plain.db"
    config = tmp_path / "tracker.toml"
    config.write_text(
        f'[database]\nurl = "sqlite:///{db}"\n[[sources]]\nname = "prod"\nregions = ["us-east-1"]\n'
        "[collection]\nmax_attempts = 1\n"
    )
    env = {"AWS_ENDPOINT_URL": moto_endpoint, "TRACKER_NOW": "2026-11-26T12:00:00Z"}
    failing = {**env, "AWS_ENDPOINT_URL_STS": "http://127.0.0.1:9"}  # nothing listens there
    assert run_cli("--config", str(config), "collect", env=failing).returncode == 1
    status = json.loads(
        run_cli("--config", str(config), "status", "--format", "json", env=env).stdout
    )
    [collect] = [j for j in status["jobs"] if j["job"] == "collect"]
    assert (collect["result"], collect["trigger"]) == ("failed", "cli")
    assert "EndpointConnectionError" in collect["detail"]
    [region] = status["collection"]
    assert region["region"] == "us-east-1" and "EndpointConnectionError" in region["last_error"]

    ok = run_cli("--config", str(config), "collect", env=env)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    result = run_cli("--config", str(config), "status", "--format", "json", env=env)
    status = json.loads(result.stdout)
    [collect] = [j for j in status["jobs"] if j["job"] == "collect"]
    assert (collect["result"], collect["trigger"]) == ("ok", "cli")
    assert [(r["account"], r["region"], r["last_error"]) for r in status["collection"]] == [
        (ACCOUNT, "us-east-1", None)
    ]
    assert runs(db, "collect") == 2 and runs(db, "collect", "ok") == 1
    text = run_cli("--config", str(config), "status", env=env).stdout
    assert "EndpointConnectionError" not in text and "cli" in text, text


def test_reconcile_job_calls_the_bill_reconciliation(tmp_path: Path) -> None:
    """Cost Explorer on moto with nothing billed: the job stores 0 lines and finds no drift."""
    from moto import mock_aws

    from jobs import run_job

    settings = parse_settings(daemon_config(tmp_path))
    store = Store.open(settings.database_url)
    now = datetime(2026, 11, 26, 12, tzinfo=UTC)
    with mock_aws():
        ctx = JobContext(settings, store, lambda: now, lambda: now)
        outcome = run_job("reconcile", ctx)
    assert outcome.status == "ok", outcome.detail
    assert outcome.detail.startswith("ce 2026-10-01..2026-11-26: 0 bill lines stored")
    [run] = JobRunLog(store).history("reconcile")
    assert (run.status, run.trigger) == ("ok", "cli")


def test_prices_job_refreshes_rates_then_recosts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Price List (stubbed: moto has no Pricing API) says ml.m5.xlarge costs $2.00/h in
    us-east-1. A stored 3-hour job costed at $1.00/h ($3.00) is recosted to 3 x 2 = $6.00."""
    from botocore.stub import Stubber

    import tracker.aws.session as aws_session
    from jobs import run_job
    from tests.factories import HOUR
    from tests.test_budgets import RATES, at, make_job
    from tests.test_pricing_refresh import price_item
    from tracker.cost.engine import CostPolicy, cost_job

    snapshot = tmp_path / "prices"  # refreshed snapshots only; the shipped rates are package data
    config = daemon_config(tmp_path)
    config.write_text(
        config.read_text() + f'[[sources]]\nname = "prod"\nregions = ["us-east-1"]\n'
        f'[pricing]\nsnapshot_dir = "{snapshot}"\n'
    )
    settings = parse_settings(config)
    store = Store.open(settings.database_url)
    now = datetime(2026, 11, 26, 12, tzinfo=UTC)
    record = make_job("priced", start_time=at("2026-11-20T00:00:00"), seconds=3 * HOUR)
    store.save_jobs([(record, cost_job(record, RATES, now, CostPolicy()), {})], now)
    client = boto3.client("pricing", region_name="us-east-1")
    stubber = Stubber(client)
    stubber.add_response(
        "get_products",
        {
            "FormatVersion": "aws_v1",
            "PriceList": [price_item("SKU1", "USE1-Train:ml.m5.xlarge", "2.00")],
        },
    )
    for _ in ("AmazonSageMaker storage", "AmazonS3 Standard"):  # the refresh's storage queries
        stubber.add_response("get_products", {"FormatVersion": "aws_v1", "PriceList": []})
    monkeypatch.setattr(
        aws_session, "pricing_client", lambda region="us-east-1", collection=None: client
    )
    with stubber:
        outcome = run_job("prices", JobContext(settings, store, lambda: now, lambda: now))
    assert outcome.status == "ok", outcome.detail
    assert outcome.detail.startswith("1 rates written to refreshed-20261126.csv; 1 jobs recosted")
    assert store.job_by_name("priced").list_micros == 6_000_000


@pytest.mark.postgres
def test_daemon_lock_on_postgres(pg_url: str) -> None:
    """The lock row works the same on a shared PostgreSQL (daemons on different hosts)."""
    store = Store.open(pg_url)
    now = datetime(2026, 11, 26, 12, tzinfo=UTC)
    live = DaemonLockRow(store, lambda: now, timedelta(seconds=60))
    assert live.acquire("host-a:1") is None
    assert live.acquire("host-b:2").owner == "host-a:1"
    later = DaemonLockRow(store, lambda: now + timedelta(seconds=61), timedelta(seconds=60))
    assert later.acquire("host-b:2") is None  # host-a stopped beating: taken over
    assert live.heartbeat("host-a:1") is False and later.heartbeat("host-b:2") is True
    later.release("host-b:2")
    assert later.holder() is None
    store.engine.dispose()


def test_schedule_bare_number_is_seconds() -> None:
    ctx = SectionContext(None, Path.cwd(), [])
    schedule = parse_schedule({"collect": 2, "alerts": "after-collect"}, ctx)
    assert ctx.problems == [] and schedule.collect == "@every 2s"
    assert make_trigger(schedule.collect).interval == timedelta(seconds=2)
