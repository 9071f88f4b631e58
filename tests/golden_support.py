"""Golden files: expected output kept in tests/golden/, compared byte for byte.

Regenerate after a deliberate change with ``pytest --update-golden`` (or ``UPDATE_GOLDEN=1``),
then review the diff of tests/golden/ like any other change.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

GOLDEN = Path(__file__).resolve().parent / "golden"


def updating(config: pytest.Config) -> bool:
    """Whether this run rewrites the golden files instead of checking them."""
    try:
        option = bool(config.getoption("--update-golden"))
    except ValueError:  # the option is registered by tests/conftest.py
        option = False
    return option or os.environ.get("UPDATE_GOLDEN") == "1"


def check(config: pytest.Config, name: str, actual: str) -> None:
    """Compare ``actual`` with tests/golden/<name>, or write it when updating."""
    path = GOLDEN / name
    if updating(config):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(actual, encoding="utf-8")
        return
    if not path.exists():
        pytest.fail(f"no golden file {path}; create it with: pytest --update-golden {path.name}")
    expected = path.read_text(encoding="utf-8")
    assert actual == expected, (
        f"output differs from {path.relative_to(GOLDEN.parent.parent)}; if the change is intended, "
        "regenerate with `pytest --update-golden` and review the diff"
    )
