"""Schema migrations: bring a database to the schema this tracker knows, or refuse.

Every schema change is an Alembic revision in ``tracker/store/migrations/versions``. Opening a
store upgrades its database to head; ``tracker db upgrade`` and the daemon do it
explicitly. A database whose revision this code does not know (written by a newer
tracker) is refused with one line, never touched. A database created before migrations
existed (tables but no ``alembic_version``) is recognised as the first released schema.

A database opened read-only is never upgraded: :func:`check_readable` accepts it at head
and refuses an older or newer schema with one line.

Concurrent upgrades are serialised: SQLite takes its write lock (``BEGIN IMMEDIATE``)
before reading the revision, PostgreSQL a transaction-scoped advisory lock.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import TYPE_CHECKING

from tracker.errors import StoreError

if TYPE_CHECKING:
    from alembic.config import Config
    from alembic.script import ScriptDirectory
    from sqlalchemy import Connection, Engine

SCRIPT_LOCATION = "tracker.store:migrations"
FIRST_REVISION = "0001"  # the first released schema: jobs, job_cost_days, watermarks, runs
# The newest revision in tracker/store/migrations/versions (tests/test_migrations.py checks it), so
# opening an up-to-date database needs no Alembic import: a report starts that much sooner.
HEAD = "0004"
VERSION_TABLE = "alembic_version"
PG_LOCK_KEY = 0x5347_5452_4143  # "SGTRAC": one advisory lock for every tracker upgrade


@dataclass(frozen=True)
class Upgrade:
    """What an upgrade did: the revision before (None for an empty database) and after."""

    before: str | None
    after: str

    @property
    def changed(self) -> bool:
        return self.before != self.after

    def describe(self, where: str) -> str:
        if not self.changed:
            return f"Database {where}: schema at revision {self.after} (head), nothing to do."
        start = self.before or "empty"
        return f"Database {where}: schema upgraded from {start} to {self.after} (head)."


def alembic_config(connection: Connection | None = None) -> Config:
    """An Alembic Config for the shipped scripts, bound to ``connection`` when given."""
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", SCRIPT_LOCATION)
    config.attributes["connection"] = connection
    return config


def head() -> str:
    """The newest revision this code knows."""
    return _scripts().get_current_head()


@functools.cache
def known_revisions() -> frozenset[str]:
    """Every revision this code knows (a database at another one is newer than the code)."""
    return frozenset(script.revision for script in _scripts().walk_revisions())


@functools.cache
def _scripts() -> ScriptDirectory:
    """The shipped revision scripts, read once per process."""
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(alembic_config())


def current(connection: Connection) -> str | None:
    """The database's revision; FIRST_REVISION for a pre-migration database; None if empty."""
    from sqlalchemy import inspect, text

    tables = set(inspect(connection).get_table_names())
    if VERSION_TABLE in tables:
        rows = connection.execute(text(f"SELECT version_num FROM {VERSION_TABLE}")).scalars().all()
        if len(rows) > 1:
            raise StoreError(
                f"database has {len(rows)} schema revisions ({', '.join(sorted(rows))}); "
                "expected one: it was migrated by a branched tool, repair alembic_version by hand"
            )
        if rows:
            return rows[0]
    return FIRST_REVISION if "jobs" in tables else None


def check_readable(engine: Engine, url: str) -> None:
    """A read-only open: the database must hold a tracker schema at exactly this version's
    head (NoDatabase when it holds none); nothing is written, nothing upgraded."""
    from tracker.store.engine import NoDatabase, safe_url

    with engine.connect() as connection:
        revision = current(connection)
    if revision is None:
        raise NoDatabase(url)
    if revision == HEAD:
        return
    _refuse_unknown(revision, HEAD)
    raise StoreError(
        f"database {safe_url(url)} has schema revision {revision}, older than this tracker's "
        f"{HEAD}, and is opened read-only; run 'tracker db upgrade' on a writable copy"
    )


def upgrade_engine(engine: Engine) -> Upgrade:
    """Upgrade the database behind ``engine`` to head (serialised against other processes)."""
    with engine.connect() as connection:
        before = current(connection)
        if before == HEAD and _versioned(connection):
            return Upgrade(before, HEAD)
        target = head()
        _refuse_unknown(before, target)
        connection.rollback()
        _lock(connection)
        before = current(connection)  # another process may have upgraded meanwhile
        _refuse_unknown(before, target)
        _run(connection, before, target)
        connection.commit()
    return Upgrade(before, target)


def upgrade(url: str) -> str:
    """Upgrade the database at ``url`` to head and return a one-line description.

    The daemon calls this at start; ``tracker db upgrade`` prints it. Raises StoreError
    (one line) when the database is newer than this tracker or cannot be written.
    """
    from sqlalchemy.exc import SQLAlchemyError

    from tracker.store.engine import check_writable, connect, first_line, safe_url

    check_writable(url)
    engine = connect(url)
    try:
        return upgrade_engine(engine).describe(safe_url(url))
    except SQLAlchemyError as exc:
        raise StoreError(f"cannot upgrade database {safe_url(url)}: {first_line(exc)}") from None
    finally:
        engine.dispose()


def describe_current(url: str) -> str:
    """One line: the database's revision against this tracker's head (changes nothing)."""
    from sqlalchemy.exc import SQLAlchemyError

    from tracker.store.engine import connect, first_line, safe_url, sqlite_file

    where = safe_url(url)
    target = head()
    path = sqlite_file(url)
    if path is not None and not path.exists():  # a look must not create the file
        return f"Database {where}: empty, no schema yet; run 'tracker db upgrade' (head {target})."
    engine = connect(url, read_only=path is not None)
    try:
        with engine.connect() as connection:
            revision = current(connection)
    except SQLAlchemyError as exc:
        raise StoreError(f"cannot read database {where}: {first_line(exc)}") from None
    finally:
        engine.dispose()
    _refuse_unknown(revision, target)
    if revision is None:
        return f"Database {where}: empty, no schema yet; run 'tracker db upgrade' (head {target})."
    if revision == target:
        return f"Database {where}: schema at revision {revision} (head)."
    return f"Database {where}: schema at revision {revision}, head is {target}; run 'tracker db upgrade'."


def _versioned(connection: Connection) -> bool:
    from sqlalchemy import inspect

    return VERSION_TABLE in inspect(connection).get_table_names()


def _refuse_unknown(revision: str | None, target: str) -> None:
    if revision is not None and revision not in known_revisions():
        raise StoreError(
            f"database schema is at revision {revision}, newer than this tracker knows "
            f"(head {target}); upgrade the tracker, or use another --db"
        )


def _lock(connection: Connection) -> None:
    """Hold the database's write lock until commit, so one process upgrades at a time."""
    from sqlalchemy import text

    dialect = connection.dialect.name
    if dialect == "sqlite":
        connection.exec_driver_sql("BEGIN IMMEDIATE")
    elif dialect == "postgresql":
        connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": PG_LOCK_KEY})


def _run(connection: Connection, before: str | None, target: str) -> None:
    from alembic import command

    config = alembic_config(connection)
    if before is not None and not _versioned(connection):
        command.stamp(config, before)  # adopt a database created before migrations existed
    if before != target:
        command.upgrade(config, target)
