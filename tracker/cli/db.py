"""``tracker db upgrade|current|rebuild-rollups``: the database schema (Alembic migrations)
and the spend rollup."""

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
    rebuild = add_command(
        actions,
        "rebuild-rollups",
        "recompute the spend rollup (spend_days) from the job tables",
        ["tracker db rebuild-rollups --db sqlite:///tracker.db"],
    )
    rebuild.set_defaults(handler=cmd_rebuild_rollups)
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


def cmd_rebuild_rollups(args: argparse.Namespace) -> int:
    from tracker.store.database import Store
    from tracker.store.rollup import rebuild

    option = "--db" if args.db is not None else "[database] url"
    store = Store.open(_url(args), must_exist=True, option=option)
    with store.engine.begin() as connection:
        rows = rebuild(connection)
    print(f"Rebuilt the spend rollup: {rows:,} rows (spend per day per dimension tuple).")
    return 0


def _missing_action(args: argparse.Namespace) -> int:
    raise InputError("tracker db: expected an action: upgrade, current or rebuild-rollups")
