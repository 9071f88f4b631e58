"""Schema migrations: a first-release database upgrades to head keeping every row, head equals
the models exactly, a newer schema is refused, concurrent upgrades serialise.

The first-release database holds, written as that release's store wrote them:

| job     | team   | days (UTC)              | list micros per day   | total   |
|---------|--------|-------------------------|-----------------------|---------|
| nlp-1   | nlp    | 2026-10-01, 2026-10-02  | 1_000_000 + 500_000   | $1.50   |
| cv-1    | vision | 2026-10-02              | 2_250_000             | $2.25   |

plus one watermark and one collection run. After the upgrade the store reports
nlp 1.50 and vision 2.25 and October 2 = 0.50 + 2.25 = 2.75.
"""

from __future__ import annotations

import threading
from datetime import date, datetime
from pathlib import Path

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import MetaData, inspect, select, text
from sqlmodel import SQLModel

from tests.backends import db_url_fixture  # noqa: F401 - the db_url fixture
from tracker.cli.main import main
from tracker.errors import StoreError
from tracker.store import migrate
from tracker.store.database import Store, connect
from tracker.store.query import ViewQueries, Window

CORE_TABLES = ("jobs", "job_cost_days", "watermarks", "collection_runs")
T = datetime(2026, 10, 1, 22, 0)


def _job(job_id: int, name: str, team: str, list_micros: int) -> dict:
    return {
        "id": job_id, "account_id": "123456789012", "region": "us-east-1", "name": name,
        "arn": f"arn:aws:sagemaker:us-east-1:123456789012:training-job/{name}",
        "status": "Completed", "secondary_status": "Completed", "failure_reason": None,
        "final": True, "creation_time": T, "start_time": T, "end_time": datetime(2026, 10, 2, 1),
        "last_modified_time": datetime(2026, 10, 2, 1), "instance_type": "ml.m5.xlarge",
        "instance_count": 1, "requested_instance_type": "ml.m5.xlarge",
        "requested_instance_count": 1, "selected_instance_type": None,
        "selected_instance_count": None, "instance_groups_json": "[]", "volume_gb": 30,
        "spot": False, "billable_seconds": 10800, "training_seconds": 10800,
        "warm_pool_status": None, "warm_pool_retained_seconds": None,
        "warm_pool_reused_by": None, "keep_alive_seconds": None, "training_plan_arn": None,
        "serverless_base_model_arn": None, "billable_token_count": None,
        "max_runtime_seconds": 86400, "max_wait_seconds": None,
        "model_artifact_uri": f"s3://b/out/{name}/output/model.tar.gz",
        "output_path_uri": "s3://b/out", "checkpoint_uri": None, "artifact_bytes": 1024,
        "tags_json": f'{{"team": "{team}"}}', "team": team, "project": None, "user": "ana",
        "compute_micros": list_micros, "spot_savings_micros": 0, "warm_pool_micros": 0,
        "storage_micros": 0, "plan_value_micros": 0, "artifact_micros_per_month": 23,
        "list_micros": list_micros, "effective_micros": list_micros, "unpriced": False,
        "flags": "", "raw_json": "{}", "collected_at": T, "costed_at": T,
    }  # fmt: skip


def _day(job_id: int, day: date, micros: int) -> dict:
    return {"job_id": job_id, "day": day, "compute_micros": micros, "spot_savings_micros": 0,
            "warm_pool_micros": 0, "storage_micros": 0, "list_micros": micros,
            "effective_micros": micros, "artifact_micros_per_month": 0}  # fmt: skip


def jobs_after_upgrade(
    path: Path, revision: str, rows: list[dict], columns: list[str]
) -> list[tuple]:
    """Store ``rows`` in ``jobs`` of a database at ``revision``, upgrade it to head, and read
    ``columns`` of every job back in id order: what a back-filling revision is tested with."""
    url = f"sqlite:///{path}"
    engine = connect(url)
    with engine.begin() as connection:
        command.upgrade(migrate.alembic_config(connection), revision)
        tables = MetaData()
        tables.reflect(connection, only=["jobs"])
        connection.execute(tables.tables["jobs"].insert(), rows)
    engine.dispose()

    migrate.upgrade(url)

    engine = connect(url)
    tables = MetaData()
    with engine.connect() as connection:
        tables.reflect(connection, only=["jobs"])
        jobs = tables.tables["jobs"]
        found = connection.execute(select(*(jobs.c[c] for c in columns)).order_by(jobs.c.id)).all()
    engine.dispose()
    return [tuple(row) for row in found]


FIRST_RELEASE_ROWS = {
    "jobs": [_job(1, "nlp-1", "nlp", 1_500_000), _job(2, "cv-1", "vision", 2_250_000)],
    "job_cost_days": [
        _day(1, date(2026, 10, 1), 1_000_000),
        _day(1, date(2026, 10, 2), 500_000),
        _day(2, date(2026, 10, 2), 2_250_000),
    ],
    "watermarks": [
        {
            "account_id": "123456789012",
            "region": "us-east-1",
            "source": "prod",
            "last_modified": datetime(2026, 10, 2, 1),
            "last_success_at": T,
            "last_attempt_at": T,
            "last_error": None,
        }
    ],  # fmt: skip
    "collection_runs": [
        {"id": 1, "started_at": T, "finished_at": T, "status": "ok", "summary_json": '{"new": 2}'}
    ],  # fmt: skip
}


def _first_release_database(url: str, *, versioned: bool = True) -> None:
    """Revision 0001 only, with rows; ``versioned=False`` mimics a pre-migration database."""
    engine = connect(url)
    with engine.begin() as connection:
        command.upgrade(migrate.alembic_config(connection), migrate.FIRST_REVISION)
        tables = MetaData()
        tables.reflect(connection, only=CORE_TABLES)
        for name in CORE_TABLES:  # parents first: job_cost_days references jobs
            connection.execute(tables.tables[name].insert(), FIRST_RELEASE_ROWS[name])
        if not versioned:
            connection.execute(text("DROP TABLE alembic_version"))
    engine.dispose()


def _rows(url: str) -> dict[str, list[dict]]:
    """Every row of the core tables, only the first release's columns, in key order."""
    engine = connect(url)
    tables = MetaData()
    out = {}
    with engine.connect() as connection:
        tables.reflect(connection, only=CORE_TABLES)
        for name in CORE_TABLES:
            table = tables.tables[name]
            columns = [table.c[c] for c in FIRST_RELEASE_ROWS[name][0]]
            keys = [c for c in table.primary_key.columns]
            rows = connection.execute(select(*columns).order_by(*keys)).mappings().all()
            out[name] = [dict(r) for r in rows]
    engine.dispose()
    return out


def _revision(url: str) -> str | None:
    engine = connect(url)
    with engine.connect() as connection:
        revision = migrate.current(connection)
    engine.dispose()
    return revision


def test_upgrade_first_release_database_keeps_every_row(db_url: str) -> None:
    _first_release_database(db_url)
    before = _rows(db_url)
    assert before == FIRST_RELEASE_ROWS

    line = migrate.upgrade(db_url)

    assert _revision(db_url) == migrate.head()
    head = migrate.head()
    assert line.endswith(
        "nothing to do." if head == "0001" else f"upgraded from 0001 to {head} (head)."
    )
    assert _rows(db_url) == before
    store = Store.open(db_url)
    teams = {r["team"]: r["list"] for r in ViewQueries(store).by_dimension("team", Window())}
    assert teams == {"nlp": 1_500_000, "vision": 2_250_000}
    days = {r["day"]: r["list"] for r in ViewQueries(store).by_dimension("day", Window())}
    assert days == {date(2026, 10, 1): 1_000_000, date(2026, 10, 2): 2_750_000}
    store.engine.dispose()


def test_upgrade_adopts_pre_migration_database(tmp_path: Path) -> None:
    """A database made by create_all before migrations existed is the first release's."""
    url = f"sqlite:///{tmp_path / 'old.db'}"
    _first_release_database(url, versioned=False)
    assert "alembic_version" not in inspect(connect(url)).get_table_names()

    migrate.upgrade(url)

    assert _rows(url) == FIRST_RELEASE_ROWS
    engine = connect(url)
    with engine.connect() as connection:
        versions = connection.execute(text("SELECT version_num FROM alembic_version")).all()
    assert versions == [(migrate.head(),)]


def test_upgrade_head_matches_models_exactly(db_url: str) -> None:
    """``alembic upgrade head`` builds exactly SQLModel.metadata: autogenerate finds no diff."""
    engine = connect(db_url)
    with engine.begin() as connection:
        command.upgrade(migrate.alembic_config(connection), "head")
    with engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        assert compare_metadata(context, SQLModel.metadata) == []
    engine.dispose()


def test_upgrade_refuses_newer_schema_untouched(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'newer.db'}"
    engine = connect(url)
    with engine.begin() as connection:
        connection.execute(text("CREATE TABLE alembic_version (version_num VARCHAR(32))"))
        connection.execute(text("INSERT INTO alembic_version VALUES ('9999')"))

    with pytest.raises(StoreError) as refused:
        migrate.upgrade(url)

    message = str(refused.value)
    assert "\n" not in message
    assert "revision 9999, newer than this tracker knows" in message
    assert inspect(engine).get_table_names() == ["alembic_version"]
    with pytest.raises(StoreError, match="newer than this tracker knows"):
        migrate.describe_current(url)
    engine.dispose()


def test_store_open_upgrades_and_refuses_newer(tmp_path: Path) -> None:
    fresh = f"sqlite:///{tmp_path / 'fresh.db'}"
    Store.open(fresh).engine.dispose()
    assert _revision(fresh) == migrate.head()
    engine = connect(fresh)
    with engine.begin() as connection:
        connection.execute(text("UPDATE alembic_version SET version_num = '9999'"))
    engine.dispose()
    with pytest.raises(StoreError, match="newer than this tracker knows"):
        Store.open(fresh)


def test_cli_db_upgrade_then_current(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    head = migrate.head()

    assert main(["--db", url, "db", "current"]) == 0
    assert capsys.readouterr().out == (
        f"Database {url}: empty, no schema yet; run 'tracker db upgrade' (head {head}).\n"
    )
    assert main(["--db", url, "db", "upgrade"]) == 0
    assert capsys.readouterr().out == (
        f"Database {url}: schema upgraded from empty to {head} (head).\n"
    )
    assert main(["--db", url, "db", "upgrade"]) == 0
    assert "nothing to do" in capsys.readouterr().out
    assert main(["--db", url, "db", "current"]) == 0
    assert capsys.readouterr().out == f"Database {url}: schema at revision {head} (head).\n"


def test_cli_db_upgrade_newer_schema_exits_1_with_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url = f"sqlite:///{tmp_path / 'newer.db'}"
    engine = connect(url)
    with engine.begin() as connection:
        connection.execute(text("CREATE TABLE alembic_version (version_num VARCHAR(32))"))
        connection.execute(text("INSERT INTO alembic_version VALUES ('9999')"))
    engine.dispose()

    assert main(["--db", url, "db", "upgrade"]) == 1

    err = capsys.readouterr().err
    assert err.startswith("Error: database schema is at revision 9999, newer than")
    assert err.count("\n") == 1


def test_concurrent_upgrades_serialise(db_url: str) -> None:
    """Four processes' worth of upgrades at once on an empty database: one migrates, all succeed."""
    results: list[str] = []
    errors: list[BaseException] = []

    def run() -> None:
        try:
            results.append(migrate.upgrade(db_url))
        except BaseException as exc:  # noqa: BLE001 - reported by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    assert sum("upgraded from empty" in line for line in results) == 1
    assert _revision(db_url) == migrate.head()


def test_revisions_downgrade_to_base_and_back(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'round.db'}"
    engine = connect(url)
    with engine.begin() as connection:
        command.upgrade(migrate.alembic_config(connection), "head")
    with engine.begin() as connection:
        command.downgrade(migrate.alembic_config(connection), "base")
    assert set(inspect(engine).get_table_names()) == {"alembic_version"}
    engine.dispose()
    migrate.upgrade(url)
    assert _revision(url) == migrate.head()


def test_upgrade_adopts_a_development_database_made_by_create_all(tmp_path: Path) -> None:
    """Between the first release and migrations, databases were made by create_all from
    whatever models existed: some feature tables, no report indexes. They upgrade to head."""
    url = f"sqlite:///{tmp_path / 'dev.db'}"
    engine = connect(url)
    SQLModel.metadata.create_all(engine)
    with engine.begin() as connection:
        connection.execute(text("DROP INDEX ix_jobs_report"))
        connection.execute(text("DROP TABLE estimates"))
        connection.execute(text("DROP TABLE billed_lines"))
        tables = MetaData()
        tables.reflect(connection, only=CORE_TABLES)
        for name in CORE_TABLES:
            connection.execute(tables.tables[name].insert(), FIRST_RELEASE_ROWS[name])
    engine.dispose()

    store = Store.open(url)

    assert _revision(url) == migrate.head()
    assert _rows(url) == FIRST_RELEASE_ROWS
    with store.engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        assert compare_metadata(context, SQLModel.metadata) == []
    store.engine.dispose()


def test_head_constant_is_the_newest_revision() -> None:
    """migrate.HEAD lets an up-to-date database open without importing Alembic: keep it true."""
    assert migrate.head() == migrate.HEAD


def test_migration_0007_backfills_lineage_and_team_source_from_stored_records(
    tmp_path: Path,
) -> None:
    """Jobs stored at 0006 gain their lineage from the stored record and tags, their role, and
    where their team came from, with no AWS call: a tuning sweep member in a pipeline step
    with an experiment, a JumpStart fine-tune, and an untagged job with no record."""
    import json

    arn = "arn:aws:sagemaker:us-east-1:123456789012"
    record = {
        "RoleArn": "arn:aws:iam::123456789012:role/Train",
        "TuningJobArn": f"{arn}:hyper-parameter-tuning-job/sweep-7",
        "ExperimentConfig": {"ExperimentName": "llm-ft", "TrialName": "lr-sweep"},
    }
    tags = {"team": "nlp", "sagemaker:pipeline-execution-arn": f"{arn}:pipeline/train/execution/x1"}
    rows = [
        _job(1, "sweep-7-001", "nlp", 1) | {"raw_json": json.dumps(record), "tags_json": json.dumps(tags)},
        _job(2, "ft", "vision", 1) | {"tags_json": json.dumps({"team": "vision", "sagemaker-sdk:jumpstart-model-id": "llama-3-8b"})},
        _job(3, "loose", "unallocated", 1) | {"tags_json": "{}"},
    ]  # fmt: skip
    names = ["tuning_job", "pipeline", "pipeline_execution", "experiment", "trial", "base_model",
             "model", "role_arn", "team_source"]  # fmt: skip
    found = jobs_after_upgrade(tmp_path / "old.db", "0006", rows, names)
    assert [dict(zip(names, row, strict=True)) for row in found] == [
        {"tuning_job": "sweep-7", "pipeline": "train", "pipeline_execution": "train/x1",
         "experiment": "llm-ft", "trial": "lr-sweep", "base_model": None, "model": None,
         "role_arn": "arn:aws:iam::123456789012:role/Train", "team_source": "tag"},
        dict.fromkeys(names) | {"base_model": "llama-3-8b", "team_source": "tag"},
        dict.fromkeys(names) | {"team_source": "unallocated"},
    ]  # fmt: skip
