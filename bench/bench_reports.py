"""Benchmark: reports on 1,000,000 stored jobs in SQLite, beside the ``sqlite3`` shell.

Data: 1,000 template jobs (four regions, five accounts, twenty teams, every cost shape)
are saved through the real ``Store.save_jobs``, so their rows, including the per-day
split in ``job_cost_days``, are exactly what the store writes. SQLite then copies them
999 times with ``INSERT ... SELECT``, each copy under new ids, names and ARNs and shifted
by whole days across 2026, keeping the store's text formats for times and days; the spend
rollup (``spend_days``) is then rebuilt from them as ``tracker db rebuild-rollups`` does.
The database is cached in ``bench/.data`` (rebuilt when the schema changes).

Measured, each a whole CLI run in a fresh process with its peak resident memory,
``--format json`` (issue 14 targets):
- ``tracker report --by team`` for June 2026 (one month): under 0.3 s,
- ``tracker report --by day`` for April to June 2026 (one quarter): under 0.3 s,
- ``tracker report --view showback`` for the quarter: under 0.5 s,
each under 150 MB, and each beside the ``sqlite3`` shell answering the same question on the
job tables (the statements the tracker ran before the rollup, captured and replayed with
their values inlined), measured in the same run: the tracker at most 1x the shell.

    python -m bench.bench_reports [--jobs 1000000] [--rebuild]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import random
import time
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from bench.common import REPO, Row, emit, machine, rows_json, run_measured

DATA = REPO / "bench" / ".data"
TEMPLATES = 1_000
REGIONS = ("us-east-1", "us-west-2", "eu-west-1", "ap-northeast-1")
ACCOUNTS = tuple(f"1000000000{i:02d}" for i in range(5))
TEAMS = tuple(f"team-{i:02d}" for i in range(20))
TYPES = ("ml.m5.xlarge", "ml.m5.4xlarge", "ml.g5.2xlarge", "ml.g5.12xlarge", "ml.p4d.24xlarge",
         "ml.c5.4xlarge", "ml.g4dn.xlarge")  # fmt: skip
NOW = datetime(2027, 1, 2, tzinfo=UTC)
MONTH = ("2026-06-01", "2026-06-30")
QUARTER = ("2026-04-01", "2026-06-30")
TARGET_MB = 150
SHELL = "/usr/bin/sqlite3"
PSQL = "/usr/bin/psql"
#: (label, what is asked, the report arguments, target seconds of the whole CLI run).
QUESTIONS = (
    ("by_team", "`report --by team` for a month", ["--by", "team", "--since", MONTH[0],
     "--until", MONTH[1]], 0.3),
    ("by_day", "`report --by day` for a quarter", ["--by", "day", "--since", QUARTER[0],
     "--until", QUARTER[1]], 0.3),
    ("showback", "`report --view showback` for a quarter", ["--view", "showback", "--since",
     QUARTER[0], "--until", QUARTER[1]], 0.5),
)  # fmt: skip
TIME_COLUMNS = ("creation_time", "start_time", "end_time", "last_modified_time")


def _templates() -> list[Any]:
    """1,000 JobRecords starting within 2026-01-01/02, each shape of job represented."""
    from tracker.records import InstanceGroup, JobRecord

    rng = random.Random(2026)
    records = []
    for j in range(TEMPLATES):
        start = datetime(2026, 1, 1, tzinfo=UTC) + timedelta(minutes=rng.randrange(0, 48 * 60))
        seconds = rng.randrange(600, 30 * 3600)
        spot = j % 7 == 1
        groups = ()
        if j % 11 == 3:
            groups = (
                InstanceGroup("ml.p4d.24xlarge", 2, "a"),
                InstanceGroup("ml.m5.4xlarge", 2, "b"),
            )
        team = TEAMS[j % len(TEAMS)]
        records.append(
            JobRecord(
                account_id=ACCOUNTS[j % len(ACCOUNTS)],
                region=REGIONS[j % len(REGIONS)],
                name=f"{team}-train-{j:04d}",
                arn=f"arn:aws:sagemaker:{REGIONS[j % len(REGIONS)]}:{ACCOUNTS[j % len(ACCOUNTS)]}"
                f":training-job/{team}-train-{j:04d}",
                status="Failed" if j % 13 == 5 else "Completed",
                creation_time=start - timedelta(minutes=5),
                last_modified_time=start + timedelta(seconds=seconds + 60),
                start_time=start,
                end_time=start + timedelta(seconds=seconds),
                instance_type=TYPES[j % len(TYPES)],
                instance_count=rng.choice([1, 1, 2, 4]),
                instance_groups=groups,
                volume_gb=rng.choice([30, 100]),
                spot=spot,
                billable_seconds=seconds * 2 // 5 if spot else seconds,
                training_seconds=seconds,
                warm_pool_status="Terminated" if j % 9 == 2 else None,
                warm_pool_retained_seconds=900 if j % 9 == 2 else None,
                artifact_bytes=rng.randrange(0, 2**31),
                tags={"team": team, "project": f"p{j % 50}", "owner": f"user{j % 300}"},
                team=team,
                project=f"p{j % 50}",
                user=f"user{j % 300}",
            )
        )
    return records


def _schema_key() -> str:
    """Changes whenever the tables change, so a cached database is rebuilt."""
    from sqlmodel import SQLModel

    import tracker.store.schema  # noqa: F401

    shape = [(t.name, [(c.name, str(c.type)) for c in t.columns], sorted(i.name for i in t.indexes))
             for t in SQLModel.metadata.sorted_tables]  # fmt: skip
    return hashlib.sha256(json.dumps(shape).encode()).hexdigest()[:10]


def build(path: Path, jobs: int) -> float:
    """Create the database at ``path``; returns the seconds it took."""
    from sqlalchemy import text

    from tracker.cost.engine import CostPolicy, cost_job
    from tracker.settings import Settings
    from tracker.store.database import Store
    from tracker.store.schema import Job, JobCostDay

    started = time.perf_counter()
    path.parent.mkdir(parents=True, exist_ok=True)
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    store = Store.open(f"sqlite:///{path}")
    book = Settings().price_book()
    items = []
    for record in _templates():
        cost = cost_job(record, book.rates_for(record, Decimal(0)), NOW, CostPolicy())
        items.append((record, cost, {"TrainingJobName": record.name}))
    store.save_jobs(items, NOW)

    job_columns = [c.name for c in Job.__table__.columns]
    day_columns = [c.name for c in JobCostDay.__table__.columns]
    select_job = ", ".join(_copy_expression(c) for c in job_columns)
    select_day = ", ".join(
        {"job_id": "job_id + :offset", "day": "date(day, :shift)"}.get(c, c) for c in day_columns
    )
    insert_jobs = text(
        f"INSERT INTO jobs ({', '.join(_quoted(c) for c in job_columns)}) "
        f"SELECT {select_job} FROM jobs WHERE id <= {TEMPLATES}"
    )
    insert_days = text(
        f"INSERT INTO job_cost_days ({', '.join(day_columns)}) "
        f"SELECT {select_day} FROM job_cost_days WHERE job_id <= {TEMPLATES}"
    )
    copies = jobs // TEMPLATES
    with store.engine.begin() as connection:
        for k in range(1, copies):
            params = {"offset": k * TEMPLATES, "suffix": f"-c{k:04d}",
                      "shift": f"+{k * 364 // copies} days"}  # fmt: skip
            connection.execute(insert_jobs, params)
            connection.execute(insert_days, params)
    from tracker.store.rollup import rebuild

    with store.engine.begin() as connection:
        rebuild(connection)
    with store.engine.connect() as connection:
        connection.exec_driver_sql("ANALYZE")
        connection.commit()
    store.engine.dispose()
    return time.perf_counter() - started


def _quoted(column: str) -> str:
    return f'"{column}"'


def _copy_expression(column: str) -> str:
    if column == "id":
        return "id + :offset"
    if column in ("name", "arn"):
        return f"{column} || :suffix"
    if column in TIME_COLUMNS:  # the store's own text format: 'YYYY-MM-DD HH:MM:SS.ffffff'
        return f"strftime('%Y-%m-%d %H:%M:%S', {column}, :shift) || '.000000'"
    return _quoted(column)


PG_SERVER = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


def pg_database(jobs: int, rebuild: bool) -> tuple[str, float | None]:
    """The same jobs in PostgreSQL (127.0.0.1, database ``test``, a schema of their own,
    kept between runs like the SQLite file): copied there by PostgreSQL's ``INSERT ...
    SELECT`` exactly as :func:`build` copies them in SQLite."""
    from sqlalchemy import create_engine, text

    schema = f"bench_reports_{jobs}_{_schema_key()}"
    url = f"{PG_SERVER}?options=-csearch_path%3D{schema}"
    admin = create_engine(PG_SERVER)
    with admin.begin() as connection:
        found = connection.execute(
            text("SELECT 1 FROM information_schema.schemata WHERE schema_name = :s"),
            {"s": schema},
        ).first()
        if found and not rebuild:
            return url, None
        connection.execute(text(f"DROP SCHEMA IF EXISTS {schema} CASCADE"))
        connection.execute(text(f"CREATE SCHEMA {schema}"))
    admin.dispose()
    return url, _build_postgres(url, jobs)


def _build_postgres(url: str, jobs: int) -> float:
    from sqlalchemy import text

    from tracker.cost.engine import CostPolicy, cost_job
    from tracker.settings import Settings
    from tracker.store.database import Store
    from tracker.store.rollup import rebuild
    from tracker.store.schema import Job, JobCostDay

    started = time.perf_counter()
    store = Store.open(url)
    book = Settings().price_book()
    items = []
    for record in _templates():
        cost = cost_job(record, book.rates_for(record, Decimal(0)), NOW, CostPolicy())
        items.append((record, cost, {"TrainingJobName": record.name}))
    store.save_jobs(items, NOW)

    def job_expression(column: str) -> str:
        if column == "id":
            return "id + :offset"
        if column in ("name", "arn"):
            return f"{column} || :suffix"
        if column in TIME_COLUMNS:
            return f"{column} + make_interval(days => :shift)"
        return _quoted(column)

    job_columns = [c.name for c in Job.__table__.columns]
    day_columns = [c.name for c in JobCostDay.__table__.columns]
    select_day = ", ".join(
        {"job_id": "job_id + :offset", "day": "day + :shift"}.get(c, c) for c in day_columns
    )
    insert_jobs = text(
        f"INSERT INTO jobs ({', '.join(_quoted(c) for c in job_columns)}) "
        f"SELECT {', '.join(job_expression(c) for c in job_columns)} FROM jobs "
        f"WHERE id <= {TEMPLATES}"
    )
    insert_days = text(
        f"INSERT INTO job_cost_days ({', '.join(day_columns)}) "
        f"SELECT {select_day} FROM job_cost_days WHERE job_id <= {TEMPLATES}"
    )
    copies = jobs // TEMPLATES
    with store.engine.begin() as connection:
        for k in range(1, copies):
            params = {"offset": k * TEMPLATES, "suffix": f"-c{k:04d}", "shift": k * 364 // copies}
            connection.execute(insert_jobs, params)
            connection.execute(insert_days, params)
        connection.execute(text("SELECT setval('jobs_id_seq', (SELECT max(id) FROM jobs))"))
        rebuild(connection)
    with store.engine.connect() as connection:
        connection.execution_options(isolation_level="AUTOCOMMIT").exec_driver_sql("ANALYZE")
    store.engine.dispose()
    return time.perf_counter() - started


def database(jobs: int, rebuild: bool) -> tuple[Path, float | None]:
    path = DATA / f"reports-{jobs}-{_schema_key()}.db"
    if path.exists() and not rebuild:
        return path, None
    return path, build(path, jobs)


def job_table_sql(url: str, arguments: list[str]) -> str:
    """The statements ``tracker report ARGUMENTS`` runs on the job tables (no rollup, no
    light path), with their values inlined: a script the ``sqlite3`` shell runs as is."""
    import contextlib
    import io

    from sqlalchemy import Engine, event

    import tracker.cli.views
    from tracker.cli.main import main as tracker_main
    from tracker.store.database import Store

    statements: list[str] = []

    def capture(conn: Any, _cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        if "job_cost_days" not in statement:
            return
        if conn.dialect.name == "postgresql":
            import psycopg

            raw = conn.connection.dbapi_connection
            statements.append(psycopg.ClientCursor(raw).mogrify(statement, parameters))
        else:
            statements.append(_inline(statement, parameters))

    lite_store, Store.use_rollup = tracker.cli.views.lite_store, False
    tracker.cli.views.lite_store = lambda *_: None
    event.listen(Engine, "before_cursor_execute", capture)
    try:
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            code = tracker_main(["--db", url, "report", *arguments, "--format", "json"])
    finally:
        event.remove(Engine, "before_cursor_execute", capture)
        tracker.cli.views.lite_store, Store.use_rollup = lite_store, True
    if code != 0 or not statements:
        raise RuntimeError(f"report {' '.join(arguments)}: exit {code}, {len(statements)} SQL")
    return "".join(f"{statement};\n" for statement in statements)


def _inline(statement: str, parameters: Any) -> str:
    """``statement`` with each ``?`` replaced by its value as an SQL literal."""
    values = iter(parameters or ())

    def literal(value: Any) -> str:
        if isinstance(value, str | date):
            return "'" + str(value).replace("'", "''") + "'"
        return "NULL" if value is None else str(int(value) if isinstance(value, bool) else value)

    parts = statement.split("?")
    return parts[0] + "".join(literal(next(values)) + part for part in parts[1:])


def shell_seconds(path: Path | str, script: str) -> float:
    """The ``sqlite3`` shell's time (``psql``'s for a PostgreSQL URL): a whole process,
    median of 3 after a warm run."""
    import subprocess

    if isinstance(path, str):  # postgresql+psycopg://...: psql takes it without the driver
        command = [PSQL, "-q", "-X", "-v", "ON_ERROR_STOP=1", path.replace("+psycopg", "")]
    else:
        command = [SHELL, str(path)]

    def run() -> float:
        started = time.perf_counter()
        subprocess.run(command, input=script, capture_output=True, text=True, check=True)
        return time.perf_counter() - started

    run()
    return sorted(run() for _ in range(3))[1]


def measure(quick: bool = False, jobs: int = 1_000_000, rebuild: bool = False) -> dict[str, Any]:
    jobs = 100_000 if quick else jobs
    path, build_seconds = database(jobs, rebuild)
    url = f"sqlite:///{path}"
    size_mb = round(path.stat().st_size / 2**20, 1)
    results: dict[str, Any] = {"jobs": jobs, "database": str(path.relative_to(REPO)),
                               "database_mb": size_mb, "build_seconds": build_seconds}  # fmt: skip
    rows = []
    bench = f"Reports ({jobs:,} jobs, SQLite)"
    for key, label, arguments, target in QUESTIONS:
        args = ["-m", "tracker", "--db", url, "report", *arguments, "--format", "json"]
        run_measured(args)  # warm: page cache, .pyc files
        runs = [run_measured(args) for _ in range(5)]
        seconds = sorted(r[0] for r in runs)[2]
        rss = max(r[1] for r in runs)
        output = json.loads(runs[0][2])
        shell = shell_seconds(path, job_table_sql(url, arguments))
        ratio = seconds / shell
        results[key] = {"arguments": arguments, "cli_seconds": round(seconds, 3),
                        "cli_peak_rss_mb": rss, "shell_seconds": round(shell, 3),
                        "ratio_to_shell": round(ratio, 2), "report_rows": len(output)}  # fmt: skip
        if key != "showback":
            results[key]["jobs_in_rows"] = sum(r["jobs"] for r in output)
            results[key]["total_usd"] = str(sum(Decimal(str(r["total_usd"])) for r in output))
        rows.append(Row(bench, f"{label}, whole CLI run",
                        f"{seconds:.3f} s, peak {rss:.0f} MB ({len(output)} rows)",
                        f"< {target:g} s, < {TARGET_MB} MB",
                        seconds < target and rss < TARGET_MB))  # fmt: skip
        rows.append(Row(bench, "  the `sqlite3` shell, same question on the job tables",
                        f"{shell:.3f} s (tracker {ratio:.2f}x)", "tracker <= 1x",
                        ratio <= 1))  # fmt: skip
    if postgres_available():
        rows += _measure_postgres(jobs, rebuild, results)
    results["rows"] = rows_json(rows)
    results["machine"] = machine()
    return results


def postgres_available() -> bool:
    import socket

    try:
        with socket.create_connection(("127.0.0.1", 5432), timeout=0.5):
            return Path(PSQL).exists()
    except OSError:
        return False


def _measure_postgres(jobs: int, rebuild: bool, results: dict[str, Any]) -> list[Row]:
    """The same questions on the same jobs in PostgreSQL, beside ``psql`` on the job tables."""
    url, build_seconds = pg_database(jobs, rebuild)
    results["postgresql"] = {"build_seconds": build_seconds}
    rows = []
    bench = f"Reports ({jobs:,} jobs, PostgreSQL)"
    for key, label, arguments, target in QUESTIONS:
        args = ["-m", "tracker", "--db", url, "report", *arguments, "--format", "json"]
        run_measured(args)
        runs = [run_measured(args) for _ in range(3)]
        seconds = sorted(r[0] for r in runs)[1]
        rss = max(r[1] for r in runs)
        shell = shell_seconds(url, job_table_sql(url, arguments))
        ratio = seconds / shell
        results["postgresql"][key] = {"cli_seconds": round(seconds, 3), "cli_peak_rss_mb": rss,
                                      "psql_seconds": round(shell, 3),
                                      "ratio_to_psql": round(ratio, 2)}  # fmt: skip
        rows.append(Row(bench, f"{label}, whole CLI run", f"{seconds:.3f} s, peak {rss:.0f} MB",
                        f"< {target:g} s, < {TARGET_MB} MB",
                        seconds < target and rss < TARGET_MB))  # fmt: skip
        rows.append(Row(bench, "  `psql`, same question on the job tables",
                        f"{shell:.3f} s (tracker {ratio:.2f}x)", "tracker <= 1x",
                        ratio <= 1))  # fmt: skip
    return rows


def cached_database_main(
    prog: str, description: str | None, measure_fn: Any, argv: list[str] | None
) -> int:
    """The command line shared by the benchmarks that run on the cached million-job database."""
    parser = argparse.ArgumentParser(prog=prog, description=description)
    parser.add_argument("--jobs", type=int, default=1_000_000)
    parser.add_argument("--rebuild", action="store_true", help="rebuild the cached database")
    parser.add_argument("--quick", action="store_true", help="100,000 jobs")
    args = parser.parse_args(argv)
    if args.jobs % TEMPLATES:
        parser.error(f"--jobs {args.jobs}: expected a multiple of {TEMPLATES}")
    emit(measure_fn(args.quick, args.jobs, args.rebuild))
    return 0


def main(argv: list[str] | None = None) -> int:
    return cached_database_main("python -m bench.bench_reports", __doc__, measure, argv)


if __name__ == "__main__":
    raise SystemExit(main())
