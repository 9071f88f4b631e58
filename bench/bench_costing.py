"""Benchmark: cost engine throughput, jobs per second, with the shipped price book.

A deterministic mix of jobs (plain, multi-instance, managed spot, heterogeneous clusters,
warm pools, multi-day runs, failed jobs without times, unpriced types) is costed the way
the collector and ``tracker recost`` do it: rates looked up in the price book, the job
costed, its cost split into per-day integer micro-dollars.

    python -m bench.bench_costing [--jobs 20000]
"""

from __future__ import annotations

import argparse
import random
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from bench.common import Row, emit, machine, peak_rss_mb, rows_json

NOW = datetime(2026, 11, 1, tzinfo=UTC)
TYPES = ["ml.m5.xlarge", "ml.m5.4xlarge", "ml.g5.2xlarge", "ml.g5.12xlarge", "ml.p4d.24xlarge",
         "ml.c5.4xlarge", "ml.trn1.32xlarge"]  # fmt: skip


def jobs(count: int, seed: int = 11) -> list[Any]:
    """``count`` JobRecords in us-east-1 over October 2026, every cost rule represented."""
    from tracker.records import InstanceGroup, JobRecord

    rng = random.Random(seed)
    out = []
    for i in range(count):
        start = datetime(2026, 10, 1, tzinfo=UTC) + timedelta(minutes=rng.randrange(0, 44_000))
        seconds = rng.randrange(300, 40 * 3600)  # up to 40 h: many runs cross midnight
        kind = i % 10
        spot = kind in (1, 2)
        failed_early = kind == 9 and i % 20 == 9
        groups: tuple[InstanceGroup, ...] = ()
        if kind == 3:
            groups = (
                InstanceGroup("ml.p4d.24xlarge", 2, "a"),
                InstanceGroup("ml.m5.4xlarge", 4, "b"),
            )
        out.append(
            JobRecord(
                account_id="123456789012",
                region="us-east-1",
                name=f"job-{i}",
                arn=f"arn:aws:sagemaker:us-east-1:123456789012:training-job/job-{i}",
                status="Failed" if kind == 9 else "Completed",
                creation_time=start - timedelta(minutes=4),
                last_modified_time=start + timedelta(seconds=seconds),
                start_time=None if failed_early else start,
                end_time=None if failed_early else start + timedelta(seconds=seconds),
                instance_type=rng.choice(TYPES),
                instance_count=rng.choice([1, 1, 2, 4, 8]),
                instance_groups=groups,
                volume_gb=rng.choice([30, 100, 500]),
                spot=spot,
                billable_seconds=None if failed_early else (seconds * 2 // 5 if spot else seconds),
                training_seconds=None if failed_early else seconds,
                warm_pool_status="Terminated" if kind == 4 else None,
                warm_pool_retained_seconds=1800 if kind == 4 else None,
                artifact_bytes=rng.randrange(0, 5 * 2**30),
            )
        )
    return out


def measure(quick: bool = False, count: int = 20_000) -> dict[str, Any]:
    """Jobs per second through rates lookup + cost_job + period_micros."""
    from tracker.cost.engine import CostPolicy, cost_job, period_micros
    from tracker.settings import Settings

    count = 2_000 if quick else count
    book = Settings().price_book()
    policy = CostPolicy()
    records = jobs(count)
    days = 0
    started = time.perf_counter()
    for record in records:
        cost = cost_job(record, book.rates_for(record, Decimal(0)), NOW, policy)
        days += len(period_micros(cost))
    seconds = time.perf_counter() - started
    per_second = count / seconds
    rows = [
        Row("Cost engine", f"jobs costed per second ({count:,} mixed jobs, price lookup + "
            "cost + per-day split)", f"{per_second:,.0f} jobs/s ({days / count:.2f} days per job)"),
    ]  # fmt: skip
    return {
        "rows": rows_json(rows),
        "jobs": count,
        "seconds": round(seconds, 3),
        "jobs_per_second": round(per_second, 1),
        "cost_days": days,
        "peak_rss_mb": peak_rss_mb(),
        "machine": machine(),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.bench_costing", description=__doc__)
    parser.add_argument("--jobs", type=int, default=20_000)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args(argv)
    emit(measure(args.quick, args.jobs))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
