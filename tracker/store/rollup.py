"""The spend rollup: ``spend_days``, spend per UTC day per dimension tuple (issue 14).

Written by the store's save path in the same transaction as ``jobs`` and ``job_cost_days``:
a saved job's old contribution (its stored tuple and days) is taken out and its new one put
in, so collect, re-collect and recost keep the rollup equal to a full recomputation
(:func:`rebuild`, ``tracker db rebuild-rollups``; checked by tests/test_rollups.py).

A job's cost days are consecutive (engine rule 10: the warm-pool interval follows the
training interval), so distinct jobs over a window are exact from two summed counts:
``jobs`` on the window's first day plus ``first_jobs`` on its later days.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import date
from typing import Any

from sqlalchemy import Connection, and_, bindparam, case, delete, func, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from tracker.cost.items import DAY_ITEMS
from tracker.records import UNALLOCATED
from tracker.store.schema import Job, JobCostDay, SpendDay
from tracker.store.window import ROLLED, UNPRICED_MARK

#: The rollup's key after the day: the rolled dimensions, then what queries filter on.
KEY = (*ROLLED.values(), "final", "unpriced", "unpriced_flags")
MONEY = tuple(item.column for item in DAY_ITEMS)
COUNTS = ("jobs", "first_jobs")

Key = tuple[Any, ...]  # (day, *KEY)


def job_key(row: Job) -> tuple[Any, ...]:
    """A stored job's tuple as the rollup keys it (missing values read ``unallocated``)."""
    values = [getattr(row, column) for column in ROLLED.values()]
    flags = row.flags if UNPRICED_MARK in (row.flags or "") else ""
    return (
        *(UNALLOCATED if v is None else v for v in values),
        bool(row.final),
        bool(row.unpriced),
        flags,
    )


def add_job(
    deltas: dict[Key, list[int]], key: tuple[Any, ...], days: Sequence[tuple[date, dict]], sign: int
) -> None:
    """Add (``sign`` 1) or take out (-1) one job's days under its tuple ``key``."""
    first = min((day for day, _ in days), default=None)
    for day, micros in days:
        found = deltas.setdefault((day, *key), [0] * (len(COUNTS) + len(MONEY)))
        found[0] += sign
        found[1] += sign if day == first else 0
        for index, column in enumerate(MONEY, start=len(COUNTS)):
            found[index] += sign * micros.get(column, 0)


def stored_days(session: Session, job_ids: Iterable[int]) -> dict[int, list[tuple[date, dict]]]:
    """The stored per-day split of the given jobs: id -> [(day, {column: micros})]."""
    found: dict[int, list[tuple[date, dict]]] = {}
    ids = list(job_ids)
    columns = [getattr(JobCostDay, column) for column in MONEY]
    for start in range(0, len(ids), 500):
        query = select(JobCostDay.job_id, JobCostDay.day, *columns).where(
            JobCostDay.job_id.in_(ids[start : start + 500])
        )
        for job_id, day, *money in session.execute(query).all():
            found.setdefault(job_id, []).append((day, dict(zip(MONEY, money, strict=True))))
    return found


def apply(session: Session, deltas: dict[Key, list[int]]) -> None:
    """Add the deltas to ``spend_days`` (rows created as needed, emptied rows removed)."""
    changed = {key: delta for key, delta in deltas.items() if any(delta)}
    if not changed:
        return
    table = SpendDay.__table__
    names = ("day", *KEY)
    existing: dict[Key, int] = {}
    days = sorted({key[0] for key in changed})
    teams = sorted({key[1] for key in changed})
    for start in range(0, len(days), 200):
        query = select(table.c.id, *(table.c[n] for n in names)).where(
            table.c.day.in_(days[start : start + 200]), table.c.team.in_(teams)
        )
        for row_id, *values in session.execute(query).all():
            values[-3:-1] = [bool(values[-3]), bool(values[-2])]
            existing[tuple(values)] = row_id
    inserts, updates = [], []
    for key, delta in changed.items():
        values = dict(zip(COUNTS + MONEY, delta, strict=True))
        if key in existing:
            updates.append({"row_id": existing[key], **{f"d_{k}": v for k, v in values.items()}})
        else:
            inserts.append({**dict(zip(names, key, strict=True)), **values})
    connection = session.connection()
    if updates:
        # Relative updates (each row locked as it changes), so a concurrent writer's change to
        # the same row is kept; a row another writer removed since it was read is a lost race:
        # the IntegrityError makes the store redo the whole save (Store._merging).
        statement = (
            update(table)
            .where(table.c.id == bindparam("row_id"))
            .values({k: table.c[k] + bindparam(f"d_{k}") for k in COUNTS + MONEY})
        )
        changed_rows = connection.execute(statement, updates).rowcount
        if changed_rows != len(updates):
            raise IntegrityError("UPDATE spend_days", None, Exception("row removed meanwhile"))
        ids = [row["row_id"] for row in updates]
        for start in range(0, len(ids), 500):  # rows no job-day is left in
            chunk = ids[start : start + 500]
            connection.execute(delete(table).where(table.c.id.in_(chunk), table.c.jobs == 0))
    if inserts:
        connection.execute(insert(table), inserts)


def recompute_query() -> Any:
    """SELECT the whole rollup from the job tables (the definition the rollup must equal)."""
    first = (
        select(JobCostDay.job_id, func.min(JobCostDay.day).label("first_day"))
        .group_by(JobCostDay.job_id)
        .subquery()
    )
    keys = [
        func.coalesce(getattr(Job, column), UNALLOCATED).label(column) for column in ROLLED.values()
    ]
    keys += [Job.final.label("final"), Job.unpriced.label("unpriced")]
    flagged = Job.flags.contains(UNPRICED_MARK, autoescape=True)
    keys += [case((flagged, Job.flags), else_="").label("unpriced_flags")]
    query = (
        select(
            JobCostDay.day.label("day"),
            *keys,
            func.count().label("jobs"),
            func.sum(case((JobCostDay.day == first.c.first_day, 1), else_=0)).label("first_jobs"),
            *(func.sum(getattr(JobCostDay, column)).label(column) for column in MONEY),
        )
        .select_from(JobCostDay)
        .join(Job, Job.id == JobCostDay.job_id)
        .join(first, and_(first.c.job_id == JobCostDay.job_id))
        .group_by(JobCostDay.day, *keys)
    )
    return query


def rebuild(connection: Connection) -> int:
    """Replace the rollup with a recomputation from the job tables; returns its rows."""
    table = SpendDay.__table__
    connection.execute(delete(table))
    query = recompute_query()
    connection.execute(insert(table).from_select(["day", *KEY, *COUNTS, *MONEY], query))
    return int(connection.execute(select(func.count()).select_from(table)).scalar_one())
