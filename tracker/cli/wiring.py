"""What every command shares: the argument parser class, the one way a command is added
(summary, examples, global options), the window and filter options, loading the settings,
opening the store, and writing output. Commands import this module; it imports no command,
so the CLI has no import cycle.

Kept light: ``tracker --help`` imports it, so heavy libraries load inside the functions.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from datetime import date
from decimal import Decimal
from typing import TYPE_CHECKING

from tracker import bounds
from tracker.bounds import Bound
from tracker.errors import InputError
from tracker.records import FILTERS

if TYPE_CHECKING:
    from tracker.settings import Settings
    from tracker.store.database import Store


LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")
LOG_FORMATS = ("text", "json")
GLOBAL_OPTIONS_TITLE = "global options (before or after the command)"


class Parser(argparse.ArgumentParser):
    """argparse that reports bad arguments as one ``Error:`` line with exit code 2.

    ``summary`` and ``examples`` are what :func:`add_command` gave the command: its one-line
    description and the command lines shown under ``--help``.
    """

    summary: str = ""
    examples: tuple[str, ...] = ()

    def error(self, message: str) -> None:  # type: ignore[override]
        raise InputError(f"{self.prog}: {message}")


def add_global_options(parser: argparse.ArgumentParser, *, defaults: bool) -> None:
    """``--config``, ``--db``, ``--log-level`` and ``--log-format``.

    The top-level parser (``defaults=True``) holds the defaults. Every command's parser
    repeats the options with SUPPRESS defaults: argparse copies a subcommand's namespace over
    its parent's, so a value given after the command wins over one given before it, and an
    option not given after it leaves the earlier value (or the default) alone.
    """

    def default(value: str | None) -> str | None:
        return value if defaults else argparse.SUPPRESS

    group = parser.add_argument_group(GLOBAL_OPTIONS_TITLE)
    group.add_argument(
        "--config",
        metavar="PATH",
        default=default(None),
        help="config file (default $TRACKER_CONFIG, else config/tracker.toml)",
    )
    group.add_argument(
        "--db",
        metavar="URL",
        type=db_url,
        default=default(None),
        help="database URL, overrides [database] url (e.g. sqlite:///tracker.db)",
    )
    group.add_argument(
        "--log-level",
        choices=LOG_LEVELS,
        default=default(None),
        help="log level on standard error (default WARNING; INFO for tracker daemon)",
    )
    group.add_argument(
        "--log-format",
        choices=LOG_FORMATS,
        default=default("text"),
        help="text, or json: one JSON object per line for log shippers (default text)",
    )


def add_command(
    subparsers: argparse._SubParsersAction, name: str, summary: str, examples: Sequence[str]
) -> Parser:
    """Add the command ``name``: the one way every command module adds one.

    ``summary`` is the line ``tracker --help`` lists and, as a sentence, the description of
    ``tracker NAME --help``; ``examples`` (at least one, each a whole ``tracker ...`` command
    line) its epilog. The global options are added too, so they work after the command.
    """
    if not examples:
        raise ValueError(f"tracker {name}: a command needs at least one example")
    if len(examples) == 1:
        epilog = f"Example: {examples[0]}"
    else:
        epilog = "Examples:\n" + "\n".join(f"  {example}" for example in examples)
    parser = subparsers.add_parser(
        name,
        help=summary,
        description=f"{summary[0].upper()}{summary[1:]}.",
        epilog=epilog,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    if not isinstance(parser, Parser):
        raise TypeError(f"tracker {name}: subparsers must be made with parser_class=Parser")
    parser.summary = summary
    parser.examples = tuple(examples)
    add_global_options(parser, defaults=False)
    return parser


def add_actions(parser: argparse.ArgumentParser, dest: str) -> argparse._SubParsersAction:
    """The subcommands (``ACTION``) of a command such as ``tracker db`` or ``tracker prices``."""
    return parser.add_subparsers(dest=dest, metavar="ACTION", parser_class=Parser)


def add_format_option(
    parser: argparse.ArgumentParser, choices: Sequence[str], default: str = "table"
) -> None:
    """``--format``, with a help text naming every choice and the default."""
    named = [f"{choice} (default)" if choice == default else choice for choice in choices]
    listed = ", ".join(named[:-1]) + f" or {named[-1]}" if len(named) > 1 else named[0]
    parser.add_argument(
        "--format", default=default, choices=list(choices), help=f"output format: {listed}"
    )


def subcommand(parser: argparse.ArgumentParser, name: str) -> Parser:
    """The parser of the direct subcommand ``name`` of ``parser``."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction) and name in action.choices:
            found = action.choices[name]
            if isinstance(found, Parser):
                return found
    raise KeyError(name)


def db_url(text: str) -> str:
    """The ``--db`` option's ``type=``: an empty URL is refused here, once, for every command
    (it would otherwise read as "not given" wherever ``args.db or ...`` slipped in)."""
    if not text.strip():
        from tracker.store.engine import SUPPORTED_URLS

        raise InputError(f"--db is empty; expected {SUPPORTED_URLS}")
    return text


def parse_day(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date; expected YYYY-MM-DD") from None


def whole_arg(option: str, bound: Bound) -> Callable[[str], int]:
    """An argparse ``type=``: a whole number within ``bound`` (tracker.bounds), else one
    ``Error:`` line naming ``option``, the value and the range (exit 2)."""

    def parse(text: str) -> int:
        return bounds.whole(option, text, bound)

    parse.__name__ = "whole number"
    return parse


def decimal_arg(option: str, bound: Bound, *, positive: bool = False) -> Callable[[str], Decimal]:
    """An argparse ``type=``: a finite number within ``bound`` (``positive``: above zero)."""

    def parse(text: str) -> Decimal:
        return bounds.decimal(option, text, bound, positive=positive)

    parse.__name__ = "number"
    return parse


def add_job_shape(parser: argparse.ArgumentParser) -> None:
    """--instance-type, --count and --volume-gb: the shape of one training job, for the
    commands that price a job before it runs (``estimate``, ``guard check``)."""
    parser.add_argument("--instance-type", required=True, help="e.g. ml.g5.2xlarge")
    count = bounds.INSTANCE_COUNT
    parser.add_argument(
        "--count",
        type=whole_arg("--count", count),
        default=1,
        help=f"instances, {count.low} to {count.high:,} (default 1)",
    )
    volume = bounds.VOLUME_GB
    parser.add_argument(
        "--volume-gb",
        type=whole_arg("--volume-gb", volume),
        default=0,
        help=f"ML storage volume per instance, {volume.low} to {volume.high:,} GB (default 0)",
    )


def add_window_and_filters(parser: argparse.ArgumentParser) -> None:
    """--since/--until (inclusive UTC days) and one equality option per filter dimension."""
    parser.add_argument("--since", type=parse_day, help="first UTC day, inclusive (YYYY-MM-DD)")
    parser.add_argument("--until", type=parse_day, help="last UTC day, inclusive (YYYY-MM-DD)")
    for name in FILTERS:
        option = name.replace("_", "-")
        parser.add_argument(f"--{option}", help=f"only this {name.replace('_', ' ')}")


def filters_from(args: argparse.Namespace) -> dict[str, str]:
    """The filters the user gave, by dimension name."""
    return {name: getattr(args, name) for name in FILTERS if getattr(args, name, None)}


def settings_from(args: argparse.Namespace, *, whole_file: bool = True) -> Settings:
    """The config file's settings. ``whole_file=False`` validates the core sections now and
    each feature section when the command first uses it (``tracker report`` reads only
    ``[reports]``): a command is not slowed, nor stopped, by sections it never reads."""
    from tracker.settings import load_settings

    return load_settings(args.config, whole_file=whole_file)


def store_from(
    args: argparse.Namespace,
    settings: Settings,
    *,
    read_only: bool = False,
    must_exist: bool = False,
) -> Store:
    """The store of ``--db`` or ``[database] url``. Commands that only read pass ``read_only``:
    they create no database and write nothing (a read-only file or ``?mode=ro`` URI serves
    them); ``must_exist`` is for a command that writes to a database it must not create."""
    from tracker.store.database import Store

    given = args.db is not None
    url, option = (args.db, "--db") if given else (settings.database_url, "[database] url")
    return Store.open(url, read_only=read_only, must_exist=must_exist, option=option)


def check_file_name(option: str, path: str) -> str:
    """``path`` when the operating system can take it as a file name (no NUL byte)."""
    if "\x00" in path:
        raise InputError(f"{option} {path!r}: a file name cannot hold a NUL character")
    return path


def write_output(output: str | bytes, path: str | None) -> None:
    """Text to the file or stdout; bytes (a PNG) to the file, or to stdout only when it is
    not a terminal."""
    if path:
        try:
            if isinstance(output, str):
                with open(path, "w", encoding="utf-8") as handle:
                    handle.write(output)
            else:
                with open(path, "wb") as handle:
                    handle.write(output)
        except (OSError, ValueError) as exc:  # ValueError: a NUL byte in the name
            reason = getattr(exc, "strerror", None) or "not a usable file name"
            raise InputError(f"--output {path!r}: cannot write ({reason})") from None
        return
    if isinstance(output, str):
        sys.stdout.write(output)
        return
    if sys.stdout.isatty():
        raise InputError("--format png is binary: pass --output FILE.png (or pipe it to a file)")
    sys.stdout.flush()
    sys.stdout.buffer.write(output)
    sys.stdout.buffer.flush()
