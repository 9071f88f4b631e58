"""Unpriced parts are said in every output: notes per (part, region), flags per job row.

The organisation of tests/views_data.py (its rates price no ML storage and no S3) plus:

| job          | region    | what                                        | flags                       |
|--------------|-----------|---------------------------------------------|-----------------------------|
| nlp-trainium | us-east-1 | 1 x ml.trn1.32xlarge (no rate)              | unpriced:ml.trn1.32xlarge   |
| vol-east-1/2 | us-east-1 | 1 x m5.xlarge, 50 GB volume, 1 MiB in S3    | artifact-, storage-unpriced |
| vol-west     | us-west-2 | 1 x m5.xlarge, 50 GB volume                 | storage-unpriced            |
| planned      | us-east-1 | 2 x m5.xlarge on a training plan, 1 h       | training-plan               |

``planned`` costs $0 on-demand; its plan value is 0.25 x 2 x 1 h = $0.50, outside the total.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import run_cli
from tests.views_data import JOBS, NOW, at, fill, make_job
from tracker.report.render import render
from tracker.report.spend import spend_notes, spend_rows, spend_table
from tracker.report.unpriced import part_of, unpriced_parts
from tracker.report.views import VIEWS, ViewRequest, build
from tracker.store.database import Store
from tracker.store.query import ViewQueries, Window

MIB = 2**20
PLAN = "arn:aws:sagemaker:us-east-1:111111111111:training-plan/p4d-reserved"
EXTRA = [
    make_job("vol-east-1", "nlp", volume_gb=50, artifact_bytes=MIB, start_time=at(11, 3)),
    make_job("vol-east-2", "vision", volume_gb=50, artifact_bytes=MIB, start_time=at(11, 4)),
    make_job("vol-west", "nlp", region="us-west-2", volume_gb=50, start_time=at(11, 6)),
    make_job("planned", "vision", instance_count=2, training_plan_arn=PLAN, start_time=at(11, 7)),
]
NOTES = [
    "S3 artifacts unpriced for 2 jobs in us-east-1: run tracker prices refresh",
    "ml.trn1.32xlarge instance time unpriced for 1 job in us-east-1: run tracker prices refresh",
    "storage unpriced for 2 jobs in us-east-1: run tracker prices refresh",
    "storage unpriced for 1 job in us-west-2: run tracker prices refresh",
]


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Store:
    folder = tmp_path_factory.mktemp("unpriced")
    return fill(Store.open(f"sqlite:///{folder / 'unpriced.db'}"), [*JOBS, *EXTRA])


def test_part_of_names_each_unpriced_flag_and_nothing_else() -> None:
    assert part_of("storage-unpriced") == "storage"
    assert part_of("artifact-unpriced") == "S3 artifacts"
    assert part_of("unpriced:tokens") == "tokens"
    assert part_of("unpriced:ml.p5.48xlarge") == "ml.p5.48xlarge instance time"
    assert part_of("training-plan") is None
    assert part_of("warm-pool-open") is None
    assert unpriced_parts("artifact-unpriced,running,storage-unpriced") == [
        "S3 artifacts",
        "storage",
    ]


def test_unpriced_flags_counts_jobs_per_region_and_flags(store: Store) -> None:
    found = ViewQueries(store).unpriced_flags(Window())
    assert [(r["region"], r["flags"], r["jobs"]) for r in found] == [
        ("us-east-1", "artifact-unpriced,storage-unpriced", 2),
        ("us-east-1", "unpriced:ml.trn1.32xlarge", 1),
        ("us-west-2", "storage-unpriced", 1),
    ]


def test_spend_notes_one_per_part_and_region(store: Store) -> None:
    assert spend_notes(store) == NOTES


def test_spend_notes_follow_the_window_and_filters(store: Store) -> None:
    # vol-west ran on 6 Nov and is the only job of us-west-2; nlp-trainium on 18 Nov.
    assert spend_notes(store, since=at(11, 18).date()) == [NOTES[1]]
    assert spend_notes(store, filters={"region": "us-west-2"}) == [NOTES[3]]
    assert spend_notes(store, until=at(10, 31).date()) == []


def test_report_by_job_rows_carry_flags_plan_value_and_list(store: Store) -> None:
    rows = json.loads(render(spend_table(spend_rows(store, "job"), "job"), "json"))
    jobs = {r["job"]: r for r in rows}
    assert jobs["planned"]["flags"] == ["training-plan"]
    assert jobs["planned"]["total_usd"] == 0.0
    assert jobs["planned"]["plan_value_usd"] == 0.5
    assert jobs["planned"]["unpriced_parts"] == []
    assert jobs["vol-east-1"]["flags"] == ["artifact-unpriced", "storage-unpriced"]
    assert jobs["vol-east-1"]["unpriced_parts"] == ["S3 artifacts", "storage"]
    assert jobs["nlp-trainium"]["unpriced_parts"] == ["ml.trn1.32xlarge instance time"]
    assert jobs["vision-warm"]["flags"] == []
    assert jobs["vision-running"]["flags"] == ["running"]
    for row in rows:
        assert row["list_usd"] == row["total_usd"], row["job"]


@pytest.mark.parametrize("fmt", ["table", "markdown", "html"])
@pytest.mark.parametrize("by", ["team", "job", "region"])
def test_report_by_shows_unpriced_notes_under_the_table(store: Store, by: str, fmt: str) -> None:
    table = spend_table(spend_rows(store, by), by, spend_notes(store))
    text = str(render(table, fmt))
    for note in NOTES:
        assert note in text, (by, fmt, note)


@pytest.mark.parametrize("fmt", ["json", "csv"])
def test_machine_formats_keep_their_shape(store: Store, fmt: str) -> None:
    """JSON stays an array of rows and CSV a header and rows: the notes go to stderr (CLI)."""
    text = str(render(spend_table(spend_rows(store, "team"), "team", spend_notes(store)), fmt))
    assert "unpriced for" not in text
    if fmt == "json":
        assert isinstance(json.loads(text), list)


@pytest.mark.parametrize("view", VIEWS)
def test_every_view_says_what_is_unpriced(store: Store, view: str) -> None:
    table = build(store, ViewRequest(view), NOW)
    # showback and trend open on their own default windows; both include November.
    assert NOTES[1] in table.notes
    assert NOTES[1] in str(render(table, "table"))


def test_report_cli_json_notes_on_stderr(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    fill(Store.open(url), [*JOBS, *EXTRA])
    result = run_cli("--db", url, "report", "--by", "team", "--format", "json")
    assert result.returncode == 0, result.stderr
    assert isinstance(json.loads(result.stdout), list)
    assert [line for line in result.stderr.splitlines() if "unpriced for" in line] == [
        f"note: {note}" for note in NOTES
    ]


def test_dashboard_says_what_is_unpriced(store: Store) -> None:
    from fastapi.testclient import TestClient

    from tracker.web.app import create_app

    client = TestClient(create_app(store, clock=lambda: NOW))
    overview = client.get("/")  # November 2026, the month NOW is in
    assert overview.status_code == 200
    for note in NOTES:
        assert note in overview.text, note
    assert NOTES[1] in client.get("/views/top").text
    trainium = client.get(f"/jobs/{store.job_by_name('nlp-trainium').id}").text
    assert "unpriced parts" in trainium and "ml.trn1.32xlarge instance time" in trainium
