"""Unit costs (``report --view units``): the work each job reports, and compute per unit.

Rates (USD per instance-hour, hand-made for this test): ml.g5.12xlarge 7.00 (4 GPUs),
ml.g5.2xlarge 1.50 (1 GPU), ml.m5.xlarge 0.25 (no GPU); ml.trn1.32xlarge has none
(unpriced). Now is 2026-12-20 12:00 UTC. Work comes from each job's record through
``parse.work_units`` (hyperparameters as the SDK sends them, plain or JSON-encoded).

| job        | team   | instances                        | billable s | compute            | GPU-s       | work                           |
|------------|--------|----------------------------------|------------|--------------------|-------------|--------------------------------|
| nlp-a      | nlp    | 2 x g5.12xlarge                  | 7200       | 7.00*2*2 = 28.00   | 7200*8      | epochs "3" (hyperparameter)    |
| nlp-b      | nlp    | 1 x g5.2xlarge, spot 1800 of 3600| 1800       | 1.50*0.5 = 0.75    | 1800*1      | epochs "\\"2\\"" (JSON-encoded)|
| nlp-hetero | nlp    | 1 x g5.12xlarge + 2 x m5.xlarge  | 3600       | 7.00+0.50 = 7.50   | 3600*4      | metric train_tokens 30,000,000 |
| cv-cpu     | vision | 4 x m5.xlarge                    | 3600       | 0.25*4 = 1.00      | 0           | metric epoch 1.5               |
| cv-none    | vision | 1 x g5.2xlarge                   | 3600       | 1.50               | 3600*1      | none                           |
| cv-trn     | vision | 1 x trn1.32xlarge                | 3600       | unpriced           | 0           | epochs "5"                     |
| cv-dec     | vision | 1 x m5.xlarge, Nov 30 23:00-Dec 1 01:00 | 7200 | 0.25*2 = 0.50   | 0           | metric tokens 10,000,000       |
| cv-running | vision | 1 x g5.2xlarge, InProgress       | -          | (not finished)     | -           | -                              |

nlp-a and nlp-b have base model ``llama-3-8b``. Per team (all finished jobs):

| team   | jobs | compute | instance-h             | GPU-h                    | epochs              | tokens M          |
|--------|------|---------|------------------------|--------------------------|---------------------|-------------------|
| nlp    | 3    | 36.25   | 27000 s = 7.50: 4.83   | 73800 s = 20.50: 1.77    | 5 (28.75): 5.75     | 30 (7.50): 0.25   |
| vision | 4    | 3.00    | 25200 s = 7.00: 0.43   | 3600 s = 1.00: 1.50      | 1.5 (1.00): 0.67    | 10 (0.50): 0.05   |
| TOTAL  | 7    | 39.25   | 52200 s = 14.50: 2.71  | 77400 s = 21.50 (37.75): 1.76 | 6.5 (29.75): 4.58 | 40 (8.00): 0.20 |

(cv-trn is unpriced: in ``jobs`` and ``unpriced_jobs``, left out of every ratio. cv-cpu has no
GPU: out of the GPU ratio. nlp: 36.25 / 7.50 = 4.833; 36.25 / 20.50 = 1.768. vision:
3.00 / 7.00 = 0.429. TOTAL: 39.25 / 14.50 = 2.707; 29.75 / 6.5 = 4.577.)

By month (the UTC day a job ended): 2026-11 holds 6 jobs, compute 38.75 (instance-hours
52200 - 7200 s = 12.50: 3.10); 2026-12 holds
cv-dec alone, whole (0.50 over 2.00 instance-hours = 0.25; 0.50 / 10 M tokens = 0.05), though
one of its two hours ran in November.
"""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from tests.factories import HOUR, make_job
from tracker.collect.parse import search_record_parts, work_units
from tracker.cost.engine import CostPolicy, cost_job
from tracker.errors import InputError
from tracker.records import InstanceGroup, JobRecord, Rates
from tracker.report.render import render
from tracker.report.views import ViewRequest, build
from tracker.store.database import Store

NOW = datetime(2026, 12, 20, 12, tzinfo=UTC)
RATES = Rates(
    hourly={
        "ml.g5.12xlarge": Decimal("7.00"),
        "ml.g5.2xlarge": Decimal("1.50"),
        "ml.m5.xlarge": Decimal("0.25"),
    }
)


def at(month: int, day: int, hour: int = 0) -> datetime:
    return datetime(2026, month, day, hour, tzinfo=UTC)


def hyper(**values: str) -> dict[str, int | None]:
    return work_units({"TrainingJobStatus": "Completed", "HyperParameters": values})


def metric(name: str, value: float) -> dict[str, int | None]:
    return work_units({"FinalMetricDataList": [{"MetricName": name, "Value": value}]})


G5_12 = {"instance_type": "ml.g5.12xlarge"}
G5_2 = {"instance_type": "ml.g5.2xlarge"}
LLAMA = {"base_model": "llama-3-8b"}
JOBS = [
    make_job("nlp-a", "nlp", seconds=2 * HOUR, instance_count=2, start_time=at(11, 2),
             **G5_12, **LLAMA, **hyper(epochs="3")),
    make_job("nlp-b", "nlp", seconds=HOUR, billable_seconds=1800, spot=True, start_time=at(11, 3),
             **G5_2, **LLAMA, **hyper(epochs='"2"')),
    make_job("nlp-hetero", "nlp", start_time=at(11, 4), instance_type=None, instance_count=None,
             instance_groups=(InstanceGroup("ml.g5.12xlarge", 1, "gpu"),
                              InstanceGroup("ml.m5.xlarge", 2, "cpu")),
             **metric("train_tokens", 3e7)),
    make_job("cv-cpu", "vision", instance_count=4, start_time=at(11, 5), **metric("epoch", 1.5)),
    make_job("cv-none", "vision", start_time=at(11, 6), **G5_2),
    make_job("cv-trn", "vision", start_time=at(11, 7), instance_type="ml.trn1.32xlarge",
             **hyper(epochs="5")),
    make_job("cv-dec", "vision", seconds=2 * HOUR, start_time=at(11, 30, 23),
             **metric("tokens", 1e7)),
    make_job("cv-running", "vision", seconds=None, status="InProgress", start_time=at(12, 20, 8),
             last_modified_time=NOW, **G5_2),
]  # fmt: skip


def raw(job: JobRecord) -> dict[str, Any]:
    return {"TrainingJobName": job.name, "TrainingJobArn": job.arn}


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Store:
    store = Store.open(f"sqlite:///{tmp_path_factory.mktemp('units') / 'units.db'}")
    items = [(job, cost_job(job, RATES, NOW, CostPolicy()), raw(job)) for job in JOBS]
    store.save_jobs(items, NOW)
    return store


def view(store: Store, **options: Any) -> Any:
    return build(store, ViewRequest("units", **options), NOW)


def by_key(table: Any, key: str) -> dict[str, dict[str, Any]]:
    return {row[key]: row for row in [*table.rows, table.total]}


def d(text: str) -> Decimal:
    return Decimal(text)


# -- what each job reports -------------------------------------------------------------------
@pytest.mark.parametrize(
    ("desc", "expected"),
    [
        ({"HyperParameters": {"epochs": "3"}}, (3000, None)),
        ({"HyperParameters": {"epochs": '"3"'}}, (3000, None)),  # the SDK's json.dumps("3")
        ({"HyperParameters": {"num_train_epochs": "1.5"}}, (1500, None)),
        ({"HyperParameters": {"Epochs": " 2 "}}, (2000, None)),  # names ignore case
        ({"HyperParameters": {"epochs": "many", "num_epochs": "4"}}, (4000, None)),
        ({"HyperParameters": {"epochs": "NaN"}}, (None, None)),
        ({"HyperParameters": {"epochs": "-1"}}, (None, None)),
        ({"HyperParameters": {"epochs": "0"}}, (None, None)),
        ({"HyperParameters": {"epochs": "true"}}, (None, None)),
        ({"HyperParameters": {"epochs": "1e9"}}, (None, None)),  # above MAX_EPOCHS
        ({"HyperParameters": {"epochs": '"3'}}, (None, None)),  # broken JSON
        ({"HyperParameters": {"num_round": "100"}}, (None, None)),  # boosting rounds: not epochs
        ({"HyperParameters": "epochs=3"}, (None, None)),
        (
            {
                "HyperParameters": {"epochs": "10"},
                "FinalMetricDataList": [{"MetricName": "epoch", "Value": 2.9995}],
            },
            (3000, None),  # what the job reached wins over what it was asked: 2.9995 -> 3.000
        ),
        (
            {"FinalMetricDataList": [{"MetricName": "num_input_tokens_seen", "Value": 1.25e9}]},
            (None, 1_250_000_000),
        ),
        ({"FinalMetricDataList": [{"MetricName": "tokens", "Value": float("inf")}]}, (None, None)),
        ({"FinalMetricDataList": [{"MetricName": "train:progress", "Value": 100.0}]}, (None, None)),
        ({"FinalMetricDataList": "tokens"}, (None, None)),
        (
            {"ServerlessJobConfig": {"BaseModelArn": "arn:x"}, "BillableTokenCount": 4_000_000},
            (None, 4_000_000),
        ),
        ({"BillableTokenCount": 4_000_000}, (None, None)),  # not serverless: not its work
    ],
)
def test_work_units_reads_each_source(desc: dict[str, Any], expected: tuple) -> None:
    found = work_units({"TrainingJobStatus": "Completed", **desc})
    assert (found["milli_epochs"], found["train_tokens"]) == expected


@pytest.mark.parametrize("status", ["Failed", "Stopped", "InProgress"])
def test_hyperparameter_epochs_count_only_for_a_completed_job(status: str) -> None:
    """A job that did not complete did not run the epochs it was asked; a metric it reached counts."""
    asked = {"TrainingJobStatus": status, "HyperParameters": {"epochs": "3"}}
    reached = {**asked, "FinalMetricDataList": [{"MetricName": "epochs", "Value": 1.0}]}
    assert work_units(asked)["milli_epochs"] is None
    assert work_units(reached)["milli_epochs"] == 1000


def test_search_and_describe_carry_the_work_fields_alike() -> None:
    """Search's TrainingJob shape has HyperParameters and FinalMetricDataList (botocore's
    model), and a job moto returns both ways reads the same work."""
    import boto3
    import botocore.session
    from moto import mock_aws
    from moto.sagemaker.models import sagemaker_backends

    from tracker.aws.simulate import JobSpec, create_request

    model = botocore.session.get_session().get_service_model("sagemaker")
    assert {"HyperParameters", "FinalMetricDataList"} <= set(model.shape_for("TrainingJob").members)
    with mock_aws():
        client = boto3.client("sagemaker", region_name="us-east-1")
        request = create_request("llm-1", JobSpec()) | {"HyperParameters": {"epochs": '"4"'}}
        client.create_training_job(**request)
        account = boto3.client("sts", region_name="us-east-1").get_caller_identity()["Account"]
        job = sagemaker_backends[account]["us-east-1"].training_jobs["llm-1"]
        job.final_metric_data_list.append(
            {"MetricName": "train_tokens", "Value": 2e6, "Timestamp": job.creation_time}
        )
        described = client.describe_training_job(TrainingJobName="llm-1")
        searched = client.search(Resource="TrainingJob")["Results"][0]["TrainingJob"]
    from_search = work_units(search_record_parts(searched)[0])
    assert work_units(described) == from_search == {"milli_epochs": 4000, "train_tokens": 2_000_000}


# -- the view --------------------------------------------------------------------------------
def test_units_by_team_match_the_hand_calculation(store: Store) -> None:
    rows = by_key(view(store), "team")
    assert list(rows) == ["nlp", "vision", "TOTAL"]  # most compute first
    expected = {
        #        jobs compute   unpriced inst-h  $/inst-h inst-jobs gpu-h  $/gpu-h gpu-jobs epochs $/epoch ep-jobs tokens_m $/Mtok tok-jobs
        "nlp": (3, "36.25", 0, "7.50", "4.83", 3, "20.50", "1.77", 3, "5.00", "5.75", 2, "30.00", "0.25", 1),
        "vision": (4, "3.00", 1, "7.00", "0.43", 3, "1.00", "1.50", 1, "1.50", "0.67", 1, "10.00", "0.05", 1),
        "TOTAL": (7, "39.25", 1, "14.50", "2.71", 6, "21.50", "1.76", 4, "6.50", "4.58", 3, "40.00", "0.20", 2),
    }  # fmt: skip
    keys = ["jobs", "compute_usd", "unpriced_jobs", "instance_hours", "usd_per_instance_hour",
            "instance_jobs", "gpu_hours", "usd_per_gpu_hour", "gpu_jobs", "epochs",
            "usd_per_epoch", "epoch_jobs", "tokens_m", "usd_per_million_tokens", "token_jobs"]  # fmt: skip
    for team, values in expected.items():
        shown = tuple(rows[team][k] for k in keys)
        assert shown == tuple(d(v) if isinstance(v, str) else v for v in values), team


def test_unpriced_job_is_flagged_never_a_zero_cost_unit(store: Store) -> None:
    table = view(store, filters={"instance_type": "ml.trn1.32xlarge"})
    (row,) = table.rows
    assert (row["jobs"], row["unpriced_jobs"], row["compute_usd"]) == (1, 1, Decimal("0.00"))
    # Its epochs are known, but without a price no ratio counts it.
    assert (row["epochs"], row["usd_per_epoch"], row["epoch_jobs"]) == (None, None, 0)
    assert any("ml.trn1.32xlarge instance time unpriced for 1 job" in n for n in table.notes)


def test_job_without_units_counts_in_jobs_and_compute_only(store: Store) -> None:
    (row,) = view(store, filters={"team": "vision", "instance_type": "ml.g5.2xlarge"}).rows
    assert (row["jobs"], row["compute_usd"]) == (1, Decimal("1.50"))  # cv-none; running excluded
    assert (row["epoch_jobs"], row["epochs"], row["usd_per_epoch"]) == (0, None, None)
    assert (row["token_jobs"], row["tokens_m"], row["usd_per_million_tokens"]) == (0, None, None)


def test_units_by_base_model_and_heterogeneous_instance_type(store: Store) -> None:
    models = by_key(view(store, rows_by="base_model"), "base_model")
    assert (models["llama-3-8b"]["jobs"], models["llama-3-8b"]["compute_usd"]) == (2, d("28.75"))
    # 7200*8 + 1800*1 = 59400 GPU-s = 16.50 h; 28.75 / 16.5 = 1.742
    assert (models["llama-3-8b"]["gpu_hours"], models["llama-3-8b"]["usd_per_gpu_hour"]) == (
        d("16.50"),
        d("1.74"),
    )
    types = by_key(view(store, rows_by="instance_type"), "instance_type")
    hetero = types["ml.g5.12xlarge+ml.m5.xlarge"]
    # 3 instances x 1 h; 4 GPUs (the g5.12xlarge group) x 1 h
    assert (hetero["instance_hours"], hetero["gpu_hours"], hetero["usd_per_gpu_hour"]) == (
        d("3.00"),
        d("4.00"),
        d("1.88"),  # 7.50 / 4 = 1.875, half up
    )


def test_month_trend_counts_each_job_whole_in_the_month_it_ended(store: Store) -> None:
    months = by_key(view(store, rows_by="month"), "month")
    assert list(months) == ["2026-11", "2026-12", "TOTAL"]
    assert (months["2026-11"]["jobs"], months["2026-11"]["compute_usd"]) == (6, d("38.75"))
    december = months["2026-12"]
    assert (december["jobs"], december["compute_usd"], december["instance_hours"]) == (
        1,
        d("0.50"),
        d("2.00"),
    )
    assert (december["usd_per_instance_hour"], december["usd_per_million_tokens"]) == (
        d("0.25"),
        d("0.05"),
    )
    since = view(store, rows_by="month", since=at(12, 1).date())
    assert [r["month"] for r in since.rows] == ["2026-12"]
    chart = since.charts[0]
    assert (chart.kind, chart.labels) == ("line", ("2026-12",))


@pytest.mark.parametrize("by", ["status", "day", "job"])
def test_units_refuses_other_groupings_in_one_line(by: str) -> None:
    with pytest.raises(InputError, match="units --by"):
        ViewRequest("units", rows_by=by)


def test_json_and_csv_keys(store: Store) -> None:
    table = view(store)
    keys = ["team", "jobs", "compute_usd", "unpriced_jobs",
            "instance_hours", "usd_per_instance_hour", "instance_jobs",
            "gpu_hours", "usd_per_gpu_hour", "gpu_jobs",
            "epochs", "usd_per_epoch", "epoch_jobs",
            "tokens_m", "usd_per_million_tokens", "token_jobs"]  # fmt: skip
    rows = json.loads(render(table, "json"))
    assert [list(r) for r in rows] == [keys, keys]
    assert rows[0]["usd_per_gpu_hour"] == 1.77
    records = list(csv.DictReader(io.StringIO(str(render(table, "csv")))))
    assert list(records[1]) == keys
    assert records[1]["usd_per_instance_hour"] == "0.43"


def test_empty_window_says_so(store: Store) -> None:
    table = view(store, since=at(1, 1).date(), until=at(1, 31).date())
    assert table.rows == [] and table.total is None
    assert "No finished jobs in this window." in str(render(table, "table"))


def test_dashboard_api_serves_the_units_view(store: Store) -> None:
    from fastapi.testclient import TestClient

    from tracker.web.app import create_app

    client = TestClient(create_app(store, clock=lambda: NOW))
    rows = client.get("/api/views/units?by=base_model").json()
    assert {r["base_model"]: r["jobs"] for r in rows} == {"llama-3-8b": 2, "unallocated": 5}
    page = client.get("/views/units?by=month")
    assert page.status_code == 200 and "Unit costs by month" in page.text
    assert 'href="/api/views/units?by=month"' in page.text  # the JSON link keeps the grouping
    assert client.get("/api/views/units?by=status").status_code == 400


# -- the migration ---------------------------------------------------------------------------
def test_migration_0008_backfills_work_and_gpus_from_stored_records(tmp_path: Path) -> None:
    """A job stored at 0007 (2 x ml.g5.12xlarge, epochs "\\"3\\"" in its raw record, metric
    tokens) and a heterogeneous one (1 x g5.12xlarge + 2 x m5.xlarge) gain 8 and 4 GPUs,
    3000 milli-epochs and the tokens; a job without a record gains nothing."""
    from tests.test_migrations import _job, jobs_after_upgrade

    record = {
        "TrainingJobStatus": "Completed",
        "HyperParameters": {"epochs": '"3"'},
        "FinalMetricDataList": [{"MetricName": "train_tokens", "Value": 5e6}],
    }
    groups = [{"instance_type": "ml.g5.12xlarge", "count": 1, "name": "a"},
              {"instance_type": "ml.m5.xlarge", "count": 2, "name": "b"}]  # fmt: skip
    rows = [
        _job(1, "llm", "nlp", 1) | {"instance_type": "ml.g5.12xlarge", "instance_count": 2,
                                    "raw_json": json.dumps(record)},
        _job(2, "hetero", "nlp", 1) | {"instance_type": "ml.g5.12xlarge+ml.m5.xlarge",
                                       "instance_count": 3, "instance_groups_json": json.dumps(groups)},
        _job(3, "cpu", "nlp", 1),
    ]  # fmt: skip
    columns = ["name", "gpu_count", "milli_epochs", "train_tokens"]
    found = jobs_after_upgrade(tmp_path / "old.db", "0007", rows, columns)
    assert [tuple(r) for r in found] == [
        ("llm", 8, 3000, 5_000_000),
        ("hetero", 4, None, None),
        ("cpu", 0, None, None),
    ]


def test_store_writes_billed_gpus(store: Store) -> None:
    found = {job.name: job.gpu_count for job in store.jobs()}
    assert found["nlp-a"] == 8 and found["nlp-hetero"] == 4 and found["cv-cpu"] == 0
    assert found["cv-trn"] == 0 and found["cv-dec"] == 0 and found["nlp-b"] == 1


def test_partly_unpriced_job_is_left_out_of_every_ratio(tmp_path: Path) -> None:
    """1 x g5.2xlarge (1.50 an hour) + 1 x trn1.32xlarge (no price) for an hour, 2 epochs: its
    known compute 1.50 shows in compute_usd, flagged unpriced, and no ratio counts it."""
    job = make_job("half", "nlp", instance_type=None, instance_count=None,
                   instance_groups=(InstanceGroup("ml.g5.2xlarge", 1), InstanceGroup("ml.trn1.32xlarge", 1)),
                   **hyper(epochs="2"))  # fmt: skip
    store = Store.open(f"sqlite:///{tmp_path / 'half.db'}")
    store.save_jobs([(job, cost_job(job, RATES, NOW, CostPolicy()), raw(job))], NOW)
    (row,) = view(store).rows
    assert (row["compute_usd"], row["unpriced_jobs"]) == (d("1.50"), 1)
    for measure in ("instance", "gpu", "epoch", "token"):
        assert row[f"{measure}_jobs"] == 0, measure
    assert (row["usd_per_instance_hour"], row["usd_per_epoch"]) == (None, None)


def test_job_without_end_time_counts_on_its_last_modification(tmp_path: Path) -> None:
    """A job that failed before it started has no TrainingEndTime: it counts on the day it was
    last modified (2026-11-15), with no cost and no work."""
    job = make_job("never-started", "nlp", seconds=None, start_time=None, status="Failed",
                   last_modified_time=at(11, 15, 9))  # fmt: skip
    store = Store.open(f"sqlite:///{tmp_path / 'failed.db'}")
    store.save_jobs([(job, cost_job(job, RATES, NOW, CostPolicy()), raw(job))], NOW)
    day = at(11, 15).date()
    (row,) = view(store, since=day, until=day).rows
    assert (row["jobs"], row["compute_usd"], row["instance_jobs"]) == (1, d("0.00"), 0)
    assert view(store, since=at(11, 16).date()).rows == []
    assert [r["month"] for r in view(store, rows_by="month").rows] == ["2026-11"]


@pytest.mark.postgres
def test_postgres_gives_the_same_rows(store: Store, pg_url: str) -> None:
    other = Store.open(pg_url)
    other.save_jobs([(job, cost_job(job, RATES, NOW, CostPolicy()), raw(job)) for job in JOBS], NOW)
    for options in (
        {},
        {"rows_by": "month"},
        {"rows_by": "instance_type", "since": at(11, 4).date()},
    ):
        assert view(other, **options).rows == view(store, **options).rows, options
    other.engine.dispose()


def test_cli_report_view_units(
    store: Store, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from tracker.cli.main import main

    monkeypatch.setenv("TRACKER_NOW", NOW.isoformat())
    url = str(store.engine.url)
    code = main(["--db", url, "report", "--view", "units", "--by", "month", "--format", "json"])
    out = capsys.readouterr()
    assert code == 0 and out.err == ""
    assert [(r["month"], r["usd_per_instance_hour"]) for r in json.loads(out.out)] == [
        ("2026-11", 3.1),  # 38.75 / (52200 - 7200 s of cv-dec = 45000 s = 12.50 h) = 3.10
        ("2026-12", 0.25),
    ]
    assert main(["--db", url, "report", "--view", "units", "--by", "status"]) == 2
    err = capsys.readouterr().err
    assert err.strip().splitlines() == [
        "Error: units --by 'status': expected one of team, instance_type, base_model, month"
    ]
