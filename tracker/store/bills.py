"""Stored bill lines, and the tracker-side queries reconciliation and export read.

``billed_lines`` keeps what Cost Explorer or a bill file said, per source, so a
reconciliation can be rerun and audited without asking AWS again. Re-reading a source for a
window replaces that source's lines in the window (never another source's, never outside it).
Money is integer micro-dollars in the database and Decimal out of it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, fields
from datetime import date, datetime
from typing import Any

from sqlalchemy import delete, func, select

from tracker.cost.items import CHARGE_ITEMS
from tracker.reconcile.rules import BillLine, TrackerDay
from tracker.records import UNALLOCATED, from_micros, to_micros
from tracker.store.database import Repository, aware_utc, naive_utc
from tracker.store.query import Window, item_sums, within
from tracker.store.schema import BilledLine as BilledLineRow
from tracker.store.schema import Job, JobCostDay, Watermark


@dataclass(frozen=True)
class JobDayCost:
    """One job's stored cost on one UTC day, with what the FOCUS export needs about the job."""

    job: Job
    day: date
    compute_micros: int
    spot_savings_micros: int
    warm_pool_micros: int
    storage_micros: int
    list_micros: int
    effective_micros: int


class BillRepository(Repository):
    """Reads and writes billed lines; reads tracker costs per job and day."""

    # -- billed lines ---------------------------------------------------------------------
    def replace_lines(
        self, source: str, since: date, until: date, lines: Iterable[BillLine], now: datetime
    ) -> int:
        """Replace ``source``'s lines that start within [since, until] by ``lines``."""
        count = 0
        with self.store.session() as session:
            session.execute(
                delete(BilledLineRow).where(
                    BilledLineRow.source == source,
                    BilledLineRow.period_start >= since,
                    BilledLineRow.period_start <= until,
                )
            )
            for line in lines:
                if not since <= line.period_start <= until:
                    continue
                session.add(_row(source, line, now))
                count += 1
            session.commit()
        return count

    def lines(self, source: str, since: date, until: date) -> list[BillLine]:
        """``source``'s stored lines that start within [since, until]."""
        query = (
            select(BilledLineRow)
            .where(
                BilledLineRow.source == source,
                BilledLineRow.period_start >= since,
                BilledLineRow.period_start <= until,
            )
            .order_by(BilledLineRow.period_start, BilledLineRow.team, BilledLineRow.usage_type)
        )
        with self.store.session() as session:
            return [_line(row) for row in session.execute(query).scalars()]

    def sources(self) -> list[tuple[str, date, date, datetime]]:
        """(source, first day, last day, last fetched) of every stored source."""
        query = select(
            BilledLineRow.source,
            func.min(BilledLineRow.period_start),
            func.max(BilledLineRow.period_start),
            func.max(BilledLineRow.fetched_at),
        ).group_by(BilledLineRow.source)
        with self.store.session() as session:
            return [
                (source, first, last, aware_utc(fetched))
                for source, first, last, fetched in session.execute(query).all()
            ]

    # -- tracker side -----------------------------------------------------------------------
    def tracker_days(self, since: date, until: date, team: str | None = None) -> list[TrackerDay]:
        """Every job's cost per UTC day within [since, until] (the per-day split)."""
        query = (
            select(
                Job.arn,
                Job.name,
                Job.team,
                JobCostDay.day,
                JobCostDay.list_micros,
                JobCostDay.effective_micros,
            )
            .join(Job, Job.id == JobCostDay.job_id)
            .where(JobCostDay.day >= since, JobCostDay.day <= until)
            .order_by(JobCostDay.day, Job.name)
        )
        if team is not None:
            query = query.where(func.coalesce(Job.team, UNALLOCATED) == team)
        with self.store.session() as session:
            rows = session.execute(query).all()
        return [
            TrackerDay(arn, name, team or UNALLOCATED, day, int(lm), int(em))
            for arn, name, team, day, lm, em in rows
        ]

    def arn_teams(self) -> dict[str, str]:
        """Lower-cased job ARN -> the job's team, for attributing billed lines by resource id."""
        with self.store.session() as session:
            rows = session.execute(select(Job.arn, Job.team)).all()
        return {arn.lower(): team or UNALLOCATED for arn, team in rows}

    def job_day_costs(
        self,
        since: date | None = None,
        until: date | None = None,
        filters: dict[str, str] | None = None,
    ) -> list[JobDayCost]:
        """Stored jobs with their cost per day, for the FOCUS export."""
        query = select(Job, JobCostDay).join(JobCostDay, Job.id == JobCostDay.job_id)
        query = within(query, Window(since, until, filters or {}))
        query = query.order_by(JobCostDay.day, Job.name, Job.id)
        with self.store.session() as session:
            rows = session.execute(query).all()
        return [
            JobDayCost(
                job=job,
                day=day.day,
                **{item.column: getattr(day, item.column) for item in CHARGE_ITEMS},
            )
            for job, day in rows
        ]

    def job_totals(
        self,
        since: date | None = None,
        until: date | None = None,
        filters: dict[str, str] | None = None,
    ) -> list[dict[str, Any]]:
        """One row per job with its cost summed over the days within the window."""
        items = [item.name for item in CHARGE_ITEMS]
        sums = item_sums(CHARGE_ITEMS)
        query = select(Job, *sums).join(JobCostDay, Job.id == JobCostDay.job_id).group_by(Job.id)
        query = within(query, Window(since, until, filters or {}))
        query = query.order_by(Job.creation_time, Job.name)
        with self.store.session() as session:
            rows = session.execute(query).all()
        return [{"job": row[0], **{item: int(row[i + 1]) for i, item in enumerate(items)}}
                for row in rows]  # fmt: skip

    def account_names(self) -> dict[str, str]:
        """Account id -> the configured source name that collected it (from the watermarks)."""
        with self.store.session() as session:
            rows = session.execute(select(Watermark.account_id, Watermark.source)).all()
        return {account: source for account, source in rows if source}


# A BillLine field is kept in the column of its name, but for money (integer micro-dollars).
_LINE_MONEY = {"list_usd": "list_micros", "effective_usd": "effective_micros"}
_LINE_COLUMNS = tuple(f.name for f in fields(BillLine) if f.name not in _LINE_MONEY)


def _row(source: str, line: BillLine, now: datetime) -> BilledLineRow:
    values = {name: getattr(line, name) for name in _LINE_COLUMNS}
    money = {column: to_micros(getattr(line, name)) for name, column in _LINE_MONEY.items()}
    own = {"source": source, "team": line.team or UNALLOCATED, "fetched_at": naive_utc(now)}
    return BilledLineRow(**values | money | own)


def _line(row: BilledLineRow) -> BillLine:
    values = {name: getattr(row, name) for name in _LINE_COLUMNS}
    money = {name: from_micros(getattr(row, column)) for name, column in _LINE_MONEY.items()}
    return BillLine(**values | money)
