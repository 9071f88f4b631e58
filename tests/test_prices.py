"""The price book: shipped snapshot, precedence, validation errors and per-job rates."""

from __future__ import annotations

import csv
from datetime import UTC, datetime
from decimal import Decimal
from functools import partial
from pathlib import Path

import pytest

from tests import factories
from tracker.cost.prices import (
    PriceBook,
    PriceRow,
    read_price_csv,
    shipped_prices,
    write_snapshot,
)
from tracker.errors import InputError, PriceBookError
from tracker.records import InstanceGroup

SHIPPED = shipped_prices()  # package data: tracker/cost/data
HEADER = "region,instance_type,usd_per_hour,source,source_date,confidence\n"
T0 = datetime(2026, 10, 1, 12, 0, tzinfo=UTC)


make_job = partial(factories.make_job, "job", instance_type="ml.m5.large")


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture
def snapshot(tmp_path: Path) -> Path:
    """A snapshot dir: a shipped file (3 rows; loaded as ``shipped=snapshot``), an older and
    a newer refreshed file.

    | region    | type           | shipped | refreshed-20260901 | refreshed-20260915 |
    |-----------|----------------|---------|--------------------|--------------------|
    | us-east-1 | ml.m5.large    | 0.115   | 0.5 (ignored)      | 0.116              |
    | us-east-1 | ml.g5.2xlarge  | 1.515   |                    |                    |
    | us-west-2 | ml.g5.xlarge   | 1.408   | 9.9 (ignored)      |                    |
    | us-east-1 | ml.c5.xlarge   |         | 0.7 (ignored)      |                    |
    """
    d = tmp_path / "prices"
    d.mkdir()
    write(
        d / "training-on-demand.csv",
        HEADER + "us-east-1,ml.m5.large,0.115,bill,2026-08-11,high\n"
        "us-east-1,ml.g5.2xlarge,1.515,,,\n"
        "us-west-2,ml.g5.xlarge,1.408,list,,low\n",
    )
    write(
        d / "refreshed-20260901.csv",
        HEADER + "us-east-1,ml.m5.large,0.5,old,,high\n"
        "us-west-2,ml.g5.xlarge,9.9,old,,high\n"
        "us-east-1,ml.c5.xlarge,0.7,old,,high\n",
    )
    write(d / "refreshed-20260915.csv", HEADER + "us-east-1,ml.m5.large,0.116,api,,high\n")
    write(d / "notes.csv", "not,a,price,file\n")  # not a refreshed-YYYYMMDD.csv: ignored
    return d


# --- the shipped snapshot ----------------------------------------------------------------


def test_load_shipped_snapshot_has_traced_rates():
    book = PriceBook.load()
    assert len(book.priced_pairs()) == 23
    assert book.hourly("us-east-1", "ml.m5.large") == Decimal("0.115")
    assert book.hourly("us-east-1", "ml.p4d.24xlarge") == Decimal("25.251")
    assert book.hourly("us-west-2", "ml.g5.48xlarge") == Decimal("20.36")
    assert book.hourly("eu-west-1", "ml.m5.xlarge") == Decimal("0.257")
    assert book.hourly("eu-west-1", "ml.p3.2xlarge") == Decimal("4.131")
    # Nothing filled in from another region or from EC2.
    assert book.hourly("eu-west-1", "ml.g5.2xlarge") is None
    assert book.hourly("us-east-1", "ml.p5.48xlarge") is None
    assert book.hourly("ap-northeast-1", "ml.g6.xlarge") is None
    assert book.storage_usd_per_gb_month("eu-west-1") == Decimal("0.154")
    assert book.storage_usd_per_gb_month("us-east-1") is None
    assert book.s3_usd_per_gb_month("us-east-1") is None
    assert book.tokens_usd_per_million("us-east-1", None) is None


def test_shipped_rows_each_name_source_and_confidence():
    with open(SHIPPED / "training-on-demand.csv", encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert list(rows[0]) == [
        "region", "instance_type", "usd_per_hour", "source", "source_date", "confidence",
    ]  # fmt: skip
    assert len(rows) == 23
    assert all(row["source"] and row["source"] != "same" for row in rows)
    assert {row["confidence"] for row in rows} == {"high", "medium", "low"}
    with open(SHIPPED / "tokens.csv", encoding="utf-8") as handle:
        assert handle.read() == (
            "region,base_model,usd_per_million_tokens,source,source_date,confidence\n"
        )


def test_source_names_file_line_and_row_source():
    book = PriceBook.load()
    assert book.source("us-east-1", "ml.m5.large") == (
        f"{SHIPPED / 'training-on-demand.csv'} line 2 (AWS Price List Query API, SKU "
        "JMCWJEAPVJNFJ5P4, usagetype USE1-Train:ml.m5.large (quoted in SatsyilCorp/"
        "compass-demo docs/COST_MODEL.md))"
    )
    assert book.source("us-east-1", "ml.p5.48xlarge") is None


# --- precedence ----------------------------------------------------------------------------


def test_load_newest_refreshed_wins_over_shipped(snapshot: Path):
    book = PriceBook.load(snapshot, shipped=snapshot)
    assert book.hourly("us-east-1", "ml.m5.large") == Decimal("0.116")
    assert book.source("us-east-1", "ml.m5.large") == (
        f"{snapshot / 'refreshed-20260915.csv'} line 2 (api)"
    )
    # Older refreshed files are not merged in.
    assert book.hourly("us-west-2", "ml.g5.xlarge") == Decimal("1.408")
    assert book.hourly("us-east-1", "ml.c5.xlarge") is None
    assert book.hourly("us-east-1", "ml.g5.2xlarge") == Decimal("1.515")
    assert book.source("us-east-1", "ml.g5.2xlarge") == (
        f"{snapshot / 'training-on-demand.csv'} line 3"
    )
    assert book.files == (
        snapshot / "training-on-demand.csv",
        snapshot / "refreshed-20260915.csv",
    )


def test_load_overrides_win_over_every_snapshot(snapshot: Path, tmp_path: Path):
    overrides = write(
        tmp_path / "overrides.csv",
        "instance_type,region,usd_per_hour\n"  # column order is free, extras optional
        "ml.m5.large,us-east-1,0.1\n"
        "ml.trn1.32xlarge,us-east-1,20\n",
    )
    book = PriceBook.load(snapshot, overrides, shipped=snapshot)
    assert book.hourly("us-east-1", "ml.m5.large") == Decimal("0.1")
    assert book.hourly("us-east-1", "ml.trn1.32xlarge") == Decimal("20")
    assert book.hourly("us-west-2", "ml.g5.xlarge") == Decimal("1.408")
    assert book.source("us-east-1", "ml.m5.large") == f"{overrides} line 2"
    assert book.priced_pairs() == [
        ("us-east-1", "ml.g5.2xlarge"),
        ("us-east-1", "ml.m5.large"),
        ("us-east-1", "ml.trn1.32xlarge"),
        ("us-west-2", "ml.g5.xlarge"),
    ]


def test_load_mapping_overrides_win_over_storage_and_token_files(snapshot: Path):
    write(
        snapshot / "storage.csv",
        "region,kind,usd_per_gb_month,source,source_date,confidence\n"
        "eu-west-1,ml-storage,0.154,bill,2023-12,high\n"
        "us-east-1,ml-storage,0.14,test,,low\n"
        "us-east-1,s3-standard,0.023,test,,low\n",
    )
    write(
        snapshot / "tokens.csv",
        "region,base_model,usd_per_million_tokens\nus-east-1,*,5\nus-east-1,llama-3-8b,2.5\n",
    )
    book = PriceBook.load(
        snapshot,
        shipped=snapshot,
        storage_overrides={"us-east-1": Decimal("0.125")},
        s3_overrides={"eu-west-1": Decimal("0.024")},
        token_overrides={("us-east-1", "*"): Decimal("4"), ("us-west-2", "*"): Decimal("6")},
    )
    assert book.storage_usd_per_gb_month("us-east-1") == Decimal("0.125")
    assert book.storage_usd_per_gb_month("eu-west-1") == Decimal("0.154")
    assert book.s3_usd_per_gb_month("us-east-1") == Decimal("0.023")
    assert book.s3_usd_per_gb_month("eu-west-1") == Decimal("0.024")
    assert book.s3_usd_per_gb_month("us-west-2") is None
    assert book.tokens_usd_per_million("us-east-1", "llama-3-8b") == Decimal("2.5")
    assert book.tokens_usd_per_million("us-east-1", "mistral-7b") == Decimal("4")
    assert book.tokens_usd_per_million("us-east-1", None) == Decimal("4")
    assert book.tokens_usd_per_million("us-west-2", "llama-3-8b") == Decimal("6")
    assert book.tokens_usd_per_million("eu-west-1", "llama-3-8b") is None


def test_read_price_csv_keeps_decimal_text_exact(tmp_path: Path):
    # Through float, 1.4080000000000001 would collapse to 1.408.
    path = write(tmp_path / "p.csv", "region,instance_type,usd_per_hour\n"
                 "us-east-1,ml.g5.xlarge,1.4080000000000001\n"
                 "us-east-1,ml.m5.large, 0.115 \n")  # fmt: skip
    assert read_price_csv(path) == [
        PriceRow("us-east-1", "ml.g5.xlarge", Decimal("1.4080000000000001")),
        PriceRow("us-east-1", "ml.m5.large", Decimal("0.115")),
    ]


# --- bad files: one line naming file, line, field and what is expected ------------------


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (
            "us-east-1,ml.m5.large,0.115\nus-east1,ml.m5.large,0.115\n",
            "line 3: region: 'us-east1' is not an AWS region code; expected one like us-east-1",
        ),
        (
            "us-east-1,m5.large,0.115\n",
            "line 2: instance_type: 'm5.large' is not a SageMaker instance type; "
            "expected ml.<family>.<size> like ml.g5.2xlarge",
        ),
        (
            "us-east-1,ml.m5.large,-0.115\n",
            "line 2: usd_per_hour: '-0.115' is not a non-negative decimal; "
            "expected US dollars like 1.408",
        ),
        (
            "us-east-1,ml.m5.large,$0.115\n",
            "line 2: usd_per_hour: '$0.115' is not a non-negative decimal; "
            "expected US dollars like 1.408",
        ),
        (
            "us-east-1,ml.m5.large,1e3\n",
            "line 2: usd_per_hour: '1e3' is not a non-negative decimal; "
            "expected US dollars like 1.408",
        ),
        (
            "us-east-1,ml.m5.large,\n",
            "line 2: usd_per_hour: '' is not a non-negative decimal; "
            "expected US dollars like 1.408",
        ),
        (
            "us-east-1,ml.m5.large,0.115\n\nus-east-1,ml.m5.large,0.12\n",
            "line 4: instance_type: duplicate rate for us-east-1 ml.m5.large (first on line 2);"
            " expected one row per region and instance type",
        ),
        (
            "us-east-1,ml.m5.large,0.115,extra\n",
            "line 2: row: has 4 fields but the header has 3; expected one value per column "
            "(quote values that contain commas)",
        ),
    ],
    ids=["region", "type", "negative", "currency", "exponent", "empty", "duplicate", "fields"],
)
def test_read_price_csv_bad_line_error(tmp_path: Path, body: str, expected: str):
    path = write(tmp_path / "overrides.csv", "region,instance_type,usd_per_hour\n" + body)
    with pytest.raises(PriceBookError) as caught:
        read_price_csv(path)
    assert str(caught.value) == f"{path}: {expected}"
    assert isinstance(caught.value, InputError)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", "line 1: header: file is empty; expected a header row region,instance_type,"
         "usd_per_hour"),
        ("region,type,usd_per_hour\n", "line 1: header: missing column(s) instance_type; "
         "expected at least region,instance_type,usd_per_hour"),
        ("region,instance_type,usd_per_hour,region\n", "line 1: header: column(s) region "
         "appear more than once; expected each column once"),
    ],
    ids=["empty", "missing-column", "repeated-column"],
)  # fmt: skip
def test_read_price_csv_bad_header_error(tmp_path: Path, text: str, expected: str):
    path = write(tmp_path / "p.csv", text)
    with pytest.raises(PriceBookError) as caught:
        read_price_csv(path)
    assert str(caught.value) == f"{path}: {expected}"


def test_read_price_csv_missing_file_error(tmp_path: Path):
    with pytest.raises(PriceBookError) as caught:
        read_price_csv(tmp_path / "nope.csv")
    assert str(caught.value) == (
        f"{tmp_path / 'nope.csv'}: file not found; expected a CSV price file with columns "
        "region,instance_type,usd_per_hour"
    )


def test_load_missing_snapshot_dir_or_overrides_error(snapshot: Path, tmp_path: Path):
    with pytest.raises(PriceBookError, match="price snapshot directory not found"):
        PriceBook.load(shipped=tmp_path / "missing")
    with pytest.raises(PriceBookError) as caught:
        PriceBook.load(snapshot, tmp_path / "overrides.csv", shipped=snapshot)
    assert str(caught.value).startswith(f"{tmp_path / 'overrides.csv'}: file not found")


def test_load_bad_storage_and_token_rows_error(snapshot: Path):
    storage = write(snapshot / "storage.csv",
                    "region,kind,usd_per_gb_month\nus-east-1,gp3,0.1\n")  # fmt: skip
    with pytest.raises(PriceBookError) as caught:
        PriceBook.load(snapshot, shipped=snapshot)
    assert str(caught.value) == (
        f"{storage}: line 2: kind: 'gp3' is not a storage kind; "
        "expected one of ml-storage, s3-standard"
    )
    storage.unlink()
    tokens = write(snapshot / "tokens.csv",
                   "region,base_model,usd_per_million_tokens\nus-east-1,*,1\nus-east-1,*,2\n")  # fmt: skip
    with pytest.raises(PriceBookError) as caught:
        PriceBook.load(snapshot, shipped=snapshot)
    assert str(caught.value) == (
        f"{tokens}: line 3: base_model: duplicate rate for us-east-1 * (first on line 2); "
        "expected one row per region and base model"
    )


# --- rates for one job -----------------------------------------------------------------------


def test_rates_for_heterogeneous_job_only_priced_billed_types():
    book = PriceBook.load()
    job = make_job(
        instance_type=None,
        instance_count=None,
        instance_groups=(
            InstanceGroup("ml.g5.2xlarge", 2, "gpu"),
            InstanceGroup("ml.m5.4xlarge", 1, "cpu"),
            InstanceGroup("ml.p5.48xlarge", 1, "big"),  # no traced rate
        ),
    )
    rates = book.rates_for(job, Decimal("10"))
    assert rates.hourly == {"ml.g5.2xlarge": Decimal("1.515"), "ml.m5.4xlarge": Decimal("0.922")}
    assert rates.discount_pct == Decimal("10")
    assert rates.storage_usd_per_gb_month is None
    assert rates.usd_per_million_tokens is None


def test_rates_for_flexible_job_uses_selected_type():
    book = PriceBook.load()
    job = make_job(
        region="eu-west-1",
        instance_type="ml.p3.2xlarge",
        selected_instance_type="ml.g5.xlarge",
        selected_instance_count=2,
    )
    rates = book.rates_for(job)
    assert rates.hourly == {"ml.g5.xlarge": Decimal("1.57")}
    assert rates.storage_usd_per_gb_month == Decimal("0.154")
    assert rates.discount_pct == Decimal(0)


def test_rates_for_serverless_job_uses_token_rate(snapshot: Path):
    arn = "arn:aws:sagemaker:us-east-1:aws:hub-content/SageMakerPublicHub/Model/llama/1"
    book = PriceBook.load(
        snapshot,
        shipped=snapshot,
        token_overrides={("us-east-1", arn): Decimal("3.2"), ("us-east-1", "*"): Decimal("9")},
    )
    job = make_job(
        instance_type=None, serverless_base_model_arn=arn, billable_token_count=1_000_000
    )
    rates = book.rates_for(job)
    assert rates.hourly == {}
    assert rates.usd_per_million_tokens == Decimal("3.2")


def test_unpriced_types_sorted_once():
    book = PriceBook.load()
    pairs = [
        ("us-west-2", "ml.p5.48xlarge"),
        ("us-east-1", "ml.m5.large"),
        ("eu-west-1", "ml.g5.2xlarge"),
        ("us-west-2", "ml.p5.48xlarge"),
        ("us-west-2", "ml.g5.xlarge"),
    ]
    assert book.unpriced_types(pairs) == [
        ("eu-west-1", "ml.g5.2xlarge"),
        ("us-west-2", "ml.p5.48xlarge"),
    ]


# --- writing a refreshed snapshot -----------------------------------------------------------


def test_write_snapshot_sorted_plain_decimals_and_loadable(snapshot: Path):
    rows = [
        PriceRow("us-west-2", "ml.g5.xlarge", Decimal("1.4080000000"), "api b", "2026-09-01"),
        PriceRow("us-east-1", "ml.m5.large", Decimal("0.1150000000"), "api a, SKU X", "2026-09-01"),
        PriceRow("us-east-1", "ml.p4d.24xlarge", Decimal("25.251"), "api c", ""),
    ]
    path = write_snapshot(rows, snapshot, datetime(2026, 10, 2, 23, 30, tzinfo=UTC))
    assert path == snapshot / "refreshed-20261002.csv"
    assert path.read_text(encoding="utf-8") == (
        HEADER + 'us-east-1,ml.m5.large,0.115,"api a, SKU X",2026-09-01,high\n'
        "us-east-1,ml.p4d.24xlarge,25.251,api c,,high\n"
        "us-west-2,ml.g5.xlarge,1.408,api b,2026-09-01,high\n"
    )
    assert sorted(p.name for p in snapshot.iterdir() if p.name.startswith(".")) == []
    book = PriceBook.load(snapshot, shipped=snapshot)
    assert book.hourly("us-east-1", "ml.m5.large") == Decimal("0.115")
    assert book.hourly("us-east-1", "ml.g5.2xlarge") == Decimal("1.515")  # shipped, kept
    assert book.files[-1] == path


def test_write_snapshot_rejects_duplicates_and_leaves_no_file(tmp_path: Path):
    rows = [
        PriceRow("us-east-1", "ml.m5.large", Decimal("0.115")),
        PriceRow("us-east-1", "ml.m5.large", Decimal("0.116")),
    ]
    with pytest.raises(PriceBookError, match="line 3: instance_type: duplicate rate"):
        write_snapshot(rows, tmp_path, T0)
    assert list(tmp_path.iterdir()) == []
