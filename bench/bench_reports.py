"""Benchmark: reports on 1,000,000 stored jobs in SQLite; target under 1 s and 500 MB each.

Data: 1,000 template jobs (four regions, five accounts, twenty teams, every cost shape)
are saved through the real ``Store.save_jobs``, so their rows, including the per-day
split in ``job_cost_days``, are exactly what the store writes. SQLite then copies them
999 times with ``INSERT ... SELECT``, each copy under new ids, names and ARNs and shifted
by whole days across 2026, keeping the store's text formats for times and days.
The database is cached in ``bench/.data`` (rebuilt when the schema changes).

Measured, each in a fresh process, with its peak resident memory:
- ``tracker report --by team`` for June 2026 (one month),
- ``tracker report --by day`` for April to June 2026 (one quarter),
both ``--format json`` through the real CLI; plus the SQL alone, in process.

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
TARGET_SECONDS = 1.0
TARGET_MB = 500
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


def database(jobs: int, rebuild: bool) -> tuple[Path, float | None]:
    path = DATA / f"reports-{jobs}-{_schema_key()}.db"
    if path.exists() and not rebuild:
        return path, None
    return path, build(path, jobs)


def _sql_alone(url: str, by: str, since: str, until: str) -> tuple[float, int, str]:
    """Seconds for the store's aggregate query alone, rows it returned, and SQLite's plan."""
    from sqlalchemy import event

    from tracker.store.database import Store
    from tracker.store.query import ViewQueries, Window

    store = Store.open(url)
    queries = ViewQueries(store)
    window = Window(date.fromisoformat(since), date.fromisoformat(until))
    queries.by_dimension(by, window)  # warm
    statements: list[tuple[str, Any]] = []

    def capture(_conn: Any, _cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        statements.append((statement, parameters))

    event.listen(store.engine, "before_cursor_execute", capture)
    started = time.perf_counter()
    rows = queries.by_dimension(by, window)
    seconds = time.perf_counter() - started
    event.remove(store.engine, "before_cursor_execute", capture)
    statement, parameters = statements[-1]
    with store.engine.connect() as connection:
        plan = connection.exec_driver_sql(f"EXPLAIN QUERY PLAN {statement}", parameters).all()
    store.engine.dispose()
    return seconds, len(rows), "; ".join(str(r[-1]) for r in plan)


def measure(quick: bool = False, jobs: int = 1_000_000, rebuild: bool = False) -> dict[str, Any]:
    jobs = 100_000 if quick else jobs
    path, build_seconds = database(jobs, rebuild)
    url = f"sqlite:///{path}"
    size_mb = round(sum(Path(f"{path}{s}").stat().st_size for s in ("",)) / 2**20, 1)
    results: dict[str, Any] = {"jobs": jobs, "database": str(path.relative_to(REPO)),
                               "database_mb": size_mb, "build_seconds": build_seconds}  # fmt: skip
    rows = []
    for label, by, (since, until) in (("a month", "team", MONTH), ("a quarter", "day", QUARTER)):
        args = ["-m", "tracker", "--db", url, "report", "--by", by, "--since", since,
                "--until", until, "--format", "json"]  # fmt: skip
        run_measured(args)  # warm: page cache, .pyc files
        runs = [run_measured(args) for _ in range(3)]
        seconds = sorted(r[0] for r in runs)[1]
        rss = max(r[1] for r in runs)
        output = json.loads(runs[0][2])
        sql_seconds, sql_rows, plan = _sql_alone(url, by, since, until)
        total = sum(Decimal(str(r["total_usd"])) for r in output)
        key = f"by_{by}"
        results[key] = {"since": since, "until": until, "cli_seconds": round(seconds, 3),
                        "cli_peak_rss_mb": rss, "sql_seconds": round(sql_seconds, 3),
                        "rows_from_sql": sql_rows, "report_rows": len(output),
                        "jobs_in_window": sum(r["jobs"] for r in output),
                        "total_usd": str(total), "query_plan": plan}  # fmt: skip
        rows.append(Row("Reports (1M jobs, SQLite)",
                        f"`report --by {by}` for {label} ({since} to {until}), whole CLI run",
                        f"{seconds:.2f} s, peak {rss:.0f} MB ({sql_rows} rows from SQL, "
                        f"{results[key]['jobs_in_window']:,} jobs in window)",
                        f"< {TARGET_SECONDS:g} s, < {TARGET_MB} MB",
                        seconds < TARGET_SECONDS and rss < TARGET_MB))  # fmt: skip
        rows.append(Row("Reports (1M jobs, SQLite)", f"  of which the SQL aggregation ({by})",
                        f"{sql_seconds:.3f} s"))  # fmt: skip
    results["rows"] = rows_json(rows)
    results["machine"] = machine()
    return results


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
