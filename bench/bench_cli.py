"""Benchmark: CLI cold start. ``tracker --help`` in a fresh interpreter, target under 0.5 s.

Heavy libraries (boto3, pandas, SQLAlchemy, moto, numpy, FastAPI) must not load for
``--help``: each command imports what it needs when it runs. The benchmark also lists
which of them ``--help`` did load, so a regression names its culprit.

    python -m bench.bench_cli [--runs 9]
"""

from __future__ import annotations

import argparse
import json
import statistics
from typing import Any

from bench.common import Row, emit, machine, rows_json, run_measured

TARGET_SECONDS = 0.5
HEAVY = ("boto3", "botocore", "pandas", "numpy", "sqlalchemy", "sqlmodel", "moto", "fastapi",
         "alembic", "pyarrow", "apscheduler")  # fmt: skip
PROBE = (
    "import json, sys\n"
    "from tracker.cli.main import build_parser\n"
    "build_parser().format_help()\n"
    f"print(json.dumps(sorted(m for m in {HEAVY!r} if m in sys.modules)))\n"
)


def measure(quick: bool = False, runs: int = 9) -> dict[str, Any]:
    """Median and worst wall time of ``python -m tracker --help``, and heavy modules loaded."""
    runs = 3 if quick else runs
    run_measured(["-m", "tracker", "--help"])  # warm the OS file cache and .pyc files
    times = [run_measured(["-m", "tracker", "--help"])[0] for _ in range(runs)]
    _, rss, out = run_measured(["-c", PROBE])
    loaded = json.loads(out)
    median = statistics.median(times)
    rows = [
        Row("CLI", "`tracker --help` cold start (median of "
            f"{runs})", f"{median:.3f} s (worst {max(times):.3f} s)", "< 0.5 s",
            median < TARGET_SECONDS),
        Row("CLI", "heavy modules loaded by `--help`", ", ".join(loaded) or "none", "none",
            not loaded),
    ]  # fmt: skip
    return {
        "rows": rows_json(rows),
        "help_seconds": [round(t, 4) for t in times],
        "help_median_seconds": round(median, 4),
        "heavy_modules_loaded": loaded,
        "probe_peak_rss_mb": rss,
        "machine": machine(),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.bench_cli", description=__doc__)
    parser.add_argument("--runs", type=int, default=9)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args(argv)
    emit(measure(args.quick, args.runs))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
