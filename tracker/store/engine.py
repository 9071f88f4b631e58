"""Connecting to the database: the engine with its SQLite pragmas, and the UTC convention.

Times go in as naive UTC and come out as aware UTC. Kept apart from the repositories so that
migrations can connect without importing them.

A read-only connection (``connect(url, read_only=True)``) never creates a file or folder and
never writes: SQLite opens the file with ``mode=ro`` (``immutable=1`` when its folder cannot
be written, as on a read-only filesystem, where SQLite could not make the WAL index) and
skips the journal pragmas, which would write. ``?mode=ro`` and ``?immutable=1`` work on a
plain ``sqlite:///x.db`` URL as on the URI form (``sqlite:///file:x.db?mode=ro&uri=true``).

Every URL is checked before anything is opened or created (:func:`check_url`): one line, exit
2, for a URL that does not parse, a database other than SQLite or PostgreSQL, an empty URL, a
folder named as the SQLite file, or a file in the way of its folder. Whether a database is
the tracker's (else ForeignDatabase, never written) is decided in ``migrate.current``.
"""

from __future__ import annotations

import os
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import quote, unquote

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.exc import SQLAlchemyError

from tracker.errors import InputError, StoreError
from tracker.extras import install_hint, require
from tracker.store import files

if TYPE_CHECKING:
    from collections.abc import Iterable

    from sqlalchemy.engine.interfaces import DBAPIConnection
    from sqlalchemy.pool import ConnectionPoolEntry


def naive_utc(value: datetime | None) -> datetime | None:
    """Aware -> naive UTC for storage (naive input is taken as UTC already)."""
    if value is None or value.tzinfo is None:
        return value
    return value.astimezone(UTC).replace(tzinfo=None)


def aware_utc(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class NoDatabase(InputError):
    """A command that only reads found no tracker database (and created none)."""

    def __init__(self, url: str):
        super().__init__(
            f"no tracker database at {safe_url(url)}; run 'tracker collect' first (or pass --db)"
        )


class ForeignDatabase(InputError):
    """The database holds tables the tracker did not create: it is refused whole, never
    written, migrated or read as the tracker's."""

    MAX_NAMED = 10

    def __init__(self, url: str, tables: Iterable[str]):
        names = sorted(tables)
        listed = ", ".join(names[: self.MAX_NAMED])
        if len(names) > self.MAX_NAMED:
            listed += f" and {len(names) - self.MAX_NAMED} more"
        where = "" if url.startswith("sqlite") else " (or a schema of its own)"
        super().__init__(
            f"{safe_url(url)} has tables the tracker did not create: {listed}; "
            f"pass a new --db{where}"
        )


class NotSqlite(InputError):
    """A SQLite URL names a file that is not a SQLite database."""

    def __init__(self, url: str, path: Path):
        super().__init__(f"{safe_url(url)}: {path} is not a SQLite database file; pass a new --db")


class ReadOnlyDatabase(InputError):
    """A command that writes was given a database it cannot write."""

    def __init__(self, url: str):
        super().__init__(
            f"database {safe_url(url)} is read-only and this command writes to it; "
            "pass a writable --db (read-only databases serve report, budgets, status, "
            "reconcile --against estimates, export and serve)"
        )


SUPPORTED_URLS = "sqlite:///PATH or postgresql+psycopg://USER@HOST/DB"
# The databases the tracker's schema and migrations are written for (SQLAlchemy backend names).
SUPPORTED_BACKENDS = ("sqlite", "postgresql")


def check_url(url: str, option: str = "database URL") -> None:
    """Raise InputError (one line naming ``option`` and the URL) unless ``url`` is a database
    URL the tracker can use: parsable, of a supported database, and for SQLite a file path
    that is not a folder and does not run through a file. Touches nothing on disk."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    if not url.strip():
        raise InputError(f"{option} is empty; expected {SUPPORTED_URLS}")
    shown = safe_url(url)
    try:
        parsed = make_url(url)
    except (ArgumentError, ValueError):
        hint = f" (a file? sqlite:///{url})" if url.endswith((".db", ".sqlite", ".sqlite3")) else ""
        raise InputError(
            f"{option} {shown!r}: not a database URL; expected {SUPPORTED_URLS}{hint}"
        ) from None
    backend = parsed.get_backend_name()
    if backend not in SUPPORTED_BACKENDS:
        raise InputError(
            f"{option} {shown!r}: unsupported database {backend!r}; expected {SUPPORTED_URLS}"
        )
    if backend != "sqlite":
        return
    if parsed.host or parsed.username or parsed.password or parsed.port:
        raise InputError(
            f"{option} {shown!r}: a SQLite URL names a file after three slashes: "
            "sqlite:///relative/path.db or sqlite:////absolute/path.db"
        )
    path = sqlite_file(url)
    if path is None:
        return
    if path.is_dir():
        raise InputError(
            f"{option} {shown!r}: {path} is a folder, not a database file; "
            f"name a file in it, e.g. sqlite:///{path / 'tracker.db'}"
        )
    for folder in path.parents:
        if folder.exists():
            if not folder.is_dir():
                raise InputError(f"{option} {shown!r}: {folder} is a file, not a folder")
            break


def _sqlite_parts(url: str) -> tuple[Path | None, dict[str, str]]:
    """The file behind a SQLite URL and its query options (``sqlite:///x.db?mode=ro`` or the
    URI form ``sqlite:///file:x.db?mode=ro&uri=true``); no file for an in-memory database,
    another dialect or a URL that does not parse."""
    from sqlalchemy.engine import make_url

    try:
        parsed = make_url(url)
    except Exception:  # noqa: BLE001 - check_url names an unparsable URL; here it has no file
        return None, {}
    if parsed.get_backend_name() != "sqlite":
        return None, {}
    options = {
        key: value if isinstance(value, str) else value[-1] for key, value in parsed.query.items()
    }
    database = parsed.database or ""
    if options.get("uri", "").lower() in ("true", "1") and database.startswith("file:"):
        database = unquote(database.removeprefix("file:"))
    if not database or database == ":memory:" or options.get("mode") == "memory":
        return None, options
    return Path(database), options


def sqlite_file(url: str) -> Path | None:
    """The file behind a SQLite URL (``sqlite:///x.db``, ``sqlite:///x.db?mode=ro`` or
    ``sqlite:///file:x.db?mode=ro&uri=true``); None for an in-memory database or another
    dialect."""
    return _sqlite_parts(url)[0]


def _url_read_only(url: str) -> bool:
    """The URL itself opens SQLite read-only (``mode=ro`` or ``immutable=1``)."""
    _path, options = _sqlite_parts(url)
    return options.get("mode") == "ro" or options.get("immutable") == "1"


def check_writable(url: str) -> None:
    """Raise ReadOnlyDatabase when the URL or the file says a SQLite database cannot be
    written (before any write, so a command fails with one line, not halfway)."""
    path = sqlite_file(url)
    if path is None:
        return
    if _url_read_only(url) or (
        path.exists() and not (os.access(path, os.W_OK) and files.folder_writable(path))
    ):
        raise ReadOnlyDatabase(url)


def _read_only_url(url: str, path: Path) -> str:
    """The SQLite URI that opens ``path`` without writing: ``mode=ro``, plus ``immutable=1``
    when the URL asks for it or the folder cannot be written (SQLite could not make the WAL
    index there). Built here because SQLAlchemy passes ``?mode=ro`` on to SQLite only in the
    URI form, so a plain ``sqlite:///x.db?mode=ro`` would open the file for writing."""
    immutable = _sqlite_parts(url)[1].get("immutable") == "1" or not files.folder_writable(path)
    options = "mode=ro&uri=true" + ("&immutable=1" if immutable else "")
    return f"sqlite:///file:{quote(str(path.resolve()))}?{options}"


def connect(url: str, *, read_only: bool = False) -> Engine:
    """The engine alone, no schema work (migrations use it); SQLite gets its pragmas.

    ``read_only`` opens an existing database without writing (NoDatabase if there is none
    to open; nothing is created). A URL that is not one :func:`check_url` accepts is refused
    with one line before anything is opened or created."""
    check_url(url)
    try:
        if url.startswith("sqlite") and read_only:
            path = sqlite_file(url)
            if path is None or not path.is_file():
                raise NoDatabase(url)
            engine = create_engine(
                _read_only_url(url, path),
                connect_args={"timeout": 30, "check_same_thread": False},
            )
            event.listen(engine, "connect", _sqlite_read_pragmas)
        elif url.startswith("sqlite"):
            _ensure_sqlite_folder(url)
            engine = create_engine(url, connect_args={"timeout": 30, "check_same_thread": False})
            event.listen(engine, "connect", _sqlite_pragmas)
        else:
            if url.startswith("postgresql+psycopg:"):
                require("postgres", "a PostgreSQL database URL")
            engine = create_engine(url, pool_pre_ping=True)
    except ImportError as exc:
        raise InputError(
            f"database URL {safe_url(url)!r}: its driver {exc.name!r} is not installed; use "
            f"postgresql+psycopg://USER@HOST/DB with {install_hint('postgres')}"
        ) from None
    except SQLAlchemyError as exc:
        raise StoreError(f"cannot open database {safe_url(url)}: {first_line(exc)}") from None
    return engine


def _ensure_sqlite_folder(url: str) -> None:
    """Make the folder of a new SQLite file (a command that writes may create its database)."""
    path = sqlite_file(url)
    if path is None:
        return
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError(
            f"database URL {safe_url(url)!r}: cannot create folder {path.parent} ({exc.strerror})"
        ) from None


def _sqlite_pragmas(dbapi_connection: DBAPIConnection, _record: ConnectionPoolEntry) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


def _sqlite_read_pragmas(dbapi_connection: DBAPIConnection, _record: ConnectionPoolEntry) -> None:
    # journal_mode and synchronous would write the file header: a read-only open sets neither.
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA query_only=ON")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


def safe_url(url: str) -> str:
    """The URL without its password: error messages must not leak secrets."""
    try:
        from sqlalchemy.engine import make_url

        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # noqa: BLE001 - an unparsable URL is shown as given, bar a password
        return re.sub(r"(://[^:/@]*:)[^@/]*@", r"\1***@", url)


def first_line(exc: BaseException) -> str:
    text = str(getattr(exc, "orig", None) or exc)
    return text.strip().splitlines()[0] if text.strip() else exc.__class__.__name__
