"""docs/cli.md and ``--help`` document every command and every option of ``tracker``.

The commands and options come from the real parser (``build_parser``), never from a list
kept here. Each command (``tracker report``, ``tracker prices refresh``, ...) needs a heading
``## `tracker ...` `` (any level) whose section names each of its options and each value
an option or argument accepts; the global options go under ``## Global options``; and
``tracker [COMMAND] --help`` lists every (sub)command. Adding a command, an option or a
choice without documenting it fails here, with the exact line to add.
"""

from __future__ import annotations

import argparse
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import run_cli
from tracker.cli.main import build_parser

REPO = Path(__file__).resolve().parent.parent
CLI_DOC = REPO / "docs" / "cli.md"
HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*$")
CODE_BLOCK = re.compile(r"^```.*?^```", re.S | re.M)  # its backticks would pair with the prose's
SKIP = {"-h", "--help"}


def commands(
    parser: argparse.ArgumentParser, path: tuple[str, ...] = ()
) -> Iterator[tuple[tuple[str, ...], argparse.ArgumentParser]]:
    """(command path, parser) for every command and subcommand, depth first."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield (*path, name), sub
                yield from commands(sub, (*path, name))


def options(parser: argparse.ArgumentParser) -> list[str]:
    """The long option strings of a parser (its own, not its subcommands')."""
    found = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            continue
        longs = [o for o in action.option_strings if o not in SKIP and o.startswith("--")]
        found += longs[:1] if longs else [o for o in action.option_strings if o not in SKIP][:1]
    return found


def subcommands(parser: argparse.ArgumentParser) -> list[str]:
    """The names of a parser's direct subcommands (none for a leaf command)."""
    return [
        name
        for action in parser._actions
        if isinstance(action, argparse._SubParsersAction)
        for name in action.choices
    ]


def choices(parser: argparse.ArgumentParser) -> list[tuple[str, list[str]]]:
    """(option or argument, the values it accepts) for each of a parser's own actions with choices."""
    found = []
    for action in parser._actions:
        if action.choices and not isinstance(action, argparse._SubParsersAction):
            found.append((action.option_strings[-1] if action.option_strings else action.dest,
                          [str(choice) for choice in action.choices]))  # fmt: skip
    return found


def sections(text: str) -> dict[str, str]:
    """Heading title (backticks removed) -> the text until the next heading."""
    out: dict[str, str] = {}
    title, body = None, []
    for line in text.splitlines():
        match = HEADING.match(line)
        if match:
            if title is not None:
                out[title] = "\n".join(body)
            title, body = match.group(2).replace("`", "").strip(), []
        else:
            body.append(line)
    if title is not None:
        out[title] = "\n".join(body)
    return out


DOC = sections(CLI_DOC.read_text(encoding="utf-8"))
PARSER = build_parser()
COMMANDS = list(commands(PARSER))
PARENTS = [((), PARSER), *((path, sub) for path, sub in COMMANDS if subcommands(sub))]


def documented(option: str, section: str) -> bool:
    return re.search(rf"`{re.escape(option)}(?![\w-])", section) is not None


def named_values(section: str) -> set[str]:
    """Every word inside backticks: `json`, and each of `--by job\\|team` or `DEBUG`."""
    return {
        word for span in re.findall(r"`([^`]+)`", CODE_BLOCK.sub("", section))
        for word in re.split(r"[\s|\\,]+", span) if word
    }  # fmt: skip


def test_the_parser_walk_finds_every_level_of_command() -> None:
    paths = {path for path, _ in COMMANDS}
    assert {("collect",), ("report",), ("db",), ("status",)} <= paths
    assert {
        ("prices", "refresh"),
        ("prices", "check"),
        ("db", "upgrade"),
        ("db", "current"),
    } <= paths
    assert [path for path, _ in PARENTS] == [(), ("prices",), ("db",)]


@pytest.mark.parametrize(
    ("path", "parser"), PARENTS, ids=[" ".join(p) or "tracker" for p, _ in PARENTS]
)
def test_help_lists_every_command(path: tuple[str, ...], parser: argparse.ArgumentParser) -> None:
    result = run_cli(*path, "--help")
    assert result.returncode == 0, result.stderr
    # argparse lists each subcommand that has a help text on a line of its own, indented 4.
    listed = re.findall(r"^ {4}(\S+)", result.stdout, re.M)
    expected = subcommands(parser)
    assert listed == expected, (
        f"tracker {' '.join(path)} --help lists {listed}, the parser has {expected}: "
        "give every add_parser a help="
    )
    if not path:
        for command in ("collect", "report", "db", "status"):
            assert command in result.stdout


@pytest.mark.parametrize("path", [p for p, _ in COMMANDS], ids=" ".join)
def test_every_command_has_a_section(path: tuple[str, ...]) -> None:
    title = "tracker " + " ".join(path)
    assert title in DOC, f"docs/cli.md has no section for `{title}`: add a heading  ## `{title}`"


@pytest.mark.parametrize(("path", "parser"), COMMANDS, ids=[" ".join(p) for p, _ in COMMANDS])
def test_every_option_is_documented(path: tuple[str, ...], parser: argparse.ArgumentParser) -> None:
    title = "tracker " + " ".join(path)
    section = DOC.get(title, "")
    missing = [o for o in options(parser) if not documented(o, section)]
    assert not missing, (
        f"docs/cli.md, section `{title}`: document {', '.join(missing)} (as `{missing[0]} ...`)"
    )


@pytest.mark.parametrize(
    ("path", "parser"),
    [((), PARSER), *COMMANDS],
    ids=["global", *(" ".join(p) for p, _ in COMMANDS)],
)
def test_every_choice_is_documented(path: tuple[str, ...], parser: argparse.ArgumentParser) -> None:
    title = "tracker " + " ".join(path) if path else "Global options"
    named = named_values(DOC.get(title, ""))
    missing = [f"{option} {value}" for option, values in choices(parser) for value in values
               if value not in named]  # fmt: skip
    assert not missing, f"docs/cli.md, section `{title}`: name each value in backticks: {missing}"


def test_global_options_are_documented() -> None:
    section = DOC.get("Global options", "")
    missing = [o for o in options(PARSER) if not documented(o, section)]
    assert not missing, f"docs/cli.md, section 'Global options': document {', '.join(missing)}"


def test_the_check_catches_an_undocumented_option() -> None:
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers()
    report = sub.add_parser("report")
    report.add_argument("--by")
    report.add_argument("--colour")
    section = sections("## `tracker report`\n| `--by DIM` | ... |\n| `--colour-scheme` | ... |\n")[
        "tracker report"
    ]
    assert [o for o in options(report) if not documented(o, section)] == ["--colour"]
    assert [p for p, _ in commands(parser)] == [("report",)]


def test_the_choice_check_catches_an_undocumented_value() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--format", choices=["table", "json", "yaml"])
    parser.add_argument("job", choices=["collect", "alerts"])
    section = "```sh\ntracker x --format yaml\n```\n| `--format FORMAT` | `table` or `json` |\n"
    section += "`tracker run JOB`: `collect\\|alerts`\n"
    named = named_values(section)
    missing = [f"{o} {v}" for o, values in choices(parser) for v in values if v not in named]
    assert missing == ["--format yaml"]


def test_view_docs_exist_for_every_view() -> None:
    from tracker.report.views import VIEWS

    for view in VIEWS:
        page = REPO / "docs" / "views" / f"{view}.md"
        assert page.exists(), f"missing {page.relative_to(REPO)}"
        text = page.read_text(encoding="utf-8")
        assert f"tracker report --view {view}" in text, f"{page.name}: show the command"
        assert "```" in text and "Rendered from the demo data" in text, (
            f"{page.name}: include a sample"
        )
