"""The spend rollup (``spend_days``) equals a full recomputation from the job tables, and every
report and view reads the same micro-dollars from it as from the job tables (issue 14).

The corpus is the demo organisation (tracker.aws.simulate.demo_jobs: its special cases and
40 random jobs) collected through moto, on SQLite and PostgreSQL; then a recost with another
discount, a re-collect after a job changed status (and running jobs grew with
time passing) and factory jobs that move between tuples or lose their price.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
from moto import mock_aws
from sqlalchemy import select

from tests.backends import db_url_fixture  # noqa: F401
from tests.conftest import training_jobs_restored
from tests.factories import make_job
from tracker.aws.simulate import SimJob, demo_jobs, seed_organisation, update_job
from tracker.collect.recost import recost
from tracker.collect.service import collect
from tracker.cost.engine import CostPolicy, cost_job
from tracker.records import Rates
from tracker.report.spend import spend_count, spend_rows, spend_total
from tracker.report.views import ViewRequest, build
from tracker.settings import Settings, Source
from tracker.store import rollup
from tracker.store.database import Store
from tracker.store.lite import LiteQueries, LiteStore
from tracker.store.query import ViewQueries, Window
from tracker.store.schema import SpendDay

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
DIMENSIONS = ("team", "project", "user", "instance_type", "account", "region", "status",
              "day", "month")  # fmt: skip
RATES = Rates(hourly={"ml.m5.xlarge": Decimal("0.23")})


def stored_rollup(store: Store) -> dict[tuple, tuple]:
    """Every rollup row: (day, *key) -> (*counts, *money)."""
    table = SpendDay.__table__
    with store.engine.connect() as connection:
        rows = connection.execute(select(table)).mappings().all()
    return {
        (row["day"], *(row[name] for name in rollup.KEY)): tuple(
            int(row[name]) for name in (*rollup.COUNTS, *rollup.MONEY)
        )
        for row in rows
    }


def recomputed(store: Store) -> dict[tuple, tuple]:
    """The rollup as the job tables define it."""
    with store.engine.connect() as connection:
        rows = connection.execute(rollup.recompute_query()).mappings().all()
    return {
        (row["day"], *(bool(row[n]) if n in ("final", "unpriced") else row[n] for n in rollup.KEY)):
            tuple(int(row[name]) for name in (*rollup.COUNTS, *rollup.MONEY))
        for row in rows
    }  # fmt: skip


def normalised(found: dict[tuple, tuple]) -> dict[tuple, tuple]:
    return {
        (*key[:-3], bool(key[-3]), bool(key[-2]), key[-1]): value for key, value in found.items()
    }


def assert_rollup_exact(store: Store) -> None:
    expected = recomputed(store)
    assert expected, "the corpus has spend"
    assert normalised(stored_rollup(store)) == expected


def windows(store: Store) -> list[Window]:
    """No window, open ends, a window starting inside running jobs, and filtered ones."""
    first, last = ViewQueries(store).spend_days()
    middle = first + (last - first) / 2
    return [
        Window(),
        Window(since=middle),
        Window(until=middle),
        Window(middle - timedelta(days=9), middle),
        Window(middle, middle),
        Window(first, last, {"team": "nlp"}),
        Window(since=middle, filters={"account": PROD, "status": "Completed"}),
        Window(filters={"project": "unallocated"}),
    ]


def every_answer(store: Store) -> list:
    """Every rolled query's rows, and the real report and view functions' output."""
    queries = ViewQueries(store)
    found: list = [queries.spend_days()]
    for window in windows(store):
        for by in DIMENSIONS:
            found.append(queries.by_dimension(by, window))
            found.append(queries.by_dimension(by, window, limit=2, offset=1))
            found.append(queries.count_dimension(by, window))
            found.append(queries.distinct_jobs(by, window))
            found.append(queries.spend([by], window, in_flight=True))
            found.append(queries.spend([by], window, final_only=True))
        found.append(queries.spend(["day", "team"], window, in_flight=True))
        found.append(queries.spend(["month", "region"], window))
        found.append(queries.distinct_jobs(None, window))
        found.append(queries.unpriced_flags(window))
        found.append(queries.totals(window))
        found.append(queries.pivot("team", "month", window))
        args = {"since": window.since, "until": window.until, "filters": window.filters}
        found.append([spend_rows(store, by, **args) for by in DIMENSIONS])
        found.append([spend_count(store, by, **args) for by in DIMENSIONS])
        found.append(spend_total(store, "team", **args))
        for view, rows_by, cols_by in (("showback", "team", "month"),
                                       ("showback", "project", "account"), ("trend", "team", "month"),
                                       ("waste", "team", "month")):  # fmt: skip
            request = ViewRequest(view, window.since, window.until, dict(window.filters),
                                  rows_by=rows_by, cols_by=cols_by)  # fmt: skip
            table = build(store, request, NOW)
            found.append((table.title, table.subtitle, table.rows, table.notes))
    return found


def light_answers(
    store: Store | LiteStore, queries: ViewQueries | LiteQueries, asked: list[Window]
) -> list:
    """What the light read path answers (tracker.store.lite), asked of either path."""
    found: list = []
    for window in asked:
        for by in DIMENSIONS:
            found.append(queries.by_dimension(by, window))
            found.append(queries.by_dimension(by, window, limit=2, offset=1))
            found.append(queries.count_dimension(by, window))
            found.append(queries.distinct_jobs(by, window))
            found.append(queries.spend([by], window, in_flight=True))
            found.append(queries.spend([by], window, final_only=True))
        found.append(queries.spend(["month", "region"], window))
        found.append(queries.distinct_jobs(None, window))
        found.append(queries.totals(window))
        found.append(queries.unpriced_flags(window))
        found.append(queries.pivot("team", "month", window))
        args = {"since": window.since, "until": window.until, "filters": window.filters}
        found.append([spend_rows(store, by, **args) for by in DIMENSIONS])
        found.append(spend_total(store, "team", **args))
        request = ViewRequest("showback", window.since, window.until, dict(window.filters))
        table = build(store, request, NOW)
        found.append((table.title, table.subtitle, table.rows, table.notes))
    return found


def assert_same_with_and_without_rollup(store: Store) -> None:
    with_rollup = every_answer(store)
    store.use_rollup = False
    try:
        without = every_answer(store)
        asked = windows(store)
        from_job_tables = light_answers(store, ViewQueries(store), asked)
    finally:
        store.use_rollup = True
    assert with_rollup == without
    lite = LiteStore.open(store.url)
    if store.engine.dialect.name == "sqlite":
        assert lite is not None, "a plain SQLite file at head opens light"
        assert light_answers(lite, LiteQueries(lite), asked) == from_job_tables
    else:
        assert lite is None


def collect_corpus(url: str, now: datetime = NOW) -> Store:
    store = Store.open(url)
    cfg = Settings(sources=SOURCES)
    summary = collect(cfg, store, cfg.price_book(), clock=lambda: now)
    assert summary.ok, summary.to_dict()
    return store


@pytest.fixture(scope="module")
def organisation() -> Iterator[list[SimJob]]:
    """The demo organisation on moto, seeded once for the module (for both databases)."""
    with mock_aws():
        jobs = demo_jobs(NOW, 40, seed=13)
        seed_organisation(jobs)
        yield jobs


@pytest.fixture
def corpus(organisation: list[SimJob]) -> Iterator[list[SimJob]]:
    """The organisation as seeded: what the test changes on moto's jobs is put back after it."""
    with training_jobs_restored():
        yield organisation


def test_rollup_equals_recomputation_on_demo_corpus(db_url: str, corpus: list[SimJob]) -> None:
    """Collect, recost at a 20 % discount, re-collect after changes: after each step the
    rollup equals the recomputation; at the end (the rollup having been written by all three)
    every report and view agrees with the job tables to the micro-dollar."""
    store = collect_corpus(db_url)
    assert_rollup_exact(store)

    settings = Settings(sources=SOURCES)
    recost(store, settings.price_book(), CostPolicy(), Decimal(20), NOW)
    assert_rollup_exact(store)

    moved = next(j for j in corpus if j.account_id == PROD and j.region == "us-east-1")
    later = NOW + timedelta(hours=20)
    update_job(
        PROD, "us-east-1", moved.name, training_job_status="Stopped",
        last_modified_time=later - timedelta(hours=1),
    )  # fmt: skip
    collect_corpus(db_url, later)
    assert_rollup_exact(store)
    assert_same_with_and_without_rollup(store)


def test_rollup_follows_jobs_moving_tuple_and_losing_price(db_url: str) -> None:
    """A job re-saved under another team, a longer run, then without a price: its old
    contribution leaves the old tuple (whose row disappears) and lands in the new one."""
    store = Store.open(db_url)
    policy = CostPolicy()
    first = make_job("a", "nlp", seconds=30 * 3600)
    other = make_job("b", "nlp", seconds=3600)
    store.save_jobs([(job, cost_job(job, RATES, NOW, policy), {}) for job in (first, other)], NOW)
    assert_rollup_exact(store)
    moved = make_job("a", "vision", seconds=50 * 3600)
    store.save_jobs([(moved, cost_job(moved, RATES, NOW, policy), {})], NOW)
    assert_rollup_exact(store)
    teams = {key[1] for key in stored_rollup(store)}
    assert teams == {"nlp", "vision"}
    assert ViewQueries(store).distinct_jobs("team", Window()) == {"nlp": 1, "vision": 1}
    unpriced = make_job("a", "vision", seconds=50 * 3600)
    store.save_jobs([(unpriced, cost_job(unpriced, Rates(hourly={}), NOW, policy), {})], NOW)
    assert_rollup_exact(store)
    (row,) = ViewQueries(store).spend([], Window(date(2026, 3, 11), date(2026, 3, 12)))
    assert (row["jobs"], row["unpriced_jobs"]) == (1, 1)
    assert_same_with_and_without_rollup(store)


def test_rebuild_rollups_restores_a_damaged_rollup(db_url: str) -> None:
    """``tracker db rebuild-rollups`` (rollup.rebuild) recomputes it from the job tables."""
    store = Store.open(db_url)
    jobs = [make_job("a", "nlp", seconds=30 * 3600), make_job("b", "cv")]
    store.save_jobs([(job, cost_job(job, RATES, NOW, CostPolicy()), {}) for job in jobs], NOW)
    expected = stored_rollup(store)
    with store.engine.begin() as connection:
        connection.execute(SpendDay.__table__.update().values(list_micros=1, jobs=7))
    assert stored_rollup(store) != expected
    with store.engine.begin() as connection:
        assert rollup.rebuild(connection) == 3
    assert normalised(stored_rollup(store)) == normalised(expected)


def test_concurrent_saves_into_one_tuple_keep_the_rollup_exact(db_url: str) -> None:
    """Four writers at once, each saving and re-saving jobs of the same team and days (and
    one emptying a tuple by moving its job away): every rollup row is the recomputation."""
    import threading

    Store.open(db_url).engine.dispose()  # the schema, once
    barrier = threading.Barrier(4)
    failures: list[BaseException] = []

    def writer(n: int) -> None:
        try:
            store = Store.open(db_url)
            barrier.wait()
            for round_ in range(3):
                team = "nlp" if round_ < 2 or n % 2 else f"moved-{n}"
                jobs = [make_job(f"w{n}-{i}", team, seconds=(20 + i) * 3600) for i in range(3)]
                store.save_jobs(
                    [(job, cost_job(job, RATES, NOW, CostPolicy()), {}) for job in jobs], NOW
                )
            store.engine.dispose()
        except BaseException as exc:  # reported below, in the test's thread
            failures.append(exc)

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []
    store = Store.open(db_url)
    assert_rollup_exact(store)
    assert ViewQueries(store).distinct_jobs("team", Window()) == {
        "nlp": 6, "moved-0": 3, "moved-2": 3,
    }  # fmt: skip
