"""Run the real ``tracker`` CLI with a fault injected from outside the code under test.

    python -m tests.fault_hook [--kill-at KIND:N] [--count FILE] [--batch-size N]
                               [--max-file-bytes N] -- <tracker arguments>

``--kill-at aws:7`` SIGKILLs the process just before its 7th HTTP request to AWS,
``sql:40`` before its 40th SQL statement (mid-transaction), ``commit:3`` as its 3rd
commit starts. ``--count FILE`` writes how many of each the run made (to pick kill
points). ``--max-file-bytes`` caps the size of every file the process writes, as a full
disk would (RLIMIT_FSIZE, SIGXFSZ ignored so the write fails with EFBIG instead).
The tracker itself is unchanged: the hooks are botocore and SQLAlchemy events.
"""

from __future__ import annotations

import argparse
import atexit
import json
import os
import resource
import signal
import sys
from pathlib import Path
from typing import Any

KINDS = ("aws", "sql", "commit")


def main(argv: list[str]) -> int:
    split = argv.index("--") if "--" in argv else len(argv)
    parser = argparse.ArgumentParser(prog="python -m tests.fault_hook")
    parser.add_argument("--kill-at", help="KIND:N with KIND one of aws, sql, commit")
    parser.add_argument("--count", type=Path, help="write the event counts here at exit")
    parser.add_argument("--batch-size", type=int, help="the collector's batch size")
    parser.add_argument("--max-file-bytes", type=int, help="RLIMIT_FSIZE for this process")
    options = parser.parse_args(argv[:split])
    tracker_args = argv[split + 1 :]

    kill = None
    if options.kill_at:
        kind, _, number = options.kill_at.partition(":")
        assert kind in KINDS, options.kill_at
        kill = (kind, int(number))
    counts = dict.fromkeys(KINDS, 0)

    def hit(kind: str) -> None:
        counts[kind] += 1
        if kill == (kind, counts[kind]):
            os.kill(os.getpid(), signal.SIGKILL)

    _hook_botocore(lambda: hit("aws"))
    _hook_sqlalchemy(lambda: hit("sql"), lambda: hit("commit"))
    if options.count:
        atexit.register(lambda: options.count.write_text(json.dumps(counts)))
    if options.batch_size:
        import tracker.collect.service

        tracker.collect.service.BATCH_SIZE = options.batch_size
    if options.max_file_bytes:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (options.max_file_bytes, options.max_file_bytes))

    from tracker.cli.main import main as tracker_main

    return tracker_main(tracker_args)


def _hook_botocore(on_send: Any) -> None:
    import botocore.session

    original = botocore.session.Session.create_client

    def create_client(self: Any, *args: Any, **kwargs: Any) -> Any:
        client = original(self, *args, **kwargs)
        client.meta.events.register_first("before-send", lambda **_: on_send())
        return client

    botocore.session.Session.create_client = create_client


def _hook_sqlalchemy(on_statement: Any, on_commit: Any) -> None:
    from sqlalchemy import event
    from sqlalchemy.engine import Engine

    event.listen(Engine, "before_cursor_execute", lambda *_, **__: on_statement())
    event.listen(Engine, "commit", lambda *_: on_commit())


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
