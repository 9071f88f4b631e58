"""The export: FOCUS 1.2 rows with every mandatory column, the round trip (export, read back
as a bill, reconcile: zero delta), and the plain per-job table.

Jobs (shipped rates; a 20% discount on instance usage: effective = (compute + warm pool) x 0.8
+ storage, docs/cost-model.md rule 8; storage by the hours of the month, rule 5):

| job      | team | what                                                        | list                |
|----------|------|-------------------------------------------------------------|---------------------|
| eu-long  | nlp  | eu-west-1 2 x m5.xlarge 10 h from 11-20 20:00, 100 GB       | 5.14 + 0.4277... = 5.5677... |
| warm     | nlp  | us-east-1 1 x m5.xlarge 1 h + 1800 s warm pool              | 0.23 + 0.115 = 0.345 |
| spot     | cv   | us-east-1 2 x g5.2xlarge spot, billed 1800 of 3600 s        | 1.515               |
| untagged | -    | us-east-1 1 x m5.xlarge 1 h                                 | 0.23                |
| trn      | cv   | ml.trn1.32xlarge, no price                                  | 0 (unpriced)        |

eu-long spans two days: 4 h on 11-20 and 6 h on 11-21, so each of its items is split 40/60.
Its storage is 100 GB x 2 x 0.154 x 10 h / 720 h (November has 30 days) = 0.42777...;
effective = 5.14 x 0.8 + 0.42777... = 4.112 + 0.42777... = 4.53977... -> 4.54.
"""

from __future__ import annotations

import csv
import json
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from tests.backends import db_url_fixture  # noqa: F401 - the db_url fixture
from tests.factories import HOUR
from tests.reconcile_data import NOW, PRICES, SETTINGS, START, arn, make_job, save
from tracker.errors import InputError
from tracker.reconcile.service import reconcile_bill
from tracker.report.export import FOCUS_MANDATORY, export
from tracker.store.database import Store

D = Decimal


@pytest.fixture
def store(db_url: str) -> Store:
    """SQLite, and PostgreSQL where a server answers (tests.backends)."""
    store = Store.open(db_url)
    save(store, [
        make_job("eu-long", "nlp", region="eu-west-1", instance_count=2, seconds=10 * HOUR, volume_gb=100,
                 start_time=START.replace(hour=20)),
        make_job("warm", "nlp", warm_pool_retained_seconds=1800, warm_pool_status="Terminated"),
        make_job("spot", "cv", instance_type="ml.g5.2xlarge", instance_count=2, spot=True, billable_seconds=1800,
                 start_time=START + timedelta(days=1)),
        make_job("untagged", None, start_time=START + timedelta(days=1)),
        make_job("trn", "cv", instance_type="ml.trn1.32xlarge"),
    ], discount_pct=D(20))  # fmt: skip
    return store


def read_csv(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


def test_focus_export_has_every_mandatory_column(store: Store, tmp_path: Path) -> None:
    out = tmp_path / "focus.csv"
    count = export(store, "focus", str(out), price_book=PRICES)
    rows = read_csv(out)
    assert count == len(rows)
    assert set(FOCUS_MANDATORY) | {"ResourceId", "ResourceName", "Tags"} <= set(rows[0])
    for row in rows:
        assert all(row[column] != "" for column in FOCUS_MANDATORY if column != "ChargeClass")
        assert row["ChargeClass"] == ""  # null: not a correction
        assert (row["BillingCurrency"], row["ChargeCategory"], row["ServiceName"]) == (
            "USD",
            "Usage",
            "Amazon SageMaker",
        )
    items = {(r["ResourceName"], r["ChargePeriodStart"][:10], r["x_TrackerItem"]) for r in rows}
    assert items == {
        ("eu-long", "2026-11-20", "compute"), ("eu-long", "2026-11-20", "storage"),
        ("eu-long", "2026-11-21", "compute"), ("eu-long", "2026-11-21", "storage"),
        ("warm", "2026-11-20", "compute"), ("warm", "2026-11-20", "warm-pool"),
        ("spot", "2026-11-21", "compute"), ("untagged", "2026-11-21", "compute"),
        ("trn", "2026-11-20", "compute"),
    }  # fmt: skip
    eu = [r for r in rows if r["ResourceName"] == "eu-long" and r["x_TrackerItem"] == "compute"]
    assert [(r["ListCost"], r["PricingQuantity"], r["PricingUnit"]) for r in eu] == [
        ("2.056000", "8.000000000", "Hours"),  # 0.257 x 2 x 4 h
        ("3.084000", "12.000000000", "Hours"),  # 0.257 x 2 x 6 h
    ]
    # 80% of list, to the micro-dollar the day's stored effective cost allows
    for row, effective in zip(eu, ("1.6448", "2.4672"), strict=True):
        assert abs(D(row["EffectiveCost"]) - D(effective)) <= D("0.000001")
    spot = next(r for r in rows if r["ResourceName"] == "spot")
    assert (spot["x_UsageType"], spot["PricingCategory"], spot["ResourceId"]) == (
        "USE1-TrSpt:ml.g5.2xlarge",
        "Dynamic",
        arn("spot"),
    )
    assert json.loads(spot["Tags"]) == {"team": "cv"}
    assert spot["ChargePeriodEnd"] == "2026-11-22T00:00:00Z"
    assert (spot["BillingPeriodStart"], spot["BillingPeriodEnd"]) == (
        "2026-11-01T00:00:00Z",
        "2026-12-01T00:00:00Z",
    )
    storage = next(r for r in rows if r["x_TrackerItem"] == "storage")
    assert (
        storage["x_UsageType"] == "EU-Train:VolumeUsage.gp2"
        and storage["PricingUnit"] == "GB-Months"
    )


@pytest.mark.parametrize("name", ["focus.csv", "focus.parquet", "focus.csv.gz"])
def test_focus_export_round_trip_reconciles_to_zero(
    store: Store, tmp_path: Path, name: str
) -> None:
    out = tmp_path / name
    export(store, "focus", str(out), price_book=PRICES)
    report = reconcile_bill(SETTINGS, store, NOW, source=str(out), by_job=True)
    assert report.rows and report.job_rows
    for row in report.rows:
        data = row.to_dict()
        assert row.billed_list == row.tracker_list, data
        assert row.billed_effective == row.tracker_effective, data
        assert (data["delta_usd"], data["effective_delta_usd"], data["status"]) == (
            D(0),
            D(0),
            "ok",
        )
        assert data["unrecognised_usage_types"] == []
    assert {r.team for r in report.rows} == {"nlp", "cv", "unallocated"}
    assert {r.match for r in report.job_rows} == {"resource-id"}
    assert all(r.delta == 0 for r in report.job_rows)
    assert report.findings == []
    nlp = {r.period: r.to_dict() for r in report.rows if r.team == "nlp"}
    assert (nlp["2026-11-20"]["instance_usd"], nlp["2026-11-20"]["warm_pool_usd"]) == (
        D("2.29"),
        D("0.12"),
    )


def test_focus_parquet_types(store: Store, tmp_path: Path) -> None:
    out = tmp_path / "focus.parquet"
    export(store, "focus", str(out), price_book=PRICES)
    schema = pq.read_schema(out)
    assert str(schema.field("ListCost").type) == "decimal128(24, 6)"
    assert str(schema.field("ChargePeriodStart").type) == "timestamp[us, tz=UTC]"
    assert set(FOCUS_MANDATORY) <= set(schema.names)


def test_focus_export_window_and_filters(store: Store, tmp_path: Path) -> None:
    out = tmp_path / "cv.csv"
    day_2 = START.date() + timedelta(days=1)
    export(store, "focus", str(out), since=day_2, filters={"team": "cv"}, price_book=PRICES)
    rows = {(r["ResourceName"], r["ChargePeriodStart"][:10]) for r in read_csv(out)}
    assert rows == {("spot", "2026-11-21")}
    export(store, "csv", str(out), filters={"region": "eu-west-1"})
    assert [r["job"] for r in read_csv(out)] == ["eu-long"]
    with pytest.raises(InputError, match="filter 'colour'"):
        export(store, "csv", str(out), filters={"colour": "red"})


def test_plain_export_csv_and_parquet(store: Store, tmp_path: Path) -> None:
    export(store, "csv", str(tmp_path / "jobs.csv"))
    rows = {r["job"]: r for r in read_csv(tmp_path / "jobs.csv")}
    assert (rows["eu-long"]["total_usd"], rows["eu-long"]["compute_usd"], rows["eu-long"]["storage_usd"],
            rows["eu-long"]["effective_usd"]) == ("5.57", "5.14", "0.43", "4.54")  # fmt: skip
    assert (rows["spot"]["spot_savings_usd"], rows["trn"]["unpriced"]) == ("1.52", "true")
    export(store, "parquet", str(tmp_path / "jobs.parquet"))
    table = pq.read_table(tmp_path / "jobs.parquet").to_pylist()
    assert {r["job"]: r["total_usd"] for r in table} == {
        "eu-long": D("5.57"),
        "warm": D("0.35"),
        "spot": D("1.52"),
        "untagged": D("0.23"),
        "trn": D("0.00"),
    }


@pytest.mark.parametrize(
    ("fmt", "name", "message"),
    [
        ("focus", "out.txt", "expected a file name ending .csv, .csv.gz or .parquet"),
        ("csv", "out.parquet", "--format csv writes a .csv file"),
        ("focus", "missing/out.csv", "does not exist"),
    ],
)
def test_export_bad_output_is_input_error(store: Store, tmp_path: Path, fmt, name, message) -> None:
    with pytest.raises(InputError, match=message.replace(".", r"\.")):
        export(store, fmt, str(tmp_path / name))


def test_plain_csv_defuses_formulas_in_tag_values(db_url: str, tmp_path: Path) -> None:
    store = Store.open(db_url)
    save(store, [make_job("j", "=HYPERLINK(1)", project="+cmd")])
    export(store, "csv", str(tmp_path / "jobs.csv"))
    (row,) = read_csv(tmp_path / "jobs.csv")
    assert (row["team"], row["project"], row["job"]) == ("'=HYPERLINK(1)", "'+cmd", "j")


def test_plain_csv_escapes_control_and_bidi_characters_before_defusing(
    db_url: str, tmp_path: Path
) -> None:
    """The one rule (tracker.errors.printable), then formulas defused, as the report CSV does;
    the FOCUS file is data for billing tools and keeps every value exactly."""
    store = Store.open(db_url)
    save(store, [make_job("j\u202e1", "a\u202eb\nc", project="=x\ny")])
    export(store, "csv", str(tmp_path / "jobs.csv"))
    text = (tmp_path / "jobs.csv").read_text()
    assert "\u202e" not in text and len(text.splitlines()) == 2  # header and one line
    (row,) = read_csv(tmp_path / "jobs.csv")
    assert (row["job"], row["team"], row["project"]) == (
        "j\\u202e1", "a\\u202eb\\u000ac", "'=x\\u000ay",
    )  # fmt: skip
    export(store, "focus", str(tmp_path / "focus.csv"))
    focus = read_csv(tmp_path / "focus.csv")
    assert {r["ResourceName"] for r in focus} == {"j\u202e1"}
