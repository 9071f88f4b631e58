"""The scheduled monthly showback: HTML and CSV to a folder or an S3 prefix.

On 2026-12-01 the job reports November 2026 (with September and October for the change),
from the organisation of tests/views_data.py: nlp Oct 1.50, Nov 2.25, total 3.75;
vision Nov 6.80; all 11.05 (Oct 1.50 + Nov 9.55).
"""

from __future__ import annotations

import csv
import io
from datetime import UTC, date, datetime
from pathlib import Path

import boto3
import pytest
from moto import mock_aws

from jobs.showback import SCHEDULE, run
from tests.views_data import HOSTILE_TEAM, make_store
from tracker.errors import ConfigError, TrackerError
from tracker.report.publish import reported_month, write_showback
from tracker.settings import SectionContext, parse_reports_section, parse_settings
from tracker.store.database import Store

DEC_1 = datetime(2026, 12, 1, 6, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Store:
    return make_store(tmp_path_factory.mktemp("showback"))


def settings_with(tmp_path: Path, reports: str):  # noqa: ANN201
    config = tmp_path / "tracker.toml"
    config.write_text(f"[reports]\n{reports}\n")
    return parse_settings(config)


def test_showback_job_writes_html_and_csv_to_a_folder(store: Store, tmp_path: Path) -> None:
    settings = settings_with(tmp_path, 'showback_destination = "out/showback"')
    result = write_showback(settings, store, DEC_1)
    folder = tmp_path / "out" / "showback"
    assert result.month == "2026-11"
    assert sorted(p.name for p in folder.iterdir()) == [
        "showback-2026-11.csv",
        "showback-2026-11.html",
    ]
    rows = {
        r["team"]: r
        for r in csv.DictReader(io.StringIO((folder / "showback-2026-11.csv").read_text()))
    }
    assert (rows["nlp"]["2026-10"], rows["nlp"]["2026-11"], rows["nlp"]["total_usd"]) == (
        "1.50",
        "2.25",
        "3.75",
    )
    assert rows["nlp"]["change_usd"] == "0.75" and rows["vision"]["total_usd"] == "6.80"
    page = (folder / "showback-2026-11.html").read_text()
    assert "Showback November 2026" in page and "<svg" in page and ">11.05<" in page
    assert "<script" not in page.lower() and "&lt;script&gt;" in page
    assert HOSTILE_TEAM in rows  # the CSV keeps the value; only formula starts are neutralised


def test_showback_job_is_idempotent(store: Store, tmp_path: Path) -> None:
    settings = settings_with(tmp_path, 'showback_destination = "out"')
    first = write_showback(settings, store, DEC_1)
    before = (tmp_path / "out" / "showback-2026-11.csv").read_text()
    second = write_showback(settings, store, datetime(2026, 12, 1, 7, 0, tzinfo=UTC))
    assert first.written == second.written
    assert (tmp_path / "out" / "showback-2026-11.csv").read_text() == before
    assert [p.name for p in (tmp_path / "out").iterdir() if p.name.startswith(".")] == []


def test_showback_job_rows_by_project_over_two_months(store: Store, tmp_path: Path) -> None:
    settings = settings_with(
        tmp_path, 'showback_destination = "o"\nshowback_by = "status"\nshowback_months = 2'
    )
    write_showback(settings, store, DEC_1)
    rows = list(csv.DictReader(io.StringIO((tmp_path / "o" / "showback-2026-11.csv").read_text())))
    assert {r["status"]: r["2026-11"] for r in rows} == {
        "Completed": "4.55", "Failed": "3.00", "InProgress": "2.00",
    }  # fmt: skip


@mock_aws
def test_showback_job_uploads_to_an_s3_prefix(store: Store, tmp_path: Path) -> None:
    s3 = boto3.client("s3", region_name="us-east-1")
    s3.create_bucket(Bucket="finops-reports")
    settings = settings_with(tmp_path, 'showback_destination = "s3://finops-reports/showback/"')
    result = write_showback(settings, store, DEC_1)
    assert result.written == (
        "s3://finops-reports/showback/showback-2026-11.html",
        "s3://finops-reports/showback/showback-2026-11.csv",
    )
    obj = s3.get_object(Bucket="finops-reports", Key="showback/showback-2026-11.csv")
    assert obj["ContentType"].startswith("text/csv")
    assert b"nlp" in obj["Body"].read()


@mock_aws
def test_showback_job_missing_bucket_is_one_line_error(store: Store, tmp_path: Path) -> None:
    settings = settings_with(tmp_path, 'showback_destination = "s3://no-such-bucket"')
    with pytest.raises(
        TrackerError, match="s3://no-such-bucket/showback-2026-11.html: cannot write the report"
    ):
        write_showback(settings, store, DEC_1)


def test_showback_job_runs_under_the_daemon_context(store: Store, tmp_path: Path) -> None:
    from jobs import JobContext

    settings = settings_with(tmp_path, 'showback_destination = "d"')
    ctx = JobContext(settings=settings, store=store, clock=lambda: DEC_1, wall=lambda: DEC_1)
    outcome = run(ctx)
    assert outcome.status == "ok" and "showback 2026-11" in outcome.detail


def test_reports_section_defaults_and_problems(tmp_path: Path) -> None:
    ctx = SectionContext(tmp_path / "tracker.toml", tmp_path, [])
    default = parse_reports_section(None, ctx)
    assert default.showback_destination == str(tmp_path / "reports" / "showback")
    assert (default.showback_by, default.showback_months) == ("team", 3)
    parse_reports_section(
        {
            "showback_destination": "s3:///x",
            "showback_by": "job",
            "showback_months": 1,
            "colour": 1,
        },
        ctx,
    )
    assert len(ctx.problems) == 4
    assert any("showback_months: must be a whole number from 2 to 24" in p for p in ctx.problems)


def test_reports_section_error_from_the_config_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="reports.showback_by: must be one of"):
        settings_with(tmp_path, 'showback_by = "colour"')


def test_reported_month_is_the_month_just_ended() -> None:
    assert reported_month(DEC_1) == (date(2026, 11, 1), date(2026, 11, 30))
    assert reported_month(datetime(2027, 1, 1, tzinfo=UTC)) == (
        date(2026, 12, 1),
        date(2026, 12, 31),
    )
    assert SCHEDULE.split()[2] == "1"  # the first day of the month
