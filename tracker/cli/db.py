"""``tracker db upgrade|current``: the database schema, managed by Alembic migrations."""

from __future__ import annotations

import argparse

from tracker.cli.wiring import settings_from
from tracker.errors import InputError


def add_commands(subparsers: argparse._SubParsersAction) -> None:
    """Add ``tracker db`` and its actions."""
    db = subparsers.add_parser("db", help="the database schema (migrations)")
    actions = db.add_subparsers(dest="db_command", metavar="ACTION", parser_class=type(db))
    upgrade = actions.add_parser("upgrade", help="upgrade the database schema to this version's")
    upgrade.set_defaults(handler=cmd_upgrade)
    current = actions.add_parser("current", help="show the database's schema revision")
    current.set_defaults(handler=cmd_current)
    db.set_defaults(handler=_missing_action)


def _url(args: argparse.Namespace) -> str:
    return args.db or settings_from(args).database_url


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
