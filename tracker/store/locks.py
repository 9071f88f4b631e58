"""Shard locks: several collector processes on one PostgreSQL database split the
(account, region) pairs between them.

PostgreSQL: a session-level advisory lock per pair, ``pg_try_advisory_lock(key)``, taken on
a connection of its own (not pooled) for as long as the pair is collected, then unlocked and
closed. A pair another process holds is skipped (not waited for), so N collectors started
together each take different pairs, and no pair is ever collected twice at once. A process
that dies (even SIGKILL) loses its connection, PostgreSQL ends the session and its locks
with it: the pairs are free for whichever collector runs next. Advisory locks need no
table, no clean-up and no lease timing, which is why they were chosen over a work table
with ``SELECT ... FOR UPDATE SKIP LOCKED``: a work table would need its rows kept in step
with the configured sources and a transaction held open per pair.

The key is a stable 64-bit hash of (schema, account, region): stable across processes,
versions and hosts (not Python's salted ``hash``), and the schema keeps two tracker
installations sharing one database (different schemas) from blocking each other.

SQLite: one process writes the file, so there is nothing to split: the locks are no-ops.
"""

from __future__ import annotations

import hashlib
import threading
from typing import Protocol

from sqlalchemy import Connection, Engine, create_engine, text
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.pool import NullPool

from tracker.errors import StoreError
from tracker.store.engine import first_line

LOCK_NAMESPACE = "sagemaker-spend-tracker/collect"


class PairLease(Protocol):
    def release(self) -> None: ...


class PairLocks(Protocol):
    """``try_acquire(account, region)``: a lease to collect the pair, or None if another
    collector holds it. ``close()`` releases everything still held."""

    def try_acquire(self, account_id: str, region: str) -> PairLease | None: ...

    def close(self) -> None: ...


def pair_key(schema: str, account_id: str, region: str) -> int:
    """The advisory lock key of one pair: a signed 64-bit integer, the same everywhere."""
    text_key = f"{LOCK_NAMESPACE}/{schema}/{account_id}/{region}".encode()
    digest = hashlib.blake2b(text_key, digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


class _NoLease:
    def release(self) -> None:
        return None


class NoPairLocks:
    """SQLite (one process): every pair is always free."""

    def try_acquire(self, account_id: str, region: str) -> PairLease | None:
        return _NoLease()

    def close(self) -> None:
        return None


class _AdvisoryLease:
    def __init__(self, owner: AdvisoryPairLocks, connection: Connection, key: int) -> None:
        self.owner = owner
        self.connection = connection
        self.key = key
        self.released = False

    def release(self) -> None:
        if self.released:
            return
        self.released = True
        try:
            self.connection.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": self.key})
            self.connection.commit()
        except SQLAlchemyError:
            pass  # closing the connection below ends the session, and the lock with it
        finally:
            self.connection.close()
            self.owner._forget(self)


class AdvisoryPairLocks:
    """PostgreSQL advisory locks, one dedicated connection per held pair."""

    def __init__(self, url: str) -> None:
        # NullPool: closing a lease's connection really closes it, so nothing pooled can
        # keep a lock alive, and the store's own pool is never starved by held locks.
        self.engine: Engine = create_engine(url, poolclass=NullPool)
        self._held: set[_AdvisoryLease] = set()
        self._guard = threading.Lock()
        self._schema: str | None = None

    def _schema_name(self, connection: Connection) -> str:
        if self._schema is None:
            self._schema = str(connection.execute(text("SELECT current_schema()")).scalar())
        return self._schema

    def try_acquire(self, account_id: str, region: str) -> PairLease | None:
        try:
            connection = self.engine.connect()
        except SQLAlchemyError as exc:
            raise StoreError(f"cannot take a collection lock: {first_line(exc)}") from None
        try:
            key = pair_key(self._schema_name(connection), account_id, region)
            got = connection.execute(text("SELECT pg_try_advisory_lock(:k)"), {"k": key}).scalar()
            # End the implicit transaction: the session-level lock outlives it.
            connection.commit()
        except SQLAlchemyError as exc:
            connection.close()
            raise StoreError(f"cannot take a collection lock: {first_line(exc)}") from None
        if not got:
            connection.close()
            return None
        lease = _AdvisoryLease(self, connection, key)
        with self._guard:
            self._held.add(lease)
        return lease

    def _forget(self, lease: _AdvisoryLease) -> None:
        with self._guard:
            self._held.discard(lease)

    def close(self) -> None:
        with self._guard:
            held = list(self._held)
        for lease in held:
            lease.release()
        self.engine.dispose()


def pair_locks(url: str) -> PairLocks:
    """The shard locks for the database at ``url``: advisory on PostgreSQL, none on SQLite."""
    if url.startswith("postgresql"):
        return AdvisoryPairLocks(url)
    return NoPairLocks()
