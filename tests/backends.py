"""A ``db_url`` fixture that runs a test body once on SQLite and once on PostgreSQL.

Import it into a test module (``from tests.backends import db_url_fixture  # noqa: F401``); the
PostgreSQL run uses conftest's ``pg_url`` (a fresh schema, or a skip saying why).
"""

from __future__ import annotations

from pathlib import Path

import pytest

BACKENDS = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]


@pytest.fixture(params=BACKENDS, name="db_url")
def db_url_fixture(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A URL to an empty database: a SQLite file, or a PostgreSQL schema of its own."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'tracker.db'}"
    return request.getfixturevalue("pg_url")
