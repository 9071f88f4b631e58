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
# The tables of the first released schema: every tracker database holds them (a database made
# before migrations existed holds exactly them), and the columns its jobs table had.
FIRST_TABLES = frozenset({"jobs", "job_cost_days", "watermarks", "collection_runs"})
FIRST_JOB_COLUMNS = frozenset({"id", "account_id", "region", "name", "arn"})
# The newest revision in tracker/store/migrations/versions (tests/test_migrations.py checks it), so
# opening an up-to-date database needs no Alembic import: a report starts that much sooner.
HEAD = "0008"
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


def current(connection: Connection, url: str | None = None) -> str | None:
    """The database's revision; FIRST_REVISION for a pre-migration database; None if empty.

    Raises ForeignDatabase (naming ``url``) for a database that is not the tracker's: tables
    but no tracker revision row beside the tracker's core tables, and not the tables a
    pre-migration tracker made (the first release's, plus some of the models' others). A tracker database may hold tables of others beside its own;
    it is never written, migrated or read as the tracker's otherwise."""
    from sqlalchemy import inspect

    inspector = inspect(connection)
    tables = set(inspector.get_table_names())
    if not tables - {VERSION_TABLE} and not _version_rows(connection, tables):
        return None  # empty, or downgraded to base
    rows = _version_rows(connection, tables)
    if len(rows) > 1:
        raise StoreError(
            f"database has {len(rows)} schema revisions ({', '.join(sorted(rows))}); "
            "expected one: it was migrated by a branched tool, repair alembic_version by hand"
        )
    revision = rows[0] if rows else None
    if revision is not None and (tables >= FIRST_TABLES or tables == {VERSION_TABLE}):
        return revision  # an unknown revision is a newer tracker's: the caller refuses it
    if revision is None and FIRST_TABLES <= tables - {VERSION_TABLE} <= _model_tables():
        columns = {column["name"] for column in inspector.get_columns("jobs")}
        if columns >= FIRST_JOB_COLUMNS:
            return FIRST_REVISION
    from tracker.store.engine import ForeignDatabase

    where = url or connection.engine.url.render_as_string(hide_password=True)
    raise ForeignDatabase(where, tables)


def _model_tables() -> frozenset[str]:
    """Every table the tracker's models define (a database made by ``create_all`` before
    migrations existed holds the first release's and some of these)."""
    from tracker.store.schema import Job

    return frozenset(Job.metadata.tables)


def _version_rows(connection: Connection, tables: set[str]) -> list[str]:
    from sqlalchemy import text

    if VERSION_TABLE not in tables:
        return []
    return list(connection.execute(text(f"SELECT version_num FROM {VERSION_TABLE}")).scalars())


def check_ours(url: str) -> None:
    """Before a command that writes opens an existing SQLite file: refuse it, unchanged, if
    it is not a SQLite database or not the tracker's. (Opening it for writing would already
    change it: the WAL pragma rewrites the file header.)"""
    from sqlalchemy.exc import DatabaseError, SQLAlchemyError

    from tracker.store.engine import NotSqlite, connect, first_line, safe_url, sqlite_file

    path = sqlite_file(url)
    if path is None or not path.is_file() or path.stat().st_size == 0:
        return
    engine = connect(url, read_only=True)
    try:
        with engine.connect() as connection:
            current(connection, url)
    except DatabaseError as exc:
        if "file is not a database" in first_line(exc):
            raise NotSqlite(url, path) from None
        raise StoreError(f"cannot read database {safe_url(url)}: {first_line(exc)}") from None
    except SQLAlchemyError as exc:
        raise StoreError(f"cannot read database {safe_url(url)}: {first_line(exc)}") from None
    finally:
        engine.dispose()


def check_readable(engine: Engine, url: str) -> None:
    """A read-only open: the database must hold a tracker schema at exactly this version's
    head (NoDatabase when it holds none); nothing is written, nothing upgraded."""
    from tracker.store.engine import NoDatabase, safe_url

    with engine.connect() as connection:
        revision = current(connection, url)
    if revision is None:
        raise NoDatabase(url)
    if revision == HEAD:
        return
    _refuse_unknown(revision, HEAD)
    raise StoreError(
        f"database {safe_url(url)} has schema revision {revision}, older than this tracker's "
        f"{HEAD}, and is opened read-only; run 'tracker db upgrade' on a writable copy"
    )


def upgrade_engine(engine: Engine, url: str | None = None) -> Upgrade:
    """Upgrade the database behind ``engine`` (at ``url``, for messages) to head, serialised
    against other processes; a database that is not the tracker's is refused untouched."""
    with engine.connect() as connection:
        before = current(connection, url)
        if before == HEAD and _versioned(connection):
            return Upgrade(before, HEAD)
        target = head()
        _refuse_unknown(before, target)
        connection.rollback()
        _lock(connection)
        before = current(connection, url)  # another process may have upgraded meanwhile
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

    from tracker.store.engine import check_url, check_writable, connect, first_line, safe_url

    check_url(url)
    check_writable(url)
    check_ours(url)
    engine = connect(url)
    try:
        return upgrade_engine(engine, url).describe(safe_url(url))
    except SQLAlchemyError as exc:
        raise StoreError(f"cannot upgrade database {safe_url(url)}: {first_line(exc)}") from None
    finally:
        engine.dispose()


def describe_current(url: str) -> str:
    """One line: the database's revision against this tracker's head (changes nothing)."""
    from sqlalchemy.exc import SQLAlchemyError

    from tracker.store.engine import (
        NotSqlite,
        check_url,
        connect,
        first_line,
        safe_url,
        sqlite_file,
    )

    check_url(url)
    where = safe_url(url)
    target = head()
    path = sqlite_file(url)
    if path is not None and not path.exists():  # a look must not create the file
        return f"Database {where}: empty, no schema yet; run 'tracker db upgrade' (head {target})."
    engine = connect(url, read_only=path is not None)
    try:
        with engine.connect() as connection:
            revision = current(connection, url)
    except SQLAlchemyError as exc:
        if path is not None and "file is not a database" in first_line(exc):
            raise NotSqlite(url, path) from None
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
