"""Cancelling a running query at a deadline: the dashboard's per-request time budget.

A request sets a deadline (:func:`deadline`, a context variable, so the worker thread that
runs the request's queries sees it: Starlette copies the context into its threads). Engines
prepared with :func:`cancel_at_deadline` stop a statement that runs past it:

- SQLite: a progress handler on each connection checks the deadline every few thousand
  virtual-machine steps; past it the statement stops with ``interrupted``;
- PostgreSQL: each statement is sent after ``SET statement_timeout`` to the time left, so
  the server cancels it (and ``0`` again once no deadline is set).

Either way the worker thread is freed, not abandoned: a request over budget costs the server
no more than its budget. Without a deadline nothing changes.
"""

from __future__ import annotations

import time
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, Engine, event

if TYPE_CHECKING:
    from sqlalchemy.engine.interfaces import DBAPIConnection, ExecutionContext

#: The monotonic time (``time.monotonic()``) at which the current request's work stops.
_DEADLINE: ContextVar[float | None] = ContextVar("tracker_request_deadline", default=None)
#: SQLite virtual-machine steps between two looks at the clock (cheap: a few microseconds).
SQLITE_STEPS = 10_000
_PREPARED: weakref.WeakSet[Engine] = weakref.WeakSet()
_PG_TIMEOUT = "tracker_statement_timeout"


@contextmanager
def deadline(seconds: float) -> Iterator[float]:
    """Queries run inside (and in threads started inside) stop ``seconds`` from now."""
    at = time.monotonic() + seconds
    token = _DEADLINE.set(at)
    try:
        yield at
    finally:
        _DEADLINE.reset(token)


def remaining() -> float | None:
    """Seconds left before the current deadline (negative once past), None without one."""
    at = _DEADLINE.get()
    return None if at is None else at - time.monotonic()


def expired() -> bool:
    left = remaining()
    return left is not None and left <= 0


def cancel_at_deadline(engine: Engine) -> Engine:
    """Make ``engine``'s statements stop at the deadline of the request running them (once
    per engine; connections already in its pool included)."""
    if engine in _PREPARED:
        return engine
    _PREPARED.add(engine)
    if engine.dialect.name == "sqlite":
        event.listen(engine, "checkout", _sqlite_checkout)
    elif engine.dialect.name == "postgresql":
        event.listen(engine, "before_cursor_execute", _pg_before_execute)
    return engine


def _sqlite_progress() -> int:
    """SQLite's progress handler: a true value interrupts the running statement."""
    return 1 if expired() else 0


def _sqlite_checkout(dbapi_connection: DBAPIConnection, _record: Any, _proxy: Any) -> None:
    dbapi_connection.set_progress_handler(_sqlite_progress, SQLITE_STEPS)


def _pg_before_execute(
    connection: Connection,
    cursor: Any,
    _statement: str,
    _params: Any,
    _context: ExecutionContext | None,
    _many: bool,
) -> None:
    left = remaining()
    wanted = 0 if left is None else max(1, int(left * 1000))
    info = connection.info
    if wanted == 0 and not info.get(_PG_TIMEOUT):
        return  # no deadline now, and none left on this connection
    cursor.execute(f"SET statement_timeout = {wanted:d}")
    info[_PG_TIMEOUT] = wanted
