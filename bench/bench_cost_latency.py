"""Benchmark: cost latency. How long after a job ends is its cost in the database, with the
event listener running, against the poll at its default interval.

A moto server runs in this process; ``tracker events setup``'s rule and queue are made in it
(:func:`tracker.aws.events.setup`); the real ``tracker listen`` runs as a subprocess against it
(``[events] wait_seconds = 20``, the default; ``[collection]`` defaults, artifacts measured).
Then 200 jobs end one after another, ``--gap-ms`` (100 ms) apart: each is seeded finished
into moto's backend, and its "SageMaker Training Job State Change" event is put on
EventBridge, which moto routes to the queue. A watcher thread reads the SQLite database every
10 ms; a job's latency is from just before its event is put to the first read that finds its
row with its cost. For a sample of 10 more jobs, the latency is to the first
``tracker report --by job --format json`` (a fresh process each time) that lists the job.

The poll is not waited for: a job ending at a uniformly random moment waits for the next
collection, on average half the interval, at the 95th percentile 95 % of it, plus the
collection's own duration (not added here). The default interval is ``[schedule] collect``'s
default, ``*/15 * * * *`` (900 s), and with ``[events]`` the poll's default becomes hourly.

    python -m bench.bench_cost_latency            # 200 jobs
    python -m bench.bench_cost_latency --quick    # 40 jobs
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from bench.common import REPO, Row, emit, machine, rows_json

DEFAULT_JOBS = 200
QUICK_JOBS = 40
SAMPLE_REPORTS = 10
GAP_MS = 100
TARGET_P95 = 5.0
POLL_SECONDS = 900  # "*/15 * * * *", tracker.schedule.DEFAULT_SCHEDULE["collect"]
ACCOUNT, REGION = "123456789012", "us-east-1"


def percentile(values: list[float], pct: float) -> float:
    ordered = sorted(values)
    index = max(0, min(len(ordered) - 1, round(pct / 100 * len(ordered) + 0.5) - 1))
    return ordered[index]


class Watcher(threading.Thread):
    """Reads the database every 10 ms; records when each awaited job's cost first appears."""

    def __init__(self, db: Path) -> None:
        super().__init__(daemon=True)
        self.db = db
        self.awaited: dict[str, float] = {}  # name -> when its event was put
        self.latency: dict[str, float] = {}
        self.micros: dict[str, int] = {}
        self.lock = threading.Lock()
        self.done = threading.Event()

    def expect(self, name: str, put_at: float) -> None:
        with self.lock:
            self.awaited[name] = put_at

    def run(self) -> None:
        connection = None
        while not self.done.is_set():
            with self.lock:
                pending = [n for n in self.awaited if n not in self.latency]
            if pending:
                try:
                    connection = connection or sqlite3.connect(self.db, timeout=1)
                    marks = ",".join("?" * len(pending))
                    rows = connection.execute(
                        f"SELECT name, list_micros FROM jobs WHERE name IN ({marks})", pending
                    ).fetchall()
                    seen = time.perf_counter()
                    with self.lock:
                        for name, micros in rows:
                            self.latency[name] = seen - self.awaited[name]
                            self.micros[name] = micros
                except sqlite3.Error:
                    pass  # the listener has not made its tables yet
            time.sleep(0.01)


def measure(quick: bool = False, jobs: int | None = None, gap_ms: int = GAP_MS) -> dict[str, Any]:
    import boto3
    from moto.server import ThreadedMotoServer

    from tracker.aws import events as aws_events
    from tracker.aws import simulate

    jobs = jobs or (QUICK_JOBS if quick else DEFAULT_JOBS)
    env = {"AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench",
           "AWS_DEFAULT_REGION": REGION, "AWS_CONFIG_FILE": os.devnull,
           "AWS_SHARED_CREDENTIALS_FILE": os.devnull}  # fmt: skip
    os.environ.update(env)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    os.environ["AWS_ENDPOINT_URL"] = endpoint
    listener: subprocess.Popen[str] | None = None
    try:
        with tempfile.TemporaryDirectory() as tmp:
            session = boto3.Session(region_name=REGION)
            events, sqs, s3 = (session.client(n) for n in ("events", "sqs", "s3"))
            queue = aws_events.setup(events, sqs, ACCOUNT, REGION).queue_url
            simulate.ensure_bucket(s3, "sm-artifacts", REGION)
            db = Path(tmp) / "latency.db"
            config = Path(tmp) / "tracker.toml"
            config.write_text(
                f'[database]\nurl = "sqlite:///{db}"\n'
                f'[[sources]]\nname = "bench"\nregions = ["{REGION}"]\n'
                f'[events]\nqueues = [{{ url = "{queue}", region = "{REGION}" }}]\n'
            )
            log = open(Path(tmp) / "listen.log", "w")  # noqa: SIM115 - closed below
            listener = subprocess.Popen(
                [sys.executable, "-m", "tracker", "--config", str(config), "listen"],
                cwd=REPO, env={**os.environ}, stdout=log, stderr=log, text=True,
            )  # fmt: skip
            watcher = Watcher(db)
            watcher.start()
            # Warm up: the listener imports, learns its account, takes one event.
            warm = _end_job(events, "warm-up", 0)
            watcher.expect("warm-up", warm)
            _wait(lambda: "warm-up" in watcher.latency, 120)
            names = [f"latency-{i:03d}" for i in range(jobs)]
            for i, name in enumerate(names):
                watcher.expect(name, _end_job(events, name, i))
                time.sleep(gap_ms / 1000)  # jobs end over time, not all at once
            _wait(lambda: all(n in watcher.latency for n in names), 120)
            # A sample: from the event to the first `report --by job` that lists the job.
            report_latency = []
            for k in range(SAMPLE_REPORTS):
                name = f"report-{k:02d}"
                put_at = _end_job(events, name, jobs + k)
                report_latency.append(_until_reported(config, name, put_at))
            watcher.done.set()
            latencies = [watcher.latency[n] for n in names]
            priced = sum(1 for n in names if watcher.micros.get(n, 0) > 0)
            listener.send_signal(signal.SIGTERM)
            listener.wait(60)
            log.close()
    finally:
        if listener is not None and listener.poll() is None:
            listener.kill()
        server.stop()
    p50, p95 = statistics.median(latencies), percentile(latencies, 95)
    r50, r95 = statistics.median(report_latency), percentile(report_latency, 95)
    label = f"Cost latency, {jobs} jobs ending {gap_ms} ms apart, listener vs poll (moto server)"
    rows = [
        Row(label, "listener: event put -> cost in the database, p50", f"{p50:.2f} s"),
        Row(label, "listener: event put -> cost in the database, p95", f"{p95:.2f} s",
            f"< {TARGET_P95:g} s", p95 < TARGET_P95),
        Row(label, f"listener: event put -> in `report --by job`, p50 / p95 of {SAMPLE_REPORTS}",
            f"{r50:.2f} / {r95:.2f} s"),
        Row(label, f"poll every {POLL_SECONDS // 60} min (the default): expected p50 / p95",
            f"{POLL_SECONDS / 2:.0f} / {POLL_SECONDS * 0.95:.0f} s (computed, not waited)"),
        Row(label, "poll every 60 min (the default with [events]): expected p50 / p95",
            "1800 / 3420 s (computed)"),
    ]  # fmt: skip
    return {
        "rows": rows_json(rows), "jobs": jobs, "gap_ms": gap_ms, "priced": priced,
        "p50": round(p50, 3), "p95": round(p95, 3), "max": round(max(latencies), 3),
        "report_p50": round(r50, 3), "report_p95": round(r95, 3), "machine": machine(),
    }  # fmt: skip


def _end_job(events: Any, name: str, i: int) -> float:
    """Seed a finished job into moto and put its state-change event; when the put began."""
    from tracker.aws import events as aws_events
    from tracker.aws import simulate

    arn = simulate.seed_backend_job(
        name, simulate.JobSpec(billable=600 + i, tags={"team": f"team-{i % 5}"})
    )
    detail = {"TrainingJobName": name, "TrainingJobArn": arn, "TrainingJobStatus": "Completed"}
    put_at = time.perf_counter()
    events.put_events(Entries=[{"Source": "aws.sagemaker", "DetailType": aws_events.DETAIL_TYPE,
                                "Detail": json.dumps(detail), "Resources": [arn]}])  # fmt: skip
    return put_at


def _until_reported(config: Path, name: str, put_at: float) -> float:
    deadline = time.perf_counter() + 120
    while time.perf_counter() < deadline:
        out = subprocess.run(
            [sys.executable, "-m", "tracker", "--config", str(config), "report", "--by", "job",
             "--since", "2000-01-01", "--until", "2100-01-01", "--format", "json"],
            cwd=REPO, capture_output=True, text=True, env={**os.environ}, check=True,
        ).stdout  # fmt: skip
        if any(row.get("job") == name for row in json.loads(out)):
            return time.perf_counter() - put_at
    raise RuntimeError(f"{name} never appeared in the report")


def _wait(condition: Any, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            raise RuntimeError("the listener did not store the jobs in time")
        time.sleep(0.05)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.bench_cost_latency", description=__doc__)
    parser.add_argument("--jobs", type=int, default=None)
    parser.add_argument("--gap-ms", type=int, default=GAP_MS)
    parser.add_argument("--quick", action="store_true", help=f"{QUICK_JOBS} jobs")
    args = parser.parse_args(argv)
    emit(measure(args.quick, args.jobs, args.gap_ms))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
