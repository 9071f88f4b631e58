"""Benchmark: collection under a latency model. The same moto, the same N jobs in 4 regions,
collected three ways, each in a fresh process:

- ``search``: the tracker, ``[collection] method = "search"`` (SageMaker Search, 100 whole
  records with tags a call; S3 prefixes shared by a batch listed once);
- ``list``: the tracker, ``method = "list"`` (ListTrainingJobs, DescribeTrainingJob per job,
  GetResources per 100 jobs; the same S3 measuring);
- ``naive``: the straightforward serial loop: ListTrainingJobs, then DescribeTrainingJob,
  ListTags and a per-job S3 listing for every job (``bench_collect_scale.naive_collect``).

**Latency model**: every AWS request waits a fixed ``--delay-ms`` (50 ms) before moto answers
it: a botocore ``before-send`` handler, registered first on every client this benchmark's
process creates (``botocore.session.Session.create_client`` is wrapped here, in the benchmark
only), sleeps and lets the request go on to moto. A real AWS round trip from the same Region
takes tens of milliseconds; moto in-process takes well under one. Nothing else changes.

Jobs are seeded by ``bench_collect_scale.seed_regions`` (straight into moto's backends, a
quarter per region, artifacts in one bucket per project). Each case collects from an empty
SQLite database, then (tracker cases) again with nothing new, 10 minutes later.

    python -m bench.bench_collect_search                 # 2,000 jobs, 50 ms
    python -m bench.bench_collect_search --quick         # 400 jobs
    python -m bench.bench_collect_search --jobs 10000    # the issue's size (the naive loop
                                                         # alone then takes about 25 minutes)
    python -m bench.bench_collect_search --case search --jobs 1000   # one case, JSON
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

from bench.common import Row, emit, machine, rows_json, run_measured

DEFAULT_JOBS = 2_000
QUICK_JOBS = 400
DELAY_MS = 50
CASES = ("search", "list", "naive")
TARGET_SM_PER_JOB = 0.03
TARGET_S3_PER_JOB = 0.2
TARGET_SPEEDUP = 20


def add_latency(delay_seconds: float) -> None:
    """Every botocore client made from now on waits ``delay_seconds`` before each request."""
    import botocore.session

    original = botocore.session.Session.create_client

    def wait(**_: Any) -> None:
        time.sleep(delay_seconds)  # returning None lets the request go on to moto

    def create_client(self: Any, *args: Any, **kwargs: Any) -> Any:
        client = original(self, *args, **kwargs)
        client.meta.events.register_first("before-send", wait)
        return client

    botocore.session.Session.create_client = create_client  # type: ignore[method-assign]


def run_case(case: str, jobs: int, delay_ms: int) -> dict[str, Any]:
    import boto3
    from moto import mock_aws

    import bench.bench_collect as single
    from bench.bench_collect_scale import (
        REGIONS,
        _environment,
        naive_collect,
        price_book,
        seed_regions,
    )
    from tracker.aws.session import AwsContextFactory
    from tracker.collect.service import collect
    from tracker.settings import CollectionSettings, Settings, Source
    from tracker.store.database import Store

    _environment()
    with mock_aws(), tempfile.TemporaryDirectory() as tmp:
        seed_regions(jobs)
        add_latency(delay_ms / 1000)
        method = "list" if case == "naive" else case
        settings = Settings(
            sources=(Source(name="bench", regions=REGIONS),),
            collection=CollectionSettings(method=method),
        )
        store = Store.open(f"sqlite:///{Path(tmp) / 'bench.db'}")
        book, base = price_book(), boto3.Session()

        def once(now: Any) -> tuple[float, dict, list[dict]]:
            factory = AwsContextFactory(settings.collection, base_session=base)
            began = time.perf_counter()
            if case == "naive":
                calls = naive_collect(settings, store, book, now, factory)
                return time.perf_counter() - began, calls, []
            summary = collect(settings, store, book, clock=lambda: now, context_factory=factory)
            assert summary.ok, summary.to_dict()
            return time.perf_counter() - began, summary.calls(), [r.calls for r in summary.regions]

        seconds, calls, _ = once(single.NOW)
        stored = store.count_jobs()
        rerun: dict[str, Any] = {}
        if case != "naive":
            again, again_calls, per_region = once(single.NOW + timedelta(minutes=10))
            rerun = {"rerun_seconds": round(again, 2), "rerun_calls": again_calls,
                     "rerun_calls_per_region": [_aws(c) for c in per_region]}  # fmt: skip
    return {
        "case": case, "jobs": jobs, "stored": stored, "regions": len(REGIONS),
        "delay_ms": delay_ms, "seconds": round(seconds, 2), "calls": calls,
        "sm_tagging_calls": _total(calls, "sagemaker") + _total(calls, "resource-groups-tagging-api"),
        "s3_calls": _total(calls, "s3"), **rerun,
    }  # fmt: skip


def _total(calls: dict[str, dict[str, int]], service: str) -> int:
    return sum(calls.get(service, {}).values())


def _aws(calls: dict[str, dict[str, int]]) -> int:
    """Calls of one region, the one-off STS identity lookup left out."""
    return sum(n for svc, ops in calls.items() if svc != "sts" for n in ops.values())


def measure(quick: bool = False, jobs: int | None = None, delay_ms: int = DELAY_MS) -> dict:
    jobs = jobs or (QUICK_JOBS if quick else DEFAULT_JOBS)
    results = {}
    for case in CASES:
        _, rss, out = run_measured(["-m", "bench.bench_collect_search", "--case", case,
                                    "--jobs", str(jobs), "--delay-ms", str(delay_ms)])  # fmt: skip
        results[case] = json.loads(out.strip().splitlines()[-1])
        results[case]["process_peak_rss_mb"] = rss
    label = f"Collection at {delay_ms} ms a request, {jobs:,} jobs in 4 regions"
    rows = []
    for case in CASES:
        r = results[case]
        sm, s3 = r["sm_tagging_calls"] / jobs, r["s3_calls"] / jobs
        name = {"search": "tracker, search", "list": "tracker, list", "naive": "straightforward loop"}[case]  # fmt: skip
        rows += [
            Row(label, f"{name}: SageMaker + Tagging calls per job", f"{sm:.3f}",
                f"<= {TARGET_SM_PER_JOB}" if case == "search" else "",
                sm <= TARGET_SM_PER_JOB if case == "search" else None),
            Row(label, f"{name}: S3 calls per job", f"{s3:.3f}",
                f"<= {TARGET_S3_PER_JOB}" if case == "search" else "",
                s3 <= TARGET_S3_PER_JOB if case == "search" else None),
            Row(label, f"{name}: seconds, first run from empty",
                f"{r['seconds']:,} s ({jobs / r['seconds']:,.0f} jobs/s)"),
        ]  # fmt: skip
    naive = results["naive"]["seconds"]
    for case in ("search", "list"):
        ratio = naive / results[case]["seconds"]
        rows.append(Row(label, f"straightforward / tracker, {case}: wall time",
                        f"{naive:,} / {results[case]['seconds']:,} s = {ratio:.1f}x",
                        f">= {TARGET_SPEEDUP}x" if case == "search" else "",
                        ratio >= TARGET_SPEEDUP if case == "search" else None))  # fmt: skip
    for case in ("search", "list"):
        r = results[case]
        rows.append(Row(label, f"tracker, {case}: unchanged rerun, calls per region; seconds",
                        f"{', '.join(map(str, r['rerun_calls_per_region']))}; {r['rerun_seconds']} s",
                        "1 per region" if case == "search" else "",
                        max(r["rerun_calls_per_region"]) <= 1 if case == "search" else None))  # fmt: skip
    return {"rows": rows_json(rows), "cases": results, "machine": machine()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.bench_collect_search", description=__doc__
    )
    parser.add_argument("--case", choices=CASES, help="run one case in this process")
    parser.add_argument("--jobs", type=int, default=None)
    parser.add_argument("--delay-ms", type=int, default=DELAY_MS)
    parser.add_argument("--quick", action="store_true", help=f"{QUICK_JOBS:,} jobs")
    args = parser.parse_args(argv)
    if args.case:
        print(
            json.dumps(run_case(args.case, args.jobs or DEFAULT_JOBS, args.delay_ms), default=str)
        )
        return 0
    emit(measure(args.quick, args.jobs, args.delay_ms))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
