"""The database: engine factory, sessions, and the jobs, watermarks and collection runs.

Aggregate spend queries are in ``tracker.store.query``; other tables have their repository
beside this one (bills, estimates, ops).

SQLite (WAL mode) by default, any SQLAlchemy URL (PostgreSQL) for shared deployments.
Times go in as naive UTC and come out as aware UTC; money is integer micro-dollars.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import asdict, fields
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import ColumnElement, Engine, delete, func, select
from sqlalchemy.exc import IntegrityError, OperationalError, SQLAlchemyError
from sqlmodel import Session

from tracker.cost.engine import OPEN_WARM_POOL_STATUSES, job_micros, period_micros
from tracker.cost.gpu import billed_gpus
from tracker.cost.items import COST_ITEMS
from tracker.errors import StoreError, TrackerError
from tracker.records import (
    UNALLOCATED,
    InstanceGroup,
    JobCost,
    JobRecord,
)
from tracker.store import rollup
from tracker.store.engine import (
    NoDatabase,
    NotSqlite,
    ReadOnlyDatabase,
    aware_utc,
    check_url,
    check_writable,
    connect,
    first_line,
    naive_utc,
    safe_url,
    sqlite_file,
)
from tracker.store.schema import CollectionRun, Job, JobCostDay, Watermark

SAVE_BATCH = 500
# The JobRecord fields a recost may re-derive (allocation rules, the [attribution] tag keys).
ATTRIBUTION = ("team", "project", "user", "team_source")
# A write that lost a race for a unique key to a concurrent writer is redone this often.
MERGE_ATTEMPTS = 5


def make_engine(
    url: str, *, read_only: bool = False, must_exist: bool = False, option: str = "database URL"
) -> Engine:
    """The engine, its schema upgraded to this version's (Alembic migrations, serialised
    between processes); a database with a newer schema is refused. SQLite gets WAL, a busy
    timeout and foreign keys.

    ``read_only`` opens an existing database without writing anything (a schema other than
    this version's is refused, not upgraded); ``must_exist`` writes but creates nothing:
    either raises NoDatabase where there is no tracker database. A URL that cannot be used
    (see :func:`check_url`, whose messages name it as ``option``) and a database that is not
    the tracker's (ForeignDatabase, NotSqlite) are refused before anything is written."""
    from tracker.store.migrate import check_ours, check_readable, current, upgrade_engine

    check_url(url, option)
    path = sqlite_file(url)
    if url.startswith("sqlite") and path is None:
        # In memory: nothing is left behind, so a reader gets an empty schema of its own.
        read_only = must_exist = False
    if not read_only:
        check_writable(url)
    if (read_only or must_exist) and url.startswith("sqlite") and not (path and path.is_file()):
        raise NoDatabase(url)
    if not read_only:
        check_ours(url)
    engine = connect(url, read_only=read_only)
    try:
        if read_only:
            check_readable(engine, url)
            return engine
        if must_exist:
            with engine.connect() as connection:
                if current(connection, url) is None:
                    raise NoDatabase(url)
        upgrade_engine(engine, url)
    except SQLAlchemyError as exc:
        engine.dispose()
        if path is not None and "file is not a database" in first_line(exc):
            raise NotSqlite(url, path) from None
        raise StoreError(f"cannot open database {safe_url(url)}: {first_line(exc)}") from None
    except TrackerError:
        engine.dispose()
        raise
    return engine


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime):
        return aware_utc(value).isoformat()
    if isinstance(value, Decimal | date):
        return str(value)
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return repr(value)


class Store:
    """Named reads and writes over one engine."""

    #: Whether aggregate queries may read the spend rollup (``spend_days``); False makes
    #: every query read the job tables (tests compare the two).
    use_rollup = True

    def __init__(self, engine: Engine, url: str = ""):
        self.engine = engine
        self.url = url or engine.url.render_as_string(hide_password=False)

    @classmethod
    def open(
        cls,
        url: str,
        *,
        read_only: bool = False,
        must_exist: bool = False,
        option: str = "database URL",
    ) -> Store:
        """The store at ``url``: see :func:`make_engine` for ``read_only``, ``must_exist`` and
        ``option`` (where the URL came from, e.g. ``--db``, for the one-line errors)."""
        engine = make_engine(url, read_only=read_only, must_exist=must_exist, option=option)
        return cls(engine, url)

    @contextmanager
    def session(self) -> Iterator[Session]:
        with Session(self.engine, expire_on_commit=False) as session:
            try:
                yield session
            except OperationalError as exc:
                session.rollback()
                message = first_line(exc)
                if "readonly database" in message:  # a read-only file or mount found mid-write
                    raise ReadOnlyDatabase(self.url) from None
                if message in ("disk I/O error", "database or disk is full"):
                    message += " (is the disk full? nothing of the failed write was kept)"
                raise StoreError(f"database error: {message}") from None

    # -- jobs -------------------------------------------------------------------
    def open_warm_pool_jobs(self, account_id: str, region: str) -> dict[str, str]:
        """ARN -> name of the region's jobs whose warm pool is still open (Available or
        InUse): AWS reports their retained time only once the pool ends."""
        return self._region_jobs(
            account_id, region, Job.warm_pool_status.in_(sorted(OPEN_WARM_POOL_STATUSES))
        )

    def running_jobs(self, account_id: str, region: str) -> dict[str, str]:
        """ARN -> name of the region's stored jobs that are not final (running, stopping)."""
        return self._region_jobs(account_id, region, Job.final == False)  # noqa: E712 - SQL

    def _region_jobs(
        self, account_id: str, region: str, condition: ColumnElement[bool]
    ) -> dict[str, str]:
        """ARN -> name of the region's stored jobs that meet ``condition``."""
        with self.session() as session:
            rows = session.execute(
                select(Job.arn, Job.name).where(
                    Job.account_id == account_id, Job.region == region, condition
                )
            ).all()
        return dict(rows)

    def job_versions(
        self, account_id: str, region: str, arns: Iterable[str]
    ) -> dict[str, datetime]:
        """ARN -> stored LastModifiedTime for the given jobs that are already stored."""
        wanted = list(dict.fromkeys(arns))
        found: dict[str, datetime] = {}
        with self.session() as session:
            for chunk in _chunks(wanted, 500):
                rows = session.execute(
                    select(Job.arn, Job.last_modified_time).where(
                        Job.account_id == account_id, Job.region == region, Job.arn.in_(chunk)
                    )
                ).all()
                found.update({arn: aware_utc(ts) for arn, ts in rows})
        return found

    def _merging(self, write: Callable[[], Any]) -> Any:
        """Run a read-then-write transaction, redoing it if a concurrent writer inserted the
        same key between our read and our write: the redo reads that row and updates it."""
        for attempt in range(1, MERGE_ATTEMPTS + 1):
            try:
                return write()
            except IntegrityError as exc:
                if attempt == MERGE_ATTEMPTS:
                    raise StoreError(f"database error: {first_line(exc)}") from None
        raise AssertionError("unreachable")

    def save_jobs(
        self, items: Sequence[tuple[JobRecord, JobCost, dict]], now: datetime
    ) -> tuple[int, int]:
        """Insert or update jobs (by ARN) with their costs, in one transaction: (new, updated).

        Safe beside another collector writing the same jobs: see :meth:`_merging`.
        """
        return self._merging(lambda: self._save_jobs_once(items, now))

    def _save_jobs_once(
        self, items: Sequence[tuple[JobRecord, JobCost, dict]], now: datetime
    ) -> tuple[int, int]:
        new = updated = 0
        with self.session() as session:
            arns = [record.arn for record, _, _ in items]
            existing = {}
            for chunk in _chunks(arns, 500):
                existing.update(
                    {
                        j.arn: j
                        for j in session.execute(select(Job).where(Job.arn.in_(chunk))).scalars()
                    }
                )
            # The rollup loses each stored job's old tuple and days, then gains the new ones.
            deltas: dict = {}
            old_days = rollup.stored_days(session, [j.id for j in existing.values()])
            for row in existing.values():
                rollup.add_job(deltas, rollup.job_key(row), old_days.get(row.id, []), -1)
            for record, cost, raw in items:
                row = existing.get(record.arn)
                if row is None:
                    row = Job(**_job_fields(record, raw, now))
                    new += 1
                else:
                    for key, value in _job_fields(record, raw, now).items():
                        setattr(row, key, value)
                    updated += 1
                _apply_cost(row, cost, now)
                session.add(row)
                existing[record.arn] = row
            session.flush()
            saved = {}
            for record, cost, _ in items:
                saved[record.arn] = _replace_days(session, existing[record.arn], cost)
            for arn, days in saved.items():
                rollup.add_job(deltas, rollup.job_key(existing[arn]), days, 1)
            rollup.apply(session, deltas)
            session.commit()
        return new, updated

    def job_record_batches(
        self, *, running_only: bool = False, size: int = SAVE_BATCH
    ) -> Iterator[list[tuple[int, JobRecord]]]:
        """Stored jobs rebuilt as records, ``size`` at a time in id order (for recosting)."""
        last_id = 0
        while True:
            query = select(Job).where(Job.id > last_id).order_by(Job.id).limit(size)
            if running_only:
                query = query.where(Job.final == False)  # noqa: E712 - SQL expression
            with self.session() as session:
                rows = list(session.execute(query).scalars())
            if not rows:
                return
            yield [(row.id, job_record(row)) for row in rows]
            last_id = rows[-1].id

    def save_costs(
        self,
        costs: Sequence[tuple[int, JobCost]],
        now: datetime,
        attributed: Mapping[int, JobRecord] | None = None,
    ) -> int:
        """Replace the stored cost (and its per-day split) of the given job ids, in one
        transaction; returns how many jobs were updated. ``attributed`` (job id -> record)
        also replaces those jobs' attribution (:data:`ATTRIBUTION`), their rollup rows moving
        with it. Redone like a save when a concurrent writer won a race for a rollup row
        (:meth:`_merging`)."""
        return self._merging(lambda: self._save_costs_once(costs, now, attributed or {}))

    def _save_costs_once(
        self,
        costs: Sequence[tuple[int, JobCost]],
        now: datetime,
        attributed: Mapping[int, JobRecord],
    ) -> int:
        with self.session() as session:
            rows = {}
            for chunk in _chunks([job_id for job_id, _ in costs], 500):
                rows.update(
                    {
                        r.id: r
                        for r in session.execute(select(Job).where(Job.id.in_(chunk))).scalars()
                    }
                )
            deltas: dict = {}
            old_days = rollup.stored_days(session, list(rows))
            for row in rows.values():
                rollup.add_job(deltas, rollup.job_key(row), old_days.get(row.id, []), -1)
            for job_id, cost in costs:
                row = rows.get(job_id)
                if row is None:  # deleted since it was read: nothing to recost
                    continue
                if job_id in attributed:  # after its old tuple left the rollup: it moves
                    for name in ATTRIBUTION:
                        setattr(row, name, getattr(attributed[job_id], name))
                _apply_cost(row, cost, now)
                session.add(row)
            session.flush()
            saved = {}
            for job_id, cost in costs:
                if job_id in rows:
                    saved[job_id] = _replace_days(session, rows[job_id], cost)
            for job_id, days in saved.items():
                rollup.add_job(deltas, rollup.job_key(rows[job_id]), days, 1)
            rollup.apply(session, deltas)
            session.commit()
        return sum(1 for job_id, _ in costs if job_id in rows)

    def jobs(self, *, final: bool | None = None) -> list[Job]:
        with self.session() as session:
            query = select(Job).order_by(Job.id)
            if final is not None:
                query = query.where(Job.final == final)
            return list(session.execute(query).scalars())

    def job_by_name(self, name: str) -> Job | None:
        with self.session() as session:
            return session.execute(select(Job).where(Job.name == name)).scalars().first()

    def count_jobs(self) -> int:
        with self.session() as session:
            return session.execute(select(func.count()).select_from(Job)).one()[0]

    def billed_type_pairs(self) -> list[tuple[str, str]]:
        """Distinct (region, instance type) billed by stored jobs, groups expanded."""
        pairs: set[tuple[str, str]] = set()
        with self.session() as session:
            rows = session.execute(
                select(Job.region, Job.instance_type, Job.instance_groups_json).distinct()
            ).all()
        for region, itype, groups_json in rows:
            groups = json.loads(groups_json or "[]")
            if groups:
                pairs.update((region, g["instance_type"]) for g in groups)
            elif itype:
                pairs.add((region, itype))
        return sorted(pairs)

    def flagged_by_region(self, flag: str) -> dict[str, int]:
        """Region -> number of stored jobs carrying a cost flag (e.g. ``storage-unpriced``)."""
        pattern = f"%{flag}%"
        with self.session() as session:
            rows = session.execute(
                select(Job.region, func.count())
                .where(Job.flags.like(pattern))
                .group_by(Job.region)
                .order_by(Job.region)
            ).all()
        return {region: int(count) for region, count in rows}

    # -- watermarks and runs ------------------------------------------------------
    def watermark(self, account_id: str, region: str) -> datetime | None:
        with self.session() as session:
            row = session.get(Watermark, (account_id, region))
            return aware_utc(row.last_modified) if row else None

    def advance_watermark(
        self,
        account_id: str,
        region: str,
        source_name: str,
        last_modified: datetime | None,
        now: datetime,
    ) -> None:
        """Move the watermark forward (never back) and record a successful pass."""

        def advance(row: Watermark) -> None:
            if last_modified is not None:
                candidate = naive_utc(last_modified)
                if row.last_modified is None or candidate > row.last_modified:
                    row.last_modified = candidate
            row.last_success_at = row.last_attempt_at = naive_utc(now)
            row.last_error = None

        self._upsert_watermark(account_id, region, source_name, advance)

    def record_region_failure(
        self, account_id: str, region: str, source_name: str, error: str, now: datetime
    ) -> None:
        def fail(row: Watermark) -> None:
            row.last_attempt_at = naive_utc(now)
            row.last_error = error[:2000]

        self._upsert_watermark(account_id, region, source_name, fail)

    def _upsert_watermark(
        self, account_id: str, region: str, source_name: str, change: Callable[[Watermark], None]
    ) -> None:
        """Create or update the (account, region) watermark: ``change`` sets what the pass found."""

        def once() -> None:
            with self.session() as session:
                row = session.get(Watermark, (account_id, region)) or Watermark(
                    account_id=account_id, region=region
                )
                row.source = source_name
                change(row)
                session.add(row)
                session.commit()

        self._merging(once)

    def watermarks(self) -> list[Watermark]:
        with self.session() as session:
            return list(
                session.execute(
                    select(Watermark).order_by(Watermark.account_id, Watermark.region)
                ).scalars()
            )

    def start_run(self, now: datetime) -> int:
        with self.session() as session:
            run = CollectionRun(started_at=naive_utc(now))
            session.add(run)
            session.commit()
            return run.id

    def finish_run(self, run_id: int, status: str, summary: dict, now: datetime) -> None:
        with self.session() as session:
            run = session.get(CollectionRun, run_id)
            run.finished_at = naive_utc(now)
            run.status = status
            run.summary_json = json.dumps(summary, default=_json_default, sort_keys=True)
            session.add(run)
            session.commit()

    def last_runs(self, limit: int = 10) -> list[CollectionRun]:
        with self.session() as session:
            query = select(CollectionRun).order_by(CollectionRun.id.desc()).limit(limit)
            return list(session.execute(query).scalars())


class Repository:
    """Base of the store's repositories: each is a set of queries over one :class:`Store`."""

    def __init__(self, store: Store):
        self.store = store


def _chunks(items: Sequence[Any], size: int) -> Iterator[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


# The jobs table keeps each JobRecord field in the column of its name, but for these: the
# requested instances (the plain columns hold what was billed) and the two JSON columns.
_RENAMED_COLUMNS = {
    "instance_type": "requested_instance_type",
    "instance_count": "requested_instance_count",
}
_JSON_FIELDS = ("instance_groups", "tags")
_RECORD_COLUMNS = {
    f.name: _RENAMED_COLUMNS.get(f.name, f.name)
    for f in fields(JobRecord)
    if f.name not in _JSON_FIELDS
}


def _job_fields(record: JobRecord, raw: dict, now: datetime) -> dict[str, Any]:
    stored: dict[str, Any] = {}
    for name, column in _RECORD_COLUMNS.items():
        value = getattr(record, name)
        stored[column] = naive_utc(value) if isinstance(value, datetime) else value
    groups = record.billed_groups()
    return stored | {
        "final": record.is_final,
        "instance_type": "+".join(dict.fromkeys(g.instance_type for g in groups)) or None,
        "instance_count": sum(g.count for g in groups),
        "gpu_count": billed_gpus([(g.instance_type, g.count) for g in groups]),
        "instance_groups_json": json.dumps([asdict(g) for g in record.instance_groups]),
        "tags_json": json.dumps(record.tags, sort_keys=True),
        "team": record.team or UNALLOCATED,
        "raw_json": json.dumps(raw, default=_json_default, sort_keys=True),
        "collected_at": naive_utc(now),
    }


def _apply_cost(row: Job, cost: JobCost, now: datetime) -> None:
    # job_micros apportions the parts over the total, so stored parts sum to the stored total.
    micros = job_micros(cost)
    for item in COST_ITEMS:
        setattr(row, item.column, micros[item.column])
    row.unpriced = cost.unpriced
    row.flags = ",".join(cost.flags)
    row.costed_at = naive_utc(now)


def _replace_days(session: Session, row: Job, cost: JobCost) -> list[tuple[date, dict]]:
    """The job's per-day split, replaced whole so a recost never leaves stale days;
    returns the days written, [(day, {column: micros})], for the rollup."""
    session.execute(delete(JobCostDay).where(JobCostDay.job_id == row.id))
    days = period_micros(cost)
    written = []
    for index, (day, micros) in enumerate(days):
        artifact = row.artifact_micros_per_month if index == len(days) - 1 else 0
        session.add(
            JobCostDay(job_id=row.id, day=day, artifact_micros_per_month=artifact, **micros)
        )
        written.append((day, {**micros, "artifact_micros_per_month": artifact}))
    return written


def job_record(row: Job) -> JobRecord:
    """Rebuild the pure record from a stored row (for recosting without AWS calls)."""
    values: dict[str, Any] = {}
    for name, column in _RECORD_COLUMNS.items():
        value = getattr(row, column)
        values[name] = aware_utc(value) if isinstance(value, datetime) else value
    groups = tuple(
        InstanceGroup(g["instance_type"], int(g["count"]), g.get("name", ""))
        for g in json.loads(row.instance_groups_json or "[]")
    )
    return JobRecord(**values, instance_groups=groups, tags=json.loads(row.tags_json or "{}"))
