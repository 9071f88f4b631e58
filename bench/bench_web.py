"""Benchmark: hostile and largest legal requests to ``tracker serve`` (issue 12, row 1).

The real ``tracker serve`` runs in a subprocess over ``bench.bench_reports``' database cut to
20,000 jobs across 2026 (cached in ``bench/.data``). Each request below is sent twice over
HTTP; the slower is kept. The server's extra memory is its peak resident memory during the
request (VmHWM, reset before each request through ``/proc/PID/clear_refs`` where Linux
allows it) less its resident memory before it. The server runs under a 4 GB address-space
limit, so a runaway request fails here instead of taking the machine.

Target (issue 12): ``GET /views/trend`` with any window answers within 2 s and under 300 MB
of extra server memory; the other requests are held to the same.

    python -m bench.bench_web [--jobs 20000] [--quick]
"""

from __future__ import annotations

import os
import resource
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from bench.bench_reports import cached_database_main, database
from bench.common import PYTHON, REPO, Row, machine, rows_json

TARGET_SECONDS = 2.0
TARGET_MB = 300
SERVER_ADDRESS_SPACE = 4 * 2**30
CENTURIES = "since=0001-01-01&until=9999-12-31"
LARGEST_DAILY = "since=2025-11-27&until=2026-12-31"  # 400 days, the default per-day bound
CASES = (
    ("trend page, year 1 to 9999", f"/views/trend?{CENTURIES}"),
    ("trend API, year 1 to 9999", f"/api/views/trend?{CENTURIES}"),
    ("trend page, since year 1 (to today)", "/views/trend?since=0001-01-01"),
    ("trend page, 400 days", f"/views/trend?{LARGEST_DAILY}"),
    ("trend API, 400 days", f"/api/views/trend?{LARGEST_DAILY}"),
    ("trend page, default window", "/views/trend"),
    ("top page, top=1000", "/views/top?top=1000"),
    ("top API, top=1000", "/api/views/top?top=1000"),
    ("showback page by month, year 1 to 9999", f"/views/showback?{CENTURIES}"),
    ("showback API team x day, 2026", "/api/views/showback?pivot=team,day&since=2026-01-01&until=2026-12-31"),
    ("report API by job (all jobs, paged)", "/api/report?by=job"),
    ("overview", "/"),
)  # fmt: skip


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _status_kb(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1])
    raise RuntimeError(f"no {field} in /proc/{pid}/status")


def _reset_peak(pid: int) -> bool:
    try:
        Path(f"/proc/{pid}/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def _get(base: str, path: str) -> tuple[int, int]:
    """(status, body bytes) of GET ``path``; error statuses are answers too."""
    try:
        with urllib.request.urlopen(base + path, timeout=120) as response:
            return response.status, len(response.read())
    except urllib.error.HTTPError as error:
        return error.code, len(error.read())


def _limit_memory() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (SERVER_ADDRESS_SPACE, SERVER_ADDRESS_SPACE))


def _serve(url: str, port: int, log: Any) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": os.environ.get("PYTHONPATH", str(REPO))}
    server = subprocess.Popen(
        [PYTHON, "-m", "tracker", "--db", url, "serve", "--port", str(port)],
        stdout=log, stderr=log, env=env, cwd=REPO, preexec_fn=_limit_memory,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"tracker serve exited with {server.returncode}")
        try:
            if _get(base, "/healthz")[0] == 200:
                return server
        except OSError:
            time.sleep(0.1)  # still starting
    server.kill()
    raise RuntimeError("tracker serve did not answer /healthz within 60 s")


def measure(quick: bool = False, jobs: int = 20_000, rebuild: bool = False) -> dict[str, Any]:
    jobs = 5_000 if quick else jobs
    path, build_seconds = database(jobs, rebuild)
    url = f"sqlite:///{path}"
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    results: dict[str, Any] = {"jobs": jobs, "build_seconds": build_seconds, "cases": {}}
    rows = []
    bench = f"Dashboard under hostile requests ({jobs:,} jobs, SQLite, `tracker serve`)"
    with tempfile.TemporaryFile("w+") as log:
        server = _serve(url, port, log)
        try:
            _get(base, "/views/top")  # warm: imports, templates, page cache
            resets = True
            for label, path_query in CASES:
                timings, extra_mb, status, size = [], 0.0, 0, 0
                for _ in range(2):
                    if server.poll() is not None:
                        raise RuntimeError(f"tracker serve died on {path_query}")
                    before_kb = _status_kb(server.pid, "VmRSS")
                    resets = _reset_peak(server.pid) and resets
                    started = time.perf_counter()
                    status, size = _get(base, path_query)
                    timings.append(time.perf_counter() - started)
                    peak_kb = _status_kb(server.pid, "VmHWM")
                    extra_mb = max(extra_mb, max(0, peak_kb - before_kb) / 1024)
                seconds = max(timings)
                results["cases"][label] = {
                    "path": path_query, "status": status, "bytes": size,
                    "seconds": round(seconds, 3), "extra_mb": round(extra_mb, 1),
                }  # fmt: skip
                met = seconds < TARGET_SECONDS and extra_mb < TARGET_MB
                rows.append(Row(bench, f"`GET {path_query}` ({label})",
                                f"{status}, {seconds:.2f} s, +{extra_mb:.0f} MB, {size:,} bytes",
                                f"< {TARGET_SECONDS:g} s, < {TARGET_MB} MB", met))  # fmt: skip
            results["peak_reset_per_request"] = resets
            results["server_rss_mb"] = round(_status_kb(server.pid, "VmRSS") / 1024, 1)
        finally:
            server.terminate()
            try:
                server.wait(timeout=30)
            except subprocess.TimeoutExpired:
                server.kill()
    trend = [c for label, c in results["cases"].items() if label.startswith("trend")]
    results["worst_trend"] = {
        "seconds": max(c["seconds"] for c in trend),
        "extra_mb": max(c["extra_mb"] for c in trend),
    }
    results["rows"] = rows_json(rows)
    results["machine"] = machine()
    return results


def main(argv: list[str] | None = None) -> int:
    return cached_database_main(
        "python -m bench.bench_web", __doc__, measure, ["--jobs", "20000", *(argv or sys.argv[1:])]
    )


if __name__ == "__main__":
    raise SystemExit(main())
