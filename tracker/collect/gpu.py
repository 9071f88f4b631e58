"""Fetch the GPU utilisation of finished GPU jobs once (issue 15), after each collection.

Candidates: final jobs on an instance type of the GPU table (``tracker/cost/data/gpus.csv``;
heterogeneous jobs are not) that ended within :data:`LOOKBACK` and have no stored row. Per
(account, region) and CloudWatch period, all their hosts' ``GPUUtilization`` and
``GPUMemoryUtilization`` go out in ``GetMetricData`` calls of up to 500 queries over the span
of those jobs. A job with datapoints is stored ``ok``; one without is left for the next run
until :data:`GIVE_UP` after it ended (CloudWatch can lag), then stored ``no-metrics`` and never
fetched again. A region whose calls fail is retried next run.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from tracker.aws import AWS_ERRORS, cloudwatch, describe_error
from tracker.aws.session import AwsContextFactory, ContextFactory
from tracker.cost.gpu import gpu_table, gpus_of, job_stats
from tracker.settings import Settings, Source
from tracker.store.database import Store
from tracker.store.gpu import GpuCandidate, GpuRepository
from tracker.store.schema import JobGpu

if TYPE_CHECKING:
    from botocore.client import BaseClient

# Limits of this job (to move to tracker/bounds.py, which another helper owns).
LOOKBACK = timedelta(days=14)  # jobs that ended longer ago are not fetched
GIVE_UP = timedelta(hours=3)  # no datapoint this long after the end: stored no-metrics


@dataclass
class GpuSummary:
    """What one fetch did."""

    jobs: int = 0
    ok: int = 0
    no_metrics: int = 0
    waiting: int = 0  # no datapoint yet, fetched again next run
    errors: list[str] = field(default_factory=list)


def fetch_gpu_metrics(
    settings: Settings,
    store: Store,
    sources: Mapping[str, Source],
    *,
    clock: Callable[[], datetime],
    context_factory: ContextFactory | None = None,
) -> GpuSummary:
    """Fetch and store the utilisation of every candidate job of an account in ``sources``
    (account id -> the source that reaches it); returns what was done."""
    now = _utc(clock())
    summary = GpuSummary()
    repository = GpuRepository(store)
    found = repository.candidates(gpu_table(), now - LOOKBACK)
    if not found:
        return summary
    factory = context_factory or AwsContextFactory(settings.collection)
    groups: dict[tuple[str, str, int], list[GpuCandidate]] = defaultdict(list)
    for job in found:
        groups[
            (job.account_id, job.region, cloudwatch.period_for(_utc(job.start_time), now))
        ].append(job)
    for (account, region, period), jobs in groups.items():
        source = sources.get(account)
        if source is None:
            continue
        try:
            client = factory(source, region).client("cloudwatch")
            series = _fetch(client, jobs, period)
        except AWS_ERRORS as exc:
            summary.errors.append(f"{account}/{region}: {describe_error(exc)}")
            continue
        repository.save(_rows(jobs, series, now, summary))
    return summary


def _fetch(
    client: BaseClient, jobs: list[GpuCandidate], period: int
) -> dict[tuple[int, str], dict[str, list[float]]]:
    queries = [
        cloudwatch.HostQuery((job.job_id, metric, host), host, metric)
        for job in jobs
        for host in cloudwatch.hosts(job.name, job.instance_count)
        for metric in cloudwatch.METRICS
    ]
    start = min(_utc(j.start_time) for j in jobs).replace(second=0, microsecond=0)
    end = max(_utc(j.end_time) for j in jobs) + timedelta(seconds=period)
    series: dict[tuple[int, str], dict[str, list[float]]] = defaultdict(dict)
    for (job_id, metric, host), values in cloudwatch.fetch(client, queries, start, end, period):
        series[(job_id, metric)][host] = values
    return series


def _rows(
    jobs: list[GpuCandidate],
    series: dict[tuple[int, str], dict[str, list[float]]],
    now: datetime,
    summary: GpuSummary,
) -> list[JobGpu]:
    rows = []
    for job in jobs:
        gpus = gpus_of(job.instance_type) or 1
        util = job_stats(series.get((job.job_id, "GPUUtilization"), {}), gpus)
        memory = job_stats(series.get((job.job_id, "GPUMemoryUtilization"), {}), gpus)
        summary.jobs += 1
        if util is None and now - _utc(job.end_time) < GIVE_UP:
            summary.waiting += 1
            continue
        if util is None:
            summary.no_metrics += 1
        else:
            summary.ok += 1
        rows.append(
            JobGpu(
                job_id=job.job_id,
                status="no-metrics" if util is None else "ok",
                gpus_per_host=gpus,
                hosts=util.hosts if util else 0,
                gpu_util_mean=str(util.mean) if util else None,
                gpu_util_p95=str(util.p95) if util else None,
                gpu_mem_mean=str(memory.mean) if memory else None,
                gpu_mem_p95=str(memory.p95) if memory else None,
                fetched_at=now.astimezone(UTC).replace(tzinfo=None),
            )
        )
    return rows


def _utc(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value
