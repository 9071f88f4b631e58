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

import sqlite3
import threading
from collections import Counter
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import boto3
import botocore.session
import pytest
from botocore.awsrequest import AWSResponse
from moto import mock_aws

from tests.seed import DEFAULT_ACCOUNT, T0, seed_job_fast
from tracker.aws.session import AwsContextFactory
from tracker.collect import collect
from tracker.config import CollectionSettings, Settings, Source
from tracker.prices import PriceBook
from tracker.store import Store

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
    sources = sources or (Source("prod", REGIONS),)
    return Settings(sources=sources, collection=CollectionSettings(**collection))


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

    assert summary.ok, summary.render()
    assert set(throttled) >= {"sagemaker", "resource-groups-tagging-api", "s3", "sts"}
    assert summary.total("retries") >= sum(throttled.values()) - 1  # STS's own client aside
    assert store.count_jobs() == 20
    assert stored(store) == stored(reference)
    totals = {r["key"]: r["list"] for r in store.aggregate("team")}
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
    assert sum(r["list"] for r in store.aggregate("team")) == 10_000_000
    consistent(tmp_path / "shared.db")
    assert {(w.region, w.last_error) for w in store.watermarks()} == {(r, None) for r in REGIONS}
