"""The light read path: questions the spend rollup answers, read from a SQLite file through
the standard library's ``sqlite3``, without importing SQLAlchemy, SQLModel or pydantic.

Importing the ORM costs a whole CLI run more than the answer does (issue 14), so ``tracker
report --by DIM`` and ``--view showback`` over dimensions and filters the rollup keeps
(:func:`tracker.store.window.rolled`) open a :class:`LiteStore` and read through
:class:`LiteQueries`: the same methods, arguments and rows as
:class:`tracker.store.query.ViewQueries` over ``spend_days`` (tests/test_rollups.py checks
every answer against both other paths, to the micro-dollar). Anything else (PostgreSQL, a
URL with options, a database not at this version's schema, a question the rollup does not
answer) goes through the full store, which also gives every error its one line.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from tracker.cost.items import LIST, REPORT_ITEMS, CostItem
from tracker.store import files
from tracker.store.window import CHRONOLOGICAL, ROLLED, Window, rolled

if TYPE_CHECKING:
    from tracker.store.database import Store
    from tracker.store.query import ViewQueries

PREFIX = "sqlite:///"


class LiteStore:
    """A read-only SQLite connection to a tracker database at this version's schema."""

    def __init__(self, connection: sqlite3.Connection, url: str):
        self.connection = connection
        self.url = url

    @classmethod
    def open(cls, url: str) -> LiteStore | None:
        """The light store of a plain ``sqlite:///PATH`` URL to an existing database at this
        version's schema, or None: the caller then opens the full store."""
        from tracker.store.migrate import HEAD

        if not url.startswith(PREFIX) or "?" in url or len(url) == len(PREFIX):
            return None
        path = Path(url[len(PREFIX) :])
        if "\x00" in str(path) or not path.is_file() or not files.folder_writable(path):
            return None  # a read-only folder: the full store opens it immutable
        try:
            connection = sqlite3.connect(f"file:{quote(str(path))}?mode=ro", uri=True)
        except sqlite3.Error:
            return None
        try:
            (revision,) = connection.execute("SELECT version_num FROM alembic_version").fetchone()
            if revision != HEAD:
                raise sqlite3.DatabaseError(revision)
        except (sqlite3.Error, TypeError, ValueError):
            connection.close()
            return None
        return cls(connection, url)


def queries(store: Store | LiteStore) -> ViewQueries | LiteQueries:
    """The aggregate queries of a store: light over a LiteStore, else the query layer's."""
    if isinstance(store, LiteStore):
        return LiteQueries(store)
    from tracker.store.query import ViewQueries

    return ViewQueries(store)


def _column(by: str) -> str:
    if by == "day":
        return "day"
    if by == "month":
        return "strftime('%Y-%m', day)"
    return f'"{ROLLED[by]}"'


class LiteQueries:
    """:class:`tracker.store.query.ViewQueries`'s rolled answers, over ``sqlite3``."""

    dialect = "sqlite"

    def __init__(self, store: LiteStore):
        self.store = store

    # -- SQL pieces ------------------------------------------------------------------------
    def _where(self, window: Window) -> tuple[str, list[Any]]:
        conditions, parameters = ["1 = 1"], []
        if window.since is not None:
            conditions.append("day >= ?")
            parameters.append(window.since.isoformat())
        if window.until is not None:
            conditions.append("day <= ?")
            parameters.append(window.until.isoformat())
        for name, value in window.filters.items():
            if value is not None:
                conditions.append(f'"{ROLLED[name]}" = ?')
                parameters.append(value)
        return " AND ".join(conditions), parameters

    def _counts(self, by: Sequence[str], window: Window) -> tuple[list[str], list[Any]]:
        """``jobs`` and ``unpriced_jobs``, as :func:`tracker.store.query._rollup_counts`."""
        parameters: list[Any] = []
        if "day" in by:
            starts = "jobs"
        else:
            conditions = []
            if window.since is not None:
                conditions.append("day = ?")
            if "month" in by:
                conditions.append("strftime('%d', day) = '01'")
            if conditions:
                starts = f"CASE WHEN {' OR '.join(conditions)} THEN jobs ELSE first_jobs END"
                parameters = [window.since.isoformat()] if window.since is not None else []
            else:
                starts = "first_jobs"
        columns = [
            f"coalesce(sum({starts}), 0) AS jobs",
            f"coalesce(sum(CASE WHEN unpriced = 1 THEN {starts} ELSE 0 END), 0) AS unpriced_jobs",
        ]
        return columns, parameters * 2

    @staticmethod
    def _sums(items: Sequence[CostItem], when: str | None = None, prefix: str = "") -> list[str]:
        sums = []
        for item in items:
            amount = (
                item.column if when is None else f"CASE WHEN {when} THEN {item.column} ELSE 0 END"
            )
            sums.append(f'coalesce(sum({amount}), 0) AS "{prefix}{item.name}"')
        return sums

    def _all(self, sql: str, parameters: Sequence[Any], by: Sequence[str]) -> list[dict[str, Any]]:
        cursor = self.store.connection.execute(sql, list(parameters))
        names = [d[0] for d in cursor.description]
        rows = [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]
        if "day" in by:
            for row in rows:
                row["day"] = date.fromisoformat(row["day"])
        return rows

    # -- the answers -------------------------------------------------------------------------
    def spend(
        self,
        by: Sequence[str],
        window: Window,
        items: Sequence[CostItem] = REPORT_ITEMS,
        *,
        counts: bool = True,
        in_flight: bool = False,
        final_only: bool = False,
    ) -> list[dict[str, Any]]:
        keys = [f'{_column(name)} AS "{name}"' for name in by]
        count_columns, parameters = self._counts(by, window) if counts else ([], [])
        columns = [*keys, *count_columns, *self._sums(items)]
        if in_flight:
            columns += self._sums(items, "final = 0", "in_flight_")
        where, where_parameters = self._where(window)
        if final_only:
            where += " AND final = 1"
        sql = f"SELECT {', '.join(columns)} FROM spend_days WHERE {where}"
        if by:
            groups = ", ".join(_column(name) for name in by)
            sql += f" GROUP BY {groups} ORDER BY {groups}"
        return self._all(sql, [*parameters, *where_parameters], by)

    def by_dimension(
        self, by: str, window: Window, *, limit: int | None = None, offset: int = 0
    ) -> list[dict[str, Any]]:
        key = _column(by)
        count_columns, parameters = self._counts([by], window)
        columns = [f'{key} AS "{by}"', *count_columns, *self._sums(REPORT_ITEMS)]
        where, where_parameters = self._where(window)
        order = key if by in CHRONOLOGICAL else f"coalesce(sum(list_micros), 0) DESC, {key}"
        sql = (
            f"SELECT {', '.join(columns)} FROM spend_days WHERE {where} "
            f"GROUP BY {key} ORDER BY {order}"
        )
        if limit is not None:
            sql += f" LIMIT {int(limit)} OFFSET {int(offset)}"
        return self._all(sql, [*parameters, *where_parameters], [by])

    def count_dimension(self, by: str, window: Window) -> int:
        where, parameters = self._where(window)
        sql = f"SELECT count(DISTINCT {_column(by)}) FROM spend_days WHERE {where}"
        return int(self.store.connection.execute(sql, parameters).fetchone()[0])

    def distinct_jobs(self, by: str | None, window: Window) -> dict[Any, int]:
        grouping = [] if by is None else [by]
        (jobs, _), parameters = self._counts(grouping, window)
        where, where_parameters = self._where(window)
        if by is None:
            sql = f"SELECT {jobs} FROM spend_days WHERE {where}"
            rows = self._all(sql, [*parameters[:1], *where_parameters], [])
            return {None: int(rows[0]["jobs"]) if rows else 0}
        key = _column(by)
        sql = f'SELECT {key} AS "{by}", {jobs} FROM spend_days WHERE {where} GROUP BY {key}'
        rows = self._all(sql, [*parameters[:1], *where_parameters], grouping)
        return {row[by]: int(row["jobs"]) for row in rows}

    def pivot(self, rows_by: str, cols_by: str, window: Window) -> list[dict[str, Any]]:
        found = self.spend([rows_by, cols_by], window, (LIST,), counts=False)
        return [{"row": r[rows_by], "col": r[cols_by], "list": r[LIST.name]} for r in found]

    def totals(self, window: Window) -> dict[str, int]:
        row = self.spend([], window, in_flight=True)[0]
        return {key: int(value or 0) for key, value in row.items()} | {
            "in_flight": int(row["in_flight_list"] or 0)
        }

    def unpriced_flags(self, window: Window) -> list[dict[str, Any]]:
        (jobs, _), parameters = self._counts(["region"], window)
        where, where_parameters = self._where(window)
        sql = (
            f'SELECT region AS "region", unpriced_flags AS "flags", {jobs} FROM spend_days '
            f"WHERE {where} AND unpriced_flags != '' "
            "GROUP BY region, unpriced_flags ORDER BY region, unpriced_flags"
        )
        return self._all(sql, [*parameters[:1], *where_parameters], [])


def answers(by: Sequence[str], window: Window) -> bool:
    """Whether the light path answers a grouping by ``by`` within ``window``."""
    return rolled(by, window)
