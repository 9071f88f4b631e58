"""CloudWatch ``GetMetricData`` for SageMaker training-job GPU metrics (issue 15).

Namespace ``/aws/sagemaker/TrainingJobs``; metrics ``GPUUtilization`` and
``GPUMemoryUtilization`` (percent x the instance's GPUs), dimension ``Host`` =
``<job-name>/algo-N``, N = 1..instance count (AWS, "Monitor Amazon SageMaker AI with Amazon
CloudWatch"). One ``MetricDataQuery`` per (host, metric), at most 500 per call (the API's
limit); each call's pages are followed with botocore's paginator.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from botocore.client import BaseClient

NAMESPACE = "/aws/sagemaker/TrainingJobs"
METRICS = ("GPUUtilization", "GPUMemoryUtilization")
MAX_QUERIES = 500  # GetMetricData: at most 500 MetricDataQuery structures per call


@dataclass(frozen=True)
class HostQuery:
    """One host's metric over an interval; ``key`` is the caller's (job, metric, host)."""

    key: tuple[Any, str, str]
    host: str
    metric: str


def hosts(job_name: str, count: int) -> list[str]:
    """The ``Host`` dimension values of a job: ``<job-name>/algo-1`` .. ``algo-<count>``."""
    return [f"{job_name}/algo-{n}" for n in range(1, max(count, 1) + 1)]


def period_for(start: datetime, now: datetime) -> int:
    """The finest period CloudWatch still keeps for data from ``start`` (its retention:
    1-minute data 15 days, 5-minute 63 days, 1-hour 455 days)."""
    age = now - start
    if age < timedelta(days=15):
        return 60
    if age < timedelta(days=63):
        return 300
    return 3600


def fetch(
    client: BaseClient,
    queries: Sequence[HostQuery],
    start: datetime,
    end: datetime,
    period: int,
) -> Iterator[tuple[tuple[Any, str, str], list[float]]]:
    """Per query, its per-period ``Average`` values between ``start`` and ``end``, in
    calls of at most :data:`MAX_QUERIES` queries."""
    for first in range(0, len(queries), MAX_QUERIES):
        batch = queries[first : first + MAX_QUERIES]
        ids = {f"q{i}": q for i, q in enumerate(batch)}
        request = [
            {
                "Id": qid,
                "MetricStat": {
                    "Metric": {
                        "Namespace": NAMESPACE,
                        "MetricName": q.metric,
                        "Dimensions": [{"Name": "Host", "Value": q.host}],
                    },
                    "Period": period,
                    "Stat": "Average",
                },
                "ReturnData": True,
            }
            for qid, q in ids.items()
        ]
        values: dict[str, list[float]] = {qid: [] for qid in ids}
        pages = client.get_paginator("get_metric_data").paginate(
            MetricDataQueries=request, StartTime=start, EndTime=end, ScanBy="TimestampAscending"
        )
        for page in pages:
            for result in page.get("MetricDataResults", []):
                values[result["Id"]].extend(
                    float(v) for v in result.get("Values", []) if v is not None
                )
        for qid, q in ids.items():
            yield q.key, values[qid]
