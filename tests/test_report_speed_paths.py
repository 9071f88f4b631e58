"""``tracker report`` answered by the spend rollup imports no ORM (issue 14).

Times are benchmarks (bench/bench_reports.py), never tests; this checks the cause instead:
a report the rollup answers on a SQLite file reads it through ``sqlite3`` (tracker.store.lite)
without importing SQLAlchemy, SQLModel, pydantic or Jinja2, and prints what the full store
prints; a question the rollup does not keep (``--by job``) goes through the full store.
"""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest

from tests.conftest import REPO
from tests.factories import make_job
from tracker.cost.engine import CostPolicy, cost_job
from tracker.records import Rates
from tracker.store.database import Store

NOW = datetime(2026, 3, 20, tzinfo=UTC)
RATES = Rates(hourly={"ml.m5.xlarge": Decimal("0.23")})
HEAVY = ("sqlalchemy", "sqlmodel", "pydantic", "jinja2")
PROBE = f"""
import contextlib, io, json, sys
from tracker.cli.main import main
out = io.StringIO()
with contextlib.redirect_stdout(out):
    code = main(sys.argv[1:])
heavy = sorted(m for m in sys.modules if m.split('.')[0] in {set(HEAVY)!r})
print(json.dumps({{"code": code, "heavy": sorted({{m.split('.')[0] for m in heavy}}),
                  "out": out.getvalue()}}))
"""


@pytest.fixture
def database(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'tracker.db'}"
    store = Store.open(url)
    jobs = [make_job("a", "nlp", seconds=30 * 3600), make_job("b", "cv")]
    store.save_jobs([(job, cost_job(job, RATES, NOW, CostPolicy()), {}) for job in jobs], NOW)
    store.engine.dispose()
    return url


def report(url: str, *args: str) -> dict:
    result = subprocess.run(
        [sys.executable, "-c", PROBE, "--db", url, "report", *args, "--format", "json"],
        capture_output=True, text=True, cwd=REPO, timeout=60,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_report_by_team_imports_no_orm(database: str) -> None:
    found = report(database, "--by", "team")
    assert (found["code"], found["heavy"]) == (0, [])
    assert [(r["team"], r["jobs"], r["total_usd"]) for r in json.loads(found["out"])] == [
        ("nlp", 1, 6.9),
        ("cv", 1, 0.23),
    ]


def test_report_showback_by_day_imports_no_orm(database: str) -> None:
    found = report(database, "--view", "showback", "--pivot", "team,day",
                   "--since", "2026-03-10", "--until", "2026-03-11")  # fmt: skip
    assert (found["code"], found["heavy"]) == (0, [])
    rows = json.loads(found["out"])
    assert [(r["team"], r["jobs"], r["2026-03-10"], r["2026-03-11"]) for r in rows] == [
        ("nlp", 1, 3.22, 3.68),
        ("cv", 1, 0.23, 0.0),
    ]


def test_report_by_job_reads_the_job_tables(database: str) -> None:
    found = report(database, "--by", "job")
    assert found["code"] == 0 and "sqlalchemy" in found["heavy"]
    assert [r["job"] for r in json.loads(found["out"])] == ["a", "b"]
