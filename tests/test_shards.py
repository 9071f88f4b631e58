"""Several collector processes on one PostgreSQL database split the (account, region) pairs
with advisory locks (tracker/store/locks.py): no pair is collected twice at once, every job
is stored once, a crashed collector's pairs go to the next run. SQLite: no-op locks.

The end-to-end set-up: three accounts through their roles, two regions each (six pairs),
eight jobs per pair, 1 x ml.m5.xlarge at $0.25/h for 3600 s = 0.25 each: 48 jobs, 12.00.
"""

from __future__ import annotations

import json
import os
import signal
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from moto import mock_aws
from sqlalchemy import create_engine, text

from tests.conftest import REPO, postgres_available
from tests.processes import Child
from tracker.aws.session import AwsContextFactory
from tracker.collect.service import SkippedPair, collect
from tracker.cost.prices import PriceBook
from tracker.settings import CollectionSettings, Settings, Source
from tracker.store.database import Store
from tracker.store.locks import AdvisoryPairLocks, NoPairLocks, pair_key, pair_locks

requires_pg = pytest.mark.skipif(
    not postgres_available(), reason="PostgreSQL is not answering on 127.0.0.1:5432"
)
ACCOUNTS = ("111111111111", "222222222222", "333333333333")
REGIONS = ("us-east-1", "us-west-2")
JOBS_PER_PAIR = 8
NOW = datetime(2026, 10, 2, tzinfo=UTC)
BOOK = PriceBook({(r, "ml.m5.xlarge"): Decimal("0.25") for r in REGIONS})


# -- the locks -------------------------------------------------------------------------------
def test_pair_key_is_stable_and_distinct() -> None:
    assert pair_key("public", "111111111111", "us-east-1") == pair_key(
        "public", "111111111111", "us-east-1"
    )
    keys = {pair_key(s, a, r) for s in ("public", "t_x") for a in ACCOUNTS for r in REGIONS}
    assert len(keys) == 12
    assert all(-(2**63) <= k < 2**63 for k in keys)
    # Written down: a change of the key would let old and new collectors overlap.
    assert pair_key("public", "111111111111", "us-east-1") == -8_600_156_360_817_385_173


def test_pair_locks_on_sqlite_are_no_ops(tmp_path: Path) -> None:
    locks = pair_locks(f"sqlite:///{tmp_path / 'x.db'}")
    assert isinstance(locks, NoPairLocks)
    first = locks.try_acquire("111111111111", "us-east-1")
    second = locks.try_acquire("111111111111", "us-east-1")
    assert first is not None and second is not None


@requires_pg
@pytest.mark.postgres
def test_advisory_lock_is_held_once_until_released(pg_url: str) -> None:
    Store.open(pg_url).engine.dispose()
    one, two = AdvisoryPairLocks(pg_url), AdvisoryPairLocks(pg_url)
    try:
        lease = one.try_acquire("111111111111", "us-east-1")
        assert lease is not None
        assert two.try_acquire("111111111111", "us-east-1") is None
        other = two.try_acquire("111111111111", "us-west-2")  # another pair is free
        assert other is not None
        lease.release()
        again = two.try_acquire("111111111111", "us-east-1")
        assert again is not None
        assert one.try_acquire("111111111111", "us-east-1") is None
    finally:
        one.close()
        two.close()
    # close() released everything: a third holder gets both pairs.
    three = AdvisoryPairLocks(pg_url)
    assert three.try_acquire("111111111111", "us-east-1") is not None
    assert three.try_acquire("111111111111", "us-west-2") is not None
    three.close()


@requires_pg
@pytest.mark.postgres
def test_collect_skips_a_pair_another_collector_holds(pg_url: str) -> None:
    """A pair held elsewhere is listed as skipped, not failed; the other pair is collected."""
    from tests.conftest import seed_job

    store = Store.open(pg_url)
    holder = AdvisoryPairLocks(pg_url)
    with mock_aws():
        import boto3

        for region in REGIONS:
            seed_job(boto3.client("sagemaker", region_name=region), f"job-{region}")
        held = holder.try_acquire("123456789012", "us-west-2")
        assert held is not None
        cfg = Settings(sources=(Source("prod", REGIONS),),
                       collection=CollectionSettings(workers=2, measure_artifacts=False))  # fmt: skip
        summary = collect(cfg, store, BOOK, clock=lambda: NOW,
                          context_factory=AwsContextFactory(cfg.collection))  # fmt: skip
    holder.close()
    assert (summary.status, [r.region for r in summary.regions]) == ("ok", ["us-east-1"])
    assert summary.skipped == [SkippedPair("prod", "123456789012", "us-west-2")]
    assert summary.to_dict()["skipped"] == [{"source": "prod", "account_id": "123456789012",
                                             "region": "us-west-2",
                                             "reason": "held by another collector"}]  # fmt: skip
    assert [j.name for j in store.jobs()] == ["job-us-east-1"]
    store.engine.dispose()


# -- three real collector processes ------------------------------------------------------------
def _seed_pairs() -> int:
    from tracker.aws.simulate import SimJob, clients_for, create_job

    start = datetime(2026, 10, 1, 8, tzinfo=UTC)
    count = 0
    for account in ACCOUNTS:
        for region in REGIONS:
            clients = clients_for(account, region)
            for i in range(JOBS_PER_PAIR):
                create_job(clients, SimJob(f"j-{account[:3]}-{region}-{i}", account, region,
                                           start=start, end=start + timedelta(hours=1),
                                           billable_seconds=3600, training_seconds=3600,
                                           tags={"team": account[:3]},
                                           bucket=f"ml-{account}-{region}"))  # fmt: skip
                count += 1
    return count


def _config(tmp_path: Path, workers: int) -> Path:
    overrides = tmp_path / "overrides.csv"
    overrides.write_text("region,instance_type,usd_per_hour,source,source_date\n" + "".join(
        f"{r},ml.m5.xlarge,0.25,test,2026-10-01\n" for r in REGIONS))  # fmt: skip
    sources = "".join(
        f'[[sources]]\nname = "a{a[:3]}"\nregions = {json.dumps(list(REGIONS))}\n'
        f'role_arn = "arn:aws:iam::{a}:role/SpendTrackerRead"\n'
        for a in ACCOUNTS
    )
    config = tmp_path / "tracker.toml"
    config.write_text(
        f'{sources}[pricing]\noverrides = "{overrides}"\n'
        f"[collection]\nmeasure_artifacts = false\nworkers = {workers}\n"
    )
    return config


def _collector(args: list[str], env: dict[str, str]) -> Child:
    """``python -m ARGS`` in a process of its own (tests/processes.py)."""
    return Child(args[0], args[1:], env=env, cwd=REPO)


def _runs(pg_url: str) -> list[dict]:
    engine = create_engine(pg_url)
    with engine.connect() as connection:
        rows = connection.execute(
            text("SELECT summary_json FROM collection_runs WHERE finished_at IS NOT NULL")
        ).scalars()
        runs = [json.loads(r) for r in rows]
    engine.dispose()
    return runs


def _stored(pg_url: str) -> tuple[int, int, int]:
    """(job rows, distinct ARNs, total list micro-dollars)."""
    engine = create_engine(pg_url)
    with engine.connect() as connection:
        row = connection.execute(
            text("SELECT count(*), count(DISTINCT arn), coalesce(sum(list_micros), 0) FROM jobs")
        ).one()
    engine.dispose()
    return tuple(int(v) for v in row)


@requires_pg
@pytest.mark.postgres
@pytest.mark.e2e
def test_three_collectors_never_collect_a_pair_twice_at_once(
    pg_url: str, moto_endpoint: str, tmp_path: Path
) -> None:
    total = _seed_pairs()
    Store.open(pg_url).engine.dispose()  # the schema, before three processes race to make it
    config = _config(tmp_path, workers=2)
    log = tmp_path / "pairs.log"
    env = {**os.environ, "AWS_ENDPOINT_URL": moto_endpoint, "TRACKER_NOW": "2026-10-02T00:00:00Z"}
    args = ["tests.shard_hook", str(log), "--", "--config", str(config), "--db", pg_url, "collect"]
    processes = [_collector(args, env) for _ in range(3)]
    outcomes = [(p.wait(timeout=180), p.stdout.read(), p.stderr.read()) for p in processes]
    assert [code for code, _, _ in outcomes] == [0, 0, 0], outcomes

    intervals: dict[tuple[str, str], list[tuple[float, float, str]]] = {}
    for line in log.read_text().splitlines():
        pid, account, region, start, end = line.split()
        intervals.setdefault((account, region), []).append((float(start), float(end), pid))
    assert sorted(intervals) == sorted((a, r) for a in ACCOUNTS for r in REGIONS)
    for pair, spans in intervals.items():
        spans.sort()
        for (_, end, pid), (start, _, other) in zip(spans, spans[1:], strict=False):
            assert end <= start, f"{pair} collected at once by {pid} and {other}"

    runs = _runs(pg_url)
    assert len(runs) == 3 and all(r["status"] == "ok" for r in runs)
    assert sum(r["new"] for r in runs) == total == 48  # each job inserted by one process
    assert _stored(pg_url) == (48, 48, 48 * 250_000)


@requires_pg
@pytest.mark.postgres
@pytest.mark.e2e
def test_crashed_collector_leaves_its_pairs_to_the_next_run(
    pg_url: str, moto_endpoint: str, tmp_path: Path
) -> None:
    """One collector (one worker) is SIGKILLed at its 6th AWS request, in its first pair;
    the next run of another collector is not blocked by the dead one's lock and stores all."""
    total = _seed_pairs()
    Store.open(pg_url).engine.dispose()
    config = _config(tmp_path, workers=1)
    env = {**os.environ, "AWS_ENDPOINT_URL": moto_endpoint, "TRACKER_NOW": "2026-10-02T00:00:00Z"}
    tracker = ["--config", str(config), "--db", pg_url, "collect"]
    crashed = _collector(["tests.fault_hook", "--kill-at", "aws:6", "--", *tracker], env)
    assert crashed.wait(timeout=120) == -signal.SIGKILL, crashed.stderr.read()
    assert _stored(pg_url)[0] < total

    # PostgreSQL ends the dead process's sessions (and their advisory locks) when it sees the
    # closed socket: wait for that condition, bounded, before the next run.
    _wait_for_no_advisory_locks(pg_url, deadline_seconds=30)
    survivor = _collector(["tracker", *tracker], env)
    code = survivor.wait(timeout=120)
    assert code == 0, survivor.stdout.read() + survivor.stderr.read()
    (last,) = _runs(pg_url)  # the killed run never finished
    assert last["skipped"] == []
    assert len(last["regions"]) == 6
    assert _stored(pg_url) == (total, total, total * 250_000)


def _wait_for_no_advisory_locks(pg_url: str, deadline_seconds: float) -> None:
    """Until no session holds one of this test's pair locks (its schema's keys)."""
    engine = create_engine(pg_url)
    try:
        with engine.connect() as connection:
            schema = connection.execute(text("SELECT current_schema()")).scalar()
        keys = [pair_key(schema, a, r) for a in ACCOUNTS for r in REGIONS]
        until = time.monotonic() + deadline_seconds
        while True:
            with engine.connect() as connection:
                held = connection.execute(
                    text("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND "
                         "((classid::bigint << 32) | objid::bigint) = ANY(:keys)"),
                    {"keys": keys},
                ).scalar()  # fmt: skip
            if not held or time.monotonic() > until:
                return
            time.sleep(0.05)
    finally:
        engine.dispose()
