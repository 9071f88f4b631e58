"""Reading CUR 2.0 and FOCUS 1.x files (Parquet, CSV, gzipped CSV; local and in moto S3).

The CUR 2.0 fixture (real column names, ``resource_tags`` a map with ``user_team``):

| # | line type               | product         | usage type                  | day   | team | unblended | on-demand | effective      |
|---|-------------------------|-----------------|-----------------------------|-------|------|-----------|-----------|----------------|
| 1 | Usage                   | AmazonSageMaker | USE1-Train:ml.m5.xlarge     | 11-20 | nlp  | 0.92      | 0.92      | 0.92 (net)     |
| 2 | Usage                   | AmazonSageMaker | USE1-Train:ml.m5.xlarge     | 11-20 | nlp  | 0.46      | 0.46      | 0.46 (net)     |
| 3 | SavingsPlanCoveredUsage | AmazonSageMaker | USE1-Train:ml.g5.2xlarge    | 11-21 | cv   | 1.515     | 1.515     | 1.00 (SP)      |
| 4 | SavingsPlanNegation     | AmazonSageMaker | USE1-Train:ml.g5.2xlarge    | 11-21 | cv   | -1.515    |           | dropped        |
| 5 | Usage                   | AmazonSageMaker | USE1-Train:VolumeUsage.gp2  | 11-20 | -    | 0.05      | 0.05      | 0.05           |
| 6 | Usage                   | AmazonEC2       | BoxUsage:m5.large           | 11-20 | nlp  | 10.00     | 10.00     | dropped        |
| 7 | Tax                     | AmazonSageMaker |                             | 11-20 | -    | 0.30      |           | dropped        |
| 8 | Usage                   | AmazonSageMaker | USE1-Host:ml.m5.large       | 11-20 | nlp  | 2.00      | 2.00      | kept, "other"  |

Rows 1+2 aggregate into one line of 1.38 (same day, team, usage type, job ARN); the untagged
volume is ``unallocated``. The FOCUS fixture carries the same charges in FOCUS columns.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path

import boto3
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from moto import mock_aws

from tests.conftest import run_cli
from tests.factories import HOUR
from tests.reconcile_data import NOW, SETTINGS, START, arn, make_job, save
from tracker.aws.billing import s3_bill_files
from tracker.errors import InputError
from tracker.reconcile.bill_files import BillFile, local_bill_files, read_bill, tag_map
from tracker.reconcile.service import reconcile_bill
from tracker.store.database import Store

D = Decimal
CUR_ROWS = [
    ("Usage", "AmazonSageMaker", "USE1-Train:ml.m5.xlarge", "2026-11-20T08:00:00Z", "0.92", "0.92", "0.92", None, arn("nlp-1"), {"user_team": "nlp"}),
    ("Usage", "AmazonSageMaker", "USE1-Train:ml.m5.xlarge", "2026-11-20T09:00:00Z", "0.46", "0.46", "0.46", None, arn("nlp-1"), {"user_team": "nlp"}),
    ("SavingsPlanCoveredUsage", "AmazonSageMaker", "USE1-Train:ml.g5.2xlarge", "2026-11-21T10:00:00Z", "1.515", "1.515", "0", "1.00", arn("cv-1"), {"user_team": "cv"}),
    ("SavingsPlanNegation", "AmazonSageMaker", "USE1-Train:ml.g5.2xlarge", "2026-11-21T10:00:00Z", "-1.515", None, "-1.515", None, arn("cv-1"), {"user_team": "cv"}),
    ("Usage", "AmazonSageMaker", "USE1-Train:VolumeUsage.gp2", "2026-11-20T08:00:00Z", "0.05", "0.05", "0.05", None, arn("nlp-1"), {}),
    ("Usage", "AmazonEC2", "BoxUsage:m5.large", "2026-11-20T08:00:00Z", "10.00", "10.00", "10.00", None, "i-0abc", {"user_team": "nlp"}),
    ("Tax", "AmazonSageMaker", "", "2026-11-20T00:00:00Z", "0.30", None, "0.30", None, "", {}),
    ("Usage", "AmazonSageMaker", "USE1-Host:ml.m5.large", "2026-11-20T08:00:00Z", "2.00", "2.00", "2.00", None, "arn:aws:sagemaker:us-east-1:123456789012:endpoint/e", {"user_team": "nlp"}),
]  # fmt: skip
CUR_NAMES = (
    "line_item_line_item_type", "line_item_product_code", "line_item_usage_type",
    "line_item_usage_start_date", "line_item_unblended_cost", "pricing_public_on_demand_cost",
    "line_item_net_unblended_cost", "savings_plan_savings_plan_effective_cost",
    "line_item_resource_id", "resource_tags",
)  # fmt: skip
EXPECTED = {
    (date(2026, 11, 20), "nlp", "USE1-Train:ml.m5.xlarge", "instance", D("1.38"), D("1.38")),
    (date(2026, 11, 21), "cv", "USE1-Train:ml.g5.2xlarge", "instance", D("1.515"), D("1.00")),
    (
        date(2026, 11, 20),
        "unallocated",
        "USE1-Train:VolumeUsage.gp2",
        "volume",
        D("0.05"),
        D("0.05"),
    ),
    (date(2026, 11, 20), "nlp", "USE1-Host:ml.m5.large", "other", D("2.00"), D("2.00")),
}


def summary(read) -> set:
    return {
        (
            line.period_start,
            line.team,
            line.usage_type,
            line.kind,
            line.list_usd,
            line.effective_usd,
        )
        for line in read.lines
    }


def cur_parquet(path: Path, rows=CUR_ROWS) -> Path:
    columns = {name: [row[i] for row in rows] for i, name in enumerate(CUR_NAMES)}
    money = ("line_item_unblended_cost", "pricing_public_on_demand_cost",
             "line_item_net_unblended_cost", "savings_plan_savings_plan_effective_cost")  # fmt: skip
    arrays = {}
    for name, values in columns.items():
        if name in money:  # CUR 2.0 Parquet stores costs as doubles
            arrays[name] = pa.array([None if v is None else float(v) for v in values], pa.float64())
        elif name == "line_item_usage_start_date":
            arrays[name] = pa.array([v.replace("Z", "") for v in values]).cast(pa.timestamp("ms"))
        elif name == "resource_tags":
            arrays[name] = pa.array(
                [list(v.items()) for v in values], pa.map_(pa.string(), pa.string())
            )
        else:
            arrays[name] = pa.array(values, pa.string())
    pq.write_table(pa.table(arrays), path)
    return path


def cur_csv_gz(path: Path, rows=CUR_ROWS) -> Path:
    lines = [",".join(CUR_NAMES)]
    for row in rows:
        cells = [
            "" if v is None else (json.dumps(v) if isinstance(v, dict) else str(v)) for v in row
        ]
        lines.append(",".join(f'"{c.replace(chr(34), chr(34) * 2)}"' for c in cells))
    path.write_bytes(gzip.compress(("\n".join(lines) + "\n").encode()))
    return path


FOCUS_HEADER = ("ChargeCategory,ChargePeriodStart,ChargePeriodEnd,BilledCost,ListCost,EffectiveCost,"
                "ServiceName,ResourceId,Tags,x_UsageType,x_ServiceCode")  # fmt: skip


def focus_csv(path: Path, extra: str = "") -> Path:
    def row(category, start, billed, list_, effective, service, resource, tags, usage, code):
        cells = [
            category,
            start,
            "",
            billed,
            list_,
            effective,
            service,
            resource,
            json.dumps(tags),
            usage,
            code,
        ]
        return ",".join(f'"{c.replace(chr(34), chr(34) * 2)}"' for c in cells)

    rows = [
        row(
            "Usage",
            "2026-11-20T08:00:00Z",
            "1.38",
            "1.38",
            "1.38",
            "Amazon SageMaker",
            arn("nlp-1"),
            {"user:team": "nlp"},
            "USE1-Train:ml.m5.xlarge",
            "AmazonSageMaker",
        ),
        row(
            "Usage",
            "2026-11-21T00:00:00Z",
            "0",
            "1.515",
            "1.00",
            "Amazon SageMaker",
            arn("cv-1"),
            {"user:team": "cv"},
            "USE1-Train:ml.g5.2xlarge",
            "AmazonSageMaker",
        ),
        row(
            "Usage",
            "2026-11-20T00:00:00Z",
            "0.05",
            "0.05",
            "0.05",
            "Amazon SageMaker",
            arn("nlp-1"),
            {},
            "USE1-Train:VolumeUsage.gp2",
            "AmazonSageMaker",
        ),
        row(
            "Purchase",
            "2026-11-01T00:00:00Z",
            "100",
            "100",
            "0",
            "Amazon SageMaker",
            "",
            {},
            "",
            "AmazonSageMaker",
        ),
        row(
            "Usage",
            "2026-11-20T00:00:00Z",
            "10",
            "10",
            "10",
            "Amazon EC2",
            "i-0abc",
            {"user:team": "nlp"},
            "BoxUsage:m5.large",
            "AmazonEC2",
        ),
        row(
            "Usage",
            "2026-11-20T08:00:00Z",
            "2.00",
            "2.00",
            "2.00",
            "Amazon SageMaker",
            "endpoint/e",
            {"user:team": "nlp"},
            "USE1-Host:ml.m5.large",
            "AmazonSageMaker",
        ),
    ]
    path.write_text(FOCUS_HEADER + "\n" + "\n".join(rows) + "\n" + extra)
    return path


def test_read_cur2_parquet_keeps_sagemaker_usage_lines(tmp_path: Path) -> None:
    read = read_bill(local_bill_files(str(cur_parquet(tmp_path / "cur.parquet"))), "team", "f")
    assert summary(read) == EXPECTED
    assert read.layouts == {"cur2"} and read.rows_read == 8 and read.rows_kept == 5
    m5 = next(x for x in read.lines if x.kind == "instance" and x.team == "nlp")
    assert (m5.resource_id, m5.line_type, m5.period_end) == (
        arn("nlp-1"),
        "Usage",
        date(2026, 11, 21),
    )


def test_read_cur2_gzipped_csv_with_json_tags(tmp_path: Path) -> None:
    read = read_bill(local_bill_files(str(cur_csv_gz(tmp_path / "cur.csv.gz"))), "team", "f")
    assert summary(read) == EXPECTED


def test_read_legacy_cur_headers(tmp_path: Path) -> None:
    path = tmp_path / "legacy.csv"
    path.write_text(
        "lineItem/LineItemType,lineItem/ProductCode,lineItem/UsageType,lineItem/UsageStartDate,"
        "lineItem/UnblendedCost,resourceTags/user:team\n"
        "Usage,AmazonSageMaker,USE1-Train:ml.m5.xlarge,2026-11-20T08:00:00Z,1.38,nlp\n"
    )
    read = read_bill(local_bill_files(str(path)), "team", "f")
    assert summary(read) == {
        (date(2026, 11, 20), "nlp", "USE1-Train:ml.m5.xlarge", "instance", D("1.38"), D("1.38"))
    }


def test_read_focus_csv_keeps_usage_of_sagemaker(tmp_path: Path) -> None:
    read = read_bill(local_bill_files(str(focus_csv(tmp_path / "focus.csv"))), "team", "f")
    assert summary(read) == EXPECTED
    assert read.layouts == {"focus"}


def test_read_focus_without_usage_type_marks_training_job_lines_unrecognised(
    tmp_path: Path,
) -> None:
    path = tmp_path / "f.csv"
    path.write_text("ChargeCategory,ChargePeriodStart,BilledCost,ListCost,EffectiveCost,ServiceName,ResourceId,Tags\n"
                    f'Usage,2026-11-20,1.38,1.38,1.38,Amazon SageMaker,{arn("nlp-1")},"{{""team"": ""nlp""}}"\n')  # fmt: skip
    (line,) = read_bill(local_bill_files(str(path)), "team", "f").lines
    assert (line.kind, line.team, line.list_usd) == ("unrecognised", "nlp", D("1.38"))


def test_read_focus_mandatory_columns_only_counts_sagemaker_usage(tmp_path: Path) -> None:
    """No x_UsageType, no x_ServiceCode: a line without a resource is counted (unrecognised,
    reported); an endpoint's line is not training."""
    path = tmp_path / "f.csv"
    path.write_text(
        "ChargeCategory,ChargePeriodStart,BilledCost,ListCost,EffectiveCost,ServiceName,ResourceId,Tags\n"
        'Usage,2026-11-20T00:00:00Z,2.00,2.00,2.00,Amazon SageMaker,,"{""team"": ""cv""}"\n'
        "Usage,2026-11-20T00:00:00Z,9.00,9.00,9.00,Amazon SageMaker,"
        'arn:aws:sagemaker:us-east-1:1:endpoint/e,"{""team"": ""cv""}"\n'
    )
    lines = read_bill(local_bill_files(str(path)), "team", "f").lines
    assert sorted((x.kind, x.list_usd) for x in lines) == [("other", D(9)), ("unrecognised", D(2))]


def test_read_folder_of_many_files_mixing_layouts(tmp_path: Path) -> None:
    folder = tmp_path / "bills" / "2026-11"
    folder.mkdir(parents=True)
    cur_parquet(folder / "part-0.parquet", CUR_ROWS[:2])
    cur_csv_gz(folder / "part-1.csv.gz", CUR_ROWS[2:])
    (folder / "manifest.json").write_text("{}")
    read = read_bill(local_bill_files(str(tmp_path / "bills")), "team", "f")
    assert summary(read) == EXPECTED
    assert len(read.files) == 2


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("a,b\n1,2\n", "neither a CUR 2.0 file"),
        (
            "line_item_usage_type,line_item_unblended_cost\nx,1\n",
            "without column(s) line_item_line_item_type",
        ),
        (
            ",".join(CUR_NAMES[:5])
            + "\nUsage,AmazonSageMaker,USE1-Train:ml.m5.xlarge,2026-11-20,abc\n",
            "line_item_unblended_cost: 'abc' is not a number",
        ),
        (
            ",".join(CUR_NAMES[:5])
            + "\nUsage,AmazonSageMaker,USE1-Train:ml.m5.xlarge,yesterday,1\n",
            "line_item_usage_start_date: 'yesterday' is not a date",
        ),
    ],
    ids=["unknown-layout", "missing-column", "bad-cost", "bad-date"],
)
def test_read_bad_file_is_one_line_input_error(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "bill.csv"
    path.write_text(content)
    with pytest.raises(InputError) as error:
        read_bill(local_bill_files(str(path)), "team", "f")
    assert str(error.value).startswith(f"{path}: ") and message in str(error.value)
    assert "\n" not in str(error.value)


def test_read_corrupt_parquet_and_missing_path(tmp_path: Path) -> None:
    (tmp_path / "x.parquet").write_bytes(b"not parquet")
    with pytest.raises(InputError, match=r"x.parquet: cannot read as Parquet"):
        read_bill(local_bill_files(str(tmp_path / "x.parquet")), "team", "f")
    with pytest.raises(InputError, match="no such file or folder"):
        local_bill_files(str(tmp_path / "missing"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="no .parquet, .csv or .csv.gz files"):
        local_bill_files(str(tmp_path / "empty"))


@pytest.mark.parametrize(
    ("value", "tags"),
    [
        ('{"user_team": "nlp"}', {"user_team": "nlp"}),
        ([("user_team", "nlp")], {"user_team": "nlp"}),
        ({"user_team": "nlp"}, {"user_team": "nlp"}),
        ([{"key": "team", "value": "cv"}], {"team": "cv"}),
        ("", {}),
        (None, {}),
        ("not json", {}),
    ],
)
def test_tag_map_accepts_every_encoding(value, tags) -> None:
    assert tag_map(value) == tags


def test_read_from_s3_prefix_many_objects(tmp_path: Path) -> None:
    tmp = tmp_path
    with mock_aws():
        s3 = boto3.client("s3", region_name="us-east-1")
        s3.create_bucket(Bucket="billing")
        s3.put_object(Bucket="billing", Key="cur/2026-11/part-0.parquet",
                      Body=cur_parquet(tmp / "a.parquet", CUR_ROWS[:2]).read_bytes())  # fmt: skip
        s3.put_object(Bucket="billing", Key="cur/2026-11/part-1.csv.gz",
                      Body=cur_csv_gz(tmp / "b.csv.gz", CUR_ROWS[2:]).read_bytes())  # fmt: skip
        s3.put_object(Bucket="billing", Key="cur/2026-11/manifest.json", Body=b"{}")
        s3.put_object(Bucket="billing", Key="other/x.csv", Body=b"a\n1\n")
        files = s3_bill_files(s3, "s3://billing/cur/")
        assert [f.name for f in files] == ["s3://billing/cur/2026-11/part-0.parquet",
                                           "s3://billing/cur/2026-11/part-1.csv.gz"]  # fmt: skip
        assert summary(read_bill(files, "team", "s3://billing/cur/")) == EXPECTED
        with pytest.raises(InputError, match="no .parquet, .csv or .csv.gz objects"):
            s3_bill_files(s3, "s3://billing/nothing/")
        with pytest.raises(InputError, match="NoSuchBucket"):
            s3_bill_files(s3, "s3://no-such-bucket/cur/")


def test_bill_file_bytes_read_like_a_local_file(tmp_path: Path) -> None:
    data = cur_parquet(tmp_path / "c.parquet").read_bytes()
    assert summary(read_bill([BillFile("s3://b/c.parquet", data)], "team", "f")) == EXPECTED


def test_reconcile_bill_from_cur_folder_per_team_and_per_job(tmp_path: Path) -> None:
    """Tracker: nlp-1 (nlp) 4 x 0.23 x 1.5 = 1.38 on 11-20; cv-1 (cv) 1.515 on 11-21, both
    settled by 11-26 12:00. Bill: nlp 1.38 + the untagged 0.05 volume of nlp-1, which its
    resource id gives to nlp = 1.43 (delta 0.05, 3.62%, ok); cv 1.515 list, effective 1.00."""
    store = Store.open(f"sqlite:///{tmp_path / 't.db'}")
    save(store, [
        make_job("nlp-1", "nlp", instance_count=4, seconds=int(1.5 * HOUR)),
        make_job("cv-1", "cv", instance_type="ml.g5.2xlarge", start_time=START + timedelta(days=1)),
    ])  # fmt: skip
    folder = tmp_path / "bills"
    folder.mkdir()
    cur_parquet(folder / "cur.parquet")
    report = reconcile_bill(SETTINGS, store, NOW, source=str(folder), by_job=True)
    rows = [(r["team"], r["period"], r["tracker_usd"], r["billed_usd"], r["delta_usd"], r["delta_pct"],
             r["status"], r["billed_effective_usd"]) for r in (x.to_dict() for x in report.rows)]  # fmt: skip
    assert rows == [
        ("nlp", "2026-11-20", D("1.38"), D("1.43"), D("0.05"), D("3.62"), "ok", D("1.43")),
        ("cv", "2026-11-21", D("1.52"), D("1.52"), D("0.00"), D("0.00"), "ok", D("1.00")),
    ]
    assert (report.since, report.until, report.stored) == (
        date(2026, 11, 20),
        date(2026, 11, 21),
        4,
    )
    jobs = [(r.job, r.match, r.delta) for r in report.job_rows]
    assert jobs == [("cv-1", "resource-id", D(0)), ("nlp-1", "resource-id", D("0.05"))]
    assert any("USE1-Host:ml.m5.large (other) $2.00" in note for note in report.notes)


# -- a file that is no bill: the columns it has and the columns a bill has (issue 12, row 14) --
EXPECTED_COLUMNS = (
    "neither a CUR 2.0 file (expected columns line_item_line_item_type, line_item_usage_type, "
    "line_item_usage_start_date, line_item_unblended_cost) nor a FOCUS file (expected columns "
    "ChargeCategory, ChargePeriodStart, BilledCost)"
)


def _write_table(path: Path, header: list[str]) -> Path:
    """One row of ``header`` columns, as CSV, gzipped CSV or Parquet by the suffix."""
    if path.suffix == ".parquet":
        pq.write_table(pa.table({name: ["1"] for name in header}), path)
        return path
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerows([header, ["1"] * len(header)])
    data = buffer.getvalue().encode()
    path.write_bytes(gzip.compress(data) if path.suffix == ".gz" else data)
    return path


@pytest.fixture
def tracker_db(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'tracker.db'}"
    save(Store.open(url), [make_job("nlp-1", "nlp")])
    return url


def _reconcile(db: str, source: Path):
    return run_cli("--db", db, "reconcile", "--against", "bill", "--source", str(source),
                   env={"TRACKER_NOW": NOW.isoformat()})  # fmt: skip


@pytest.mark.parametrize("suffix", [".csv", ".csv.gz", ".parquet"])
def test_cli_reconcile_file_of_other_columns_names_found_and_expected(
    tmp_path: Path, tracker_db: str, suffix: str
) -> None:
    path = _write_table(tmp_path / f"abc{suffix}", ["a", "b", "c"])
    result = _reconcile(tracker_db, path)
    assert (result.returncode, result.stdout) == (2, "")
    assert result.stderr == f"Error: {path}: {EXPECTED_COLUMNS}; found columns: a, b, c\n"


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_cli_reconcile_file_of_many_columns_cuts_the_list(
    tmp_path: Path, tracker_db: str, suffix: str
) -> None:
    path = _write_table(tmp_path / f"wide{suffix}", [f"col{i:02d}" for i in range(48)])
    result = _reconcile(tracker_db, path)
    assert result.returncode == 2
    assert result.stderr == (
        f"Error: {path}: {EXPECTED_COLUMNS}; found columns: col00, col01, col02, col03, col04, "
        "col05, col06, col07, ... (40 more)\n"
    )


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_cli_reconcile_column_names_with_control_characters_are_escaped(
    tmp_path: Path, tracker_db: str, suffix: str
) -> None:
    path = _write_table(tmp_path / f"odd{suffix}", ["a\nb", "c\u202ed", "e\x00f", "x" * 70])
    result = _reconcile(tracker_db, path)
    assert result.returncode == 2
    assert result.stderr == (
        f"Error: {path}: {EXPECTED_COLUMNS}; found columns: a\\u000ab, c\\u202ed, e\\u0000f, "
        + "x" * 57
        + "...\n"
    )


def test_cli_reconcile_bill_without_a_required_column_names_what_it_found(
    tmp_path: Path, tracker_db: str
) -> None:
    path = _write_table(tmp_path / "cur.csv", ["line_item_usage_type", "line_item_unblended_cost"])
    result = _reconcile(tracker_db, path)
    assert result.returncode == 2
    assert result.stderr == (
        f"Error: {path}: CUR 2.0 file without column(s) line_item_line_item_type, "
        "line_item_usage_start_date; found columns: line_item_usage_type, "
        "line_item_unblended_cost\n"
    )
