"""Property (hypothesis): every ``tracker`` command, given random and hostile flags, ends with
exit code 0, 1 or 2, no traceback and no "internal error" (an exception no check caught).

The commands and their options come from the real parser (``build_parser``), as in
tests/test_docs.py: a new command or option is fuzzed without touching this file. Each value
is drawn from what the option accepts (its choices, its ``type=``: whole numbers and decimals
around their bounds, dates, file names) or is hostile: huge and negative numbers, ``1e308``,
``nan``, Arabic-Indic and superscript digits, bidi and control characters, 5,000 characters,
``../``, the empty string. Each run is in this process (``tracker.cli.main.main``), against a
fresh copy of a small seeded SQLite database, in a temporary working folder.

Left out, because they contact AWS or never end (their argument checks are tested elsewhere):
"""

from __future__ import annotations

import argparse
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, assume, event, example, given, settings
from hypothesis import strategies as st

from tests.views_data import NOW, make_store
from tracker.cli.main import build_parser
from tracker.cli.wiring import parse_day

#: Commands not run, and why.
EXCLUDED = {
    "collect": "calls SageMaker, S3 and STS in every configured account (AWS)",
    "daemon": "runs until stopped",
    "serve": "serves until stopped",
    "run": "runs a scheduled job: collect, prices and reconcile call AWS",
    "demo": "starts an in-memory AWS (moto) and seeds hundreds of jobs: seconds per run",
    "init": "asks STS who the caller is (AWS)",
    "prices refresh": "calls the AWS Price List API",
}
__doc__ += "".join(f"\n- ``tracker {name}``: {why}" for name, why in EXCLUDED.items()) + "\n"

HOSTILE = (
    "99999999999999999999", "-99999999999999999999", "9223372036854775808", "-1", "0", "1e308",
    "-1e308", "1e-400", "nan", "inf", "-inf", "\u0663", "\u00b2", "1\u202e2", "\u202e", "\n",
    "a\nb", "\x00", "x" * 5000, "../", "", " ", "-", "%s", "{}", "'; DROP TABLE jobs; --",
    "\ufffd", "0x10", "1_000", "+5", "05", "2026-02-30", "0001-01-01",
    "9999-12-31",
)  # fmt: skip
DATES = ("2026-10-01", "2026-11-26", "2025-10-23", "0001-01-01", "9999-12-31", "2026-11-01")
PIVOTS = ("team,day", "day,team", "month", "day", "user,day", "team,month", "status,team")
FILES = ("out.csv", "out.csv.gz", "out.parquet", "out.html", "out.png", "out.json", "out")
INSTANCE_TYPES = ("ml.g5.2xlarge", "ml.p4d.24xlarge", "ml.m5.xlarge", "ml.trn1.32xlarge")
#: Stands for the test's folder in drawn file names (filled in when the command runs).
WORK = "<work>"
NAMES = ("nlp", "vision", "unallocated", "111122223333", "us-east-1", "Completed", "ml.g5.2xlarge")


def commands(
    parser: argparse.ArgumentParser, path: tuple[str, ...] = ()
) -> Iterator[tuple[tuple[str, ...], argparse.ArgumentParser]]:
    """(command path, parser) for every leaf command, depth first."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                nested = any(isinstance(a, argparse._SubParsersAction) for a in sub._actions)
                if nested:
                    yield from commands(sub, (*path, name))
                else:
                    yield (*path, name), sub


PARSER = build_parser()
RUN = [
    (path, parser)
    for path, parser in commands(PARSER)
    if path[0] not in EXCLUDED and " ".join(path) not in EXCLUDED
]


def test_fuzz_covers_every_command_but_the_excluded() -> None:
    every = {" ".join(path) for path, _ in commands(PARSER)}
    assert every == {" ".join(path) for path, _ in RUN} | {
        name for name in every if name in EXCLUDED or name.split()[0] in EXCLUDED
    }
    assert {"report", "estimate", "budgets", "reconcile", "export"} <= every


def values(action: argparse.Action) -> st.SearchStrategy[str]:
    """What an option's value may be: what it accepts, or hostile."""
    hostile = st.sampled_from(HOSTILE)
    flag = action.option_strings[-1] if action.option_strings else action.dest
    name = getattr(action.type, "__name__", "")
    if action.choices:
        typed: st.SearchStrategy[str] = st.sampled_from([str(c) for c in action.choices])
    elif flag == "--db":
        typed = st.just(f"sqlite:///{WORK}/fuzz.db")
    elif flag == "--config":
        typed = st.just(f"{WORK}/fuzz.toml")
    elif flag in ("--output", "--dir", "--source"):
        typed = st.sampled_from([f"{WORK}/cwd/{name}" for name in FILES])
    elif flag == "--instance-type":
        typed = st.sampled_from(INSTANCE_TYPES)
    elif flag == "--pivot":
        typed = st.sampled_from(PIVOTS)
    elif action.type is parse_day:
        typed = st.sampled_from(DATES) | st.dates().map(str)
    elif name == "whole number":
        typed = st.integers(-(10**22), 10**22).map(str) | st.integers(0, 1100).map(str)
    elif name == "number":
        typed = st.decimals(allow_nan=True, allow_infinity=True).map(str) | st.sampled_from(
            ["0.3", "1", "10", "8784", "0.0001"]
        )
    else:
        typed = st.sampled_from(NAMES) | st.text(max_size=20)
    # Mostly what the option accepts, so runs get past parsing; --db and --config, given in
    # every run, are hostile more rarely still.
    share = 9 if action.dest in ("db", "config") else 4
    return st.one_of(*[typed] * share, hostile)


def own_actions(parser: argparse.ArgumentParser) -> list[argparse.Action]:
    """Every option a command takes (its own and the global ones), without help."""
    return [
        action
        for action in parser._actions
        if not isinstance(action, argparse._HelpAction | argparse._SubParsersAction)
    ]


@st.composite
def command_lines(draw: st.DrawFn) -> list[str]:
    """A command line of a command in RUN; file names start with WORK."""
    path, parser = draw(st.sampled_from(RUN))
    argv = list(path)
    for action in own_actions(parser):
        if not action.option_strings:  # a positional argument
            argv.append(draw(values(action)))
            continue
        flag = draw(st.sampled_from(action.option_strings))
        # --db and --config are always the fuzz copies unless hostile (never the user's own).
        must = action.required or action.dest in ("db", "config")
        if not must and draw(st.integers(0, 3)) > 0:  # each optional flag in a quarter of runs
            continue
        if action.nargs == 0:
            argv.append(flag)
        else:
            argv += [flag, draw(values(action))]
    if path == ("alerts",) and "--dry-run" not in argv:
        argv.append("--dry-run")  # delivering needs no AWS with the log channel, but never send
    return argv


CONFIG = """\
[[budgets]]
name = "all"
amount_usd = 5

[[budgets]]
name = "nlp"
team = "nlp"
amount_usd = 1
period = "quarterly"

[reports]
max_daily_days = 60

[reconcile]
source = "bill.csv"
"""


@pytest.fixture(scope="module")
def work(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder with the seeded database (the views organisation of tests/views_data.py,
    built once), a config, a bill file and a working folder two levels down."""
    folder = tmp_path_factory.mktemp("fuzz")
    make_store(folder)
    (folder / "cwd" / "deeper").mkdir(parents=True)
    (folder / "fuzz.toml").write_text(CONFIG, encoding="utf-8")
    (folder / "cwd" / "bill.csv").write_text("a,b,c\n1,2,3\n", encoding="utf-8")
    return folder


def offline(argv: list[str]) -> bool:
    """False for runs that would reach AWS: a bill from Cost Explorer or S3."""
    if argv[0] != "reconcile" or "bill" not in argv[1:]:
        return True
    source = [argv[i + 1] for i, a in enumerate(argv[:-1]) if a == "--source"]
    config = [argv[i + 1] for i, a in enumerate(argv[:-1]) if a == "--config"]
    if source:
        return not (source[-1] == "ce" or source[-1].strip().lower().startswith("s3:"))
    # Without --source, [reconcile] source (a file in the fuzz config; 'ce' by default).
    return bool(config) and config[-1].endswith("/fuzz.toml")


@settings(
    max_examples=150,
    deadline=5000,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(argv=command_lines())
# Found by this test before they were fixed (each is also a plain test in test_bounds.py):
@example(argv=["report", "--view", "trend", "--until", "0001-01-15"])
@example(
    argv=["reconcile", "--against", "estimates", "--until", "9999-12-31", "--since", "0001-01-01",
          "--db", f"sqlite:///{WORK}/fuzz.db", "--config", f"{WORK}/fuzz.toml"]
)  # fmt: skip
@example(argv=["prices", "check", "--config", "x" * 5000])
@example(argv=["export", "--output", "a\x00b.csv", "--db", f"sqlite:///{WORK}/fuzz.db"])
def test_cli_survives_hostile_flags(
    argv: list[str],
    work: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from tracker.cli.main import main

    argv = [arg.replace(WORK, str(work)) for arg in argv]
    assume(offline(argv))
    monkeypatch.chdir(work / "cwd" / "deeper")  # a relative --output '../' stays inside
    monkeypatch.setenv("TRACKER_NOW", NOW.isoformat())
    shutil.copyfile(work / "views.db", work / "fuzz.db")
    capsys.readouterr()
    try:
        code = main(argv)
    except SystemExit as exit_:  # only --help and --version exit this way
        code = exit_.code if isinstance(exit_.code, int) else 2
    err = capsys.readouterr().err
    event(f"{argv[0]}: exit {code}")
    assert code in (0, 1, 2), (argv, code, err)
    assert "Traceback" not in err, (argv, err)
    assert "internal error" not in err, (argv, err)
