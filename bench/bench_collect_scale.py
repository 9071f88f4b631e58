"""Benchmark: collection at scale, 10,000 and 50,000 finished jobs across 4 regions, and the
straightforward approach (list, then describe and list-tags every job) in the same run.

Each case runs in a fresh process (its own peak memory): moto in-process is seeded with
``bench.bench_collect.seed`` once per region (a quarter of the jobs each), then collected
from an empty SQLite database, then collected again with nothing new (steady state).

- ``tracker``: the real collector (``tracker.collect.service.collect``): list changed jobs since the
  watermark, describe only new or changed ones, tags in bulk (GetResources, 100 ARNs a call).
- ``naive``: list every job, then DescribeTrainingJob and ListTags for each, every run.
Both measure S3 artifacts the same way and save through the same store.

    python -m bench.bench_collect_scale [--quick]            # all cases, JSON
    python -m bench.bench_collect_scale --case tracker --jobs 10000   # one case, JSON
"""

from __future__ import annotations

import argparse
import json
import os
import random
import tempfile
import time
from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from bench.common import Row, emit, machine, peak_rss_mb, rows_json, run_measured

REGIONS = ("us-east-1", "us-west-2", "eu-west-1", "ap-northeast-1")
SCALES = (10_000, 50_000)
NAIVE_SCALE = 10_000
TARGET_CALLS_PER_JOB = 1.1


def _environment() -> None:
    for key, value in {"AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench",
                       "AWS_DEFAULT_REGION": REGIONS[0]}.items():  # fmt: skip
        os.environ.setdefault(key, value)
    for key in [k for k in os.environ if k.startswith("AWS_ENDPOINT_URL")]:
        del os.environ[key]  # in-process moto answers AWS's own endpoints only


def seed_regions(jobs: int) -> None:
    """A quarter of the jobs in each region, through bench_collect's own seeding."""
    import bench.bench_collect as single

    rng = random.Random(20261101)
    for index, region in enumerate(REGIONS):
        single.REGION = region  # seed() places its jobs in this module-level region
        share = jobs // len(REGIONS) + (1 if index < jobs % len(REGIONS) else 0)
        single.seed(share, rng)
    single.REGION = REGIONS[0]


def price_book() -> Any:
    """bench_collect's us-east-1 rates, in every region (the same jobs cost the same)."""
    import bench.bench_collect as single
    from tracker.cost.prices import PriceBook

    book = single.price_book()
    types = [t for r, t in book.priced_pairs() if r == single.REGION]
    return PriceBook(
        {(r, t): book.hourly(single.REGION, t) for r in REGIONS for t in types},
        storage={r: book.storage_usd_per_gb_month(single.REGION) for r in REGIONS},
        s3={r: book.s3_usd_per_gb_month(single.REGION) for r in REGIONS},
    )


def naive_collect(settings: Any, store: Any, book: Any, now: datetime, factory: Any) -> dict:
    """List every job, then describe and list-tags each one; save in batches of 200."""
    from tracker.aws import s3 as aws_s3
    from tracker.aws import sagemaker as aws_sagemaker
    from tracker.collect import parse
    from tracker.cost.engine import cost_job

    policy = settings.cost_policy()
    calls: dict[str, dict[str, int]] = {}
    for source in settings.sources:
        for region in source.regions:
            ctx = factory(source, region)
            sm, s3 = ctx.client("sagemaker"), ctx.client("s3")
            items = []
            for summary in aws_sagemaker.list_changed_jobs(sm, None):
                desc = aws_sagemaker.describe_job(sm, summary["TrainingJobName"])
                tags = aws_sagemaker.list_tags(sm, desc["TrainingJobArn"])
                record = parse.job_from_describe(desc, ctx.account_id, region, tags, 0,
                                                 settings.attribution)  # fmt: skip
                size = aws_s3.measure(s3, record.name, record.output_path_uri,
                                      record.model_artifact_uri, record.checkpoint_uri)  # fmt: skip
                record = replace(record, artifact_bytes=size.bytes)
                items.append((record, cost_job(record, book.rates_for(record), now, policy), desc))
                if len(items) == 200:
                    store.save_jobs(items, now)
                    items = []
            if items:
                store.save_jobs(items, now)
            for service, ops in ctx.counter.by_service().items():
                for op, n in ops.items():
                    calls.setdefault(service, {}).setdefault(op, 0)
                    calls[service][op] += n
    return calls


def run_case(case: str, jobs: int) -> dict[str, Any]:
    """Seed, collect from empty, collect again unchanged; in this process."""
    import boto3
    from moto import mock_aws

    import bench.bench_collect as single
    from tracker.aws.session import AwsContextFactory
    from tracker.collect.service import collect
    from tracker.settings import Settings, Source
    from tracker.store.database import Store

    _environment()
    with mock_aws(), tempfile.TemporaryDirectory() as tmp:
        started = time.perf_counter()
        seed_regions(jobs)
        seed_seconds = time.perf_counter() - started
        rss_seeded = peak_rss_mb()
        settings = Settings(sources=(Source(name="bench", regions=REGIONS),))
        store = Store.open(f"sqlite:///{Path(tmp) / 'bench.db'}")
        book, base = price_book(), boto3.Session()

        def once(now: datetime) -> tuple[float, dict, list[int]]:
            factory = AwsContextFactory(settings.collection, base_session=base)
            began = time.perf_counter()
            if case == "naive":
                calls = naive_collect(settings, store, book, now, factory)
                return time.perf_counter() - began, calls, []
            summary = collect(settings, store, book, clock=lambda: now, context_factory=factory)
            assert summary.ok, summary.render()
            per_region = [r.api_calls for r in summary.regions]
            return time.perf_counter() - began, summary.calls(), per_region

        seconds, calls, _ = once(single.NOW)
        rss = peak_rss_mb()
        stored = store.count_jobs()
        steady_seconds, steady_calls, steady_per_region = once(single.NOW + timedelta(minutes=10))
    return {
        "case": case, "jobs": jobs, "stored": stored, "regions": len(REGIONS),
        "seed_seconds": round(seed_seconds, 1), "seconds": round(seconds, 1),
        "jobs_per_second": round(jobs / seconds, 1), "calls": calls,
        "sagemaker_calls": _total(calls, "sagemaker"),
        "tagging_calls": _total(calls, "resource-groups-tagging-api"),
        "s3_calls": _total(calls, "s3"), "peak_rss_mb": rss, "rss_after_seed_mb": rss_seeded,
        "steady_seconds": round(steady_seconds, 2), "steady_calls": steady_calls,
        "steady_calls_per_region": steady_per_region or None,
        "steady_list_calls_per_region": _total(steady_calls, "sagemaker", "ListTrainingJobs")
        / len(REGIONS),
        "steady_describe_calls": _total(steady_calls, "sagemaker", "DescribeTrainingJob"),
    }  # fmt: skip


def _total(calls: dict[str, dict[str, int]], service: str, op: str | None = None) -> int:
    ops = calls.get(service, {})
    return ops.get(op, 0) if op else sum(ops.values())


def measure(quick: bool = False) -> dict[str, Any]:
    """Every case in its own process; the README rows."""
    scales = (1_000, 4_000) if quick else SCALES
    naive_scale = 1_000 if quick else NAIVE_SCALE
    cases = [("tracker", n) for n in scales] + [("naive", naive_scale)]
    results = {}
    for case, jobs in cases:
        _, rss, out = run_measured(["-m", "bench.bench_collect_scale", "--case", case,
                                    "--jobs", str(jobs)])  # fmt: skip
        result = json.loads(out.strip().splitlines()[-1])
        result["process_peak_rss_mb"] = rss
        results[f"{case}_{jobs}"] = result
    rows = []
    for jobs in scales:
        r = results[f"tracker_{jobs}"]
        per_job = (r["sagemaker_calls"] + r["tagging_calls"]) / jobs
        sm_per_job = r["sagemaker_calls"] / jobs
        label = f"Collector, {jobs:,} jobs in {len(REGIONS)} regions"
        rows += [
            Row(label, "jobs per second from an empty database (moto in-process)",
                f"{r['jobs_per_second']:,} jobs/s ({r['seconds']:,} s)"),
            Row(label, "SageMaker API calls per job", f"{sm_per_job:.3f} "
                f"({_total(r['calls'], 'sagemaker', 'ListTrainingJobs')} List + "
                f"{_total(r['calls'], 'sagemaker', 'DescribeTrainingJob')} Describe; "
                f"+{r['tagging_calls']} GetResources = {per_job:.3f} with tags)",
                f"<= {TARGET_CALLS_PER_JOB}", sm_per_job <= TARGET_CALLS_PER_JOB),
            Row(label, "S3 calls per job (artifact bytes)", f"{r['s3_calls'] / jobs:.3f}"),
            Row(label, "peak memory: whole process / of which moto holding the seeded jobs",
                f"{r['process_peak_rss_mb']:,.0f} MB / {r['rss_after_seed_mb']:,.0f} MB"),
            Row(label, "steady state, nothing new: API calls per region, seconds",
                f"{_steady(r)}; {r['steady_describe_calls']} Describe; {r['steady_seconds']} s",
                "1 per region", max(r["steady_calls_per_region"]) <= 1),
        ]  # fmt: skip
    tracker, naive = results[f"tracker_{naive_scale}"], results[f"naive_{naive_scale}"]
    mine = tracker["sagemaker_calls"] + tracker["tagging_calls"]
    theirs = naive["sagemaker_calls"] + naive["tagging_calls"]
    label = f"Collector vs straightforward, {naive_scale:,} jobs"
    rows += [
        Row(label, "SageMaker + Tagging calls, first run: straightforward / tracker",
            f"{theirs:,} / {mine:,} = {theirs / mine:.2f}x"),
        Row(label, "seconds, first run: straightforward / tracker",
            f"{naive['seconds']:,} / {tracker['seconds']:,} = {naive['seconds'] / tracker['seconds']:.2f}x"),
        Row(label, "calls on an unchanged rerun: straightforward / tracker",
            f"{_sum_calls(naive['steady_calls']):,} / {_sum_calls(tracker['steady_calls']):,}"),
    ]  # fmt: skip
    return {"rows": rows_json(rows), "cases": results, "machine": machine()}


def _steady(result: dict[str, Any]) -> str:
    per_region = result["steady_calls_per_region"]
    return f"{', '.join(str(n) for n in per_region)} (ListTrainingJobs pages under moto)"


def _sum_calls(calls: dict[str, dict[str, int]]) -> int:
    return sum(n for ops in calls.values() for n in ops.values())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.bench_collect_scale", description=__doc__
    )
    parser.add_argument("--case", choices=["tracker", "naive"], help="run one case in process")
    parser.add_argument("--jobs", type=int, default=10_000)
    parser.add_argument("--quick", action="store_true", help="1,000 and 4,000 jobs")
    args = parser.parse_args(argv)
    if args.case:
        print(json.dumps(run_case(args.case, args.jobs), default=str))
        return 0
    emit(measure(args.quick))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
