"""Bill files are streamed in batches of rows (``tracker.bounds.BILL_BATCH_ROWS``), with sums
exact and the same for any batch size (issue 12).

The bill: 250 rows, row i (1..250) costs i x $0.000137 (list = effective), team nlp when i
is even else cv, on 2026-11-(20 + i % 3); every tenth row is Amazon EC2 and dropped, so 225
rows are kept. Per (day, team):

| day   | cv       | nlp      |
|-------|----------|----------|
| 11-20 | 0.725004 | 0.559782 |
| 11-21 | 0.713496 | 0.570468 |
| 11-22 | 0.702125 | 0.582250 |

All: 4.298375 (1..250) - 0.445250 (the tenths) = 3.853125. With a batch of 7 rows the file is
read in 36 batches (35 x 7 + 5).
"""

from __future__ import annotations

import csv
import gzip
import io
import json
from datetime import date
from decimal import Decimal
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tracker.errors import InputError
from tracker.reconcile import bill_files
from tracker.reconcile.bill_files import local_bill_files, read_bill

D = Decimal
ROWS = 250
EXPECTED = {
    (date(2026, 11, 20), "cv"): D("0.725004"),
    (date(2026, 11, 20), "nlp"): D("0.559782"),
    (date(2026, 11, 21), "cv"): D("0.713496"),
    (date(2026, 11, 21), "nlp"): D("0.570468"),
    (date(2026, 11, 22), "cv"): D("0.702125"),
    (date(2026, 11, 22), "nlp"): D("0.582250"),
}
CUR_NAMES = (
    "line_item_line_item_type", "line_item_product_code", "line_item_usage_type",
    "line_item_usage_start_date", "line_item_unblended_cost", "pricing_public_on_demand_cost",
    "line_item_net_unblended_cost", "line_item_resource_id", "resource_tags",
)  # fmt: skip
FOCUS_NAMES = (
    "ChargeCategory", "ChargePeriodStart", "BilledCost", "ListCost", "EffectiveCost",
    "ServiceName", "ResourceId", "Tags", "x_UsageType", "x_ServiceCode",
)  # fmt: skip


def _cost(i: int) -> str:
    return str(D(i * 137) / D(10**6))


def _rows(layout: str) -> list[dict]:
    rows = []
    for i in range(1, ROWS + 1):
        ec2 = i % 10 == 0
        team = "nlp" if i % 2 == 0 else "cv"
        start = f"2026-11-{20 + i % 3}T{i % 24:02d}:00:00Z"
        resource = f"arn:aws:sagemaker:us-east-1:123456789012:training-job/{team}-{i % 3}"
        if layout == "cur":
            rows.append({
                "line_item_line_item_type": "Usage",
                "line_item_product_code": "AmazonEC2" if ec2 else "AmazonSageMaker",
                "line_item_usage_type": "USE1-Train:ml.m5.xlarge", "line_item_usage_start_date": start,
                "line_item_unblended_cost": _cost(i), "pricing_public_on_demand_cost": _cost(i),
                "line_item_net_unblended_cost": _cost(i), "line_item_resource_id": resource,
                "resource_tags": {"user_team": team},
            })  # fmt: skip
        else:
            rows.append({
                "ChargeCategory": "Usage", "ChargePeriodStart": start, "BilledCost": _cost(i),
                "ListCost": _cost(i), "EffectiveCost": _cost(i),
                "ServiceName": "Amazon EC2" if ec2 else "Amazon SageMaker",
                "ResourceId": resource, "Tags": {"team": team},
                "x_UsageType": "USE1-Train:ml.m5.xlarge",
                "x_ServiceCode": "AmazonEC2" if ec2 else "AmazonSageMaker",
            })  # fmt: skip
    return rows


def write_bill(path: Path, layout: str, rows: list[dict] | None = None) -> Path:
    """The bill above as CSV (tags as JSON), gzipped CSV or Parquet (costs as doubles, tags as
    a map, times as timestamps), as AWS writes them."""
    rows = rows if rows is not None else _rows(layout)
    names = CUR_NAMES if layout == "cur" else FOCUS_NAMES
    tags = "resource_tags" if layout == "cur" else "Tags"
    if path.name.endswith(".parquet"):
        money = {n for n in names if "cost" in n.lower()}
        arrays = {}
        for name in names:
            values = [row[name] for row in rows]
            if name in money:
                arrays[name] = pa.array([float(v) for v in values], pa.float64())
            elif name == tags:
                arrays[name] = pa.array(
                    [list(v.items()) for v in values], pa.map_(pa.string(), pa.string())
                )
            elif name in ("line_item_usage_start_date", "ChargePeriodStart"):
                arrays[name] = pa.array([v[:-1] for v in values]).cast(pa.timestamp("ms"))
            else:
                arrays[name] = pa.array(values, pa.string())
        pq.write_table(pa.table(arrays), path)
        return path
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(names)
    for row in rows:
        writer.writerow([json.dumps(row[n]) if n == tags else row[n] for n in names])
    data = buffer.getvalue().encode()
    path.write_bytes(gzip.compress(data) if path.name.endswith(".gz") else data)
    return path


def totals(read) -> dict:
    sums: dict = {}
    for line in read.lines:
        key = (line.period_start, line.team)
        assert line.list_usd == line.effective_usd
        sums[key] = sums.get(key, D(0)) + line.list_usd
    return sums


FILES = {
    "cur-csv": ("bill.csv", "cur"),
    "cur-csv-gz": ("bill.csv.gz", "cur"),
    "cur-parquet": ("bill.parquet", "cur"),
    "focus-csv": ("bill.csv", "focus"),
    "focus-csv-gz": ("bill.csv.gz", "focus"),
    "focus-parquet": ("bill.parquet", "focus"),
}


@pytest.mark.parametrize("case", FILES)
def test_read_bill_in_small_batches_equals_reading_it_whole(tmp_path: Path, case: str) -> None:
    name, layout = FILES[case]
    files = local_bill_files(str(write_bill(tmp_path / name, layout)))
    batched = read_bill(files, "team", "f", batch_rows=7)
    whole = read_bill(files, "team", "f", batch_rows=ROWS)
    assert batched.lines == whole.lines
    assert (
        (batched.rows_read, batched.rows_kept) == (whole.rows_read, whole.rows_kept) == (250, 225)
    )
    assert totals(batched) == EXPECTED
    assert sum(totals(batched).values()) == D("3.853125")


@pytest.mark.parametrize("case", ["cur-csv", "cur-csv-gz", "cur-parquet", "focus-parquet"])
def test_read_bill_never_holds_more_than_one_batch(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, case: str
) -> None:
    name, layout = FILES[case]
    seen: list[int] = []
    for rows in ("_cur_rows", "_focus_rows"):
        original = getattr(bill_files, rows)

        def spy(frame, *args, _original=original):
            seen.append(len(frame))
            return _original(frame, *args)

        monkeypatch.setattr(bill_files, rows, spy)
    read_bill(local_bill_files(str(write_bill(tmp_path / name, layout))), "team", "f", batch_rows=7)
    assert seen == [7] * 35 + [5]


def test_read_bill_default_batch_is_the_bound() -> None:
    import inspect

    from tracker.bounds import BILL_BATCH_ROWS

    default = inspect.signature(read_bill).parameters["batch_rows"].default
    assert default == BILL_BATCH_ROWS.high == 50_000


@pytest.mark.parametrize("batch_rows", [0, -1, 50_001])
def test_read_bill_batch_outside_the_bound_is_input_error(tmp_path: Path, batch_rows: int) -> None:
    files = local_bill_files(str(write_bill(tmp_path / "b.csv", "cur")))
    with pytest.raises(InputError, match="expected a whole number from 1 to 50,000 rows"):
        read_bill(files, "team", "f", batch_rows=batch_rows)


@pytest.mark.parametrize("name", ["bill.csv", "bill.csv.gz"])
def test_read_bill_bad_cost_in_a_later_batch_names_the_value(tmp_path: Path, name: str) -> None:
    rows = _rows("cur")
    rows[198]["line_item_unblended_cost"] = "abc"  # row 199 of the file: the 29th batch
    path = write_bill(tmp_path / name, "cur", rows)
    with pytest.raises(InputError) as error:
        read_bill(local_bill_files(str(path)), "team", "f", batch_rows=7)
    assert str(error.value) == f"{path}: line_item_unblended_cost: 'abc' is not a number"


def test_read_bill_malformed_row_in_a_later_batch_is_one_line_input_error(tmp_path: Path) -> None:
    path = write_bill(tmp_path / "bill.csv", "cur")
    lines = path.read_text().splitlines()
    lines[-1] = '"' + lines[-1].replace('"', "")  # the last batch opens a quote never closed
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(InputError) as error:
        read_bill(local_bill_files(str(path)), "team", "f", batch_rows=7)
    assert str(error.value).startswith(f"{path}: cannot read as CSV (Error tokenizing data.")
    assert "\n" not in str(error.value)


def test_read_bill_header_only_file_reads_no_lines(tmp_path: Path) -> None:
    for name in ("bill.csv", "bill.parquet"):
        path = write_bill(tmp_path / name, "cur", _rows("cur")[:1])
        if name == "bill.csv":
            path.write_text(path.read_text().splitlines()[0] + "\n")
        else:
            pq.write_table(pq.read_table(path).slice(0, 0), path)
        read = read_bill(local_bill_files(str(path)), "team", "f", batch_rows=7)
        assert (read.lines, read.rows_read, read.layouts) == ([], 0, {"cur2"})
