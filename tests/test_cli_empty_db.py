"""An empty ``--db`` (issue 12, row 11) is refused once, by the option's ``type=``, for every
command: one line, exit 2, nothing created. Before, commands that read ``args.db or [database]
url`` (``db upgrade``, ``db current``, ``daemon``, ``demo``) silently used the configured URL
instead, and ``db upgrade`` created a database there."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from tests.conftest import run_cli
from tracker.cli.main import main
from tracker.errors import InputError

EMPTY = "Error: --db is empty; expected sqlite:///PATH or postgresql+psycopg://USER@HOST/DB\n"

COMMANDS = [
    ["db", "upgrade"],
    ["db", "current"],
    ["daemon"],
    ["demo", "--jobs", "5"],
    ["estimate", "--instance-type", "ml.m5.xlarge", "--hours", "1", "--record"],
    ["report"],
    ["status"],
    ["recost"],
]


@pytest.fixture
def folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty working folder whose config names a database in it (what an ignored --db
    would fall back to) and an empty state folder."""
    config = tmp_path / "tracker.toml"
    config.write_text(f'[database]\nurl = "sqlite:///{tmp_path / "configured.db"}"\n')
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("TRACKER_CONFIG", str(config))
    monkeypatch.setenv("TRACKER_HOME", str(tmp_path / "state"))
    return tmp_path


@pytest.mark.parametrize("command", COMMANDS, ids=" ".join)
@pytest.mark.parametrize("empty", ["", "  "], ids=["empty", "blank"])
@pytest.mark.parametrize("where", ["before", "after"])
def test_empty_db_is_one_line_exit_2_for_every_command(
    command: list[str], empty: str, where: str, folder: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["--db", empty, *command] if where == "before" else [*command, "--db", empty]
    assert main(argv) == 2
    assert capsys.readouterr() == ("", EMPTY)
    assert sorted(p.name for p in folder.iterdir()) == ["tracker.toml"]


def test_empty_db_real_cli_db_upgrade_creates_nothing(tmp_path: Path) -> None:
    config = tmp_path / "tracker.toml"
    config.write_text(f'[database]\nurl = "sqlite:///{tmp_path / "configured.db"}"\n')
    result = run_cli(
        "--config", str(config), "db", "upgrade", "--db", "", cwd=tmp_path,
        env={"TRACKER_HOME": str(tmp_path / "state")},
    )  # fmt: skip
    assert (result.returncode, result.stdout, result.stderr) == (2, "", EMPTY)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["tracker.toml"]


def test_estimate_api_explicit_empty_db_is_input_error(folder: Path) -> None:
    from tracker.estimate.api import estimate_job

    now = datetime(2026, 11, 26, tzinfo=UTC)
    with pytest.raises(InputError) as caught:
        estimate_job("ml.m5.xlarge", 1, 1, record=True, db="", now=now)
    assert str(caught.value) == (
        "db is empty; expected sqlite:///PATH or postgresql+psycopg://USER@HOST/DB"
    )
    assert sorted(p.name for p in folder.iterdir()) == ["tracker.toml"]
    # Without db, the configured URL: the estimate is recorded there.
    estimate_job("ml.m5.xlarge", 1, 1, record=True, now=now)
    assert (folder / "configured.db").exists()
