"""What every command shares: the argument parser class, the window and filter options,
loading the settings, opening the store, and writing output. Commands import this module;
it imports no command, so the CLI has no import cycle.

Kept light: ``tracker --help`` imports it, so heavy libraries load inside the functions.
"""

from __future__ import annotations

import argparse
import sys
from datetime import date
from typing import TYPE_CHECKING

from tracker.errors import InputError
from tracker.records import FILTERS

if TYPE_CHECKING:
    from tracker.settings import Settings
    from tracker.store.database import Store


class Parser(argparse.ArgumentParser):
    """argparse that reports bad arguments as one ``Error:`` line with exit code 2."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise InputError(f"{self.prog}: {message}")


def parse_day(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date; expected YYYY-MM-DD") from None


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


def settings_from(args: argparse.Namespace) -> Settings:
    from tracker.settings import load_settings

    return load_settings(args.config)


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

    return Store.open(args.db or settings.database_url, read_only=read_only, must_exist=must_exist)


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
        except OSError as exc:
            raise InputError(f"--output {path}: cannot write ({exc.strerror})") from None
        return
    if isinstance(output, str):
        sys.stdout.write(output)
        return
    if sys.stdout.isatty():
        raise InputError("--format png is binary: pass --output FILE.png (or pipe it to a file)")
    sys.stdout.flush()
    sys.stdout.buffer.write(output)
    sys.stdout.buffer.flush()
