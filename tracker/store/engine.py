"""Connecting to the database: the engine with its SQLite pragmas, and the UTC convention.

Times go in as naive UTC and come out as aware UTC. Kept apart from the repositories so that
migrations can connect without importing them.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.exc import SQLAlchemyError

from tracker.errors import InputError, StoreError

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


def connect(url: str) -> Engine:
    """The engine alone, no schema work (migrations use it); SQLite gets its pragmas."""
    try:
        if url.startswith("sqlite"):
            _ensure_sqlite_folder(url)
            engine = create_engine(url, connect_args={"timeout": 30, "check_same_thread": False})
            event.listen(engine, "connect", _sqlite_pragmas)
        else:
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
