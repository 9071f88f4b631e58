"""Connecting to the database: the engine with its SQLite pragmas, and the UTC convention.

Times go in as naive UTC and come out as aware UTC. Kept apart from the repositories so that
migrations can connect without importing them.

A read-only connection (``connect(url, read_only=True)``) never creates a file or folder and
never writes: SQLite opens the file with ``mode=ro`` (``immutable=1`` when its folder cannot
be written, as on a read-only filesystem, where SQLite could not make the WAL index) and
skips the journal pragmas, which would write.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import quote, unquote

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.exc import SQLAlchemyError

from tracker.errors import InputError, StoreError
from tracker.extras import require

if TYPE_CHECKING:
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


class ReadOnlyDatabase(InputError):
    """A command that writes was given a database it cannot write."""

    def __init__(self, url: str):
        super().__init__(
            f"database {safe_url(url)} is read-only and this command writes to it; "
            "pass a writable --db (read-only databases serve report, budgets, status, "
            "reconcile --against estimates, export and serve)"
        )


def sqlite_file(url: str) -> Path | None:
    """The file behind a SQLite URL (``sqlite:///x.db`` or ``sqlite:///file:x.db?...``);
    None for an in-memory database or another dialect."""
    if not url.startswith("sqlite:///"):
        return None
    rest = url.removeprefix("sqlite:///")
    uri = rest.startswith("file:")
    if uri:
        rest = unquote(rest.removeprefix("file:").split("?", 1)[0])
    if not rest or rest == ":memory:" or (uri and "mode=memory" in url):
        return None
    return Path(rest)


def _url_read_only(url: str) -> bool:
    """The URL itself opens SQLite read-only (``mode=ro`` or ``immutable=1``)."""
    query = url.split("?", 1)[1] if "?" in url else ""
    options = set(query.split("&"))
    return url.startswith("sqlite") and bool(options & {"mode=ro", "immutable=1"})


def _folder_writable(path: Path) -> bool:
    folder = path.resolve().parent
    return os.access(folder, os.W_OK) and not os.statvfs(folder).f_flag & os.ST_RDONLY


def check_writable(url: str) -> None:
    """Raise ReadOnlyDatabase when the URL or the file says a SQLite database cannot be
    written (before any write, so a command fails with one line, not halfway)."""
    path = sqlite_file(url)
    if path is None:
        return
    if _url_read_only(url) or (
        path.exists() and not (os.access(path, os.W_OK) and _folder_writable(path))
    ):
        raise ReadOnlyDatabase(url)


def _read_only_url(url: str, path: Path) -> str:
    """The SQLite URI that opens ``path`` without writing: the user's own read-only URI as
    given, else ``mode=ro`` (plus ``immutable=1`` when the folder cannot be written)."""
    if _url_read_only(url):
        return url
    options = "mode=ro&uri=true" + ("" if _folder_writable(path) else "&immutable=1")
    return f"sqlite:///file:{quote(str(path.resolve()))}?{options}"


def connect(url: str, *, read_only: bool = False) -> Engine:
    """The engine alone, no schema work (migrations use it); SQLite gets its pragmas.

    ``read_only`` opens an existing database without writing (NoDatabase if there is none
    to open; nothing is created)."""
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
            f"database url {safe_url(url)}: driver not installed ({exc.name}); "
            "for PostgreSQL install the 'postgres' extra"
        ) from None
    except SQLAlchemyError as exc:
        raise StoreError(f"cannot open database {safe_url(url)}: {first_line(exc)}") from None
    return engine


def _ensure_sqlite_folder(url: str) -> None:
    path = url.removeprefix("sqlite:///")
    if (
        path
        and path != ":memory:"
        and not path.startswith("file:")
        and url.startswith("sqlite:///")
    ):
        Path(path).parent.mkdir(parents=True, exist_ok=True)


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
    except Exception:  # noqa: BLE001 - an unparsable URL is shown by its scheme only
        return url.split("://", 1)[0] + "://..."


def first_line(exc: BaseException) -> str:
    text = str(getattr(exc, "orig", None) or exc)
    return text.strip().splitlines()[0] if text.strip() else exc.__class__.__name__
