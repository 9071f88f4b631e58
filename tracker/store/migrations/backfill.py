"""What the revisions that derive new job columns from stored records share: walking ``jobs``
in id order a batch at a time (memory flat on a million jobs) and reading a stored JSON column."""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from typing import Any

import sqlalchemy as sa

BATCH = 1000


def each_job(bind: sa.Connection, jobs: sa.TableClause, columns: Sequence[str]) -> Iterator[Any]:
    """Every row of ``jobs`` as ``(id, *columns)``, in id order, ``BATCH`` rows per query, so
    the caller may update the rows it is given."""
    after = 0
    while True:
        rows = bind.execute(
            sa.select(jobs.c.id, *(jobs.c[name] for name in columns))
            .where(jobs.c.id > after)
            .order_by(jobs.c.id)
            .limit(BATCH)
        ).all()
        if not rows:
            return
        yield from rows
        after = rows[-1][0]


def json_value(text: str | None, empty: dict | list) -> dict | list:
    """A stored JSON column's value when it has the type of ``empty``, else ``empty``."""
    try:
        value = json.loads(text or "null")
    except ValueError:
        return empty
    return value if isinstance(value, type(empty)) else empty
