"""The re-measure job's reads and writes: recently ended jobs, and their new artifact bytes.

Kept beside :mod:`tracker.store.database` (it reuses its cost writers) so that module's
``Store`` keeps to jobs, watermarks and runs.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select

from tracker.records import JobCost, JobRecord
from tracker.store.database import Repository, _apply_cost, _replace_days, job_record
from tracker.store.engine import naive_utc
from tracker.store.schema import Job

BATCH = 200


@dataclass(frozen=True)
class StoredArtifacts:
    """One stored job to measure again: its id, record (with the bytes stored) and source."""

    job_id: int
    record: JobRecord


class ArtifactRepository(Repository):
    """Jobs whose S3 artifacts may still grow, and the write of their new size and cost."""

    def ended_since(self, since: datetime, size: int = BATCH) -> Iterator[list[StoredArtifacts]]:
        """Final jobs that ended (else started, else were created) at or after ``since``,
        ``size`` at a time in id order, for as long as the caller reads."""
        when = func.coalesce(Job.end_time, Job.start_time, Job.creation_time)
        last_id = 0
        while True:
            query = (
                select(Job)
                .where(Job.id > last_id, Job.final == True, when >= naive_utc(since))  # noqa: E712
                .order_by(Job.id)
                .limit(size)
            )
            with self.store.session() as session:
                rows = list(session.execute(query).scalars())
            if not rows:
                return
            yield [StoredArtifacts(row.id, job_record(row)) for row in rows]
            last_id = rows[-1].id

    def update_bytes(self, job_id: int, artifact_bytes: int, cost: JobCost, now: datetime) -> bool:
        """Store the job's new artifact bytes with the cost computed from them (one
        transaction); False when the job is gone."""
        with self.store.session() as session:
            row = session.get(Job, job_id)
            if row is None:
                return False
            row.artifact_bytes = artifact_bytes
            _apply_cost(row, cost, now)
            session.add(row)
            session.flush()
            _replace_days(session, row, cost)
            session.commit()
        return True
