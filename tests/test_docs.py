"""docs/cli.md and ``--help`` document every command and every option of ``tracker``.

The commands and options come from the real parser (``build_parser``), never from a list
kept here. Each command (``tracker report``, ``tracker prices refresh``, ...) needs a heading
``## `tracker ...` `` (any level) whose section names each of its options and each value
an option or argument accepts; the global options go under ``## Global options``; and
``tracker [COMMAND] --help`` lists every (sub)command. Adding a command, an option or a
choice without documenting it fails here, with the exact line to add. ``--help`` itself must
explain: every option has a help text, every command a one-line description and examples
that the parser accepts.
"""

from __future__ import annotations

import argparse
import re
import shlex
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import run_cli
from tracker.cli.main import build_parser
from tracker.cli.wiring import GLOBAL_OPTIONS_TITLE, Parser

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


def global_actions(parser: argparse.ArgumentParser) -> list[argparse.Action]:
    """The global options a parser carries (documented once, under ``## Global options``)."""
    return [
        action
        for group in parser._action_groups
        if group.title == GLOBAL_OPTIONS_TITLE
        for action in group._group_actions
    ]


def own_actions(parser: argparse.ArgumentParser) -> list[argparse.Action]:
    """A command's own actions: not its subcommands, and not the global options every command
    repeats (the top-level parser's are its own)."""
    repeated = global_actions(parser) if parser is not PARSER else []
    return [
        action
        for action in parser._actions
        if not isinstance(action, argparse._SubParsersAction) and action not in repeated
    ]


def options(parser: argparse.ArgumentParser) -> list[str]:
    """The long option strings of a parser (its own, not its subcommands')."""
    found = []
    for action in own_actions(parser):
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
    for action in own_actions(parser):
        if action.choices:
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
    assert [path for path, _ in PARENTS] == [(), ("prices",), ("db",), ("events",), ("guard",)]


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


def missing_help(parser: argparse.ArgumentParser) -> list[str]:
    """A parser's own options and arguments (global ones included) that have no help text."""
    return [
        (action.option_strings or [action.dest])[0]
        for action in parser._actions
        if not isinstance(action, argparse._SubParsersAction)
        and (not action.help or action.help == argparse.SUPPRESS)
    ]


def help_problems(path: tuple[str, ...], parser: argparse.ArgumentParser) -> list[str]:
    """What ``tracker PATH --help`` lacks: a one-line description, examples of this very
    command that the real parser accepts, shown in the epilog."""
    title = "tracker " + " ".join(path)
    problems = []
    description = parser.description or ""
    if not description.strip() or "\n" in description.strip():
        problems.append(f"{title}: give it a one-line description (add_command's summary)")
    examples = parser.examples if isinstance(parser, Parser) else ()
    if not examples:
        problems.append(f"{title}: give it at least one example (add_command's examples)")
    for example in examples:
        if not (example + " ").startswith(title + " "):
            problems.append(f"{title}: example {example!r} is not a {title} command line")
            continue
        try:
            PARSER.parse_args(shlex.split(example)[1:])
        except Exception as exc:  # the Parser raises InputError, --help would exit
            problems.append(f"{title}: example {example!r} does not parse: {exc}")
        if example not in (parser.epilog or ""):
            problems.append(f"{title}: example {example!r} is not in its --help epilog")
    return problems


@pytest.mark.parametrize(
    ("path", "parser"),
    [((), PARSER), *COMMANDS],
    ids=["tracker", *(" ".join(p) for p, _ in COMMANDS)],
)
def test_every_option_has_help(path: tuple[str, ...], parser: argparse.ArgumentParser) -> None:
    missing = missing_help(parser)
    assert not missing, f"tracker {' '.join(path)}: give these a help=: {missing}"


@pytest.mark.parametrize(("path", "parser"), COMMANDS, ids=[" ".join(p) for p, _ in COMMANDS])
def test_every_command_has_a_description_and_an_example(
    path: tuple[str, ...], parser: argparse.ArgumentParser
) -> None:
    assert help_problems(path, parser) == []


def test_help_shows_the_description_and_the_example() -> None:
    result = run_cli("report", "--help")
    assert result.returncode == 0, result.stderr
    assert "\nSpend grouped by a dimension, or one of the report views.\n" in result.stdout
    assert "\nExamples:\n  tracker report --by team\n" in result.stdout
    assert "  tracker report --by team --since 2026-11-01 --until 2026-11-30\n" in result.stdout
    single = run_cli("collect", "--help").stdout
    assert "Examples:\n  tracker collect\n" in single
    recost = run_cli("recost", "--help").stdout
    assert recost.rstrip().endswith("Example: tracker recost")


def test_the_help_checks_catch_a_missing_help_description_or_bad_example() -> None:
    parser = Parser(prog="tracker")
    sub = parser.add_subparsers(parser_class=Parser)
    bare = sub.add_parser("bare")
    bare.add_argument("--colour")
    bare.add_argument("--shade", help="a shade")
    assert missing_help(bare) == ["--colour"]
    assert help_problems(("bare",), bare) == [
        "tracker bare: give it a one-line description (add_command's summary)",
        "tracker bare: give it at least one example (add_command's examples)",
    ]
    wrong = sub.add_parser("wrong", description="Two\nlines.", epilog="Example: tracker wrong")
    wrong.examples = ("tracker report --by team", "tracker wrong")
    problems = help_problems(("wrong",), wrong)
    assert problems[:2] == [
        "tracker wrong: give it a one-line description (add_command's summary)",
        "tracker wrong: example 'tracker report --by team' is not a tracker wrong command line",
    ]
    assert problems[2].startswith(
        "tracker wrong: example 'tracker wrong' does not parse: tracker: argument COMMAND: "
        "invalid choice: 'wrong'"
    )
    assert len(problems) == 3
    unshown = sub.add_parser("report", description="Spend.", epilog="")
    unshown.examples = ("tracker report --by nothing", "tracker report --by team")
    problems = help_problems(("report",), unshown)
    assert problems[0].startswith(
        "tracker report: example 'tracker report --by nothing' does not parse: "
        "tracker report: argument --by: invalid choice: 'nothing'"
    )
    assert problems[1:] == [
        "tracker report: example 'tracker report --by nothing' is not in its --help epilog",
        "tracker report: example 'tracker report --by team' is not in its --help epilog",
    ]
