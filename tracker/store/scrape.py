"""The aggregates a metrics scrape reads (``tracker.report.metrics``): one query each.

A scrape runs every few seconds for as long as the tracker is up, on a store that keeps
growing, so every query here is a GROUP BY over low-cardinality columns (account, region,
scheduled job, status, alert kind) or reads one row: none returns a row per training job.
Times come out as aware UTC, as everywhere in the store.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select

from tracker.store.database import Repository, aware_utc
from tracker.store.schema import AlertDelivery, CollectionRun, Job, JobRun, Watermark


@dataclass(frozen=True)
class WatermarkRow:
    """How far and how recently collection got in one (account, region)."""

    account_id: str
    region: str
    last_modified: datetime | None
    last_success_at: datetime | None
    failing: bool  # the latest attempt failed


@dataclass(frozen=True)
class JobRunGroup:
    """Finished runs of one scheduled job with one status."""

    job: str
    status: str
    runs: int
    seconds: float
    last_finished_at: datetime | None


@dataclass(frozen=True)
class LastRun:
    """The latest finished run of one scheduled job."""

    job: str
    status: str
    seconds: float | None
    finished_at: datetime | None


@dataclass(frozen=True)
class LastCollection:
    """The latest finished collection run and its summary (``CollectSummary.to_dict``)."""

    finished_at: datetime | None
    status: str
    summary: dict[str, Any]


class ScrapeQueries(Repository):
    """Bounded aggregate reads over one Store's engine."""

    def watermarks(self) -> list[WatermarkRow]:
        """One row per collected (account, region): as many as the config lists."""
        query = select(
            Watermark.account_id,
            Watermark.region,
            Watermark.last_modified,
            Watermark.last_success_at,
            Watermark.last_error.is_not(None),
        ).order_by(Watermark.account_id, Watermark.region)
        with self.store.session() as session:
            rows = session.execute(query).all()
        return [
            WatermarkRow(account, region, aware_utc(modified), aware_utc(success), bool(failing))
            for account, region, modified, success, failing in rows
        ]

    def jobs_stored(self) -> dict[tuple[str, str], int]:
        """(account, region) -> training jobs stored."""
        query = select(Job.account_id, Job.region, func.count()).group_by(
            Job.account_id, Job.region
        )
        with self.store.session() as session:
            rows = session.execute(query).all()
        return {(account, region): int(n) for account, region, n in rows}

    def collection_runs(self) -> dict[str, int]:
        """Finished collection runs per status (ok, partial, failed)."""
        query = (
            select(CollectionRun.status, func.count())
            .where(CollectionRun.finished_at.is_not(None))
            .group_by(CollectionRun.status)
        )
        with self.store.session() as session:
            rows = session.execute(query).all()
        return {status: int(n) for status, n in rows}

    def last_collection(self) -> LastCollection | None:
        """The latest finished collection run, or None before the first."""
        query = (
            select(CollectionRun.finished_at, CollectionRun.status, CollectionRun.summary_json)
            .where(CollectionRun.finished_at.is_not(None))
            .order_by(CollectionRun.id.desc())
            .limit(1)
        )
        with self.store.session() as session:
            row = session.execute(query).first()
        if row is None:
            return None
        finished_at, status, summary_json = row
        return LastCollection(aware_utc(finished_at), status, json.loads(summary_json or "{}"))

    def job_runs(self) -> list[JobRunGroup]:
        """Finished scheduled-job runs per (job, status): count, seconds, latest finish."""
        query = (
            select(
                JobRun.job,
                JobRun.status,
                func.count(),
                func.coalesce(func.sum(JobRun.seconds), 0.0),
                func.max(JobRun.finished_at),
            )
            .where(JobRun.finished_at.is_not(None))
            .group_by(JobRun.job, JobRun.status)
            .order_by(JobRun.job, JobRun.status)
        )
        with self.store.session() as session:
            rows = session.execute(query).all()
        return [
            JobRunGroup(job, status, int(n), float(seconds), aware_utc(last))
            for job, status, n, seconds, last in rows
        ]

    def last_runs(self) -> list[LastRun]:
        """The latest finished run of each scheduled job (one row per job name)."""
        latest = (
            select(func.max(JobRun.id)).where(JobRun.finished_at.is_not(None)).group_by(JobRun.job)
        )
        query = (
            select(JobRun.job, JobRun.status, JobRun.seconds, JobRun.finished_at)
            .where(JobRun.id.in_(latest))
            .order_by(JobRun.job)
        )
        with self.store.session() as session:
            rows = session.execute(query).all()
        return [
            LastRun(job, status, seconds, aware_utc(finished))
            for job, status, seconds, finished in rows
        ]

    def alert_deliveries(self) -> dict[tuple[str, str], int]:
        """(alert kind, ledger status) -> deliveries (one alert on one channel)."""
        query = select(AlertDelivery.kind, AlertDelivery.status, func.count()).group_by(
            AlertDelivery.kind, AlertDelivery.status
        )
        with self.store.session() as session:
            rows = session.execute(query).all()
        return {(kind, status): int(n) for kind, status, n in rows}
