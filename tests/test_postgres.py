"""The store, the collector and the reports on PostgreSQL and on SQLite: same bodies, same numbers.

Every test taking ``db_url`` runs twice: on a SQLite file and on a fresh schema of the
PostgreSQL server at 127.0.0.1:5432 (database ``test``), which is skipped, with the
reason, where no server answers. Rates: ml.m5.xlarge $0.25/h, ml.g5.2xlarge $1.50/h
(both regions); no volumes, so no storage. ``now`` = 2026-10-03 12:00 UTC.

| job  | team     | account      | region    | instances     | UTC interval              | cost                       |
|------|----------|--------------|-----------|---------------|---------------------------|----------------------------|
| a1   | nlp      | 111111111111 | us-east-1 | 2 x m5.xlarge | 09-30 22:00 -> 10-01 02:00 | 0.25*2*4 = 2.00 (1.00/day) |
| b1   | vision   | 222222222222 | us-west-2 | 1 x g5.2xl    | 10-01 10:00 -> 12:00       | 1.50*2 = 3.00              |
| c1   | (none)   | 111111111111 | us-east-1 | 1 x m5.xlarge | 10-02 00:00 -> 01:30       | 0.25*1.5 = 0.375           |
| d1   | research | 111111111111 | us-east-1 | 1 x trn1.32xl | 10-02 03:00 -> 04:00       | 0, unpriced                |
| r1   | nlp      | 111111111111 | us-east-1 | 1 x m5.xlarge | 10-03 10:00 -> running     | 0.25*2 = 0.50 so far       |

By team: nlp 2.50, vision 3.00, unallocated 0.375 -> 0.38, research 0.00 (1 unpriced).
By month: 2026-09 1.00; 2026-10 1.00 + 3.00 + 0.375 + 0.50 = 4.875 -> 4.88.
By day: 09-30 1.00; 10-01 4.00; 10-02 0.375 (c1, d1); 10-03 0.50.
Since 10-01: nlp 1.00 + 0.50 = 1.50. Account 222222222222: vision 3.00 only.
At 13:00 the running job has cost 0.25*3 = 0.75.
"""

from __future__ import annotations

import json
import os
import threading
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from functools import partial
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from tests import factories
from tests.backends import db_url_fixture  # noqa: F401 - the db_url fixture
from tests.conftest import REPO, postgres_available
from tests.factories import HOUR
from tests.processes import Child
from tracker.collect.recost import recost
from tracker.cost.engine import CostPolicy, cost_job
from tracker.cost.prices import PriceBook
from tracker.records import JobRecord
from tracker.report.render import render
from tracker.report.spend import spend_rows, spend_table
from tracker.store.database import Store

D = Decimal
NOW = datetime(2026, 10, 3, 12, 0, tzinfo=UTC)
BOOK = PriceBook({(r, t): D(p) for r in ("us-east-1", "us-west-2")
                  for t, p in (("ml.m5.xlarge", "0.25"), ("ml.g5.2xlarge", "1.50"))})  # fmt: skip
A, B = "111111111111", "222222222222"


make_job = partial(factories.make_job, account_id=A)


def dt(day: int, hour: int, minute: int = 0, month: int = 10) -> datetime:
    return datetime(2026, month, day, hour, minute, tzinfo=UTC)


JOBS = [
    make_job("a1", "nlp", start_time=dt(30, 22, month=9), seconds=4 * HOUR, instance_count=2),
    make_job("b1", "vision", start_time=dt(1, 10), seconds=2 * HOUR, account_id=B,
             region="us-west-2", instance_type="ml.g5.2xlarge"),
    make_job("c1", start_time=dt(2, 0), seconds=int(1.5 * HOUR)),
    make_job("d1", "research", start_time=dt(2, 3), instance_type="ml.trn1.32xlarge"),
    make_job("r1", "nlp", start_time=dt(3, 10), seconds=None, status="InProgress"),
]  # fmt: skip


def _items(jobs: list[JobRecord], now: datetime = NOW) -> list:
    return [(j, cost_job(j, BOOK.rates_for(j), now, CostPolicy()), {"TrainingJobName": j.name})
            for j in jobs]  # fmt: skip


@pytest.fixture
def store(db_url: str) -> Store:
    store = Store.open(db_url)
    yield store
    store.engine.dispose()


@pytest.fixture
def filled(store: Store) -> Store:
    assert store.save_jobs(_items(JOBS), NOW) == (5, 0)
    return store


def totals(store: Store, by: str, **kw) -> dict[str, Decimal]:
    return {row[by]: row["total_usd"] for row in spend_rows(store, by, **kw)}


# -- store ---------------------------------------------------------------------------------
def test_store_saves_then_updates_by_arn_without_duplicates(filled: Store) -> None:
    finished = make_job("r1", "nlp", start_time=dt(3, 10))
    assert filled.save_jobs(_items([finished]), NOW) == (0, 1)
    assert filled.save_jobs(_items(JOBS[:2]), NOW) == (0, 2)
    assert filled.count_jobs() == 5
    r1 = filled.job_by_name("r1")
    assert (r1.status, r1.final, r1.list_micros) == ("Completed", True, 250_000)


def test_store_job_versions_round_trip_aware_utc(filled: Store) -> None:
    versions = filled.job_versions(A, "us-east-1", [j.arn for j in JOBS])
    assert versions == {j.arn: j.last_modified_time for j in JOBS if j.account_id == A}
    assert all(v.tzinfo is not None for v in versions.values())


def test_store_keeps_instants_given_in_other_time_zones(store: Store) -> None:
    tokyo = timezone(timedelta(hours=9))
    job = make_job("tz", "nlp", start_time=dt(1, 10).astimezone(tokyo))
    store.save_jobs(_items([job]), NOW)
    row = store.job_by_name("tz")
    assert (row.start_time, row.end_time) == (datetime(2026, 10, 1, 10), datetime(2026, 10, 1, 11))
    assert store.job_versions(A, "us-east-1", [job.arn]) == {job.arn: dt(1, 11)}


def test_store_money_is_exact_in_big_integers(store: Store) -> None:
    """A 10,000-instance job for 1,000 hours: 0.25*10000*1000 = 2,500,000.00 exactly."""
    huge = make_job("huge", "nlp", start_time=dt(1, 0), seconds=1000 * HOUR, instance_count=10_000)
    store.save_jobs(_items([huge, JOBS[2]]), NOW)
    assert totals(store, "team") == {"nlp": D("2500000.00"), "unallocated": D("0.38")}
    assert sum(r["_micros"]["list"] for r in spend_rows(store, "day")) == 2_500_000_375_000


def test_store_watermarks_advance_never_back_and_record_failures(store: Store) -> None:
    store.advance_watermark(A, "us-east-1", "prod", dt(2, 0), NOW)
    store.advance_watermark(A, "us-east-1", "prod", dt(1, 0), NOW)  # older: ignored
    assert store.watermark(A, "us-east-1") == dt(2, 0)
    store.record_region_failure(A, "us-east-1", "prod", "AccessDenied on ListTrainingJobs", NOW)
    (mark,) = store.watermarks()
    assert (mark.last_modified, mark.last_error) == (
        datetime(2026, 10, 2),
        "AccessDenied on ListTrainingJobs",
    )
    store.advance_watermark(A, "us-east-1", "prod", None, NOW + timedelta(hours=1))
    (mark,) = store.watermarks()
    assert (mark.last_modified, mark.last_error) == (datetime(2026, 10, 2), None)


def test_store_runs_start_and_finish(store: Store) -> None:
    run = store.start_run(NOW)
    store.finish_run(run, "partial", {"new": 3, "at": NOW}, NOW + timedelta(seconds=5))
    (last,) = store.last_runs()
    assert (last.status, json.loads(last.summary_json)) == (
        "partial", {"new": 3, "at": "2026-10-03T12:00:00+00:00"})  # fmt: skip


def test_store_recost_running_moves_only_running_jobs(filled: Store) -> None:
    assert (
        recost(filled, BOOK, CostPolicy(), D(0), NOW + timedelta(hours=1), running_only=True) == 1
    )
    assert totals(filled, "team")["nlp"] == D("2.75")
    assert totals(filled, "team")["vision"] == D("3.00")


# -- reports ---------------------------------------------------------------------------------
def test_report_by_team_month_day_to_the_cent(filled: Store) -> None:
    assert totals(filled, "team") == {"vision": D("3.00"), "nlp": D("2.50"),
                                      "unallocated": D("0.38"), "research": D("0.00")}  # fmt: skip
    assert totals(filled, "month") == {"2026-09": D("1.00"), "2026-10": D("4.88")}
    assert totals(filled, "day") == {"2026-09-30": D("1.00"), "2026-10-01": D("4.00"),
                                     "2026-10-02": D("0.38"), "2026-10-03": D("0.50")}  # fmt: skip
    rows = {r["team"]: r for r in spend_rows(filled, "team")}
    assert (rows["research"]["jobs"], rows["research"]["unpriced_jobs"]) == (1, 1)
    assert {r["day"]: (r["jobs"], r["unpriced_jobs"]) for r in spend_rows(filled, "day")} == {
        "2026-09-30": (1, 0), "2026-10-01": (2, 0), "2026-10-02": (2, 1), "2026-10-03": (1, 0)}  # fmt: skip
    assert {r["month"]: (r["jobs"], r["unpriced_jobs"]) for r in spend_rows(filled, "month")} == {
        "2026-09": (1, 0), "2026-10": (5, 1)}  # fmt: skip


def test_report_window_and_filters(filled: Store) -> None:
    assert totals(filled, "team", since=date(2026, 10, 1))["nlp"] == D("1.50")
    assert totals(filled, "team", until=date(2026, 9, 30)) == {"nlp": D("1.00")}
    assert totals(filled, "team", filters={"account": B}) == {"vision": D("3.00")}
    assert totals(filled, "region", filters={"team": "unallocated"}) == {"us-east-1": D("0.38")}


def test_report_every_dimension_sums_to_the_whole(filled: Store) -> None:
    """Every --by splits the same 5.875 (2.00 + 3.00 + 0.375 + 0.50) into its groups."""
    groups = {"team": 4, "project": 1, "user": 1, "instance_type": 3, "account": 2,
              "region": 2, "status": 2, "day": 4, "month": 2, "job": 5}  # fmt: skip
    for by, count in groups.items():
        rows = spend_rows(filled, by)
        assert len(json.loads(render(spend_table(rows, by), "json"))) == count, by
        assert sum(r["_micros"]["list"] for r in rows) == 5_875_000, by
        assert sum(r["jobs"] for r in rows) >= 5, by


# -- collector ---------------------------------------------------------------------------------
def test_collector_stores_moto_jobs_once(db_url: str) -> None:
    """Two jobs in moto: 1 x m5 for 3600 s (0.25) and 2 x g5 for 1800 s (1.50); rerun: no change."""
    from moto import mock_aws

    from tests.conftest import seed_job
    from tracker.collect.service import collect
    from tracker.settings import Settings, Source

    with mock_aws():
        import boto3

        sm = boto3.client("sagemaker", region_name="us-east-1")
        seed_job(sm, "m5-job", billable=3600, tags={"team": "nlp"})
        seed_job(sm, "g5-job", instance_type="ml.g5.2xlarge", count=2, billable=1800,
                 tags={"team": "vision"})  # fmt: skip
        settings = Settings(sources=(Source("prod", ("us-east-1",)),))
        store = Store.open(db_url)
        first = collect(settings, store, BOOK, clock=lambda: NOW)
        again = collect(settings, store, BOOK, clock=lambda: NOW + timedelta(minutes=10))

    assert (first.ok, first.total("new"), again.total("new"), again.total("updated")) == (
        True,
        2,
        0,
        0,
    )
    assert store.count_jobs() == 2
    assert totals(store, "team") == {"vision": D("1.50"), "nlp": D("0.25")}
    (mark,) = store.watermarks()
    assert mark.last_error is None and mark.last_success_at is not None
    store.engine.dispose()


# -- PostgreSQL only: the real CLI, and concurrent collectors --------------------------------
requires_pg = pytest.mark.skipif(
    not postgres_available(), reason="PostgreSQL is not answering on 127.0.0.1:5432"
)


@requires_pg
@pytest.mark.postgres
@pytest.mark.e2e
def test_cli_collects_and_reports_on_postgres(
    pg_url: str, moto_endpoint: str, tmp_path: Path
) -> None:
    from tests.conftest import run_cli
    from tracker.aws.simulate import SimJob, clients_for, create_job

    clients = clients_for(A, "us-east-1")
    start = datetime(2026, 10, 1, 8, tzinfo=UTC)
    create_job(clients, SimJob("pg-job", A, "us-east-1", count=2, start=start,
                               end=start + timedelta(hours=1), billable_seconds=3600,
                               training_seconds=3600, tags={"team": "nlp"}, bucket=f"ml-{A}"))  # fmt: skip
    config = _config(tmp_path, "prod", A)
    env = {"AWS_ENDPOINT_URL": moto_endpoint, "TRACKER_NOW": "2026-10-02T00:00:00Z"}
    collected = run_cli("--config", str(config), "--db", pg_url, "collect", env=env)
    assert collected.returncode == 0, collected.stderr + collected.stdout
    report = run_cli("--config", str(config), "--db", pg_url, "report", "--by", "team",
                     "--format", "json", env=env)  # fmt: skip
    assert report.returncode == 0, report.stderr
    assert [(r["team"], r["total_usd"]) for r in json.loads(report.stdout)] == [("nlp", 0.5)]


def _config(tmp_path: Path, name: str, account: str) -> Path:
    overrides = tmp_path / "overrides.csv"
    overrides.write_text("region,instance_type,usd_per_hour,source,source_date\n"
                         "us-east-1,ml.m5.xlarge,0.25,test,2026-10-01\n")  # fmt: skip
    config = tmp_path / f"{name}.toml"
    config.write_text(
        f'[[sources]]\nname = "{name}"\nregions = ["us-east-1"]\n'
        f'role_arn = "arn:aws:iam::{account}:role/SpendTrackerRead"\n'
        f'[pricing]\noverrides = "{overrides}"\n'
        "[collection]\nmeasure_artifacts = false\n"
    )
    return config


@requires_pg
@pytest.mark.postgres
@pytest.mark.e2e
def test_concurrent_collectors_for_different_accounts_share_one_postgres(
    pg_url: str, moto_endpoint: str, tmp_path: Path
) -> None:
    """Three `tracker collect` processes, one per account, start at once on an empty schema.

    Each account has 30 jobs of 1 x m5.xlarge for 3600 s at $0.25/h: 7.50 per account.
    """
    from tracker.aws.simulate import SimJob, clients_for, create_job

    accounts = {"acct-a": "111111111111", "acct-b": "222222222222", "acct-c": "333333333333"}
    start = datetime(2026, 10, 1, 8, tzinfo=UTC)
    for name, account in accounts.items():
        clients = clients_for(account, "us-east-1")
        for i in range(30):
            create_job(clients, SimJob(f"{name}-{i:02d}", account, "us-east-1", start=start,
                                       end=start + timedelta(hours=1), billable_seconds=3600,
                                       training_seconds=3600, tags={"team": name},
                                       bucket=f"ml-{account}"))  # fmt: skip
    env = {**os.environ, "AWS_ENDPOINT_URL": moto_endpoint, "TRACKER_NOW": "2026-10-02T00:00:00Z"}
    processes = [
        Child("tracker", ["--config", str(_config(tmp_path, n, a)), "--db", pg_url, "collect"],
              env=env, cwd=REPO)
        for n, a in accounts.items()
    ]  # fmt: skip
    outcomes = [(p.wait(timeout=120), p.stdout.read(), p.stderr.read()) for p in processes]
    assert [code for code, _, _ in outcomes] == [0, 0, 0], outcomes

    engine = create_engine(pg_url)
    with engine.connect() as connection:
        per_account = dict(connection.execute(
            text("SELECT account_id, count(*) FROM jobs GROUP BY account_id")).all())  # fmt: skip
        distinct_arns = connection.execute(text("SELECT count(DISTINCT arn) FROM jobs")).scalar()
        marks = connection.execute(
            text("SELECT account_id FROM watermarks WHERE last_error IS NULL ORDER BY 1")
        ).scalars().all()  # fmt: skip
    engine.dispose()
    assert per_account == {a: 30 for a in accounts.values()}
    assert distinct_arns == 90
    assert marks == sorted(accounts.values())
    store = Store.open(pg_url)
    assert totals(store, "team") == {n: D("7.50") for n in accounts}
    store.engine.dispose()


@requires_pg
@pytest.mark.postgres
def test_concurrent_saves_of_different_accounts_on_postgres(pg_url: str) -> None:
    """Four threads save 50 jobs each (different accounts) at once: 200 jobs, none lost."""
    Store.open(pg_url).engine.dispose()
    errors: list[BaseException] = []

    def save(account: str) -> None:
        try:
            store = Store.open(pg_url)
            jobs = [
                make_job(f"t{i}", "nlp", start_time=dt(1, 0), account_id=account) for i in range(50)
            ]
            for chunk in range(0, 50, 10):
                store.save_jobs(_items(jobs[chunk : chunk + 10]), NOW)
            store.engine.dispose()
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=save, args=(f"44444444444{i}",)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    store = Store.open(pg_url)
    assert store.count_jobs() == 200
    assert totals(store, "team") == {"nlp": D("50.00")}
    store.engine.dispose()


def test_concurrent_saves_of_the_same_jobs_merge(db_url: str) -> None:
    """Four writers save the same 40 jobs at once (as two collectors of one account would):
    each job is stored once, costs 0.25, and no writer fails."""
    Store.open(db_url).engine.dispose()
    jobs = [make_job(f"same-{i:02d}", "nlp", start_time=dt(1, 0)) for i in range(40)]
    errors: list[BaseException] = []
    barrier = threading.Barrier(4)

    def save(offset: int) -> None:
        store = Store.open(db_url)
        barrier.wait()
        try:
            for chunk in range(0, 40, 8):
                batch = jobs[(chunk + offset) % 40 :] + jobs[: (chunk + offset) % 40]
                store.save_jobs(_items(batch[:8]), NOW)
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)
        finally:
            store.engine.dispose()

    threads = [threading.Thread(target=save, args=(offset,)) for offset in (0, 8, 16, 24)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    store = Store.open(db_url)
    assert store.count_jobs() == 40
    assert totals(store, "team") == {"nlp": D("10.00")}
    store.engine.dispose()
