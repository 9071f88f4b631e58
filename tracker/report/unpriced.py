"""What is unpriced, said in every output: one note per (part, region) and per-row parts.

The engine flags each part of a job it had no price for (``storage-unpriced``,
``artifact-unpriced``, ``unpriced:<instance type>``, ``unpriced:tokens``) and stores the job
with that part at 0. A 0 that means "no price" must never read as "free", so ``report --by``,
every view and the dashboard carry these notes (under the table, or on standard error for
JSON and CSV, whose standard output other tools parse), and ``--by job`` rows name their
unpriced parts.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from typing import TYPE_CHECKING

from tracker.store.window import Window

if TYPE_CHECKING:
    from tracker.store.lite import LiteQueries
    from tracker.store.query import ViewQueries

STORAGE_FLAG = "storage-unpriced"
ARTIFACT_FLAG = "artifact-unpriced"
PART_FLAG_PREFIX = "unpriced:"
FIX = "run tracker prices refresh"


def split_flags(flags: str | Iterable[str] | None) -> list[str]:
    """The stored comma-separated flags (or a list of them) as a list, blanks dropped."""
    if flags is None:
        return []
    items = flags.split(",") if isinstance(flags, str) else flags
    return [flag.strip() for flag in items if flag and flag.strip()]


def part_of(flag: str) -> str | None:
    """The part an unpriced flag names (``storage``, ``S3 artifacts``, ``tokens``,
    ``ml.p5.48xlarge instance time``), None for any other flag."""
    if flag == STORAGE_FLAG:
        return "storage"
    if flag == ARTIFACT_FLAG:
        return "S3 artifacts"
    if flag.startswith(PART_FLAG_PREFIX):
        what = flag.removeprefix(PART_FLAG_PREFIX)
        return "tokens" if what == "tokens" else f"{what} instance time"
    return None


def unpriced_parts(flags: str | Iterable[str] | None) -> list[str]:
    """The parts of one job left without a price, in the order of its flags."""
    return [part for part in map(part_of, split_flags(flags)) if part is not None]


def unpriced_notes(queries: ViewQueries | LiteQueries, window: Window) -> list[str]:
    """One note per unpriced part and region with jobs in the window, e.g.
    ``storage unpriced for 64 jobs in us-east-1: run tracker prices refresh``."""
    jobs: dict[tuple[str, str], int] = defaultdict(int)
    for row in queries.unpriced_flags(window):
        for part in dict.fromkeys(unpriced_parts(row["flags"])):
            jobs[(part, str(row["region"]))] += int(row["jobs"])
    return [
        f"{part} unpriced for {_jobs(n)} in {region}: {FIX}"
        for (part, region), n in sorted(jobs.items(), key=lambda kv: (kv[0][1], kv[0][0]))
    ]


def _jobs(n: int) -> str:
    return f"{n:,} job" if n == 1 else f"{n:,} jobs"
