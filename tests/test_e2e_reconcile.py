"""End to end: the real ``tracker`` command (a subprocess) against a moto server: estimates
recorded before the jobs ran, collection, reconciliation against the estimates, against Cost
Explorer (results queued on moto's CE endpoint) and against the tracker's own FOCUS export
read back from a file and from S3.

The organisation (us-east-1, shipped rate ml.m5.xlarge $0.23/h, now 2026-11-26 12:00 UTC):

| job                | team | run                     | actual | estimate (source)            | delta  | verdict |
|--------------------|------|-------------------------|--------|------------------------------|--------|---------|
| train-a            | nlp  | 2 x 3 h, 11-20 08:00    | 1.38   | 2 x 3 h = 1.38 (estimate-id) | 0.00   | within  |
| exact-b            | nlp  | 1 x 5 h, 11-20 12:00    | 1.15   | 1 x 4 h = 0.92 (job-name)    | 0.23   | over    |
| nightly-2026-11-21 | cv   | 1 x 2.5 h, 11-21 08:00  | 0.575  | 1 x 3 h = 0.69 (name-prefix) | -0.12  | under   |
| tagged-c           | cv   | 4 x 1 h, 11-21 12:00    | 0.92   | tag 1.00 (estimate-usd-tag)  | -0.08  | within  |
| worst-d            | ml   | 1 x 1 h, 11-21 14:00    | 0.23   | MaxRuntime 2 h = 0.46        | -0.23  | under   |
| stray              | -    | 1 x 1 h, 11-25 08:00    | 0.23   | MaxRuntime 24 h = 5.52       | -5.29  | under   |

Cost Explorer (daily): nlp 11-20 2.53 instance + 0.02 volume = 2.55 against 2.53 (0.79%, ok);
cv 11-21 1.60 against 1.495 (delta 0.105 -> 0.11, 7.02%, drift); ml 11-21 0.23 + 0.05 of an
unknown usage type = 0.28 against 0.23 (21.74%, drift); untagged 11-25 0.20 against 0.23
(unallocated, unsettled: 11-25 ends 11-26, settles 11-28).
"""

from __future__ import annotations

import json
import shutil
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

import boto3
import pytest
import requests

from tests.conftest import run_cli
from tracker.aws.simulate import SimJob, clients_for, create_job

pytestmark = pytest.mark.e2e
ACCOUNT = "123456789012"
NOW = "2026-11-26T12:00:00Z"
BEFORE = "2026-11-19T09:00:00Z"


def at(day: int, hour: int) -> datetime:
    return datetime(2026, 11, day, hour, tzinfo=UTC)


def sim(name: str, team: str | None, start: datetime, hours: float, count: int = 1, **kw) -> SimJob:
    seconds = int(hours * 3600)
    tags = {"team": team} if team else {}
    tags.update(kw.pop("tags", {}))
    return SimJob(name=name, account_id=ACCOUNT, region="us-east-1", instance_type="ml.m5.xlarge",
                  count=count, start=start, end=start + timedelta(seconds=seconds),
                  billable_seconds=seconds, training_seconds=seconds, tags=tags, **kw)  # fmt: skip


CONFIG = (
    '[database]\nurl = "sqlite:///spend.db"\n'
    '[[sources]]\nname = "prod"\nregions = ["us-east-1"]\n'
    "[pricing]\n"
    "[reconcile]\nsettle_days = 2\ndrift_pct = 5\n[estimates]\ntolerance_pct = 10\n"
)


@pytest.fixture(scope="module")
def collected(moto_server: str, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """Estimates recorded, jobs seeded and collected once per module (the slow part)."""
    folder = tmp_path_factory.mktemp("organisation")
    (folder / "tracker.toml").write_text(CONFIG)
    with pytest.MonkeyPatch.context() as env:
        for key in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "TRACKER_CONFIG", "TRACKER_NOW"):
            env.delenv(key, raising=False)
        env.setenv("AWS_ACCESS_KEY_ID", "testing")
        env.setenv("AWS_SECRET_ACCESS_KEY", "testing")
        env.setenv("AWS_DEFAULT_REGION", "us-east-1")
        env.setenv("AWS_ENDPOINT_URL", moto_server)
        requests.post(f"{moto_server}/moto-api/reset", timeout=10)
        variables = {"AWS_ENDPOINT_URL": moto_server}
        estimate_id = record_estimates(folder / "tracker.toml", variables)
        seed_and_collect(folder / "tracker.toml", variables, estimate_id)
    return folder, estimate_id


@pytest.fixture
def project(collected: tuple[Path, str], tmp_path: Path, moto_endpoint: str):
    """A copy of the collected organisation (config, database) and the CLI environment."""
    folder, estimate_id = collected
    for name in ("tracker.toml", "spend.db"):
        shutil.copy(folder / name, tmp_path / name)
    return tmp_path / "tracker.toml", {"AWS_ENDPOINT_URL": moto_endpoint}, estimate_id


def cli(config: Path, env: dict[str, str], *args: str, now: str = NOW, ok: bool = True):
    result = run_cli("--config", str(config), *args, env={**env, "TRACKER_NOW": now})
    if ok:
        assert result.returncode == 0, result.stderr + result.stdout
    return result


def cli_json(config: Path, env: dict[str, str], *args: str) -> list[dict]:
    return json.loads(cli(config, env, *args, "--format", "json").stdout)


def seed_and_collect(config: Path, env: dict[str, str], estimate_id: str) -> None:
    jobs = [
        sim("train-a", "nlp", at(20, 8), 3, count=2, tags={"tracker:estimate-id": estimate_id}),
        sim("exact-b", "nlp", at(20, 12), 5),
        sim("nightly-2026-11-21", "cv", at(21, 8), 2.5),
        sim("tagged-c", "cv", at(21, 12), 1, count=4, tags={"tracker:estimate-usd": "1.00"}),
        sim("worst-d", "ml", at(21, 14), 1, max_runtime_seconds=7200),
        sim("stray", None, at(25, 8), 1),
    ]
    clients = clients_for(ACCOUNT, "us-east-1")
    for job in jobs:
        create_job(clients, job)
    cli(config, env, "collect")


def record_estimates(config: Path, env: dict[str, str]) -> str:
    base = ("estimate", "--instance-type", "ml.m5.xlarge", "--record", "--format", "json")
    first = json.loads(cli(config, env, *base, "--count", "2", "--hours", "3", "--team", "nlp",
                           now=BEFORE).stdout)  # fmt: skip
    assert (first["total_usd"], first["recorded"]) == (1.38, True)
    assert first["tags"] == {
        "tracker:estimate-id": first["estimate_id"],
        "tracker:estimate-usd": "1.38",
    }
    cli(config, env, *base, "--hours", "4", "--job-name", "exact-b", now=BEFORE)
    cli(config, env, *base, "--hours", "3", "--name-prefix", "nightly-", now=BEFORE)
    return first["estimate_id"]


def test_cli_estimates_recorded_before_jobs_reconcile_to_the_cent(project) -> None:
    config, env, estimate_id = project

    rows = {r["job"]: r for r in cli_json(config, env, "reconcile", "--against", "estimates")}
    got = {j: (r["estimate_source"], r["estimate_usd"], r["actual_usd"], r["delta_usd"], r["verdict"])
           for j, r in rows.items()}  # fmt: skip
    assert got == {
        "train-a": ("estimate-id", 1.38, 1.38, 0.0, "within"),
        "exact-b": ("job-name", 0.92, 1.15, 0.23, "over"),
        "nightly-2026-11-21": ("name-prefix", 0.69, 0.58, -0.12, "under"),
        "tagged-c": ("estimate-usd-tag", 1.0, 0.92, -0.08, "within"),
        "worst-d": ("worst-case", 0.46, 0.23, -0.23, "under"),
        "stray": ("worst-case", 5.52, 0.23, -5.29, "under"),
    }
    assert rows["exact-b"]["delta_pct"] == 25.0 and rows["train-a"]["estimate_id"] == estimate_id
    assert set(rows["train-a"]) >= {"job", "team", "estimate_usd", "actual_usd", "delta_usd",
                                    "delta_pct", "estimate_source", "verdict"}  # fmt: skip

    teams = {
        r["team"]: r
        for r in cli_json(config, env, "reconcile", "--against", "estimates", "--by", "team")
    }
    assert (teams["nlp"]["estimate_usd"], teams["nlp"]["actual_usd"], teams["nlp"]["delta_usd"],
            teams["nlp"]["verdict"]) == (2.30, 2.53, 0.23, "within")  # fmt: skip
    assert (teams["cv"]["delta_usd"], teams["cv"]["verdict"]) == (-0.20, "under")

    table = cli(config, env, "reconcile", "--against", "estimates", "--since", "2026-11-21",
                "--until", "2026-11-21", "--team", "cv", "--tolerance", "30").stdout  # fmt: skip
    assert "nightly-2026-11-21" in table and "exact-b" not in table and "worst-d" not in table
    assert "TOTAL" in table and "under" not in table  # -16.67% is within 30%


def ce_group(tag: str, usage: str, amount: str) -> dict:
    return {
        "Keys": [f"team${tag}", usage],
        "Metrics": {"UnblendedCost": {"Amount": amount, "Unit": "USD"}},
    }


def ce_day(day: str, groups: list[dict]) -> dict:
    end = (datetime.fromisoformat(day) + timedelta(days=1)).date().isoformat()
    return {
        "TimePeriod": {"Start": day, "End": end},
        "Total": {},
        "Groups": groups,
        "Estimated": False,
    }


def test_cli_reconcile_against_cost_explorer(project, moto_endpoint: str) -> None:
    config, env, _ = project
    page_1 = {
        "NextPageToken": "2",
        "ResultsByTime": [
            ce_day("2026-11-20", [ce_group("nlp", "USE1-Train:ml.m5.xlarge", "2.53"),
                                  ce_group("nlp", "USE1-Train:VolumeUsage.gp2", "0.02")]),
            ce_day("2026-11-21", [ce_group("cv", "USE1-Train:ml.m5.xlarge", "1.60"),
                                  ce_group("ml", "USE1-Train:ml.m5.xlarge", "0.23"),
                                  ce_group("ml", "USE1-Train:BrandNewThing", "0.05")]),
        ],
    }  # fmt: skip
    page_2 = {
        "ResultsByTime": [ce_day("2026-11-25", [ce_group("", "USE1-Train:ml.m5.xlarge", "0.20")])]
    }
    queued = requests.post(f"{moto_endpoint}/moto-api/static/ce/cost-and-usage-results",
                           json={"results": [page_1, page_2]}, timeout=10)  # fmt: skip
    assert queued.status_code == 201

    result = cli(config, env, "reconcile", "--against", "bill", "--source", "ce", "--since", "2026-11-20",
                 "--until", "2026-11-25", "--format", "json")  # fmt: skip
    rows = json.loads(result.stdout)
    got = [(r["team"], r["period"], r["tracker_usd"], r["billed_usd"], r["delta_usd"], r["delta_pct"], r["status"])
           for r in rows]  # fmt: skip
    assert got == [
        ("nlp", "2026-11-20", 2.53, 2.55, 0.02, 0.79, "ok"),
        ("cv", "2026-11-21", 1.5, 1.6, 0.11, 7.02, "drift"),
        ("ml", "2026-11-21", 0.23, 0.28, 0.05, 21.74, "drift"),
        ("unallocated", "2026-11-25", 0.23, 0.2, -0.03, -13.04, "unsettled"),
    ]
    assert rows[2]["unrecognised_usage_types"] == ["USE1-Train:BrandNewThing"]
    assert "unrecognised usage type USE1-Train:BrandNewThing: $0.05" in result.stderr
    db = sqlite3.connect(config.parent / "spend.db")
    assert db.execute(
        "select count(*), sum(list_micros) from billed_lines where source = 'ce'"
    ).fetchone() == (6, 4_630_000)

    table = cli(
        config,
        env,
        "reconcile",
        "--against",
        "bill",
        "--since",
        "2026-11-20",
        "--until",
        "2026-11-25",
    ).stdout  # fmt: skip (same request: moto answers the same)
    assert "unsettled" in table and "drift" in table and "note: unrecognised usage type" in table


def test_cli_focus_export_round_trip_file_and_s3(project, tmp_path: Path) -> None:
    config, env, _ = project
    focus = tmp_path / "focus.parquet"
    out = cli(config, env, "export", "--format", "focus", "--output", str(focus))
    assert out.stdout.startswith("Wrote 6 FOCUS 1.2 rows")

    rows = cli_json(config, env, "reconcile", "--against", "bill", "--source", str(focus))
    assert {(r["team"], r["period"]) for r in rows} == {
        ("nlp", "2026-11-20"),
        ("cv", "2026-11-21"),
        ("ml", "2026-11-21"),
        ("unallocated", "2026-11-25"),
    }
    assert all(r["delta_usd"] == 0 and r["effective_delta_usd"] == 0 for r in rows)
    assert {r["status"] for r in rows} == {"ok", "unsettled"}

    s3 = boto3.client("s3", region_name="us-east-1")
    s3.create_bucket(Bucket="billing-exports")
    s3.put_object(
        Bucket="billing-exports", Key="focus/2026-11/part-0.parquet", Body=focus.read_bytes()
    )
    jobs = cli_json(config, env, "reconcile", "--against", "bill", "--source", "s3://billing-exports/focus/",
                    "--by", "job")  # fmt: skip
    assert len(jobs) == 6 and {j["match"] for j in jobs} == {"resource-id"}
    assert all(j["delta_usd"] == 0 for j in jobs)


def test_cli_reconcile_missing_bill_file_exits_2(project, tmp_path: Path) -> None:
    config, env, _ = project
    result = cli(
        config,
        env,
        "reconcile",
        "--against",
        "bill",
        "--source",
        str(tmp_path / "no.csv"),
        ok=False,
    )
    assert result.returncode == 2
    assert (
        result.stderr.startswith("Error: --source ") and "no such file or folder" in result.stderr
    )
    assert len(result.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ("reconcile", "--against", "estimates", "--source", "ce"),
            "--source applies to --against bill",
        ),
        (
            ("reconcile", "--against", "bill", "--tolerance", "5"),
            "--tolerance applies to --against estimates",
        ),
        (
            ("reconcile", "--against", "bill", "--since", "2026-11-02", "--until", "2026-11-01"),
            "is after --until",
        ),
        (("export", "--output", "x.txt"), "expected a file name ending .csv"),
        (("estimate", "--instance-type", "ml.m5.xlarge", "--hours", "-1"), "--hours -1"),
        (("estimate", "--instance-type", "ml.m5.xlarge"), "--hours"),
    ],
)
def test_cli_bad_arguments_exit_2_with_one_line(tmp_path: Path, capsys, args, message) -> None:
    """In process (the same ``main`` the command runs): bad input never reaches AWS."""
    from tracker.cli.main import main

    assert main(["--db", f"sqlite:///{tmp_path / 'x.db'}", *args]) == 2
    err = capsys.readouterr().err
    assert err.startswith("Error: ") and message in err and len(err.strip().splitlines()) == 1
