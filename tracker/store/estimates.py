"""The recorded estimates table and the queries estimate matching needs.

Everything the matching reads comes from the database (the collector already stored each
job's tags in ``jobs.tags_json`` and its StoppingCondition in ``max_runtime_seconds`` /
``max_wait_seconds``): reconciling estimates makes no AWS call.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time
from decimal import Decimal

from sqlalchemy import func, select

from tracker.bounds import day_after
from tracker.cost.engine import job_micros
from tracker.cost.items import CHARGE_ITEMS
from tracker.records import (
    EstimateEntry,
    JobRecord,
    RecordedEstimate,
    cents,
    from_micros,
)
from tracker.store.database import Repository, aware_utc, job_record, naive_utc
from tracker.store.schema import EstimateRecord, Job


@dataclass(frozen=True)
class StoredJob:
    """A finished job as estimate matching needs it: the record and its stored list cost."""

    record: JobRecord
    list_micros: int
    unpriced: bool


class EstimateRepository(Repository):
    """Reads and writes recorded estimates; reads the finished jobs to match them to."""

    def record(self, estimate: EstimateEntry) -> str:
        """Store an estimate (it must carry an id); returns the id."""
        if not estimate.estimate_id:
            raise ValueError("only an estimate with an id can be recorded")
        cost = estimate.cost
        micros = job_micros(cost)  # the same stored micro-dollars as a job's
        row = EstimateRecord(
            id=estimate.estimate_id,
            created_at=naive_utc(estimate.created_at),
            region=estimate.region,
            instance_type=estimate.instance_type,
            instance_count=estimate.instance_count,
            hours=str(estimate.hours),
            spot_ratio=None if estimate.spot_ratio is None else str(estimate.spot_ratio),
            volume_gb=estimate.volume_gb,
            team=estimate.team,
            job_name=estimate.job_name,
            name_prefix=estimate.name_prefix,
            usd_per_hour=None if estimate.usd_per_hour is None else str(estimate.usd_per_hour),
            **{item.column: micros[item.column] for item in CHARGE_ITEMS},
            flags=",".join(cost.flags),
        )
        with self.store.session() as session:
            session.add(row)
            session.commit()
        return estimate.estimate_id

    def get(self, estimate_id: str) -> EstimateRecord | None:
        with self.store.session() as session:
            return session.get(EstimateRecord, estimate_id)

    def recorded(self) -> list[RecordedEstimate]:
        """Every recorded estimate, as the matcher needs it (amount = quoted cents)."""
        with self.store.session() as session:
            rows = session.execute(select(EstimateRecord).order_by(EstimateRecord.created_at))
            return [_recorded(row) for row in rows.scalars()]

    def finished_jobs(
        self, since: date | None = None, until: date | None = None, team: str | None = None
    ) -> list[StoredJob]:
        """Final jobs that ended (or, with no end time, were created) within the UTC days."""
        ended = func.coalesce(Job.end_time, Job.creation_time)
        query = select(Job).where(Job.final == True).order_by(ended, Job.name)  # noqa: E712
        if since is not None:
            query = query.where(ended >= datetime.combine(since, time.min))
        end = day_after(until) if until is not None else None
        if end is not None:  # --until 9999-12-31 has no day after: every day to the end
            query = query.where(ended < datetime.combine(end, time.min))
        if team is not None:
            query = query.where(Job.team == team)
        with self.store.session() as session:
            rows = list(session.execute(query).scalars())
        return [StoredJob(job_record(row), row.list_micros, row.unpriced) for row in rows]


def _recorded(row: EstimateRecord) -> RecordedEstimate:
    return RecordedEstimate(
        estimate_id=row.id,
        created_at=aware_utc(row.created_at),
        usd=cents(from_micros(row.list_micros)),
        job_name=row.job_name,
        name_prefix=row.name_prefix,
        team=row.team,
    )


def quoted_usd(row: EstimateRecord) -> Decimal:
    """The amount a recorded estimate quoted: its list total rounded to cents."""
    return cents(from_micros(row.list_micros))
