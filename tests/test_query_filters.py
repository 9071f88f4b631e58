"""Filters enter SQL in one place, tracker/store/query.py's Window: text PostgreSQL cannot
hold (NUL) is refused there in one line for every face and backend (issue 12); a long value
is one bound parameter and harmless.

Each test runs on SQLite and on PostgreSQL (tests/backends.py), where a NUL used to reach
psycopg ("PostgreSQL text fields cannot contain NUL (0x00) bytes") and end in a traceback.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.backends import db_url_fixture  # noqa: F401 - the db_url fixture
from tests.views_data import JOBS, fill
from tracker.cli.main import main
from tracker.errors import InputError
from tracker.store.database import Store
from tracker.store.query import ViewQueries, Window


@pytest.fixture
def db(db_url: str, tmp_path: Path) -> list[str]:
    """The global options of a run against tests/views_data.py's organisation."""
    fill(Store.open(db_url), JOBS)
    config = tmp_path / "tracker.toml"
    config.write_text("")
    return ["--config", str(config), "--db", db_url]


@pytest.mark.parametrize(
    ("args", "message"),
    [(["report", "--team", "a\x00b"], "team 'a\\u0000b'"),
     (["report", "--by", "job", "--instance-type", "ml.\x00"], "instance_type 'ml.\\u0000'"),
     (["report", "--view", "top", "--project", "\x00" * 20],
      "project '" + "\\u0000" * 6 + "\\...'"),  # cut to 40 characters
     (["report", "--view", "trend", "--status", "x\x00"], "status 'x\\u0000'"),
     (["export", "--format", "csv", "--output", "OUT", "--user", "\x00"], "user '\\u0000'")],
)  # fmt: skip
def test_filter_with_nul_is_one_line_exit_2(
    db: list[str],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    args: list[str],
    message: str,
) -> None:
    args = [str(tmp_path / "out.csv") if a == "OUT" else a for a in args]
    assert main([*db, *args]) == 2
    captured = capsys.readouterr()
    assert captured.err == f"Error: {message}: a value cannot hold a NUL character\n"
    assert captured.out == "" and not (tmp_path / "out.csv").exists()


def test_window_refuses_nul_for_every_face() -> None:
    with pytest.raises(InputError, match=r"^region 'eu\\u0000': a value cannot hold a NUL"):
        Window(filters={"region": "eu\x00"})
    with pytest.raises(InputError, match=r"^team 'a\\u0000'"):
        Window().with_filter("team", "a\x00")


def test_team_lookup_refuses_nul(db_url: str) -> None:
    with pytest.raises(InputError, match=r"^team 'a\\u0000'"):
        ViewQueries(Store.open(db_url)).team_exists("a\x00")


def test_long_filter_value_finds_nothing(db: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    """100,000 characters (above Linux's longest single argument): no error, no rows."""
    assert main([*db, "report", "--team", "x" * 100_000, "--format", "json"]) == 0
    assert capsys.readouterr().out == "[]\n"
