"""Golden files: expected output kept in tests/golden/, compared byte for byte.

Regenerate after a deliberate change with ``pytest --update-golden`` (registered in
tests/conftest.py), then review the diff of tests/golden/ like any other change. A run that
rewrites a golden file fails, naming it, so an update can never pass as a green check; run
again without the flag to check the new files.
"""

from __future__ import annotations

from pathlib import Path

import pytest

GOLDEN = Path(__file__).resolve().parent / "golden"


def updating(config: pytest.Config) -> bool:
    """Whether this run rewrites the golden files instead of checking them (``--update-golden``)."""
    return bool(config.getoption("--update-golden"))


def check(config: pytest.Config, name: str, actual: str) -> None:
    """Compare ``actual`` with tests/golden/<name>; with ``--update-golden``, rewrite a file
    that differs (or is missing) and fail saying so."""
    path = GOLDEN / name
    shown = path.relative_to(GOLDEN.parent.parent)
    expected = path.read_text(encoding="utf-8") if path.exists() else None
    if updating(config):
        if actual == expected:
            return
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(actual, encoding="utf-8")
        pytest.fail(
            f"rewrote golden file {shown}; review its diff, then run again without --update-golden"
        )
    if expected is None:
        pytest.fail(f"no golden file {shown}; create it with: pytest --update-golden")
    assert actual == expected, (
        f"output differs from {shown}; if the change is intended, "
        "regenerate with `pytest --update-golden` and review the diff"
    )
