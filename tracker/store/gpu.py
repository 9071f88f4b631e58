"""The idle-GPU repository (issue 15): finished GPU jobs still to fetch, their stored
utilisation, and per job in a window the compute the waste view prices as idle."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select

from tracker.records import UNALLOCATED
from tracker.store.database import Repository
from tracker.store.engine import naive_utc
from tracker.store.query import over_days, within
from tracker.store.schema import Job, JobCostDay, JobGpu
from tracker.store.window import Window


@dataclass(frozen=True)
class GpuCandidate:
    """A finished GPU job with no stored utilisation."""

    job_id: int
    account_id: str
    region: str
    name: str
    instance_type: str
    instance_count: int
    start_time: datetime
    end_time: datetime


class GpuRepository(Repository):
    """Reads and writes of ``job_gpu``."""

    def candidates(
        self, instance_types: Iterable[str], ended_since: datetime
    ) -> list[GpuCandidate]:
        """Final jobs on one of ``instance_types`` that ran, ended at or after
        ``ended_since`` and have no ``job_gpu`` row, oldest end first."""
        fetched = select(JobGpu.job_id)
        query = (
            select(Job.id, Job.account_id, Job.region, Job.name, Job.instance_type,
                   Job.instance_count, Job.start_time, Job.end_time)
            .where(
                Job.final == True,  # noqa: E712
                Job.instance_type.in_(sorted(instance_types)),
                Job.start_time.is_not(None),
                Job.end_time > Job.start_time,
                Job.end_time >= naive_utc(ended_since),
                Job.id.not_in(fetched),
            )
            .order_by(Job.end_time, Job.id)
        )  # fmt: skip
        with self.store.session() as session:
            return [GpuCandidate(*row) for row in session.execute(query).all()]

    def save(self, rows: Sequence[JobGpu]) -> None:
        """Store fetched utilisations (each job once: a row already there is kept)."""
        with self.store.session() as session:
            for row in rows:
                if session.get(JobGpu, row.job_id) is None:
                    session.add(row)
            session.commit()

    def for_job(self, job_id: int) -> JobGpu | None:
        with self.store.session() as session:
            return session.get(JobGpu, job_id)

    def idle_jobs(self, window: Window) -> list[dict[str, Any]]:
        """Per job with utilisation ``ok`` and compute in the window: its compute micros there."""
        query = over_days(
            Job.id.label("job_id"), Job.name, func.coalesce(Job.team, UNALLOCATED).label("team"),
            Job.instance_type, Job.instance_count, JobGpu.gpu_util_mean,
            func.coalesce(func.sum(JobCostDay.compute_micros), 0).label("compute"),
        ).join(JobGpu, JobGpu.job_id == Job.id)  # fmt: skip
        query = within(query, window).where(JobGpu.status == "ok")
        query = query.group_by(
            Job.id, Job.name, Job.team, Job.instance_type, Job.instance_count, JobGpu.gpu_util_mean
        )
        with self.store.session() as session:
            return [dict(row._mapping) for row in session.execute(query).all()]
