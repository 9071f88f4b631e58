"""``tracker db upgrade|current``: the database schema, managed by Alembic migrations."""

from __future__ import annotations

import argparse

from tracker.cli.wiring import add_actions, add_command, settings_from
from tracker.errors import InputError


def add_commands(subparsers: argparse._SubParsersAction) -> None:
    """Add ``tracker db`` and its actions."""
    db = add_command(
        subparsers,
        "db",
        "the database schema (migrations)",
        ["tracker db current", "tracker db upgrade --db postgresql+psycopg://tracker@db/tracker"],
    )
    actions = add_actions(db, "db_command")
    upgrade = add_command(
        actions,
        "upgrade",
        "upgrade the database schema to this version's",
        ["tracker db upgrade --db sqlite:///tracker.db"],
    )
    upgrade.set_defaults(handler=cmd_upgrade)
    current = add_command(
        actions,
        "current",
        "show the database's schema revision",
        ["tracker db current --db sqlite:///tracker.db"],
    )
    current.set_defaults(handler=cmd_current)
    db.set_defaults(handler=_missing_action)


def _url(args: argparse.Namespace) -> str:
    return args.db if args.db is not None else settings_from(args).database_url


def cmd_upgrade(args: argparse.Namespace) -> int:
    from tracker.store.migrate import upgrade

    print(upgrade(_url(args)))
    return 0


def cmd_current(args: argparse.Namespace) -> int:
    from tracker.store.migrate import describe_current

    print(describe_current(_url(args)))
    return 0


def _missing_action(args: argparse.Namespace) -> int:
    raise InputError("tracker db: expected an action: upgrade or current")
