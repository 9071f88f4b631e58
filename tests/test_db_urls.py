"""Database URLs a user can get wrong (issue 12, rows 8, 9, 11 and 12 of the hostile-input table).

Row 8: a read-only command given a database that is not there creates no file or folder.
Row 9: a read-only database (``?mode=ro``, ``immutable=1``, the URI form, a read-only file or
filesystem) serves every read-only command; a command that writes says "read-only" in one line.
Row 11: a URL that cannot be parsed, names an unsupported database or a folder, or an empty
``--db``: one ``Error:`` line naming it and what is expected, exit 2.
Row 12: a database holding tables the tracker did not create is named as foreign, exit 2, and
never written, migrated or changed (SQLite and PostgreSQL).

At least one case of each row runs the real ``tracker`` in a subprocess (no traceback, exit 2);
the rest call ``tracker.cli.main.main`` in-process.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from tests.conftest import run_cli
from tests.factories import make_job
from tracker.cli.main import main
from tracker.cost.engine import CostPolicy, cost_job
from tracker.records import Rates
from tracker.store import migrate
from tracker.store.database import Store
from tracker.store.engine import ForeignDatabase, safe_url

NOW = datetime(2026, 3, 20, tzinfo=UTC)
RATES = Rates(hourly={"ml.m5.xlarge": Decimal("0.23")})
EXPECTED = "expected sqlite:///PATH or postgresql+psycopg://USER@HOST/DB"
PIP_POSTGRES = "pip install 'sagemaker-spend-tracker[postgres]'"

# Every command that only reads the database, as the CLI runs it ({tmp}: the test's folder).
READ_ONLY_COMMANDS = [
    ["report", "--by", "team", "--format", "json"],
    ["report", "--view", "trend", "--since", "2026-03-01", "--until", "2026-03-31"],
    ["report", "--view", "top"],
    ["budgets"],
    ["status"],
    ["reconcile", "--against", "estimates"],
    ["export", "--format", "csv", "--output", "{tmp}/out.csv"],
    ["prices", "check"],
]
# serve stops at its store, before binding the port, when the database cannot be served.
STARTUP_ONLY = [["serve", "--port", "1"]]
# Commands that write: they may create or migrate a tracker database, never a foreign one.
WRITE_COMMANDS = [["recost"], ["db", "upgrade"], ["collect"]]


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def argv(url: str, command: list[str], tmp: Path) -> list[str]:
    return ["--db", url, *(part.format(tmp=tmp) for part in command)]


@pytest.fixture
def filled(tmp_path: Path) -> Path:
    """A tracker database holding two one-hour ml.m5.xlarge jobs at $0.23/h: nlp and cv."""
    path = tmp_path / "data" / "tracker.db"
    store = Store.open(f"sqlite:///{path}")
    jobs = [make_job("a", "nlp"), make_job("b", "cv")]
    store.save_jobs([(job, cost_job(job, RATES, NOW, CostPolicy()), {}) for job in jobs], NOW)
    store.engine.dispose()
    return path


@pytest.fixture
def config(tmp_path: Path) -> Path:
    """A config with one source, so collect gets as far as opening its database."""
    path = tmp_path / "conf" / "tracker.toml"
    path.parent.mkdir()
    path.write_text('[[sources]]\nname = "prod"\nregions = ["us-east-1"]\n')
    return path


# -- row 8: a read-only command creates no database -----------------------------------------------
def test_report_missing_relative_database_creates_nothing_real_cli(tmp_path: Path):
    result = run_cli("--db", "sqlite:///typo/x.db", "report", cwd=tmp_path)
    assert (result.returncode, result.stdout) == (2, "")
    assert result.stderr == (
        "Error: no tracker database at sqlite:///typo/x.db; run 'tracker collect' first "
        "(or pass --db)\n"
    )
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    "command", READ_ONLY_COMMANDS + STARTUP_ONLY, ids=lambda c: " ".join(c[:3])
)
def test_read_only_command_missing_database_exits_2_and_creates_nothing(
    command: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
):
    url = f"sqlite:///{tmp_path / 'typo' / 'x.db'}"
    assert main(argv(url, command, tmp_path)) == 2
    assert capsys.readouterr().err == (
        f"Error: no tracker database at {url}; run 'tracker collect' first (or pass --db)\n"
    )
    assert list(tmp_path.iterdir()) == []


# -- row 9: read-only databases serve every read-only command ---------------------------------
def read_only_urls(path: Path) -> dict[str, str]:
    return {
        "plain mode=ro": f"sqlite:///{path}?mode=ro",
        "plain immutable=1": f"sqlite:///{path}?immutable=1",
        "uri mode=ro": f"sqlite:///file:{path}?mode=ro&uri=true",
    }


@pytest.mark.parametrize("form", ["plain mode=ro", "plain immutable=1", "uri mode=ro"])
def test_read_only_url_serves_every_read_only_command(
    form: str, filled: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
):
    """``sqlite:///x.db?mode=ro`` was "no tracker database" before: SQLAlchemy passes the
    option to SQLite only in the URI form, and the path was read with the query on it."""
    url = read_only_urls(filled)[form]
    before = digest(filled)
    assert main(argv(url, READ_ONLY_COMMANDS[0], tmp_path)) == 0
    rows = json.loads(capsys.readouterr().out)
    assert sorted((r["team"], r["total_usd"]) for r in rows) == [("cv", 0.23), ("nlp", 0.23)]
    for command in READ_ONLY_COMMANDS[1:]:
        assert main(argv(url, command, tmp_path)) == 0, (command, capsys.readouterr().err)
    assert (tmp_path / "out.csv").read_text().count("\n") == 3  # header and two jobs
    assert digest(filled) == before


def test_report_plain_mode_ro_url_real_cli(filled: Path, tmp_path: Path):
    url = f"sqlite:///{filled}?mode=ro"
    result = run_cli("--db", url, "report", "--format", "json", cwd=tmp_path)
    assert (result.returncode, result.stderr) == (0, "")
    rows = json.loads(result.stdout)
    assert sorted((r["team"], r["total_usd"]) for r in rows) == [("cv", 0.23), ("nlp", 0.23)]


@pytest.mark.parametrize("form", ["plain mode=ro", "plain immutable=1", "uri mode=ro"])
@pytest.mark.parametrize("command", [["recost"], ["db", "upgrade"]], ids=" ".join)
def test_write_command_on_read_only_url_one_line_nothing_changed(
    form: str, command: list[str], filled: Path, capsys: pytest.CaptureFixture[str]
):
    url = read_only_urls(filled)[form]
    before = digest(filled)
    assert main(["--db", url, *command]) == 2
    assert capsys.readouterr().err == (
        f"Error: database {url} is read-only and this command writes to it; pass a writable "
        "--db (read-only databases serve report, budgets, status, reconcile --against "
        "estimates, export and serve)\n"
    )
    assert digest(filled) == before


def test_read_only_file_serves_reads_and_refuses_writes(
    filled: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
):
    """A file without write permission (chmod 444). Tests run as root, whom permissions do not
    stop, so ``os.access`` answers for the file as it would for its non-root owner."""
    import os

    import tracker.store.engine as engine

    filled.chmod(0o444)
    real_access = os.access
    monkeypatch.setattr(
        engine.os, "access", lambda p, mode: False if Path(p) == filled else real_access(p, mode)
    )
    before = digest(filled)
    url = f"sqlite:///{filled}"
    for command in READ_ONLY_COMMANDS:
        assert main(argv(url, command, tmp_path)) == 0, (command, capsys.readouterr().err)
    capsys.readouterr()
    assert main(["--db", url, "recost"]) == 2
    assert "is read-only and this command writes to it" in capsys.readouterr().err
    assert digest(filled) == before


# -- row 11: URLs that cannot be used exit 2 with one line --------------------------------------
BAD_URLS = [
    ("bogus://x", f"--db 'bogus://x': unsupported database 'bogus'; {EXPECTED}"),
    ("mysql://u@h/d", f"--db 'mysql://u@h/d': unsupported database 'mysql'; {EXPECTED}"),
    ("not a url", f"--db 'not a url': not a database URL; {EXPECTED}"),
    ("x.db", f"--db 'x.db': not a database URL; {EXPECTED} (a file? sqlite:///x.db)"),
    ("", f"--db is empty; {EXPECTED}"),
    (
        "sqlite://host/x.db",
        "--db 'sqlite://host/x.db': a SQLite URL names a file after three slashes: "
        "sqlite:///relative/path.db or sqlite:////absolute/path.db",
    ),
    (
        "postgresql+asyncpg://u@h/d",
        "database URL 'postgresql+asyncpg://u@h/d': its driver 'asyncpg' is not installed; "
        f"use postgresql+psycopg://USER@HOST/DB with {PIP_POSTGRES}",
    ),
]


@pytest.mark.parametrize("command", [["report"], ["budgets"], ["recost"]], ids=" ".join)
@pytest.mark.parametrize(("url", "line"), BAD_URLS, ids=[u or "empty" for u, _ in BAD_URLS])
def test_unusable_database_url_exits_2_with_one_line(
    url: str, line: str, command: list[str], tmp_path: Path, monkeypatch, capsys
):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("TRACKER_HOME", str(tmp_path / "state"))
    assert main(["--db", url, *command]) == 2
    assert capsys.readouterr().err == f"Error: {line}\n"
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("command", [["report"], ["collect"], ["recost"]], ids=" ".join)
def test_folder_as_sqlite_file_exits_2_naming_it(
    command: list[str], tmp_path: Path, config: Path, capsys: pytest.CaptureFixture[str]
):
    folder = tmp_path / "dbs"
    folder.mkdir()
    url = f"sqlite:///{folder}"
    assert main(["--config", str(config), "--db", url, *command]) == 2
    assert capsys.readouterr().err == (
        f"Error: --db '{url}': {folder} is a folder, not a database file; "
        f"name a file in it, e.g. sqlite:///{folder / 'tracker.db'}\n"
    )
    assert list(folder.iterdir()) == []


def test_file_in_place_of_a_folder_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    blocker = tmp_path / "notes.txt"
    blocker.write_text("mine\n")
    url = f"sqlite:///{blocker}/tracker.db"
    assert main(["--db", url, "recost"]) == 2
    assert capsys.readouterr().err == f"Error: --db '{url}': {blocker} is a file, not a folder\n"
    assert blocker.read_text() == "mine\n"


def test_unparsable_url_hides_its_password(capsys: pytest.CaptureFixture[str]):
    assert main(["--db", "postgresql://me:s3cret@host:port/db", "report"]) == 2
    err = capsys.readouterr().err
    assert "s3cret" not in err
    assert (
        err == f"Error: --db 'postgresql://me:***@host:port/db': not a database URL; {EXPECTED}\n"
    )


def test_config_database_url_is_named_as_such(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    config = tmp_path / "tracker.toml"
    config.write_text('[database]\nurl = "bogus://x"\n')
    assert main(["--config", str(config), "report"]) == 2
    assert capsys.readouterr().err == (
        f"Error: [database] url 'bogus://x': unsupported database 'bogus'; {EXPECTED}\n"
    )


def test_db_upgrade_unusable_url_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    assert main(["--db", "bogus://x", "db", "upgrade"]) == 2
    assert capsys.readouterr().err == (
        f"Error: database URL 'bogus://x': unsupported database 'bogus'; {EXPECTED}\n"
    )


@pytest.mark.parametrize(
    ("url", "line"),
    [
        ("bogus://x", f"--db 'bogus://x': unsupported database 'bogus'; {EXPECTED}"),
        ("not a url", f"--db 'not a url': not a database URL; {EXPECTED}"),
        ("", f"--db is empty; {EXPECTED}"),
    ],
    ids=["bogus", "not a url", "empty"],
)
def test_unusable_database_url_real_cli_exits_2_without_traceback(
    url: str, line: str, tmp_path: Path
):
    result = run_cli("--db", url, "report", cwd=tmp_path, env={"TRACKER_HOME": str(tmp_path)})
    assert (result.returncode, result.stdout, result.stderr) == (2, "", f"Error: {line}\n")


def test_folder_as_database_real_cli_exits_2(tmp_path: Path, config: Path):
    result = run_cli("--config", str(config), "--db", f"sqlite:///{tmp_path}", "collect")
    assert result.returncode == 2
    assert result.stderr.startswith(f"Error: --db 'sqlite:///{tmp_path}': {tmp_path} is a folder")
    assert result.stderr.count("\n") == 1


# -- row 12: a foreign database is named as such and never touched --------------------------------
def foreign_sqlite(path: Path) -> Path:
    with sqlite3.connect(path) as connection:
        connection.execute("CREATE TABLE jobs(id, foo)")
        connection.executemany("INSERT INTO jobs VALUES (?, ?)", [(1, "keep"), (2, "me")])
    connection.close()
    return path


def foreign_line(url: str, tables: str = "jobs") -> str:
    return f"Error: {url} has tables the tracker did not create: {tables}; pass a new --db\n"


@pytest.mark.parametrize(
    "command",
    READ_ONLY_COMMANDS + STARTUP_ONLY + WRITE_COMMANDS + [["db", "current"]],
    ids=lambda c: " ".join(c[:3]),
)
def test_foreign_sqlite_database_exits_2_and_is_left_untouched(
    command: list[str], tmp_path: Path, config: Path, capsys: pytest.CaptureFixture[str]
):
    db = foreign_sqlite(tmp_path / "theirs.db")
    before = digest(db)
    url = f"sqlite:///{db}"
    assert main(["--config", str(config), *argv(url, command, tmp_path)]) == 2
    assert capsys.readouterr().err == foreign_line(url)
    assert digest(db) == before  # not even the WAL pragma's header change
    with sqlite3.connect(db) as connection:
        assert connection.execute("SELECT id, foo FROM jobs ORDER BY id").fetchall() == [
            (1, "keep"),
            (2, "me"),
        ]
    connection.close()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["conf", "theirs.db"]


def test_foreign_sqlite_database_real_cli(tmp_path: Path):
    db = foreign_sqlite(tmp_path / "theirs.db")
    result = run_cli("--db", f"sqlite:///{db}", "report", cwd=tmp_path)
    assert (result.returncode, result.stdout) == (2, "")
    assert result.stderr == foreign_line(f"sqlite:///{db}")


def test_other_alembic_project_is_foreign_not_newer(tmp_path: Path, capsys):
    """Another tool's Alembic database: its revision is not ours and neither are its tables
    (it was "newer than this tracker knows", exit 1, before)."""
    db = tmp_path / "app.db"
    with sqlite3.connect(db) as connection:
        connection.execute("CREATE TABLE alembic_version (version_num VARCHAR(32))")
        connection.execute("INSERT INTO alembic_version VALUES ('ae1027a6acf')")
        connection.execute("CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT)")
    connection.close()
    before = digest(db)
    url = f"sqlite:///{db}"
    assert main(["--db", url, "db", "upgrade"]) == 2
    assert capsys.readouterr().err == foreign_line(url, "alembic_version, users")
    assert digest(db) == before


def test_non_sqlite_file_exits_2_and_is_left_untouched(tmp_path: Path, capsys):
    notes = tmp_path / "notes.db"
    notes.write_text("not a database, but mine\n")
    url = f"sqlite:///{notes}"
    for command in (["report"], ["recost"], ["db", "upgrade"], ["db", "current"]):
        assert main(["--db", url, *command]) == 2, command
        assert capsys.readouterr().err == (
            f"Error: {url}: {notes} is not a SQLite database file; pass a new --db\n"
        )
    assert notes.read_text() == "not a database, but mine\n"


def test_empty_sqlite_file_is_ours_to_initialise(tmp_path: Path, capsys):
    db = tmp_path / "new.db"
    db.touch()
    url = f"sqlite:///{db}"
    assert main(["--db", url, "report"]) == 2  # a reader finds no tracker database in it
    assert "no tracker database at" in capsys.readouterr().err
    assert main(["--db", url, "recost"]) == 0
    assert main(["--db", url, "db", "current"]) == 0
    assert capsys.readouterr().out.endswith(f"schema at revision {migrate.HEAD} (head).\n")


def test_tracker_database_with_a_table_of_others_is_still_ours(filled: Path, capsys):
    """Our revision row beside our tables: the database is ours; another table in it is left
    alone (a foreign database is one without the tracker's own tables and revision)."""
    with sqlite3.connect(filled) as connection:
        connection.execute("CREATE TABLE notes (body TEXT)")
    connection.close()
    assert main(["--db", f"sqlite:///{filled}", "recost"]) == 0
    assert main(["--db", f"sqlite:///{filled}", "report", "--format", "json"]) == 0
    assert "Recosted 2 jobs" in capsys.readouterr().out


@pytest.mark.postgres
def test_foreign_postgres_schema_exits_2_and_is_left_untouched(pg_url: str, capsys):
    admin = create_engine(pg_url)
    with admin.begin() as connection:
        connection.execute(text("CREATE TABLE jobs (id INTEGER PRIMARY KEY, foo TEXT)"))
        connection.execute(text("INSERT INTO jobs VALUES (1, 'keep'), (2, 'me')"))
    line = (
        f"Error: {safe_url(pg_url)} has tables the tracker did not create: jobs; "
        "pass a new --db (or a schema of its own)\n"
    )
    for command in (["report"], ["status"], ["recost"], ["db", "upgrade"], ["db", "current"]):
        assert main(["--db", pg_url, *command]) == 2, command
        assert capsys.readouterr().err == line
    with pytest.raises(ForeignDatabase):
        Store.open(pg_url)
    with admin.connect() as connection:
        tables = connection.execute(
            text(
                "SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema()"
            )
        ).scalars()
        assert sorted(tables) == ["jobs"]
        rows = connection.execute(text("SELECT id, foo FROM jobs ORDER BY id")).all()
        assert [tuple(r) for r in rows] == [(1, "keep"), (2, "me")]
    admin.dispose()
