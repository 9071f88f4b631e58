"""``tracker demo``: the real command, twice, on its own moto server.

The demo pins its clock (tracker.demo.DEMO_NOW), so two runs build the same organisation,
cost the running job up to the same instant and print the same totals to the cent.
``--jobs 12`` seeds 12 random jobs and the 13 special cases (hetero, flexible, unpriced,
failed before starting, running; a tuning sweep of 4, a pipeline execution of 3, a JumpStart
fine-tune): 25 in all, said once.
"""

from __future__ import annotations

import json
import re
import sqlite3
from pathlib import Path

import pytest

from tests.conftest import run_cli

pytestmark = pytest.mark.e2e
JOBS = 12
SEEDED = JOBS + 13


def test_demo_twice_says_its_count_once_same_totals_and_a_job_table_that_fits(
    tmp_path: Path,
) -> None:
    """One test, so that the two demo runs (seconds each) happen once on one worker."""
    runs = []
    for name in ("first", "second"):
        result = run_cli("demo", "--dir", str(tmp_path / name), "--jobs", str(JOBS))
        assert result.returncode == 0, result.stdout + result.stderr
        runs.append((tmp_path / name / "tracker.toml", result.stdout))
    said_once(runs[0][1])
    same_totals([config for config, _ in runs])
    running_job_costed_to_the_pinned_clock(tmp_path / "first" / "demo.db")
    job_table_fits(runs[0][0])


def said_once(out: str) -> None:
    # The notes under the tables count the jobs of one unpriced part, not the demo's jobs.
    notes = [line for line in out.splitlines() if line.startswith("note: ")]
    body = "\n".join(line for line in out.splitlines() if not line.startswith("note: "))
    counts = re.findall(r"(\d+) (?:training )?jobs?\b", body)
    assert counts == [str(SEEDED)], out
    names_what_is_unpriced(notes)
    assert f"seeding {SEEDED} training jobs" in out
    assert re.search(rf"^total\s+{SEEDED}\s", out, re.M), out  # the collector found them all
    assert "clock pinned at 2026-11-26 12:00 UTC" in out


def same_totals(configs: list[Path]) -> None:
    reports = []
    for config in configs:
        result = run_cli("--config", str(config), "report", "--by", "team", "--format", "json")
        assert result.returncode == 0, result.stderr
        reports.append(json.loads(result.stdout))
    assert reports[0] == reports[1]
    assert sum(r["jobs"] for r in reports[0]) == SEEDED


def running_job_costed_to_the_pinned_clock(db: Path) -> None:
    """recsys-ranker-running-005 started 2 h before the pinned clock on 2 x ml.g5.2xlarge
    ($1.515/h shipped; no us-east-1 storage rate): 1.515 x 2 x 2 = $6.06 = 6,060,000 micros
    exactly. Costed up to the real time instead, each second of the run added 842 micros."""
    with sqlite3.connect(db) as conn:
        [(micros,)] = conn.execute(
            "select list_micros from jobs where name = 'recsys-ranker-running-005'"
        ).fetchall()
    assert micros == 6_060_000


def names_what_is_unpriced(notes: list[str]) -> None:
    """The demo ships no S3 rate and no us-east-1 storage rate, and its trn1 job has no
    instance rate: each is named under the tables, with how many jobs and the fix."""
    assert "note: ml.trn1.32xlarge instance time unpriced for 1 job in us-east-1: " in "\n".join(
        notes
    ), notes
    assert any(n.startswith("note: storage unpriced for ") and "us-east-1" in n for n in notes)
    assert any(n.startswith("note: S3 artifacts unpriced for ") for n in notes), notes
    assert all(n.endswith(": run tracker prices refresh") for n in notes), notes


def job_table_fits(config: Path) -> None:
    """The text table leaves the ARN and the jobs column (always 1) to JSON and CSV."""
    table = run_cli("--config", str(config), "report", "--by", "job").stdout
    lines = table.splitlines()
    assert max(len(line) for line in lines) <= 160, max(lines, key=len)
    assert "arn:aws:sagemaker" not in table
    assert lines[0].split()[:4] == ["job", "team", "status", "instances"]
    assert "6 x ml.p4d.24xlarge+ml.m5.4xlarge" in table
    head = run_cli("--config", str(config), "report", "--by", "job", "--format", "csv").stdout
    keys = head.splitlines()[0].split(",")
    assert {"arn", "jobs", "account", "region", "artifact_bytes", "effective_usd"} <= set(keys)
    assert "instances" not in keys
