"""``method = "search"`` and ``method = "list"`` store the same thing.

The corpus is the demo organisation (tracker.aws.simulate.demo_jobs: its special cases and 40
random jobs over two accounts and three regions, artifacts and checkpoints in S3), plus a
serverless job, a job whose warm pool is still open and a job whose tags have an empty value.
It is collected once by each method into its own database; every stored column (every money
column to the micro-dollar, the artifact bytes, the flags, the attribution, the raw record)
and every per-day cost row must be equal. Then one job changes and both collect again.

The organisation is seeded once for the module and both collections made once (the slow
part); a test that changes a job works on copies of the databases, and its change to moto
is undone after it (tests.conftest.training_jobs_restored).
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from moto import mock_aws
from sqlalchemy import select

from tests.conftest import training_jobs_restored
from tracker.aws import sagemaker as aws_sagemaker
from tracker.aws.simulate import (
    SimJob,
    clients_for,
    demo_jobs,
    seed_organisation,
    update_job,
    use_documented_search,
)
from tracker.collect import parse
from tracker.collect.service import collect
from tracker.cost.engine import cost_job
from tracker.settings import Attribution, CollectionSettings, Settings, Source
from tracker.store.database import Store
from tracker.store.schema import Job, JobCostDay

NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
PROD, RESEARCH = "123456789012", "210987654321"
SOURCES = (
    Source("prod", ("us-east-1", "us-west-2")),
    Source(
        "research",
        ("us-east-1", "eu-west-1"),
        role_arn=f"arn:aws:iam::{RESEARCH}:role/SpendTrackerRead",
    ),
)
NOT_COMPARED = {"id", "collected_at", "costed_at"}
BASE_MODEL = "arn:aws:sagemaker:us-east-1:aws:hub-content/SageMakerPublicHub/Model/llama/1"


@pytest.fixture(scope="module")
def organisation() -> Iterator[list[SimJob]]:
    """The corpus on moto, seeded once for the module (``corpus`` undoes a test's changes)."""
    with mock_aws():
        jobs = demo_jobs(NOW, 40, seed=13)
        seed_organisation(jobs)
        random_prod = next(j for j in jobs if j.account_id == PROD and j.region == "us-east-1")
        update_job(
            PROD, "us-east-1", random_prod.name, resource_config=None,
            serverless_job_config={"BaseModelArn": BASE_MODEL, "JobType": "FineTuning"},
            billable_token_count=2_500_000,
        )  # fmt: skip
        pooled = next(j for j in jobs if j.account_id == RESEARCH and j.region == "eu-west-1")
        update_job(RESEARCH, "eu-west-1", pooled.name, warm_pool_status={"Status": "Available"})
        yield jobs


@pytest.fixture
def corpus(organisation: list[SimJob]) -> Iterator[list[SimJob]]:
    """The corpus as seeded: what the test changes on moto's jobs is put back after it."""
    with training_jobs_restored():
        yield organisation


@pytest.fixture(scope="module")
def collected(
    organisation: list[SimJob], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Path]:
    """The corpus as seeded, collected once by each method: ``search/search.db`` and
    ``list/list.db`` under the folder returned (tests copy them before changing them)."""
    folder = tmp_path_factory.mktemp("collected")
    with training_jobs_restored():
        for method in ("search", "list"):
            (folder / method).mkdir()
            collect_into(folder / method, method).engine.dispose()
    yield folder


def copy_of(collected: Path, method: str, into: Path) -> Path:
    """A copy of the collected database of ``method`` in ``into``; returns ``into``."""
    into.mkdir(parents=True)
    shutil.copy(collected / method / f"{method}.db", into / f"{method}.db")
    return into


def settings(method: str) -> Settings:
    return Settings(sources=SOURCES, collection=CollectionSettings(method=method))


def collect_into(tmp_path, method: str, now: datetime = NOW) -> Store:
    store = Store.open(f"sqlite:///{tmp_path / f'{method}.db'}")
    cfg = settings(method)
    summary = collect(cfg, store, cfg.price_book(), clock=lambda: now)
    assert summary.ok, summary.to_dict()
    return store


def stored(store: Store) -> dict[str, dict]:
    with store.session() as session:
        jobs = {
            job.arn: {k: v for k, v in job.model_dump().items() if k not in NOT_COMPARED}
            for job in session.execute(select(Job)).scalars()
        }
        ids = {job.id: job.arn for job in session.execute(select(Job)).scalars()}
        for day in session.execute(select(JobCostDay)).scalars():
            row = {k: v for k, v in day.model_dump().items() if k != "job_id"}
            jobs[ids[day.job_id]].setdefault("days", []).append(row)
    for job in jobs.values():
        job.setdefault("days", []).sort(key=lambda row: row["day"])
    return jobs


def test_search_and_list_store_the_same_jobs_costs_bytes_and_flags(corpus, collected) -> None:
    searched = stored(Store.open(f"sqlite:///{collected / 'search' / 'search.db'}"))
    listed = stored(Store.open(f"sqlite:///{collected / 'list' / 'list.db'}"))

    assert len(searched) == len(corpus) == 53  # 40 random, 13 special cases
    assert sorted(searched) == sorted(listed)
    for arn, job in searched.items():
        assert job == listed[arn], arn
    # The corpus reaches what it claims to: money, bytes, flags, serverless, an open pool.
    every = list(searched.values())
    assert sum(j["list_micros"] for j in every) > 0
    assert sum(j["artifact_bytes"] for j in every) > 0
    assert any(j["serverless_base_model_arn"] == BASE_MODEL for j in every)
    assert any(j["warm_pool_status"] == "Available" for j in every)
    assert any("unpriced" in j["flags"] for j in every)
    assert any(j["checkpoint_uri"] for j in every)


def test_search_and_list_agree_again_after_a_job_changes(corpus, collected, tmp_path) -> None:
    copy_of(collected, "search", tmp_path / "a")
    copy_of(collected, "list", tmp_path / "b")
    running = next(j for j in corpus if j.status == "InProgress")
    update_job(
        running.account_id, running.region, running.name,
        training_job_status="Completed", secondary_status="Completed",
        training_end_time=NOW + timedelta(minutes=30),
        last_modified_time=NOW + timedelta(minutes=31),
        billable_time_in_seconds=9000, training_time_in_seconds=9000,
    )  # fmt: skip
    later = NOW + timedelta(hours=1)
    searched = stored(collect_into(tmp_path / "a", "search", later))
    listed = stored(collect_into(tmp_path / "b", "list", later))
    assert searched == listed
    done = next(j for j in searched.values() if j["name"] == running.name)
    assert (done["status"], done["billable_seconds"]) == ("Completed", 9000)


def test_search_record_and_describe_response_cost_the_same(corpus) -> None:
    """Per record, every demo job: what Search returns and what DescribeTrainingJob returns
    parse to the same JobRecord and cost the same to the micro-dollar; the one serverless
    job is the one record that needs the describe."""
    use_documented_search()
    book = settings("search").price_book()
    seen, needs = 0, []
    for account, regions in ((PROD, ("us-east-1", "us-west-2")), (RESEARCH, ("us-east-1", "eu-west-1"))):  # fmt: skip
        for region in regions:
            client = clients_for(account, region, PROD)["sagemaker"]
            for record in aws_sagemaker.search_changed_jobs(client, None):
                desc, tags = parse.search_record_parts(record)
                full = aws_sagemaker.describe_job(client, record["TrainingJobName"])
                from_search = parse.job_from_describe(desc, account, region, tags, 0, Attribution())
                from_describe = parse.job_from_describe(
                    full, account, region, tags, 0, Attribution()
                )
                if parse.needs_describe(record):
                    needs.append(record["TrainingJobName"])
                    continue
                assert from_search == from_describe
                rates = book.rates_for(from_search, Decimal(0))
                assert cost_job(from_search, rates, NOW) == cost_job(from_describe, rates, NOW)
                seen += 1
    assert seen == len(corpus) - 1 and len(needs) == 1
