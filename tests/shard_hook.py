"""Run the real ``tracker`` CLI and log when each (account, region) pair was collected.

    python -m tests.shard_hook LOG -- <tracker arguments>

Appends one line per pair collected by this process to LOG: ``pid account region start end``
with ``time.monotonic()`` times (one clock for every process on the host, so intervals of
different processes compare). The tracker is unchanged: the hook wraps the per-region
collector's ``run`` from outside.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from typing import Any


def main(argv: list[str]) -> int:
    split = argv.index("--")
    log = Path(argv[0])
    import tracker.collect.service as service

    original = service._RegionCollector.run

    def run(self: Any, factory: Any, source: Any, region: str) -> Any:
        started = time.monotonic()
        result = original(self, factory, source, region)
        ended = time.monotonic()
        with log.open("a") as out:  # one short line per write: appends do not interleave
            out.write(f"{os.getpid()} {result.account_id} {region} {started} {ended}\n")
        return result

    service._RegionCollector.run = run
    from tracker.cli.main import main as tracker_main

    return tracker_main(argv[split + 1 :])


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
