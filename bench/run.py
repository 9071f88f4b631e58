"""Run every benchmark, write bench/results.json, print the Markdown table for the README.

    python -m bench.run                  # everything (the collection at 50,000 jobs takes a while)
    python -m bench.run --quick          # small sizes, to check the benchmarks themselves work
    python -m bench.run --only reports   # some of them (repeatable); others keep their results
    python -m bench.run --table          # print the table from bench/results.json, run nothing
    python -m bench.run --update-readme  # also put the table under "## Benchmarks" in README.md

Each benchmark runs in a fresh interpreter (``python -m bench.<module>``), so one's imports
and memory never flatter another's. Timings depend on the machine and on what else runs on
it: the load average before and after each benchmark is recorded with its results.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import time
from datetime import UTC, datetime
from typing import Any

from bench.common import REPO, machine, run_measured

RESULTS = REPO / "bench" / "results.json"
README = REPO / "README.md"
# name -> module and the arguments that make it print one JSON document with "rows".
BENCHMARKS = {
    "cli": ("bench.bench_cli", []),
    "costing": ("bench.bench_costing", []),
    "reports": ("bench.bench_reports", []),
    "views": ("bench.bench_views", []),
    "collect": ("bench.bench_collect", ["--json"]),
    "collect_scale": ("bench.bench_collect_scale", []),
    "web": ("bench.bench_web", []),
    "collect_org": ("bench.bench_collect_org", []),
    "collect_search": ("bench.bench_collect_search", []),
    "cost_latency": ("bench.bench_cost_latency", []),
}
BEGIN, END = "<!-- bench:begin -->", "<!-- bench:end -->"


def run_one(name: str, quick: bool) -> dict[str, Any]:
    module, args = BENCHMARKS[name]
    load_before = _load()
    started = time.perf_counter()
    _, _, out = run_measured(["-m", module, *args, *(["--quick"] if quick else [])])
    result = json.loads(out.strip().splitlines()[-1])
    result["bench"] = {"seconds": round(time.perf_counter() - started, 1), "quick": quick,
                       "load_before": load_before, "load_after": _load()}  # fmt: skip
    return result


def _load() -> list[float] | None:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return None


def table(results: dict[str, Any]) -> str:
    """Every benchmark's rows as one Markdown table, in BENCHMARKS order."""
    lines = ["| benchmark | measure | result | target | met |", "|---|---|---|---|---|"]
    for name in BENCHMARKS:
        for row in results.get(name, {}).get("rows", []):
            met = {True: "yes", False: "**no**", None: ""}[row.get("met")]
            cells = [row["benchmark"], row["measure"], row["value"], row.get("target", ""), met]
            lines.append("| " + " | ".join(str(c).replace("|", "\\|") for c in cells) + " |")
    meta = results.get("meta", {})
    lines.append("")
    lines.append(f"Measured {meta.get('measured_at', '?')} on {meta.get('machine', '?')}; "
                 "load average (1, 5, 15 min) before each: "
                 + ", ".join(f"{n} {results[n]['bench']['load_before']}" for n in BENCHMARKS
                             if n in results and "bench" in results[n]) + ".")  # fmt: skip
    return "\n".join(lines)


def update_readme(text: str) -> None:
    """Replace the table between the bench markers in README.md (added once, at the end)."""
    readme = README.read_text(encoding="utf-8")
    block = f"{BEGIN}\n{text}\n{END}"
    if BEGIN in readme and END in readme:
        readme = re.sub(re.escape(BEGIN) + r".*?" + re.escape(END), lambda _: block, readme,
                        flags=re.S)  # fmt: skip
    else:
        readme = readme.rstrip("\n") + f"\n\n## Benchmarks\n\n{block}\n"
    README.write_text(readme, encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    parser.add_argument("--quick", action="store_true", help="small sizes (a smoke test)")
    parser.add_argument("--only", action="append", choices=list(BENCHMARKS), help="run only these")
    parser.add_argument("--table", action="store_true", help="print the table; run nothing")
    parser.add_argument(
        "--update-readme", action="store_true", help="write the table into README.md"
    )
    args = parser.parse_args(argv)

    results: dict[str, Any] = {}
    if RESULTS.exists():
        results = json.loads(RESULTS.read_text(encoding="utf-8"))
    if not args.table:
        for name in args.only or list(BENCHMARKS):
            print(f"running {name} ...", file=sys.stderr, flush=True)
            results[name] = run_one(name, args.quick)
            results["meta"] = {"machine": machine(),
                               "measured_at": datetime.now(UTC).strftime("%Y-%m-%d")}  # fmt: skip
            RESULTS.write_text(json.dumps(results, indent=2, sort_keys=True, default=str) + "\n")
    text = table(results)
    print(text)
    if args.update_readme:
        update_readme(text)
    return 0  # a missed target is a result to report, not a failure of the run


if __name__ == "__main__":
    raise SystemExit(main())
