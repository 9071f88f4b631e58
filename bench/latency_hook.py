"""Run the real ``tracker`` CLI with a fixed delay before every AWS request (benchmarks only).

    python -m bench.latency_hook MILLISECONDS -- <tracker arguments>

A botocore ``before-send`` handler on every client sleeps MILLISECONDS, to mimic the round
trip a request to real AWS takes (moto on 127.0.0.1 answers in about a millisecond). The
tracker is unchanged.
"""

from __future__ import annotations

import sys
import time
from typing import Any


def main(argv: list[str]) -> int:
    split = argv.index("--")
    delay = float(argv[0]) / 1000
    import botocore.session

    original = botocore.session.Session.create_client

    def create_client(self: Any, *args: Any, **kwargs: Any) -> Any:
        client = original(self, *args, **kwargs)
        client.meta.events.register_first("before-send", lambda **_: time.sleep(delay))
        return client

    botocore.session.Session.create_client = create_client
    from tracker.cli.main import main as tracker_main

    return tracker_main(argv[split + 1 :])


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
