"""Benchmark: the report views and the dashboard on 1,000,000 stored jobs in SQLite.

Uses the database of ``bench.bench_reports`` (1,000 template jobs copied across 2026, cached
in ``bench/.data``). Measured, each as a whole CLI run in a fresh process with its peak
resident memory, ``--format json``:

- ``report --view showback`` for the second quarter of 2026 (team x month),
- ``report --view top --top 20`` for June 2026,
- ``report --view waste`` for June 2026,
- ``report --view trend`` for June 2026,

and, in process, the dashboard's overview and one team page through FastAPI's test client.
Target: each under 2 s and 500 MB; the overview under 0.2 s warm (issue 14).

    python -m bench.bench_views [--jobs 1000000] [--quick]
"""

from __future__ import annotations

import json
import time
from typing import Any

from bench.bench_reports import cached_database_main, database
from bench.common import Row, machine, rows_json, run_measured

TARGET_SECONDS = 2.0
TARGET_MB = 500
OVERVIEW_SECONDS = 0.2  # issue 14: the dashboard overview, warm
CASES = (
    ("showback", ["--view", "showback", "--since", "2026-04-01", "--until", "2026-06-30"]),
    ("top", ["--top", "20", "--since", "2026-06-01", "--until", "2026-06-30"]),
    ("waste", ["--view", "waste", "--since", "2026-06-01", "--until", "2026-06-30"]),
    ("trend", ["--view", "trend", "--since", "2026-06-01", "--until", "2026-06-30"]),
)


def _dashboard(url: str) -> dict[str, float]:
    """Seconds for the overview and a team page (warm), in process."""
    import warnings
    from datetime import UTC, datetime

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from fastapi.testclient import TestClient

    from tracker.store.database import Store
    from tracker.web.app import create_app

    client = TestClient(
        create_app(Store.open(url), clock=lambda: datetime(2026, 6, 20, tzinfo=UTC))
    )
    out = {}
    for label, path in (("overview", "/"), ("team page", "/team?name=team-03")):
        client.get(path)
        started = time.perf_counter()
        response = client.get(path)
        out[label] = time.perf_counter() - started
        if response.status_code != 200:
            raise RuntimeError(f"{path}: {response.status_code}")
    return out


def measure(quick: bool = False, jobs: int = 1_000_000, rebuild: bool = False) -> dict[str, Any]:
    jobs = 100_000 if quick else jobs
    path, build_seconds = database(jobs, rebuild)
    url = f"sqlite:///{path}"
    results: dict[str, Any] = {"jobs": jobs, "build_seconds": build_seconds}
    rows = []
    bench = f"Views ({jobs:,} jobs, SQLite)"
    for view, extra in CASES:
        args = ["-m", "tracker", "--db", url, "report", *extra, "--format", "json"]
        run_measured(args)  # warm: page cache, .pyc files
        runs = [run_measured(args) for _ in range(3)]
        seconds = sorted(r[0] for r in runs)[1]
        rss = max(r[1] for r in runs)
        output = json.loads(runs[0][2])
        results[view] = {
            "cli_seconds": round(seconds, 3),
            "cli_peak_rss_mb": rss,
            "rows": len(output),
        }
        rows.append(Row(bench, f"`report {' '.join(extra)}`, whole CLI run",
                        f"{seconds:.2f} s, peak {rss:.0f} MB ({len(output)} rows)",
                        f"< {TARGET_SECONDS:g} s, < {TARGET_MB} MB",
                        seconds < TARGET_SECONDS and rss < TARGET_MB))  # fmt: skip
    for label, seconds in _dashboard(url).items():
        results[label] = round(seconds, 3)
        target = OVERVIEW_SECONDS if label == "overview" else TARGET_SECONDS
        rows.append(Row(bench, f"dashboard {label} (in process, warm)", f"{seconds:.3f} s",
                        f"< {target:g} s", seconds < target))  # fmt: skip
    results["rows"] = rows_json(rows)
    results["machine"] = machine()
    return results


def main(argv: list[str] | None = None) -> int:
    return cached_database_main("python -m bench.bench_views", __doc__, measure, argv)


if __name__ == "__main__":
    raise SystemExit(main())
