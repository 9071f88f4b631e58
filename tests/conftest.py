"""Shared fixtures: fake AWS credentials for every test, a moto server for end-to-end runs,
and a PostgreSQL URL where a server answers. Jobs are built with the one JobRecord factory,
``tests.factories.make_job``."""

from __future__ import annotations

import gc
import os
import socket
import subprocess
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.processes import run_module

REPO = Path(__file__).resolve().parent.parent
PG_URL = os.environ.get("TRACKER_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")


def pytest_configure(config: pytest.Config) -> None:
    from tests import botocore_models

    botocore_models.install()  # parsed botocore data shared between sessions (see there)
    # A worker ends up holding about a million objects (moto's state, SQLAlchemy caches,
    # parsed service models); each full collection walked them all, some 100 times a run
    # (25 s of a worker's 150). Full collections a fifth as often, and (below) what is alive
    # when a module starts is frozen out of them: 30 s of collecting per worker -> 6-8 s.
    gc.set_threshold(700, 10, 50)


_frozen_before: list[Path] = []


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    """At the first test of each module, before its fixtures: freeze every object alive
    (imports, earlier modules' leftovers) out of the garbage collector's full collections,
    which then walk only what this module makes. Garbage made later is collected as ever."""
    if _frozen_before[-1:] != [item.path]:
        _frozen_before[:] = [item.path]
        gc.freeze()


# The modules that take longest (CPU and waits, measured with --durations on 2 workers),
# longest first. They run first, so that the two workers (``--dist loadfile``: a module runs
# whole on one worker, its module fixtures built once) finish together on short ones;
# every other module follows in the usual order. A new slow module belongs in this list.
SLOW_FIRST = (
    "test_rollups.py",
    "test_postgres.py",
    "test_faults.py",
    "test_labels.py",
    "test_listen.py",
    "test_daemon.py",
    "test_collect.py",
    "test_shards.py",
    "test_export.py",
    "test_alert_delivery.py",
    "test_properties.py",
    "test_demo.py",
    "test_web_hostile.py",
    "test_query_filters.py",
    "test_listen_e2e.py",
    "test_alerts.py",
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    rank = {name: n for n, name in enumerate(SLOW_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))  # stable: order kept within


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--update-golden",
        action="store_true",
        default=False,
        help="rewrite tests/golden/ from the current output (see tests/golden_support.py)",
    )


@pytest.fixture(autouse=True)
def aws_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    """No test may reach real AWS: fake credentials, no profile, no stray endpoint."""
    for key in (
        "AWS_PROFILE",
        "AWS_SESSION_TOKEN",
        "AWS_ENDPOINT_URL",
        "TRACKER_CONFIG",
        "TRACKER_NOW",
    ):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_CONFIG_FILE", os.devnull)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", os.devnull)


@pytest.fixture(autouse=True)
def state_home(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    """No test writes to the user's data directory: the state directory a config-less run
    falls back to (tracker.settings.state_dir) is a fresh temporary folder."""
    monkeypatch.delenv("TRACKER_HOME", raising=False)
    home = tmp_path_factory.mktemp("xdg-data")
    monkeypatch.setenv("XDG_DATA_HOME", str(home))
    return home / "sagemaker-spend-tracker"


@pytest.fixture(scope="session")
def moto_server() -> Iterator[str]:
    """A moto server on 127.0.0.1 with a random port, for the real CLI as a subprocess."""
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture
def moto_endpoint(moto_server: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """The moto server, reset, with boto3 in this process pointed at it too."""
    urllib.request.urlopen(urllib.request.Request(f"{moto_server}/moto-api/reset", method="POST"))
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_server)
    yield moto_server


def run_cli(
    *args: str, env: dict[str, str] | None = None, cwd: Path | None = None, fresh: bool = False
) -> subprocess.CompletedProcess[str]:
    """Run the real ``tracker`` command in a process of its own: ``python -m tracker ARGS``
    forked from a zygote that has its imports done (tests/processes.py), or with ``fresh``
    (or ``TRACKER_TEST_FRESH=1``) a new interpreter, start-up included."""
    full_env = {**os.environ, **(env or {})}
    return run_module("tracker", args, env=full_env, cwd=cwd or REPO, timeout=120, fresh=fresh)


def postgres_available() -> bool:
    try:
        with socket.create_connection(("127.0.0.1", 5432), timeout=0.5):
            pass
    except OSError:
        return False
    try:
        import psycopg  # noqa: F401
    except ImportError:
        return False
    return True


@pytest.fixture
def pg_url() -> Iterator[str]:
    """A URL to a fresh PostgreSQL schema of its own (tests run in parallel), or a skip saying why."""
    if not postgres_available():
        pytest.skip("PostgreSQL is not answering on 127.0.0.1:5432 (or psycopg is missing)")
    import uuid

    from sqlalchemy import create_engine, text

    schema = f"t_{uuid.uuid4().hex[:12]}"
    admin = create_engine(PG_URL)
    with admin.begin() as conn:
        conn.execute(text(f"CREATE SCHEMA {schema}"))
    yield f"{PG_URL}?options=-csearch_path%3D{schema}"
    with admin.begin() as conn:
        conn.execute(text(f"DROP SCHEMA {schema} CASCADE"))
    admin.dispose()


# -- seeding moto: the one entry point for tests --------------------------------------------
# A small factory with defaults each test overrides: ``seed_job(sm, name, billable=1800,
# spot=True, ...)``; the keywords are the fields of tracker.aws.simulate.JobSpec, the
# factory the demo seeds through too. Moto wants naive UTC; aware times are converted.
from typing import TYPE_CHECKING, Any  # noqa: E402

from tracker.aws import simulate as _simulate  # noqa: E402

if TYPE_CHECKING:
    from botocore.client import BaseClient

DEFAULT_ACCOUNT = _simulate.DEFAULT_ACCOUNT
DEFAULT_REGION = _simulate.DEFAULT_REGION
T0 = _simulate.DEFAULT_START  # naive UTC, a Thursday morning
update_job = _simulate.update_job


def seed_job(client: BaseClient, name: str, *, s3: BaseClient | None = None, **spec: Any) -> str:
    """Create one training job through moto's API (``s3`` for its artifacts); returns its ARN."""
    return _simulate.seed_job(client, name, _simulate.JobSpec(**spec), s3=s3)


@contextmanager
def training_jobs_restored() -> Iterator[None]:
    """Every field of moto's training jobs as it was before the block (what ``update_job``
    changed in it put back), so one seeded organisation can serve several tests."""
    from moto.sagemaker.models import sagemaker_backends

    saved = [
        (job, dict(vars(job)))
        for regions in list(sagemaker_backends.values())
        for backend in list(regions.values())
        for job in backend.training_jobs.values()
    ]
    try:
        yield
    finally:
        for job, fields in saved:
            vars(job).clear()
            vars(job).update(fields)


def seed_job_fast(
    name: str, *, account_id: str = DEFAULT_ACCOUNT, region: str = DEFAULT_REGION, **spec: Any
) -> str:
    """Like :func:`seed_job` but straight into moto's backends, for hundreds of jobs."""
    return _simulate.seed_backend_job(
        name, _simulate.JobSpec(**spec), account_id=account_id, region=region
    )
