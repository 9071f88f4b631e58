"""What every benchmark shares: measured rows, peak memory, timing a fresh process.

A benchmark module has ``measure(quick: bool) -> dict`` returning ``{"rows": [Row...],
...raw numbers}`` and a ``main()`` that prints it as JSON, so ``bench.run`` can run each
one in a fresh interpreter (clean peak memory, no shared imports) and merge the results.
"""

from __future__ import annotations

import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
PYTHON = sys.executable


@dataclass(frozen=True)
class Row:
    """One measured line of the README table."""

    benchmark: str
    measure: str
    value: str
    target: str = ""
    met: bool | None = None  # None: no target


def rows_json(rows: list[Row]) -> list[dict[str, Any]]:
    return [asdict(r) for r in rows]


def peak_rss_mb(who: int = resource.RUSAGE_SELF) -> float:
    """Peak resident memory (ru_maxrss is KiB on Linux, bytes on macOS)."""
    peak = resource.getrusage(who).ru_maxrss
    return round(peak / (1024 * 1024 if sys.platform == "darwin" else 1024), 1)


def machine() -> str:
    return (
        f"{platform.python_implementation()} {platform.python_version()}, "
        f"{os.cpu_count()} CPU, {platform.system()} {platform.machine()}"
    )


def run_measured(args: list[str], env: dict[str, str] | None = None) -> tuple[float, float, str]:
    """Run ``python args...`` in a fresh process: (seconds, its peak RSS in MB, its stdout).

    Output goes to temporary files (no pipe to fill up) and the child is reaped with
    ``wait4``, whose rusage is that one child's own, not a sum over every child so far.
    """
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        started = time.perf_counter()
        process = subprocess.Popen(
            [PYTHON, *args], stdout=out, stderr=err, env={**os.environ, **(env or {})}, cwd=REPO
        )
        _, status, usage = os.wait4(process.pid, 0)
        seconds = time.perf_counter() - started
        process.returncode = os.waitstatus_to_exitcode(status)  # reaped here, not by Popen
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read(), err.read()
    if process.returncode != 0:
        raise RuntimeError(
            f"{' '.join(args)} failed ({process.returncode}): {stderr.strip()[-800:]}"
        )
    kib = usage.ru_maxrss / 1024 if sys.platform == "darwin" else usage.ru_maxrss
    return seconds, round(kib / 1024, 1), stdout


def emit(result: dict[str, Any]) -> None:
    """Print a benchmark's result as the one JSON document ``bench.run`` reads."""
    print(json.dumps(result, default=str))
