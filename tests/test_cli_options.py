"""Global options (``--config``, ``--db``, ``--log-level``, ``--log-format``) work before or
after the command at any depth; a value after the command wins over one before it, and an
option not repeated after it keeps the earlier value. ``tracker`` alone prints a short usage.

    argv                                              config  db   log-level  log-format
    ------------------------------------------------  ------  ---  ---------  ----------
    --db a report                                     -       a    -          text
    report --db b                                     -       b    -          text
    --db a report --db b                              -       b    -          text
    --db a --config c prices check                    c       a    -          text
    prices --db p check --config c                    c       p    -          text
    --db a prices --db p check --db q                 -       q    -          text
    db current --log-level INFO --log-format json     -       -    INFO       json
    --log-level ERROR run collect --log-level DEBUG   -       -    DEBUG      text
"""

from __future__ import annotations

import argparse
import json
import logging
from decimal import Decimal
from pathlib import Path

import pytest

from tests.conftest import run_cli
from tests.factories import make_job
from tracker import __version__
from tracker.cli import ops
from tracker.cli.main import START_HERE, build_parser, main
from tracker.cli.wiring import GLOBAL_OPTIONS_TITLE, Parser
from tracker.records import Rates

GLOBALS = ("config", "db", "log_level", "log_format")


def every_parser(
    parser: argparse.ArgumentParser, path: tuple[str, ...] = ()
) -> list[tuple[tuple[str, ...], argparse.ArgumentParser]]:
    found = [(path, parser)]
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                found += every_parser(sub, (*path, name))
    return found


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        ("--db a report", (None, "a", None, "text")),
        ("report --db b", (None, "b", None, "text")),
        ("--db a report --db b", (None, "b", None, "text")),
        ("--db a --config c prices check", ("c", "a", None, "text")),
        ("prices --db p check --config c", ("c", "p", None, "text")),
        ("--db a prices --db p check --db q", (None, "q", None, "text")),
        ("db current --log-level INFO --log-format json", (None, None, "INFO", "json")),
        ("--log-level ERROR run collect --log-level DEBUG", (None, None, "DEBUG", "text")),
    ],
)
def test_global_options_parse_before_or_after_the_command(
    argv: str, expected: tuple[str | None, ...]
) -> None:
    args = build_parser().parse_args(argv.split())
    assert tuple(getattr(args, name) for name in GLOBALS) == expected


def test_every_command_at_every_depth_takes_the_global_options() -> None:
    for path, parser in every_parser(build_parser()):
        titled = [g for g in parser._action_groups if g.title == GLOBAL_OPTIONS_TITLE]
        assert len(titled) == 1, f"tracker {' '.join(path)}: no global options group"
        dests = tuple(action.dest for action in titled[0]._group_actions)
        assert dests == GLOBALS, f"tracker {' '.join(path)}: {dests}"
        if path:
            # A SUPPRESS default is what lets an absent option keep the value given before.
            assert {a.default for a in titled[0]._group_actions} == {argparse.SUPPRESS}
        assert isinstance(parser, Parser)


def _seeded_db(tmp_path: Path) -> str:
    from tracker.cost.engine import CostPolicy, cost_job
    from tracker.store.database import Store

    url = f"sqlite:///{tmp_path / 'after.db'}"
    store = Store.open(url)
    job = make_job("train-1", "vision")  # 1 h of ml.m5.xlarge at 0.23 USD/h
    now = job.end_time
    assert now is not None
    rates = Rates(hourly={"ml.m5.xlarge": Decimal("0.23")})
    store.save_jobs([(job, cost_job(job, rates, now, CostPolicy()), {})], now)
    return url


def test_db_after_the_report_command_is_the_one_read(tmp_path: Path) -> None:
    url = _seeded_db(tmp_path)
    before = f"sqlite:///{tmp_path / 'before.db'}"
    result = run_cli("--db", before, "report", "--by", "team", "--format", "json", "--db", url)
    assert result.returncode == 0, result.stderr
    rows = json.loads(result.stdout)
    assert [(r["team"], r["jobs"], r["total_usd"]) for r in rows] == [("vision", 1, 0.23)]


def test_config_after_a_nested_command_is_the_one_loaded(tmp_path: Path) -> None:
    broken = tmp_path / "c.toml"
    broken.write_text("[database]\nurl = 3\n", encoding="utf-8")
    result = run_cli("prices", "check", "--config", str(broken))
    assert result.returncode == 2
    assert result.stderr.startswith(f"Error: {broken}")
    assert "database.url" in result.stderr


def test_db_after_db_current_is_the_one_described(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'schema.db'}"
    upgraded = run_cli("db", "upgrade", "--db", url)
    assert upgraded.returncode == 0, upgraded.stderr
    current = run_cli("--db", f"sqlite:///{tmp_path / 'other.db'}", "db", "current", "--db", url)
    assert current.returncode == 0, current.stderr
    assert current.stdout.startswith(f"Database {url}: schema at revision ")
    other = run_cli("db", "current", "--db", f"sqlite:///{tmp_path / 'other.db'}")
    assert "empty, no schema yet" in other.stdout


def test_log_level_after_the_command_configures_logging(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'log.db'}"
    assert main(["db", "upgrade", "--db", url, "--log-level", "DEBUG"]) == 0
    assert logging.getLogger("tracker").level == logging.DEBUG
    assert main(["--log-level", "DEBUG", "db", "current", "--db", url]) == 0
    assert logging.getLogger("tracker").level == logging.DEBUG
    assert main(["db", "current", "--db", url]) == 0
    assert logging.getLogger("tracker").level == logging.WARNING


@pytest.mark.parametrize(
    ("argv", "level"),
    [
        (["daemon"], logging.INFO),
        (["daemon", "--log-level", "ERROR"], logging.ERROR),
        (["--log-level", "WARNING", "daemon"], logging.WARNING),
    ],
)
def test_the_daemon_logs_info_unless_a_level_is_given(argv: list[str], level: int) -> None:
    from tracker.cli.main import configure_logging

    args = build_parser().parse_args(argv)
    configure_logging(args.log_level or "WARNING", args.log_format)
    ops._daemon_logging(args)
    assert logging.getLogger("tracker").level == level


@pytest.mark.parametrize("argv", [(), ("--db", "sqlite:///never.db"), ("--log-level", "INFO")])
def test_no_command_prints_a_short_usage_and_exits_2(argv: tuple[str, ...]) -> None:
    result = run_cli(*argv)
    assert result.returncode == 2
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert lines[0] == "usage: tracker [global options] COMMAND [options]"
    starters = [line.split()[:2] for line in lines if line.startswith("  tracker ")]
    assert starters == [["tracker", name] for name in START_HERE]
    assert "  tracker report --by team  " in result.stderr
    assert "tracker --help lists every command" in result.stderr
    # The short usage, not the whole help: no option list, no list of every command.
    assert "--log-format" not in result.stderr and "reconcile" not in result.stderr
    assert len(lines) < 12


def test_version_prints_the_package_version() -> None:
    result = run_cli("--version")
    assert result.returncode == 0
    assert result.stdout == f"tracker {__version__}\n"
