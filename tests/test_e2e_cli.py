"""End to end: the real ``tracker`` command (a process of its own) against a moto server.

Seeded jobs, us-east-1, override prices ml.m5.xlarge $0.25/h (wins over the shipped 0.23),
ml.c5.xlarge $0.204/h; shipped ml.g5.2xlarge $1.515/h; no us-east-1 storage rate (flagged):

| job         | team | instances                         | billable s | cost                         |
|-------------|------|-----------------------------------|-----------:|------------------------------|
| multi       | a    | 4 x m5.xlarge                     | 5400       | 0.25*4*1.5 = 1.50            |
| spot        | a    | 2 x g5.2xlarge spot, trained 3600 | 1800       | 1.515*2*0.5 = 1.515, saves 1.515 |
| hetero      | b    | 2 x m5.xlarge + 3 x c5.xlarge     | 7200       | (0.50+0.612)*2 = 2.224       |
| selected    | b    | asked 1 c5.xlarge, got 2 m5.xlarge| 3600       | 0.25*2*1 = 0.50              |
| warm        | c    | 1 x c5.xlarge + 1800 s warm pool  | 3600       | 0.204 + 0.102 = 0.306        |
| failed-boot | c    | 1 x m5.xlarge, failed, no times   | -          | 0 (flagged)                  |
| trainium    | c    | 1 x trn1.32xlarge (no price)      | 3600       | 0, unpriced                  |

Teams: a = 3.015 -> 3.02, b = 2.724 -> 2.72, c = 0.306 -> 0.31; all = 6.045 -> 6.05.
"""

from __future__ import annotations

import json
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tests.conftest import run_cli
from tracker.aws.simulate import SimJob, clients_for, create_job

pytestmark = pytest.mark.e2e
ACCOUNT = "123456789012"
START = datetime(2026, 11, 20, 8, 0, tzinfo=UTC)


def job(name: str, team: str, billable: int | None, **kw) -> SimJob:
    end = START + timedelta(seconds=kw.pop("training", billable or 0))
    return SimJob(
        name=name,
        account_id=ACCOUNT,
        region="us-east-1",
        start=kw.pop("start", START),
        end=kw.pop("end", end),
        billable_seconds=billable,
        training_seconds=kw.pop("training_seconds", billable),
        tags={"team": team},
        **kw,
    )


SEEDED = [
    job("multi", "a", 5400, instance_type="ml.m5.xlarge", count=4),
    job(
        "spot",
        "a",
        1800,
        instance_type="ml.g5.2xlarge",
        count=2,
        spot=True,
        training=3600,
        training_seconds=3600,
    ),
    job("hetero", "b", 7200, groups=[("a", "ml.m5.xlarge", 2), ("b", "ml.c5.xlarge", 3)]),
    job(
        "selected",
        "b",
        3600,
        instance_type="ml.c5.xlarge",
        count=1,
        selected_type="ml.m5.xlarge",
        selected_count=2,
    ),
    job("warm", "c", 3600, instance_type="ml.c5.xlarge", warm_pool_seconds=1800),
    job(
        "failed-boot",
        "c",
        None,
        instance_type="ml.m5.xlarge",
        status="Failed",
        start=None,
        end=None,
        failure_reason="CapacityError",
    ),
    job("trainium", "c", 3600, instance_type="ml.trn1.32xlarge"),
]


@pytest.fixture
def project(tmp_path: Path, moto_endpoint: str) -> tuple[Path, dict[str, str]]:
    (tmp_path / "overrides.csv").write_text(
        "region,instance_type,usd_per_hour,source,source_date\n"
        "us-east-1,ml.m5.xlarge,0.25,test,2026-11-01\n"
        "us-east-1,ml.c5.xlarge,0.204,test,2026-11-01\n"
    )
    config = tmp_path / "tracker.toml"
    config.write_text(
        '[database]\nurl = "sqlite:///spend.db"\n'
        '[[sources]]\nname = "prod"\nregions = ["us-east-1"]\n'
        '[pricing]\noverrides = "overrides.csv"\n'
    )
    clients = clients_for(ACCOUNT, "us-east-1")
    for sim in SEEDED:
        create_job(clients, sim)
    env = {"AWS_ENDPOINT_URL": moto_endpoint, "TRACKER_NOW": "2026-11-26T12:00:00Z"}
    return config, env


def report(config: Path, env: dict[str, str], *args: str) -> list[dict]:
    result = run_cli("--config", str(config), "report", *args, "--format", "json", env=env)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_cli_collect_then_report_totals_to_the_cent(project: tuple[Path, dict[str, str]]) -> None:
    config, env = project
    # A new interpreter, start-up included (the other runs fork from tests/processes.py).
    result = run_cli("--config", str(config), "collect", env=env, fresh=True)
    assert result.returncode == 0, result.stderr + result.stdout

    teams = {row["team"]: row for row in report(config, env, "--by", "team")}
    assert {t: teams[t]["total_usd"] for t in teams} == {"a": 3.02, "b": 2.72, "c": 0.31}
    assert {t: teams[t]["jobs"] for t in teams} == {"a": 2, "b": 2, "c": 3}
    assert teams["a"]["spot_savings_usd"] == 1.52
    assert teams["c"]["warm_pool_usd"] == 0.10
    assert teams["c"]["unpriced_jobs"] == 1
    for row in teams.values():
        assert set(row) >= {
            "team",
            "jobs",
            "total_usd",
            "compute_usd",
            "spot_savings_usd",
            "warm_pool_usd",
            "storage_usd",
            "artifact_usd_per_month",
            "unpriced_jobs",
        }

    jobs = {row["job"]: row for row in report(config, env, "--by", "job")}
    assert {j: jobs[j]["total_usd"] for j in jobs} == {
        "multi": 1.50,
        "spot": 1.52,
        "hetero": 2.22,
        "selected": 0.50,
        "warm": 0.31,
        "failed-boot": 0.0,
        "trainium": 0.0,
    }
    assert jobs["hetero"]["instance_count"] == 5
    assert jobs["selected"]["instance_type"] == "ml.m5.xlarge"
    assert jobs["selected"]["instance_count"] == 2
    assert jobs["spot"]["billable_seconds"] == 1800
    assert jobs["failed-boot"]["status"] == "Failed"
    assert jobs["failed-boot"]["billable_seconds"] is None
    assert jobs["trainium"]["unpriced_jobs"] == 1
    assert jobs["multi"]["team"] == "a"


def test_cli_rerun_unchanged_describes_nothing(project: tuple[Path, dict[str, str]]) -> None:
    config, env = project
    assert run_cli("--config", str(config), "collect", env=env).returncode == 0
    again = run_cli("--config", str(config), "collect", env=env)
    assert again.returncode == 0, again.stderr
    assert "DescribeTrainingJob" not in again.stdout
    db = sqlite3.connect(config.parent / "spend.db")
    assert db.execute("select count(*) from jobs").fetchone()[0] == len(SEEDED)


def test_cli_prices_check_lists_unpriced_type(project: tuple[Path, dict[str, str]]) -> None:
    config, env = project
    run_cli("--config", str(config), "collect", env=env)
    result = run_cli("--config", str(config), "prices", "check", env=env)
    assert result.returncode == 0
    assert "us-east-1  ml.trn1.32xlarge" in result.stdout
    assert "ml.m5.xlarge" not in result.stdout
    # us-east-1 has no traced ML-storage rate: the check says so instead of a silent $0.00.
    assert "flagged storage-unpriced: us-east-1 (" in result.stdout
    assert "Set [pricing] storage_usd_per_gb_month" in result.stdout
