"""Benchmark: a whole AWS Organization collected by 1 and by 3 collector processes sharing one
PostgreSQL database (advisory locks split the (account, region) pairs).

The organization (management account + 39 members, 40 accounts) lives in a moto server
(``ThreadedMotoServer``) in this process; its jobs are written straight into moto's backends
(``tracker.aws.simulate.seed_backend_job``, no HTTP) spread evenly over the accounts. Each
case collects from a fresh PostgreSQL schema with the real ``tracker collect`` command in
subprocesses (``[[sources]] organization = true``, ``role_name``; ``[collection] workers =
4``; artifacts not measured, so the numbers are about listing, describing and storing), and
checks that every job is stored exactly once: rows = distinct ARNs = jobs seeded, and the
runs' ``new`` counts add up to the jobs seeded (no job inserted by two processes).

One moto server answers every process: it is one Python process (one GIL) on the same
cores, so without latency it, not the collectors, bounds the speed-up. With the latency
model (``--latency-ms``, default 50: ``bench/latency_hook.py`` sleeps that long before each
AWS request in the collector processes, as a round trip to AWS would take) the cases are
also run as on real AWS, where the calls of different processes wait in parallel.

    python -m bench.bench_collect_org [--quick] [--jobs N] [--accounts N] [--latency-ms MS]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from bench.common import REPO, Row, emit, machine, rows_json

PG_URL = os.environ.get("TRACKER_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
REGION = "us-east-1"
ROLE_NAME = "SpendTrackerRead"
JOBS, ACCOUNTS = 50_000, 40
QUICK_JOBS = 2_000
PROCESS_COUNTS = (1, 3)
NOW = "2026-10-20T00:00:00Z"


def _environment() -> None:
    for key, value in {"AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench",
                       "AWS_DEFAULT_REGION": REGION}.items():  # fmt: skip
        os.environ.setdefault(key, value)


def seed(endpoint: str, jobs: int, accounts: int) -> list[str]:
    """The organization and its jobs; returns the account ids."""
    from datetime import datetime, timedelta

    import boto3

    from tracker.aws.simulate import DEFAULT_ACCOUNT, JobSpec, seed_backend_job

    org = boto3.client("organizations", region_name=REGION, endpoint_url=endpoint)
    org.create_organization(FeatureSet="ALL")
    ids = [DEFAULT_ACCOUNT]
    for i in range(accounts - 1):
        made = org.create_account(AccountName=f"member-{i}", Email=f"m{i}@example.com")
        ids.append(made["CreateAccountStatus"]["AccountId"])
    start = datetime(2026, 10, 1, 0, 0)
    for n in range(jobs):
        account = ids[n % accounts]
        spec = JobSpec(start=start + timedelta(seconds=n), billable=3600)
        seed_backend_job(f"job-{n:06d}", spec, account_id=account, region=REGION)
    return ids


def _config(folder: Path) -> Path:
    overrides = folder / "overrides.csv"
    overrides.write_text("region,instance_type,usd_per_hour,source,source_date\n"
                         f"{REGION},ml.m5.xlarge,0.23,bench,2026-10-01\n")  # fmt: skip
    config = folder / "tracker.toml"
    config.write_text(
        f'[[sources]]\nname = "org"\norganization = true\nrole_name = "{ROLE_NAME}"\n'
        f'regions = ["{REGION}"]\n[pricing]\noverrides = "{overrides}"\n'
        "[collection]\nmeasure_artifacts = false\nworkers = 4\n"
    )
    return config


def run_case(
    processes: int, endpoint: str, config: Path, jobs: int, latency_ms: int = 0
) -> dict[str, Any]:
    """``processes`` collectors at once on a fresh schema: wall seconds and the checks."""
    from sqlalchemy import create_engine, text

    schema = f"bench_{uuid.uuid4().hex[:10]}"
    admin = create_engine(PG_URL)
    with admin.begin() as connection:
        connection.execute(text(f"CREATE SCHEMA {schema}"))
    url = f"{PG_URL}?options=-csearch_path%3D{schema}"
    env = {**os.environ, "AWS_ENDPOINT_URL": endpoint, "TRACKER_NOW": NOW,
           "PYTHONPATH": str(REPO)}  # fmt: skip
    command = [sys.executable, "-m", "tracker", "--config", str(config), "--db", url]
    hook = ["bench.latency_hook", str(latency_ms), "--"] if latency_ms else ["tracker"]
    collector = [sys.executable, "-m", *hook, "--config", str(config), "--db", url, "collect"]
    try:
        # The schema first, so the timing is collection, not three processes migrating.
        subprocess.run([*command, "db", "upgrade"], env=env, cwd=REPO, check=True,
                       capture_output=True)  # fmt: skip
        began = time.perf_counter()
        running = [subprocess.Popen(collector, env=env, cwd=REPO, text=True,
                                    stdout=subprocess.PIPE, stderr=subprocess.PIPE)
                   for _ in range(processes)]  # fmt: skip
        outcomes = [(p.wait(), p.stdout.read(), p.stderr.read()) for p in running]
        seconds = time.perf_counter() - began
        failed = [o for o in outcomes if o[0] != 0]
        assert not failed, failed
        engine = create_engine(url)
        with engine.connect() as connection:
            rows, arns = connection.execute(
                text("SELECT count(*), count(DISTINCT arn) FROM jobs")
            ).one()
            summaries = [json.loads(s) for s in connection.execute(text(
                "SELECT summary_json FROM collection_runs WHERE finished_at IS NOT NULL"
            )).scalars()]  # fmt: skip
        engine.dispose()
    finally:
        with admin.begin() as connection:
            connection.execute(text(f"DROP SCHEMA {schema} CASCADE"))
        admin.dispose()
    new = sum(s["new"] for s in summaries)
    pairs = [len(s["regions"]) for s in summaries]
    skipped = [len(s.get("skipped", [])) for s in summaries]
    return {"processes": processes, "latency_ms": latency_ms, "seconds": round(seconds, 1), "rows": rows,
            "distinct_arns": arns, "new": new, "pairs_per_process": pairs,
            "skipped_per_process": skipped,
            "exactly_once": rows == arns == jobs == new}  # fmt: skip


def measure(
    quick: bool = False, jobs: int | None = None, accounts: int = ACCOUNTS, latency_ms: int = 50
) -> dict:
    from moto.server import ThreadedMotoServer

    _environment()
    jobs = jobs or (QUICK_JOBS if quick else JOBS)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    latencies = (0, latency_ms) if latency_ms else (0,)
    try:
        began = time.perf_counter()
        seed(endpoint, jobs, accounts)
        seed_seconds = round(time.perf_counter() - began, 1)
        with tempfile.TemporaryDirectory() as folder:
            config = _config(Path(folder))
            cases = {f"{n}p_{ms}ms": run_case(n, endpoint, config, jobs, ms)
                     for ms in latencies for n in PROCESS_COUNTS}  # fmt: skip
    finally:
        server.stop()
    label = f"Organization, {jobs:,} jobs over {accounts} accounts, PostgreSQL"
    rows = []
    for ms in latencies:
        one, three = cases[f"1p_{ms}ms"], cases[f"3p_{ms}ms"]
        when = f"{ms} ms per AWS request" if ms else "no added latency"
        rows += [
            Row(label, f"wall seconds, 1 process vs 3 processes at once (4 workers each), {when}",
                f"{one['seconds']:,} s vs {three['seconds']:,} s = "
                f"{one['seconds'] / three['seconds']:.2f}x"),
            Row(label, f"every job stored exactly once (rows = distinct ARNs = seeded = new), {when}",
                f"1 process: {one['exactly_once']}; 3 processes: {three['exactly_once']} "
                f"(pairs per process {three['pairs_per_process']}, skipped "
                f"{three['skipped_per_process']})", "yes",
                one["exactly_once"] and three["exactly_once"]),
        ]  # fmt: skip
    return {"rows": rows_json(rows), "cases": cases, "seed_seconds": seed_seconds,
            "jobs": jobs, "accounts": accounts, "machine": machine()}  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.bench_collect_org", description=__doc__)
    parser.add_argument("--quick", action="store_true", help=f"{QUICK_JOBS:,} jobs")
    parser.add_argument("--jobs", type=int, help=f"jobs to seed (default {JOBS:,})")
    parser.add_argument("--accounts", type=int, default=ACCOUNTS)
    parser.add_argument("--latency-ms", type=int, default=50, help="0: no latency model run")
    args = parser.parse_args(argv)
    emit(measure(args.quick, args.jobs, args.accounts, args.latency_ms))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
