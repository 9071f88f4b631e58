"""Installed like a real tool: package data, the state directory, extras, read-only databases.

The wheel itself, installed into a fresh virtualenv and run from an empty folder, is
tests/smoke_installed.sh (``make smoke``; ``.ci/run`` runs it after the suite).
"""

from __future__ import annotations

import hashlib
import json
import sys
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import text

from tests.factories import make_job
from tracker.cli.main import main
from tracker.cost.engine import CostPolicy, cost_job
from tracker.cost.prices import PriceBook, shipped_prices
from tracker.errors import PriceBookError, StoreError
from tracker.records import Rates
from tracker.settings import load_settings, parse_settings, state_dir
from tracker.store.database import Store
from tracker.store.engine import NoDatabase, connect

NOW = datetime(2026, 3, 20, tzinfo=UTC)
RATES = Rates(hourly={"ml.m5.xlarge": Decimal("0.23")})
HEADER = "region,instance_type,usd_per_hour,source,source_date,confidence\n"
PIP = "pip install 'sagemaker-spend-tracker[{}]'"


def no_db_line(url: str) -> str:
    return f"Error: no tracker database at {url}; run 'tracker collect' first (or pass --db)\n"


@pytest.fixture
def filled(tmp_path: Path) -> Path:
    """A tracker database holding two one-hour ml.m5.xlarge jobs at $0.23/h: nlp $0.23, cv $0.23."""
    path = tmp_path / "data" / "tracker.db"
    store = Store.open(f"sqlite:///{path}")
    jobs = [make_job("a", "nlp"), make_job("b", "cv")]
    store.save_jobs([(job, cost_job(job, RATES, NOW, CostPolicy()), {}) for job in jobs], NOW)
    store.engine.dispose()
    return path


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# -- package data -------------------------------------------------------------------------------
def test_shipped_price_book_is_package_data_inside_tracker():
    import tracker

    shipped = Path(str(shipped_prices()))
    assert shipped == Path(tracker.__file__).parent / "cost" / "data"
    assert {"training-on-demand.csv", "storage.csv", "tokens.csv", "README.md"} <= {
        p.name for p in shipped.iterdir()
    }
    book = PriceBook.load()
    assert book.files == (shipped / "training-on-demand.csv",)
    assert book.hourly("us-east-1", "ml.m5.large") == Decimal("0.115")


def test_refreshed_snapshot_in_state_folder_layers_over_the_package(tmp_path: Path):
    state = tmp_path / "prices"
    assert PriceBook.load(state).files == (shipped_prices() / "training-on-demand.csv",)
    state.mkdir()
    (state / "refreshed-20260301.csv").write_text(HEADER + "us-east-1,ml.m5.large,0.2,api,,high\n")
    book = PriceBook.load(state)
    assert book.hourly("us-east-1", "ml.m5.large") == Decimal("0.2")
    assert book.hourly("us-west-2", "ml.g5.48xlarge") == Decimal("20.36")  # shipped
    not_folder = tmp_path / "file"
    not_folder.write_text("")
    with pytest.raises(PriceBookError, match="not a folder"):
        PriceBook.load(not_folder)


# -- the state directory --------------------------------------------------------------------------
def test_state_dir_tracker_home_then_config_folder_then_user_data(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, state_home: Path
):
    config = tmp_path / "etc" / "tracker.toml"
    assert state_dir(None) == state_home  # $XDG_DATA_HOME/sagemaker-spend-tracker
    assert state_dir(config) == config.parent
    monkeypatch.setenv("TRACKER_HOME", str(tmp_path / "home"))
    assert state_dir(None) == state_dir(config) == tmp_path / "home"


def test_defaults_without_config_file_live_in_the_state_dir(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, state_home: Path
):
    monkeypatch.chdir(tmp_path)  # no config/tracker.toml here
    settings = load_settings(None)
    assert settings.path is None
    assert settings.database_url == f"sqlite:///{state_home / 'tracker.db'}"
    assert settings.pricing.snapshot_dir == state_home / "prices"
    assert list(tmp_path.iterdir()) == []  # nothing in the current folder


def test_defaults_with_config_file_live_next_to_it(tmp_path: Path):
    config = tmp_path / "tracker.toml"
    config.write_text('[[sources]]\nname = "prod"\nregions = ["us-east-1"]\n')
    settings = parse_settings(config)
    assert settings.database_url == f"sqlite:///{tmp_path / 'tracker.db'}"
    assert settings.pricing.snapshot_dir == tmp_path / "prices"
    (tmp_path / "prices").write_text("")  # a file where the folder should be
    with pytest.raises(Exception, match="pricing.snapshot_dir: .* is not a folder"):
        parse_settings(config)


def test_demo_defaults_to_the_state_dir(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
):
    monkeypatch.setenv("TRACKER_HOME", str(tmp_path / "home"))
    monkeypatch.chdir(tmp_path)
    assert main(["demo", "--jobs", "4"]) == 0
    out = capsys.readouterr().out
    assert f"Database: {tmp_path / 'home' / 'demo' / 'demo.db'}" in out
    assert sorted(p.name for p in tmp_path.iterdir()) == ["home"]


# -- extras -------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("module", "argv", "line"),
    [
        ("uvicorn", ["serve"], f"tracker serve needs the web extra: {PIP.format('web')}"),
        ("fastapi", ["serve"], f"tracker serve needs the web extra: {PIP.format('web')}"),
        ("moto.server", ["demo"], f"tracker demo needs the demo extra: {PIP.format('demo')}"),
        (
            "psycopg",
            ["--db", "postgresql+psycopg://tracker@127.0.0.1:1/none", "report"],
            f"a PostgreSQL database URL needs the postgres extra: {PIP.format('postgres')}",
        ),
    ],
)
def test_missing_extra_exits_2_with_the_pip_command(
    module: str,
    argv: list[str],
    line: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
):
    monkeypatch.setitem(sys.modules, module, None)  # what an install without the extra sees
    monkeypatch.setenv("TRACKER_HOME", str(tmp_path))
    assert main(argv) == 2
    captured = capsys.readouterr()
    assert captured.err == f"Error: {line}\n"
    assert list(tmp_path.iterdir()) == []


def test_png_without_charts_extra_exits_2(
    filled: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
):
    monkeypatch.setitem(sys.modules, "matplotlib.figure", None)
    out = tmp_path / "spend.png"
    argv = ["--db", f"sqlite:///{filled}", "report", "--format", "png", "--output", str(out)]
    assert main(argv) == 2
    assert capsys.readouterr().err == (
        f"Error: --format png needs the charts extra: {PIP.format('charts')}\n"
    )
    assert not out.exists()


# -- read-only commands never create a database ---------------------------------------------------
READ_ONLY_COMMANDS = [
    ["report", "--by", "team", "--format", "json"],
    ["report", "--view", "waste"],
    ["budgets"],
    ["status"],
    ["reconcile", "--against", "estimates"],
    ["reconcile", "--against", "bill", "--source", "ce"],
    ["export", "--format", "csv", "--output", "{tmp}/out.csv"],
    ["prices", "check"],
    ["serve", "--port", "1"],
]


@pytest.mark.parametrize("command", READ_ONLY_COMMANDS, ids=lambda c: " ".join(c[:3]))
def test_read_only_command_without_database_exits_2_and_creates_nothing(
    command: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
):
    url = f"sqlite:///{tmp_path / 'typo' / 'x.db'}"
    argv = ["--db", url, *(part.format(tmp=tmp_path) for part in command)]
    assert main(argv) == 2
    assert capsys.readouterr().err == no_db_line(url)
    assert list(tmp_path.iterdir()) == []


def test_default_database_missing_is_named_and_not_created(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
):
    monkeypatch.setenv("TRACKER_HOME", str(tmp_path / "state"))
    monkeypatch.chdir(tmp_path)
    assert main(["report"]) == 2
    assert capsys.readouterr().err == no_db_line(f"sqlite:///{tmp_path / 'state' / 'tracker.db'}")
    assert list(tmp_path.iterdir()) == []


def test_db_current_on_a_missing_file_creates_nothing(tmp_path: Path):
    assert main(["--db", f"sqlite:///{tmp_path / 'none.db'}", "db", "current"]) == 0
    assert list(tmp_path.iterdir()) == []


def test_empty_schema_is_no_database_for_a_reader(tmp_path: Path):
    path = tmp_path / "empty.db"
    connect(f"sqlite:///{path}").dispose()  # a file, but no tracker schema in it
    with pytest.raises(NoDatabase):
        Store.open(f"sqlite:///{path}", read_only=True)
    with pytest.raises(NoDatabase):
        Store.open(f"sqlite:///{path}", must_exist=True)


# -- read-only databases ----------------------------------------------------------------------------
def ro_url(path: Path, option: str = "mode=ro") -> str:
    return f"sqlite:///file:{path}?{option}&uri=true"


@pytest.mark.parametrize("option", ["mode=ro", "immutable=1"])
def test_read_only_database_serves_every_read_only_command(
    option: str, filled: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
):
    before = digest(filled)
    url = ro_url(filled, option)
    assert main(["--db", url, "report", "--by", "team", "--format", "json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert sorted((r["team"], r["total_usd"]) for r in rows) == [("cv", 0.23), ("nlp", 0.23)]
    for command in (
        ["report", "--view", "top"],
        ["budgets"],
        ["status", "--format", "json"],
        ["reconcile", "--against", "estimates"],
        ["export", "--format", "csv", "--output", str(tmp_path / "out.csv")],
        ["prices", "check"],
    ):
        assert main(["--db", url, *command]) == 0, (command, capsys.readouterr().err)
    assert "Wrote 2 jobs" in capsys.readouterr().out
    assert digest(filled) == before


def test_dashboard_serves_a_read_only_database(filled: Path):
    from fastapi.testclient import TestClient

    from tracker.web.app import create_app

    before = digest(filled)
    store = Store.open(ro_url(filled), read_only=True)
    client = TestClient(create_app(store, clock=lambda: NOW))
    assert client.get("/").status_code == 200
    teams = {row["team"] for row in client.get("/api/report?by=team").json()}
    assert teams == {"cv", "nlp"}
    store.engine.dispose()
    assert digest(filled) == before


def test_read_only_filesystem_opens_immutable_without_making_files(
    filled: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
):
    """Tests run as root, whom file permissions do not stop, and cannot mount a read-only
    filesystem; so the folder's writability check answers as such a mount would, and the
    plain URL must then open with immutable=1: SQLite makes no -wal/-shm it could not write."""
    from tracker.store import files

    monkeypatch.setattr(files, "folder_writable", lambda path: False)
    before = sorted(p.name for p in filled.parent.iterdir())
    assert main(["--db", f"sqlite:///{filled}", "report", "--format", "json"]) == 0
    assert len(json.loads(capsys.readouterr().out)) == 2
    assert sorted(p.name for p in filled.parent.iterdir()) == before
    assert main(["--db", f"sqlite:///{filled}", "recost"]) == 2
    assert "is read-only and this command writes to it" in capsys.readouterr().err


@pytest.mark.parametrize("command", [["recost"], ["db", "upgrade"], ["alerts", "--dry-run"]])
def test_write_command_on_read_only_database_says_so_in_one_line(
    command: list[str], filled: Path, capsys: pytest.CaptureFixture[str]
):
    before = digest(filled)
    url = ro_url(filled)
    assert main(["--db", url, *command]) == 2
    err = capsys.readouterr().err
    assert err == (
        f"Error: database {url} is read-only and this command writes to it; pass a writable "
        "--db (read-only databases serve report, budgets, status, reconcile --against "
        "estimates, export and serve)\n"
    )
    assert digest(filled) == before


def test_read_only_open_refuses_other_schema_revisions(filled: Path):
    url = f"sqlite:///{filled}"
    for revision, expected in (("0002", "older than this tracker's"), ("9999", "newer than")):
        engine = connect(url)
        with engine.begin() as connection:
            connection.execute(text(f"UPDATE alembic_version SET version_num = '{revision}'"))
        engine.dispose()
        before = digest(filled)
        with pytest.raises(StoreError, match=expected) as refused:
            Store.open(ro_url(filled), read_only=True)
        assert "\n" not in str(refused.value)
        assert digest(filled) == before


# -- deployment files ------------------------------------------------------------------------------
REPO = Path(__file__).resolve().parent.parent


def test_dockerfile_runs_the_daemon_as_non_root_with_the_smoke_tests_pip_commands():
    docker = (REPO / "Dockerfile").read_text()
    smoke = (REPO / "tests" / "smoke_installed.sh").read_text()
    assert 'ENTRYPOINT ["tracker"]' in docker and 'CMD ["daemon"]' in docker
    assert "USER tracker" in docker and 'VOLUME ["/var/lib/tracker"]' in docker
    assert "TRACKER_HOME=/var/lib/tracker" in docker
    assert docker.startswith("#") and "FROM python:3.12-slim" in docker
    # The image is built and installed with what the smoke test runs (docker is not on CI).
    for command in ("-m pip wheel --no-deps --quiet -w ", "-m pip install --quiet "):
        assert command in smoke and command in docker
    assert smoke.count('"$WHEEL[$EXTRAS]"') == docker.count('"$WHEEL[$EXTRAS]"') == 1


def test_cronjob_runs_a_real_tracker_command_with_state_on_a_volume():
    import yaml

    from tracker.cli.main import build_parser

    cronjob = yaml.safe_load((REPO / "docs" / "deploy" / "cronjob.yaml").read_text())
    assert cronjob["kind"] == "CronJob"
    pod = cronjob["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    [container] = pod["containers"]
    args = build_parser().parse_args(container["args"])
    assert (args.command, args.job) == ("run", "collect")
    env = {item["name"]: item["value"] for item in container["env"]}
    mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
    assert env["TRACKER_HOME"] == mounts["state"]
    assert Path(env["TRACKER_CONFIG"]).parent == Path(mounts["config"])
    assert pod["securityContext"]["runAsNonRoot"] is True
