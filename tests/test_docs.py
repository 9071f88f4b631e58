"""docs/cli.md documents every command and every option of ``tracker``.

Each command (``tracker report``, ``tracker prices refresh``, ...) needs a heading
``## `tracker ...` `` (any level) whose section names each of its options; the global
options go under ``## Global options``. Adding a command or an option without documenting
it fails here, with the exact line to add.
"""

from __future__ import annotations

import argparse
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from tracker.cli.main import build_parser

REPO = Path(__file__).resolve().parent.parent
CLI_DOC = REPO / "docs" / "cli.md"
HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*$")
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


def documented(option: str, section: str) -> bool:
    return re.search(rf"`{re.escape(option)}(?![\w-])", section) is not None


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
