"""Faults: throttling storms, SIGKILL mid-collection, concurrent collectors, denied accounts,
odd DescribeTrainingJob responses, a full disk and a read-only database.

Each test states the fault, injects it from outside the code under test (botocore and
SQLAlchemy events, signals, resource limits, a read-only URI) and checks what a FinOps
user relies on: every job stored exactly once, costs unchanged, failures recorded and
reported in one line, and a rerun that catches up to what an undisturbed run stores.

Prices (us-east-1, us-west-2): ml.m5.xlarge $0.25/h, ml.g5.2xlarge $1.50/h. Seeded jobs run
3600 s each unless said otherwise: an m5 job costs 0.25, a 2 x g5 job 3.00.
"""

from __future__ import annotations

import json
import os
import random
import sqlite3
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

import boto3
import botocore.session
import pytest
from botocore.awsrequest import AWSResponse
from moto import mock_aws

from tests.conftest import DEFAULT_ACCOUNT, REPO, T0, seed_job_fast
from tests.processes import run_module
from tracker.aws.session import AwsContextFactory
from tracker.collect.service import collect
from tracker.cost.prices import PriceBook
from tracker.report.collection import collection_text
from tracker.settings import CollectionSettings, Settings, Source
from tracker.store.database import Store
from tracker.store.query import ViewQueries, Window

D = Decimal
NOW = datetime(2026, 10, 2, 12, 0, tzinfo=UTC)
REGIONS = ("us-east-1", "us-west-2")
BOOK = PriceBook(
    {
        (r, t): D(p)
        for r in REGIONS
        for t, p in (("ml.m5.xlarge", "0.25"), ("ml.g5.2xlarge", "1.50"))
    },
    storage={r: D("0") for r in REGIONS},
    s3={r: D("0.023") for r in REGIONS},
)
SECOND_ACCOUNT = "222233334444"
SECOND_ROLE = f"arn:aws:iam::{SECOND_ACCOUNT}:role/SpendTrackerRead"


# -- helpers ---------------------------------------------------------------------------------
class _Raw:
    """The raw body botocore's AWSResponse streams."""

    def __init__(self, body: bytes):
        self.body = body

    def stream(self, **_: Any) -> Any:
        yield self.body


def throttle_response(protocol: str, url: str) -> AWSResponse:
    """What AWS sends when it throttles, in each protocol the tracker's services speak."""
    if protocol == "rest-xml":  # S3
        body = b"<Error><Code>SlowDown</Code><Message>Please reduce your request rate.</Message></Error>"
        return AWSResponse(url, 503, {"x-amz-request-id": "storm"}, _Raw(body))
    if protocol == "query":  # STS
        body = (b"<ErrorResponse><Error><Type>Sender</Type><Code>Throttling</Code>"
                b"<Message>Rate exceeded</Message></Error><RequestId>storm</RequestId></ErrorResponse>")  # fmt: skip
        return AWSResponse(url, 400, {}, _Raw(body))
    body = b'{"__type": "ThrottlingException", "message": "Rate exceeded"}'  # SageMaker, Tagging
    return AWSResponse(url, 400, {"x-amzn-requestid": "storm"}, _Raw(body))


@pytest.fixture
def client_hooks(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, Any, bool]]:
    """(event, handler, first) registered on every botocore client made during the test."""
    hooks: list[tuple[str, Any, bool]] = []
    original = botocore.session.Session.create_client

    def create_client(self: Any, *args: Any, **kwargs: Any) -> Any:
        client = original(self, *args, **kwargs)
        for event, handler, first in hooks:
            register = client.meta.events.register_first if first else client.meta.events.register
            register(event, handler)
        return client

    monkeypatch.setattr(botocore.session.Session, "create_client", create_client)
    return hooks


@pytest.fixture
def no_backoff(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """Retries without waiting (the delays botocore asked for are recorded instead)."""
    slept: list[float] = []
    monkeypatch.setattr("botocore.endpoint.time.sleep", slept.append)
    monkeypatch.setattr("botocore.retries.bucket.TokenBucket.acquire", lambda *a, **k: True)
    return slept


@pytest.fixture
def aws() -> Any:
    with mock_aws():
        yield


def settings(*sources: Source, **collection: Any) -> Settings:
    """The list path, whose ListTrainingJobs and DescribeTrainingJob these faults hit;
    tests/test_search.py injects the Search path's faults."""
    sources = sources or (Source("prod", REGIONS),)
    return Settings(
        sources=sources, collection=CollectionSettings(**{"method": "list", **collection})
    )


def run(store: Store, cfg: Settings | None = None, now: datetime = NOW) -> Any:
    cfg = cfg or settings()
    factory = AwsContextFactory(cfg.collection, base_session=session())
    return collect(cfg, store, BOOK, clock=lambda: now, context_factory=factory)


_SESSION: list[boto3.Session] = []


def session() -> boto3.Session:
    """One boto3 Session for the module (its parsed service models are reused: fast tests)."""
    if not _SESSION:
        _SESSION.append(boto3.Session())
    return _SESSION[0]


def seed_many(count: int, region: str = "us-east-1", account: str = DEFAULT_ACCOUNT,
              prefix: str = "job", **spec: Any) -> None:  # fmt: skip
    """``count`` m5 jobs of 3600 s (0.25 each), one a minute from T0, with a model artifact."""
    for i in range(count):
        seed_job_fast(f"{prefix}-{i:03d}", account_id=account, region=region,
                      start=T0 + timedelta(minutes=i), tags={"team": prefix},
                      artifact_bytes=1000 + i, output_bucket=f"art-{account}-{region}",
                      **spec)  # fmt: skip


def stored(store_or_url: Store | str) -> dict[str, tuple]:
    """ARN -> everything stored about the job that a rerun must reproduce (ids aside)."""
    store = Store.open(store_or_url) if isinstance(store_or_url, str) else store_or_url
    return {
        j.arn: (j.name, j.status, j.team, j.list_micros, j.effective_micros, j.artifact_bytes,
                j.flags, j.last_modified_time, j.start_time, j.end_time, j.billable_seconds)
        for j in store.jobs()
    }  # fmt: skip


def consistent(db: Path) -> None:
    """SQLite's own check, and every job's days adding up to the job: nothing half-written."""
    connection = sqlite3.connect(db)
    assert connection.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    rows = connection.execute(
        "SELECT j.name, j.list_micros, COALESCE(SUM(d.list_micros), 0), COUNT(d.day) "
        "FROM jobs j LEFT JOIN job_cost_days d ON d.job_id = j.id GROUP BY j.id"
    ).fetchall()
    for name, total, days, count in rows:
        assert (total, count > 0) == (days, True), name
    connection.close()


# -- throttling storms -------------------------------------------------------------------------
@pytest.mark.parametrize("mode", ["adaptive", "standard"])
def test_throttling_storm_loses_and_duplicates_nothing(
    aws: Any, tmp_path: Path, client_hooks: list, no_backoff: list[float], mode: str
) -> None:
    """Every other HTTP attempt to every service is throttled (SageMaker, Tagging, S3, STS),
    and the first four attempts of the run in a row: 20 jobs in two regions (10 x 0.25 each)."""
    for region in REGIONS:
        seed_many(10, region, prefix=f"{region}-job")
    reference = Store.open(f"sqlite:///{tmp_path / 'calm.db'}")
    run(reference)

    attempts = Counter()
    throttled = Counter()

    def storm(request: Any, event_name: str, **_: Any) -> AWSResponse | None:
        service = event_name.split(".")[1]
        attempts["all"] += 1
        if attempts["all"] <= 4 or attempts["all"] % 2 == 0:
            throttled[service] += 1
            protocol = {"s3": "rest-xml", "sts": "query"}.get(service, "json")
            return throttle_response(protocol, request.url)
        return None

    client_hooks.append(("before-send", storm, True))
    store = Store.open(f"sqlite:///{tmp_path / 'storm.db'}")
    summary = run(store, settings(retry_mode=mode, max_attempts=10))

    assert summary.ok, collection_text(summary)
    assert set(throttled) >= {"sagemaker", "resource-groups-tagging-api", "s3", "sts"}
    assert summary.total("retries") >= sum(throttled.values()) - 1  # STS's own client aside
    assert store.count_jobs() == 20
    assert stored(store) == stored(reference)
    totals = {r["team"]: r["list"] for r in ViewQueries(store).by_dimension("team", Window())}
    assert totals == {"us-east-1-job": 2_500_000, "us-west-2-job": 2_500_000}
    assert len(no_backoff) >= sum(throttled.values()) - 1
    again = run(store, settings(retry_mode=mode), now=NOW + timedelta(minutes=5))
    assert (again.total("new"), again.total("updated"), store.count_jobs()) == (0, 0, 20)


def test_throttling_beyond_max_attempts_fails_the_region_then_catches_up(
    aws: Any, tmp_path: Path, client_hooks: list, no_backoff: list[float]
) -> None:
    """us-west-2's ListTrainingJobs is throttled on every attempt: that region fails, us-east-1
    is stored, and the next run (storm over) collects us-west-2 without duplicating anything."""
    seed_many(3, "us-east-1", prefix="east")
    seed_many(2, "us-west-2", prefix="west")
    storming = [True]

    def storm(request: Any, **_: Any) -> AWSResponse | None:
        if storming[0] and "us-west-2" in request.url:
            return throttle_response("json", request.url)
        return None

    client_hooks.append(("before-send.sagemaker.ListTrainingJobs", storm, True))
    store = Store.open(f"sqlite:///{tmp_path / 'tracker.db'}")
    first = run(store, settings(retry_mode="standard", max_attempts=4))
    assert [(r.region, r.new, (r.error or "")[:30]) for r in first.regions] == [
        ("us-east-1", 3, ""), ("us-west-2", 0, "ThrottlingException on ListTra")]  # fmt: skip
    assert first.regions[1].retries == 3

    storming[0] = False
    second = run(
        store, settings(retry_mode="standard", max_attempts=4), now=NOW + timedelta(minutes=5)
    )
    assert [(r.region, r.new, r.error) for r in second.regions] == [
        ("us-east-1", 0, None), ("us-west-2", 2, None)]  # fmt: skip
    assert store.count_jobs() == 5


# -- two collectors at once on one SQLite database ----------------------------------------------
def test_two_collectors_at_once_on_one_sqlite_database(aws: Any, tmp_path: Path) -> None:
    """Two collectors (same account, both regions) race over one SQLite file: both finish,
    every job is stored once, and the totals are those of one run: 2 x 20 x 0.25 = 10.00."""
    for region in REGIONS:
        seed_many(20, region, prefix=f"{region}-job")
    url = f"sqlite:///{tmp_path / 'shared.db'}"
    Store.open(url).engine.dispose()
    outcomes: list[Any] = []
    start = threading.Barrier(2)

    def collector() -> None:
        store = Store.open(url)
        start.wait()
        try:
            outcomes.append(run(store))
        except BaseException as exc:  # noqa: BLE001 - asserted below
            outcomes.append(exc)
        store.engine.dispose()

    threads = [threading.Thread(target=collector) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert all(not isinstance(o, BaseException) and o.ok for o in outcomes), outcomes
    store = Store.open(url)
    assert store.count_jobs() == 40
    assert sum(r["list"] for r in ViewQueries(store).by_dimension("team", Window())) == 10_000_000
    consistent(tmp_path / "shared.db")
    assert {(w.region, w.last_error) for w in store.watermarks()} == {(r, None) for r in REGIONS}


# -- SIGKILL mid-collection, then rerun -------------------------------------------------------
KILL_JOBS = 10  # 8 finished m5 jobs (0.25 each), one 2 x g5 (3.00), one running m5
KILL_POINTS = int(os.environ.get("TRACKER_FAULT_KILL_POINTS", "2"))  # per kind of point
KILL_SEED = int(os.environ.get("TRACKER_FAULT_SEED", "20261126"))


def _hooked_collect(config: Path, db: Path, env: dict[str, str], *hook: str) -> Any:
    """The real ``tracker collect`` in a process of its own, through tests/fault_hook.py."""
    return run_module(
        "tests.fault_hook",
        ["--batch-size", "3", *hook, "--", "--config", str(config), "--db", f"sqlite:///{db}",
         "collect"],
        env={**os.environ, **env}, cwd=REPO, timeout=120,
    )  # fmt: skip


def _database_state(db: Path) -> dict[str, Any]:
    """Jobs, their days and the watermarks: what an interrupted-then-rerun DB must equal."""
    connection = sqlite3.connect(db)
    state = {
        "jobs": stored(f"sqlite:///{db}"),
        "days": sorted(
            connection.execute(
                "SELECT j.arn, d.day, d.list_micros, d.effective_micros FROM job_cost_days d "
                "JOIN jobs j ON j.id = d.job_id"
            ).fetchall()
        ),  # fmt: skip
        "watermarks": sorted(
            connection.execute(
                "SELECT account_id, region, source, last_modified, last_success_at, last_error "
                "FROM watermarks"
            ).fetchall()
        ),  # fmt: skip
    }
    connection.close()
    return state


@pytest.fixture
def kill_project(tmp_path: Path, moto_endpoint: str) -> tuple[Path, dict[str, str]]:
    from tests.conftest import seed_job

    session = boto3.Session(region_name="us-east-1")
    sm, s3 = session.client("sagemaker"), session.client("s3")
    for i in range(KILL_JOBS - 2):
        seed_job(sm, f"k-{i}", s3=s3, start=T0 + timedelta(minutes=i), artifact_bytes=100 + i,
                 tags={"team": "kill"})  # fmt: skip
    seed_job(sm, "k-g5", instance_type="ml.g5.2xlarge", count=2, tags={"team": "kill"})
    seed_job(sm, "k-running", status="InProgress", billable=None, start=T0, tags={"team": "kill"})
    (tmp_path / "prices.csv").write_text(
        "region,instance_type,usd_per_hour,source,source_date\n"
        "us-east-1,ml.m5.xlarge,0.25,test,2026-10-01\nus-east-1,ml.g5.2xlarge,1.50,test,2026-10-01\n"
    )
    config = tmp_path / "tracker.toml"
    config.write_text(
        '[[sources]]\nname = "prod"\nregions = ["us-east-1"]\n'
        '[pricing]\noverrides = "prices.csv"\n'
        "[collection]\npage_size = 4\n"
    )
    return config, {"AWS_ENDPOINT_URL": moto_endpoint, "TRACKER_NOW": "2026-10-01T12:00:00Z"}


@pytest.mark.e2e
def test_sigkill_at_random_points_then_rerun_equals_uninterrupted(
    kill_project: tuple[Path, dict[str, str]], tmp_path: Path
) -> None:
    """SIGKILL before an AWS request, before an SQL statement (mid-transaction) and as a
    commit starts; the rerun must leave the database exactly as an uninterrupted run."""
    config, env = kill_project
    reference_db, counts_file = tmp_path / "reference.db", tmp_path / "counts.json"
    done = _hooked_collect(config, reference_db, env, "--count", str(counts_file))
    assert done.returncode == 0, done.stderr
    reference = _database_state(reference_db)
    assert len(reference["jobs"]) == KILL_JOBS
    counts = json.loads(counts_file.read_text())

    rng = random.Random(KILL_SEED)
    points = [f"commit:{n}" for n in rng.sample(range(2, counts["commit"] + 1), KILL_POINTS)]
    points += [f"sql:{n}" for n in rng.sample(range(1, counts["sql"] + 1), KILL_POINTS)]
    points += [f"aws:{n}" for n in rng.sample(range(1, counts["aws"] + 1), KILL_POINTS)]

    def kill_then_rerun(point: str) -> tuple[str, Path]:
        db = tmp_path / f"killed-{point.replace(':', '-')}.db"
        killed = _hooked_collect(config, db, env, "--kill-at", point)
        assert killed.returncode == -9, (point, killed.stderr)
        rerun = _hooked_collect(config, db, env)
        assert rerun.returncode == 0, (point, rerun.stderr)
        return point, db

    with ThreadPoolExecutor(max_workers=3) as pool:  # independent databases, one moto server
        for point, db in pool.map(kill_then_rerun, points):
            assert _database_state(db) == reference, point
            consistent(db)


# -- a denied region and an account with expired credentials ------------------------------------
def _sts_error(code: str) -> Any:
    def handler(request: Any, **_: Any) -> AWSResponse | None:
        body = (f"<ErrorResponse><Error><Type>Sender</Type><Code>{code}</Code><Message>The "
                "security token included in the request is expired</Message></Error>"
                "<RequestId>x</RequestId></ErrorResponse>").encode()  # fmt: skip
        return AWSResponse(request.url, 400, {}, _Raw(body))

    return handler


def test_denied_region_and_expired_account_are_recorded_shown_and_caught_up(
    aws: Any, tmp_path: Path, client_hooks: list, capsys: pytest.CaptureFixture[str]
) -> None:
    """prod: us-east-1 (2 jobs) fine, us-west-2 (1 job) AccessDenied; research (1 job, assumed
    role) fails with ExpiredToken. The first run stores prod's 2, records both failures and
    `tracker status` shows them; the next run, access restored, stores the other 2."""
    from tracker.cli.main import main

    seed_many(2, "us-east-1", prefix="east")
    seed_many(1, "us-west-2", prefix="west")
    seed_many(1, "us-east-1", account=SECOND_ACCOUNT, prefix="research")
    cfg = settings(
        Source("prod", REGIONS), Source("research", ("us-east-1",), role_arn=SECOND_ROLE)
    )
    denied = [True]

    def deny_west(request: Any, **_: Any) -> AWSResponse | None:
        if denied[0] and "us-west-2" in request.url:
            body = b'{"__type": "AccessDeniedException", "message": "not authorized"}'
            return AWSResponse(request.url, 400, {}, _Raw(body))
        return None

    def expire(request: Any, **kwargs: Any) -> AWSResponse | None:
        return _sts_error("ExpiredToken")(request) if denied[0] else None

    client_hooks.append(("before-send.sagemaker.ListTrainingJobs", deny_west, True))
    client_hooks.append(("before-send.sts.AssumeRole", expire, True))
    url = f"sqlite:///{tmp_path / 'tracker.db'}"
    store = Store.open(url)
    first = run(store, cfg)

    assert [(r.source, r.region, r.new, (r.error or "").split(" on ")[0]) for r in first.regions] == [
        ("prod", "us-east-1", 2, ""), ("prod", "us-west-2", 0, "AccessDeniedException"),
        ("research", "us-east-1", 0, "ExpiredToken")]  # fmt: skip
    assert first.status == "partial" and store.last_runs(1)[0].status == "partial"
    assert sorted(j.name for j in store.jobs()) == ["east-000", "east-001"]

    config = tmp_path / "tracker.toml"
    config.write_text(f'[database]\nurl = "{url}"\n')
    assert main(["--config", str(config), "status", "--format", "json"]) == 0
    status = {
        (c["account"], c["region"]): c for c in json.loads(capsys.readouterr().out)["collection"]
    }
    assert status[(DEFAULT_ACCOUNT, "us-east-1")]["last_error"] is None
    assert status[(DEFAULT_ACCOUNT, "us-west-2")]["last_error"].startswith("AccessDeniedException")
    assert status[(SECOND_ACCOUNT, "us-east-1")]["last_error"].startswith("ExpiredToken")
    assert status[(SECOND_ACCOUNT, "us-east-1")]["last_success_at"] is None
    assert main(["--config", str(config), "status"]) == 0
    assert "ExpiredToken" in capsys.readouterr().out

    denied[0] = False
    second = run(store, cfg, now=NOW + timedelta(minutes=10))
    assert [(r.region, r.new, r.error) for r in second.regions] == [
        ("us-east-1", 0, None), ("us-west-2", 1, None), ("us-east-1", 1, None)]  # fmt: skip
    assert store.count_jobs() == 4
    assert all(w.last_error is None and w.last_success_at for w in store.watermarks())


# -- odd DescribeTrainingJob responses ----------------------------------------------------------
BARE_KEYS = ("ResourceConfig", "StoppingCondition", "BillableTimeInSeconds", "TrainingTimeInSeconds",
             "TrainingStartTime", "TrainingEndTime", "SecondaryStatus", "SecondaryStatusTransitions",
             "ModelArtifacts", "OutputDataConfig", "EnableManagedSpotTraining", "AlgorithmSpecification",
             "RoleArn", "LastModifiedTime", "HyperParameters", "InputDataConfig")  # fmt: skip


def _oddities(parsed: dict[str, Any], **_: Any) -> None:
    """Rewrite DescribeTrainingJob responses in flight, per job name."""
    name = parsed.get("TrainingJobName")
    if name == "bare":
        for key in BARE_KEYS:
            parsed.pop(key, None)
    elif name == "unknown-type":
        parsed["ResourceConfig"]["InstanceType"] = "ml.zz9.mega"
    elif name == "unknown-status":
        parsed["TrainingJobStatus"] = "Archived"
        parsed["SecondaryStatus"] = "Archived"
    elif name == "far-zones":  # same instants, written in UTC+14 and UTC-09:30
        plus14, minus930 = timezone(timedelta(hours=14)), timezone(-timedelta(hours=9, minutes=30))
        parsed["TrainingStartTime"] = parsed["TrainingStartTime"].astimezone(plus14)
        parsed["TrainingEndTime"] = parsed["TrainingEndTime"].astimezone(minus930)
        parsed["LastModifiedTime"] = parsed["LastModifiedTime"].astimezone(plus14)


def test_odd_describe_responses_are_stored_and_flagged_never_a_crash(
    aws: Any, tmp_path: Path, client_hooks: list, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The host runs in Asia/Kathmandu (UTC+05:45), so botocore hands back local times.

    | job            | response                                   | stored                          |
    |----------------|--------------------------------------------|---------------------------------|
    | plain          | 1 x m5, 3600 s                             | 0.25                            |
    | bare           | only name, ARN, status, creation time      | 0, flagged, unpriced            |
    | unknown-type   | ml.zz9.mega                                | 0, unpriced:ml.zz9.mega         |
    | unknown-status | status Archived, times and billable known  | as sent, flagged, 0.25          |
    | far-zones      | times in UTC+14 / UTC-09:30                | same UTC instants, 0.25         |
    """
    monkeypatch.setenv("TZ", "Asia/Kathmandu")
    time.tzset()
    try:
        for i, name in enumerate(["plain", "bare", "unknown-type", "unknown-status", "far-zones"]):
            seed_job_fast(name, start=T0 + timedelta(hours=i), tags={"team": "odd"})
        client_hooks.append(("after-call.sagemaker.DescribeTrainingJob", _oddities, False))
        store = Store.open(f"sqlite:///{tmp_path / 'odd.db'}")
        summary = run(store, settings(Source("prod", ("us-east-1",))))
    finally:
        monkeypatch.delenv("TZ")
        time.tzset()

    assert summary.ok, collection_text(summary)
    jobs = {j.name: j for j in store.jobs()}
    assert sorted(jobs) == ["bare", "far-zones", "plain", "unknown-status", "unknown-type"]
    assert {n: j.list_micros for n, j in jobs.items()} == {
        "plain": 250_000, "bare": 0, "unknown-type": 0, "unknown-status": 250_000,
        "far-zones": 250_000}  # fmt: skip
    assert jobs["bare"].unpriced and "no-instance-type" in jobs["bare"].flags
    assert (jobs["bare"].start_time, jobs["bare"].billable_seconds) == (None, None)
    assert jobs["unknown-type"].unpriced and "unpriced:ml.zz9.mega" in jobs["unknown-type"].flags
    assert jobs["unknown-status"].status == "Archived"
    assert "unknown-status" in jobs["unknown-status"].flags
    far = jobs["far-zones"]
    start = (T0 + timedelta(hours=4)).replace(tzinfo=None)
    assert (far.start_time, far.end_time) == (start, start + timedelta(hours=1))
    assert jobs["plain"].start_time == T0


# -- a full disk and a read-only database -------------------------------------------------------
@pytest.mark.e2e
def test_disk_full_mid_collection_one_line_error_nothing_half_written(
    kill_project: tuple[Path, dict[str, str]], tmp_path: Path
) -> None:
    """The disk fills up (every file capped a little above the empty database) while jobs are
    being saved: exit 1 with one ``Error:`` line, whole batches only, and a rerun with space
    again stores exactly what an undisturbed run stores."""
    config, env = kill_project
    reference_db = tmp_path / "reference.db"
    assert _hooked_collect(config, reference_db, env).returncode == 0
    db = tmp_path / "full.db"
    Store.open(f"sqlite:///{db}").engine.dispose()  # the schema fits; the jobs will not
    cap = db.stat().st_size + 40_000

    full = _hooked_collect(config, db, env, "--max-file-bytes", str(cap))

    assert full.returncode == 1, full.stderr
    assert full.stderr.count("\n") == 1, full.stderr
    assert full.stderr.startswith("Error: database error: "), full.stderr
    assert full.stderr.endswith("(is the disk full? nothing of the failed write was kept)\n")
    assert "Traceback" not in full.stderr
    consistent(db)
    partial = _database_state(db)
    assert len(partial["jobs"]) < KILL_JOBS
    assert partial["watermarks"] == []  # not advanced past jobs that were never saved
    assert _hooked_collect(config, db, env).returncode == 0
    assert _database_state(db) == _database_state(reference_db)
    consistent(db)


@pytest.mark.e2e
def test_read_only_database_one_line_error_and_unchanged(
    kill_project: tuple[Path, dict[str, str]], tmp_path: Path
) -> None:
    """A database opened read-only (a read-only mount, a replica): collect fails in one line and
    changes nothing; reports from it still work."""
    from tests.conftest import run_cli

    config, env = kill_project
    db = tmp_path / "tracker.db"
    assert _hooked_collect(config, db, env).returncode == 0
    before = _database_state(db)
    read_only = f"sqlite:///file:{db}?mode=ro&uri=true"

    result = run_cli("--config", str(config), "--db", read_only, "collect", env=env)

    # Refused before the first write (issue 10): a bad-input exit naming the read-only database.
    assert result.returncode == 2
    assert result.stderr == (
        f"Error: database {read_only} is read-only and this command writes to it; pass a "
        "writable --db (read-only databases serve report, budgets, status, reconcile --against "
        "estimates, export and serve)\n"
    )
    assert _database_state(db) == before
    report = run_cli(
        "--config", str(config), "--db", read_only, "report", "--format", "json", env=env
    )
    assert report.returncode == 0, report.stderr
    assert json.loads(report.stdout)[0]["total_usd"] == 5.75  # 8 x 0.25 + 3.00 + 3 h x 0.25
