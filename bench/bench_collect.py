"""Benchmark: collect N finished training jobs from moto (in-process) into an empty SQLite DB.

Seeding writes straight into moto's backends (the same FakeTrainingJob objects
CreateTrainingJob makes, plus one model artifact per job in S3); the timed part is
the real collector through boto3, exactly as ``tracker collect`` runs it. Then a
rerun with nothing changed shows the steady-state calls per region.

    python -m bench.bench_collect [--jobs 10000] [--db PATH] [--output bench/results.json]

Writes its numbers under the key "collect" of the results JSON (other keys are kept)
and prints them as a Markdown table. Not a test: timings depend on the machine.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import resource
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent

NOW = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)
REGION = "us-east-1"
ACCOUNT = "123456789012"
TYPES = [("ml.m5.xlarge", 1, 4), ("ml.g5.2xlarge", 1, 2), ("ml.g5.12xlarge", 1, 2),
         ("ml.p4d.24xlarge", 1, 2), ("ml.c5.4xlarge", 1, 8)]  # fmt: skip
TEAMS = ["nlp", "vision", "recsys", "speech", "ads"]
STATUSES = ["Completed"] * 17 + ["Failed", "Stopped", "Completed"]


def seed(n: int, rng: random.Random) -> None:
    """N finished jobs over the 60 days before NOW; completed ones leave a model in S3.

    Artifacts go to one bucket per project (20 buckets): moto lists a prefix by scanning
    every key of the bucket, so a single shared bucket would make moto, not the
    collector, quadratic in N.
    """
    from tracker.aws.simulate import JobSpec, seed_backend_job

    first = NOW.replace(tzinfo=None) - timedelta(days=60)
    step = timedelta(days=59) / max(n, 1)
    for i in range(n):
        itype, low, high = rng.choice(TYPES)
        status = rng.choice(STATUSES)
        seconds = rng.randrange(300, 6 * 3600)
        spot = rng.random() < 0.3
        team = rng.choice(TEAMS)
        project = f"{team}-p{rng.randint(1, 4)}"
        seed_backend_job(
            f"{team}-job-{i:06d}",
            JobSpec(
                instance_type=itype,
                count=rng.randint(low, high),
                status=status,
                start=first + step * i,
                billable=(seconds * 2 // 5 if spot else seconds) if status != "Failed" else None,
                training=seconds,
                spot=spot,
                tags={"team": team, "project": project, "owner": f"u{i % 37}"},
                output_bucket=f"{project}-artifacts",  # one bucket per project, as teams do
                artifact_bytes=rng.randrange(1_000, 50_000) if status == "Completed" else 0,
            ),
            account_id=ACCOUNT,
            region=REGION,
        )


def price_book() -> Any:
    from tracker.cost.prices import PriceBook

    rates = {"ml.m5.xlarge": "0.23", "ml.g5.2xlarge": "1.515", "ml.g5.12xlarge": "7.09",
             "ml.p4d.24xlarge": "37.688", "ml.c5.4xlarge": "0.816"}  # fmt: skip
    return PriceBook(
        {(REGION, t): Decimal(r) for t, r in rates.items()},
        storage={REGION: Decimal("0.14")},
        s3={REGION: Decimal("0.023")},
    )


class TimedStore:
    """The real Store, with the time spent in its collector-facing writes and reads added up."""

    def __init__(self, store: Any):
        self._store = store
        self.seconds = 0.0

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._store, name)
        if name not in ("save_jobs", "job_versions", "recost_running", "advance_watermark"):
            return attr

        def timed(*args: Any, **kwargs: Any) -> Any:
            began = time.perf_counter()
            try:
                return attr(*args, **kwargs)
            finally:
                self.seconds += time.perf_counter() - began

        return timed


def peak_rss_mb() -> float:
    """Peak resident memory of this process so far (ru_maxrss is KiB on Linux, bytes on macOS)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return round(peak / (1024 * 1024 if sys.platform == "darwin" else 1024), 1)


def run(jobs: int, db: Path) -> dict[str, Any]:
    """Seed, collect once from empty, collect again unchanged; return the measurements."""
    import boto3
    from moto import mock_aws

    from tracker.aws.session import AwsContextFactory
    from tracker.collect.service import collect
    from tracker.settings import Settings, Source
    from tracker.store.database import Store

    for key, value in {"AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench",
                       "AWS_DEFAULT_REGION": REGION}.items():  # fmt: skip
        os.environ.setdefault(key, value)
    for key in [k for k in os.environ if k.startswith("AWS_ENDPOINT_URL")]:
        del os.environ[key]  # in-process moto only answers AWS's own endpoints
    with mock_aws():
        started = time.perf_counter()
        seed(jobs, random.Random(20261101))
        seed_seconds = time.perf_counter() - started
        rss_after_seed = peak_rss_mb()

        settings = Settings(sources=(Source(name="bench", regions=(REGION,)),))
        store = TimedStore(Store.open(f"sqlite:///{db}"))
        book = price_book()
        base = boto3.Session()

        def once(now: datetime) -> Any:
            factory = AwsContextFactory(settings.collection, base_session=base)
            return collect(settings, store, book, clock=lambda: now, context_factory=factory)

        first = once(NOW)
        store_seconds = store.seconds
        rss_after_collect = peak_rss_mb()
        rerun = once(NOW + timedelta(minutes=10))
        stored = store.count_jobs()

    calls = first.calls()
    sagemaker = sum(calls.get("sagemaker", {}).values())
    s3 = sum(calls.get("s3", {}).values())
    tagging = sum(calls.get("resource-groups-tagging-api", {}).values())
    region = first.regions[0]
    aws_seconds = sum(sum(r.aws_seconds.values()) for r in first.regions)
    return {
        "jobs": jobs,
        "stored": stored,
        "errors": [r.error for r in first.regions if r.error],
        "seed_seconds": round(seed_seconds, 2),
        "collect_seconds": round(first.seconds, 2),
        "jobs_per_second": round(jobs / first.seconds, 1) if first.seconds else None,
        "sagemaker_calls": sagemaker,
        "sagemaker_calls_per_job": round(sagemaker / jobs, 4) if jobs else None,
        "describe_calls": calls.get("sagemaker", {}).get("DescribeTrainingJob", 0),
        "list_calls": calls.get("sagemaker", {}).get("ListTrainingJobs", 0),
        "tagging_calls": tagging,
        "tagging_calls_per_job": round(tagging / jobs, 4) if jobs else None,
        "s3_calls": s3,
        "s3_calls_per_job": round(s3 / jobs, 4) if jobs else None,
        "calls": calls,
        "retries": region.retries,
        "seconds_in_aws_calls": round(aws_seconds, 2),
        "seconds_in_aws_calls_by_service": {
            k: round(v, 2) for k, v in sorted(region.aws_seconds.items())
        },
        "seconds_in_store": round(store_seconds, 2),
        "seconds_other": round(first.seconds - aws_seconds - store_seconds, 2),
        "peak_rss_mb_after_seed": rss_after_seed,
        "peak_rss_mb_after_collect": rss_after_collect,
        "rerun_seconds": round(rerun.seconds, 3),
        "rerun_calls_per_region": rerun.regions[0].api_calls,
        "rerun_calls": rerun.calls(),
        "rerun_describe_calls": rerun.calls().get("sagemaker", {}).get("DescribeTrainingJob", 0),
        "rerun_unchanged_listed": rerun.regions[0].unchanged,
        "machine": f"{platform.python_implementation()} {platform.python_version()}, "
        f"{os.cpu_count()} CPU, {platform.system()} {platform.machine()}",
        "measured_at": datetime.now(UTC).strftime("%Y-%m-%d"),
    }


def rows(result: dict[str, Any]) -> list[dict[str, Any]]:
    """README table rows, shaped like ``bench.common.Row`` (benchmark, measure, value, ...)."""
    per_job = result["sagemaker_calls_per_job"]

    def row(measure: str, value: str, target: str = "", met: bool | None = None) -> dict:
        return {"benchmark": "Collector", "measure": measure, "value": value,
                "target": target, "met": met}  # fmt: skip

    return [
        row(f"jobs per second ({result['jobs']:,} finished jobs from moto into empty SQLite)",
            f"{result['jobs_per_second']} jobs/s ({result['collect_seconds']} s)"),
        row("SageMaker calls per job", f"{per_job}", "<= 1.1", per_job <= 1.1),
        row("Tagging API calls (bulk GetResources)",
            f"{result['tagging_calls']} ({result['tagging_calls_per_job']} per job)"),
        row("S3 calls per job (artifact bytes)", f"{result['s3_calls_per_job']}"),
        row("unchanged rerun: DescribeTrainingJob calls", f"{result['rerun_describe_calls']}",
            "0", result["rerun_describe_calls"] == 0),
        row("peak RSS after collecting (moto's seeded state included)",
            f"{result['peak_rss_mb_after_collect']} MB"),
    ]  # fmt: skip


def measure(quick: bool = False, count: int = 10_000) -> dict[str, Any]:
    """Run the benchmark in this process; ``quick`` collects 1,000 jobs instead of ``count``."""
    with tempfile.TemporaryDirectory() as tmp:
        result = run(1_000 if quick else count, Path(tmp) / "bench.db")
    return {"rows": rows(result), **result}


def markdown(result: dict[str, Any]) -> str:
    """The numbers as a Markdown table (for the README and the report)."""
    rows = [
        ("jobs collected (empty SQLite DB)", f"{result['stored']:,} of {result['jobs']:,}"),
        ("collect time", f"{result['collect_seconds']} s"),
        ("jobs per second", f"{result['jobs_per_second']}"),
        ("SageMaker calls per job (target <= 1.1)", f"{result['sagemaker_calls_per_job']} "
         f"({result['list_calls']} List + {result['describe_calls']} Describe)"),
        ("Tagging API calls (bulk GetResources)", f"{result['tagging_calls']} "
         f"({result['tagging_calls_per_job']} per job)"),
        ("S3 calls per job", f"{result['s3_calls_per_job']}"),
        ("time inside AWS calls (moto in-process)", f"{result['seconds_in_aws_calls']} s "
         f"({_by_service(result['seconds_in_aws_calls_by_service'])})"),
        ("time in the store (SQLite writes and lookups)", f"{result['seconds_in_store']} s"),
        ("time parsing, costing, other", f"{result['seconds_other']} s"),
        ("peak RSS after seeding moto / after collecting", f"{result['peak_rss_mb_after_seed']} MB"
         f" / {result['peak_rss_mb_after_collect']} MB"),
        ("unchanged rerun: API calls per region", f"{result['rerun_calls_per_region']} "
         f"({result['rerun_describe_calls']} Describe), {result['rerun_seconds']} s"),
        ("seeding moto (not timed in the above)", f"{result['seed_seconds']} s"),
    ]  # fmt: skip
    lines = ["| measure | value |", "|---|---|"]
    lines += [f"| {name} | {value} |" for name, value in rows]
    lines.append(
        f"\nMachine: {result['machine']}; moto in-process; {result['measured_at']}. "
        "Moto pages ListTrainingJobs before filtering, so an unchanged rerun walks every page "
        "of 100 (empty but for the overlap window); SageMaker filters server-side, so there "
        "the rerun is one ListTrainingJobs call and one STS call per region."
    )
    return "\n".join(lines)


def _by_service(seconds: dict[str, float]) -> str:
    return ", ".join(f"{service} {value} s" for service, value in seconds.items())


def write_results(path: Path, result: dict[str, Any]) -> None:
    """Merge under the key "collect", keeping what other benchmarks wrote."""
    data: dict[str, Any] = {}
    if path.exists():
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError:
            data = {}
    data["collect"] = result
    path.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n", encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.bench_collect", description=__doc__)
    parser.add_argument("--jobs", type=int, default=10_000, help="finished jobs to seed")
    parser.add_argument("--db", type=Path, help="SQLite file (default: a fresh temporary one)")
    parser.add_argument("--output", type=Path, default=REPO / "bench" / "results.json")
    parser.add_argument("--quick", action="store_true", help="1,000 jobs instead of --jobs")
    parser.add_argument(
        "--json", action="store_true", help="print one JSON document (rows included) instead"
    )
    args = parser.parse_args(argv)
    if args.jobs < 1:
        parser.error(f"--jobs {args.jobs}: expected a positive number of jobs")
    jobs = 1_000 if args.quick else args.jobs
    with tempfile.TemporaryDirectory() as tmp:
        db = args.db or Path(tmp) / "bench.db"
        if db.exists():
            parser.error(f"--db {db}: the benchmark needs an empty database; remove it first")
        result = run(jobs, db)
    if args.json:
        print(json.dumps({"rows": rows(result), **result}, default=str))
        return 0
    write_results(args.output, result)
    print(markdown(result))
    print(f'\nWritten to {args.output} (key "collect").')
    return 0 if not result["errors"] and result["stored"] == result["jobs"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
