"""``tracker demo``: the whole pipeline against a simulated organisation, no AWS account needed.

It starts a moto server on 127.0.0.1 (random port) inside this process, points boto3 at it
with AWS_ENDPOINT_URL, seeds two accounts and three regions of training jobs, runs the real
collector, and prints the per-team report and the five most expensive jobs.
"""

from __future__ import annotations

import logging
import os
import sys
import time
from pathlib import Path

from tracker.clock import system_clock

DEMO_CONFIG = """\
# Written by `tracker demo`: two simulated accounts on a local moto server.
[database]
url = "{db_url}"

[[sources]]
name = "prod"
regions = ["us-east-1", "us-west-2"]

[[sources]]
name = "research"
role_arn = "arn:aws:iam::210987654321:role/SpendTrackerRead"
regions = ["us-east-1", "eu-west-1"]
"""


def run_demo(folder: str | None, *, jobs: int, seed: int, db_url: str | None = None) -> int:
    """Seed, collect, report in ``folder`` (default: ``demo/`` in the state directory).
    Returns the exit code."""
    from tracker.extras import require

    require("demo", "tracker demo")
    from moto.server import ThreadedMotoServer

    from tracker.aws.simulate import seed_organisation
    from tracker.collect.service import collect
    from tracker.report.collection import collection_text
    from tracker.report.render import text_table
    from tracker.report.spend import spend_rows, spend_table
    from tracker.settings import default_demo_dir, parse_settings
    from tracker.store.database import Store

    started = time.monotonic()
    base = Path(folder).resolve() if folder else default_demo_dir()
    base.mkdir(parents=True, exist_ok=True)
    db_path = base / "demo.db"
    for suffix in ("", "-wal", "-shm"):  # every demo starts from an empty database
        Path(f"{db_path}{suffix}").unlink(missing_ok=True)
    url = db_url or f"sqlite:///{db_path}"
    config_path = base / "tracker.toml"
    config_path.write_text(DEMO_CONFIG.format(db_url=url))

    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # no request log on the screen
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    saved = {k: os.environ.get(k) for k in _DEMO_ENV}
    os.environ.update({
        "AWS_ENDPOINT_URL": f"http://{host}:{port}",
        "AWS_ACCESS_KEY_ID": "demo", "AWS_SECRET_ACCESS_KEY": "demo",
        "AWS_DEFAULT_REGION": "us-east-1", "AWS_CONFIG_FILE": os.devnull,
        "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
    })  # fmt: skip
    for key in ("AWS_PROFILE", "AWS_SESSION_TOKEN"):
        os.environ.pop(key, None)
    try:
        now = system_clock()
        print(
            f"Simulated AWS (moto) on http://{host}:{port}; seeding {jobs} training jobs...",
            flush=True,
        )
        seeded = seed_organisation(now, jobs, seed)
        settings = parse_settings(config_path)
        store = Store.open(url)
        summary = collect(settings, store, settings.price_book(), clock=system_clock)
        print(collection_text(summary))
        print("Spend per team (all collected jobs, USD):")
        print(text_table(spend_table(spend_rows(store, "team"), "team")))
        top = spend_table(spend_rows(store, "job")[:5], "job")
        top.columns = [top.column(key) for key in TOP_COLUMNS]
        print("Five most expensive jobs:")
        print(text_table(top))
    finally:
        server.stop()
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
    seconds = time.monotonic() - started
    print(f"Seeded {len(seeded)} jobs, collected and costed them in {seconds:.1f} s.")
    print(f"Database: {db_path if not db_url else url}")
    print("Next, try:")
    config = _shell_path(config_path)
    tracker = _tracker_command()
    print(f"  {tracker} --config {config} report --by job --format json")
    print(f"  {tracker} --config {config} report --view waste")
    print(f"  {tracker} --config {config} prices check")
    print(f"  {tracker} --config {config} serve      # the dashboard on http://127.0.0.1:8080")
    sys.stdout.flush()
    return 0 if summary.ok else 1


TOP_COLUMNS = [
    "job",
    "team",
    "status",
    "instance_type",
    "instance_count",
    "billable_seconds",
    "total_usd",
    "spot_savings_usd",
    "account",
    "region",
]
_DEMO_ENV = (
    "AWS_ENDPOINT_URL",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_DEFAULT_REGION",
    "AWS_CONFIG_FILE",
    "AWS_SHARED_CREDENTIALS_FILE",
    "AWS_PROFILE",
    "AWS_SESSION_TOKEN",
)


def _tracker_command() -> str:
    """How the user can run tracker again: plain ``tracker`` if it is on PATH, else its path."""
    import shutil

    script = Path(sys.argv[0])
    if shutil.which("tracker") or script.name != "tracker":
        return "tracker"
    return _shell_path(script.resolve()) if script.exists() else "tracker"


def _shell_path(path: Path) -> str:
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)
