"""``tracker demo``: the whole pipeline against a simulated organisation, no AWS account needed.

It starts a moto server on 127.0.0.1 (random port) inside this process, points boto3 at it
with AWS_ENDPOINT_URL, seeds two accounts and three regions of training jobs and two registered
models, runs the real collector and the models collection, and prints the per-team report and
the five most expensive jobs.

The demo's world stands still: its clock is pinned to :data:`DEMO_NOW` (or ``TRACKER_NOW``
when set), the jobs are placed relative to it and the collector costs the running job up to
it. Placed relative to the real time instead, the running job's cost grew with every second
the collection took and the storage proration moved with the calendar, so two runs printed
totals a cent apart.
"""

from __future__ import annotations

import logging
import os
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

from tracker.clock import system_clock

#: The demo's "now" unless TRACKER_NOW pins another: every run prints the same totals.
DEMO_NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)

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

    from tracker.aws.simulate import demo_jobs, seed_models, seed_organisation
    from tracker.collect.models import collect_models
    from tracker.collect.service import collect
    from tracker.report.collection import collection_text
    from tracker.report.render import text_table
    from tracker.report.spend import spend_notes, spend_rows, spend_table
    from tracker.settings import default_demo_dir, parse_settings
    from tracker.store.database import Store

    started = time.monotonic()
    base = Path(folder).resolve() if folder else default_demo_dir()
    base.mkdir(parents=True, exist_ok=True)
    db_path = base / "demo.db"
    for suffix in ("", "-wal", "-shm"):  # every demo starts from an empty database
        Path(f"{db_path}{suffix}").unlink(missing_ok=True)
    url = db_url if db_url is not None else f"sqlite:///{db_path}"
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
        now = demo_now()
        seeded = demo_jobs(now, jobs, seed)
        print(
            f"Simulated AWS (moto) on http://{host}:{port}, its clock pinned at "
            f"{now:%Y-%m-%d %H:%M} UTC; seeding {len(seeded)} training jobs...",
            flush=True,
        )
        seed_organisation(seeded)
        seed_models(now)
        settings = parse_settings(config_path)
        store = Store.open(url)
        summary = collect(settings, store, settings.price_book(), clock=lambda: now)
        print(collection_text(summary))
        models = collect_models(settings, store, clock=lambda: now)
        print(f"Models: {models.detail()}\n")
        print("Spend per team (all collected jobs, USD):")
        print(text_table(spend_table(spend_rows(store, "team"), "team")))
        print("Five most expensive jobs:")
        print(text_table(spend_table(spend_rows(store, "job")[:5], "job")))
        for note in spend_notes(store):  # a 0 that means "no price" must not read as free
            print(f"note: {note}")
    finally:
        server.stop()
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
    seconds = time.monotonic() - started
    print(f"Seeded, collected and costed in {seconds:.1f} s.")
    print(f"Database: {db_path if not db_url else url}")
    print("Next, try:")
    config = _shell_path(config_path)
    tracker = _tracker_command()
    print(f"  {tracker} --config {config} report --by job --format json")
    print(f"  {tracker} --config {config} report --view waste")
    print(f"  {tracker} --config {config} report --by model")
    print(f"  {tracker} --config {config} lineage nlp-llm/1")
    print(f"  {tracker} --config {config} prices check")
    print(f"  {tracker} --config {config} serve      # the dashboard on http://127.0.0.1:8080")
    sys.stdout.flush()
    return 0 if summary.ok and models.status == "ok" else 1


def demo_now() -> datetime:
    """The instant the demo's world is built around: TRACKER_NOW when set, else DEMO_NOW."""
    return system_clock() if os.environ.get("TRACKER_NOW") else DEMO_NOW


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
