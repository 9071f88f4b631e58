"""(source, account, region) pairs collected in a bounded thread pool: the same database as
the serial path, pairs really run at once, and ``[collection] workers`` is validated.

The set-up: two sources, the base account 123456789012 (us-east-1, us-west-2, eu-west-1)
and 222233334444 through an assumed role (us-east-1, us-west-2): five pairs, four jobs
each, 1 x ml.m5.xlarge at $0.20/h for 600 s x (1 + job number), no volume: per pair
0.033333 + 0.066667 + 0.100000 + 0.133333 = 0.333333 (micro-dollars), 1.666665 in all.
"""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import boto3
import pytest
from moto import mock_aws
from sqlalchemy import text

from tests.conftest import T0, seed_job
from tracker.aws.session import AwsContextFactory
from tracker.collect.service import collect
from tracker.cost.prices import PriceBook
from tracker.errors import ConfigError
from tracker.settings import CollectionSettings, Settings, Source, load_settings
from tracker.store.database import Store

NOW = datetime(2026, 10, 1, 15, 0, tzinfo=UTC)
OTHER = "222233334444"
ROLE = f"arn:aws:iam::{OTHER}:role/SpendTrackerRead"
BASE_REGIONS = ("us-east-1", "us-west-2", "eu-west-1")
OTHER_REGIONS = ("us-east-1", "us-west-2")
BOOK = PriceBook({(r, "ml.m5.xlarge"): Decimal("0.20") for r in BASE_REGIONS})


def _seed() -> None:
    base = boto3.Session()
    creds = base.client("sts", region_name="us-east-1").assume_role(
        RoleArn=ROLE, RoleSessionName="seed"
    )["Credentials"]
    other = boto3.Session(
        aws_access_key_id=creds["AccessKeyId"],
        aws_secret_access_key=creds["SecretAccessKey"],
        aws_session_token=creds["SessionToken"],
    )
    for session, regions, tag in ((base, BASE_REGIONS, "base"), (other, OTHER_REGIONS, "other")):
        for region in regions:
            sm = session.client("sagemaker", region_name=region)
            for i in range(4):
                seed_job(sm, f"{tag}-{region}-{i}", billable=600 * (i + 1),
                         start=T0 + timedelta(minutes=i), tags={"team": tag})  # fmt: skip


def _settings(workers: int) -> Settings:
    return Settings(
        sources=(
            Source("prod", BASE_REGIONS),
            Source("research", OTHER_REGIONS, role_arn=ROLE),
        ),
        collection=CollectionSettings(max_attempts=3, workers=workers, measure_artifacts=False),
    )


def _contents(store: Store) -> tuple[list[tuple], list[tuple]]:
    """Every stored job and job-day, without ids and collection times."""
    with store.engine.connect() as connection:
        jobs = connection.execute(text(
            "SELECT arn, account_id, region, team, list_micros, compute_micros, flags,"
            " billable_seconds, last_modified_time FROM jobs ORDER BY arn")).all()  # fmt: skip
        days = connection.execute(text(
            "SELECT j.arn, d.day, d.list_micros FROM job_cost_days d JOIN jobs j"
            " ON j.id = d.job_id ORDER BY j.arn, d.day")).all()  # fmt: skip
    return [tuple(r) for r in jobs], [tuple(r) for r in days]


def test_collect_parallel_stores_the_same_as_serial(tmp_path: Path) -> None:
    with mock_aws():
        _seed()
        results = {}
        for workers in (1, 4):
            store = Store.open(f"sqlite:///{tmp_path / f'w{workers}.db'}")
            cfg = _settings(workers)
            summary = collect(cfg, store, BOOK, clock=lambda: NOW,
                              context_factory=AwsContextFactory(cfg.collection))  # fmt: skip
            assert summary.ok, summary.to_dict()
            results[workers] = (
                [(r.source, r.account_id, r.region, r.new) for r in summary.regions],
                _contents(store),
            )
            store.engine.dispose()

    regions, (jobs, days) = results[1]
    assert regions == [
        ("prod", "123456789012", "us-east-1", 4), ("prod", "123456789012", "us-west-2", 4),
        ("prod", "123456789012", "eu-west-1", 4), ("research", OTHER, "us-east-1", 4),
        ("research", OTHER, "us-west-2", 4),
    ]  # fmt: skip
    assert len(jobs) == 20
    # Per pair 33_333 + 66_667 + 100_000 + 133_333 micro-dollars (each job rounded).
    assert sum(job[4] for job in jobs) == 5 * 333_333
    assert results[4] == results[1]


def test_collect_parallel_runs_pairs_at_the_same_time(tmp_path: Path) -> None:
    """Three pairs with workers=3 meet at a barrier inside the context factory: a serial
    collector would never get a second pair there and the barrier would break."""
    barrier = threading.Barrier(3, timeout=30)
    threads: set[str] = set()

    class MeetingFactory(AwsContextFactory):
        def __call__(self, source, region):
            threads.add(threading.current_thread().name)
            barrier.wait()
            return super().__call__(source, region)

    with mock_aws():
        cfg = Settings(sources=(Source("prod", BASE_REGIONS),),
                       collection=CollectionSettings(max_attempts=3, workers=3))  # fmt: skip
        store = Store.open(f"sqlite:///{tmp_path / 'meet.db'}")
        summary = collect(cfg, store, BOOK, clock=lambda: NOW,
                          context_factory=MeetingFactory(cfg.collection))  # fmt: skip
    assert summary.ok and len(summary.regions) == 3
    assert len(threads) == 3
    assert [r.region for r in summary.regions] == list(BASE_REGIONS)  # config order kept


@pytest.mark.parametrize("value", [0, 33, "4", 2.5])
def test_config_workers_out_of_range_is_one_line_problem(tmp_path: Path, value: object) -> None:
    path = tmp_path / "tracker.toml"
    shown = f'"{value}"' if isinstance(value, str) else value
    path.write_text(f'[[sources]]\nname = "p"\nregions = ["us-east-1"]\n'
                    f"[collection]\nworkers = {shown}\n")  # fmt: skip
    with pytest.raises(ConfigError) as info:
        load_settings(str(path))
    assert f"collection.workers: must be a whole number from 1 to 32, got {value!r}" in str(
        info.value
    )


def test_config_workers_default_and_value(tmp_path: Path) -> None:
    path = tmp_path / "tracker.toml"
    path.write_text('[[sources]]\nname = "p"\nregions = ["us-east-1"]\n')
    assert load_settings(str(path)).collection.workers == 4
    path.write_text(
        '[[sources]]\nname = "p"\nregions = ["us-east-1"]\n[collection]\nworkers = 32\n'
    )
    assert load_settings(str(path)).collection.workers == 32
