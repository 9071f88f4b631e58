"""Bounds on what price files and bill sources may ask for (issue 12, "Bounds").

Price files (shipped, refreshed, the overrides file): every rate is range-checked,
``usd_per_hour`` against ``bounds.HOURLY_RATE_USD`` and GB-month and token rates against
``bounds.RATE_USD``; beyond them one line naming the file, the line and the column, exit 2
(before, any run of digits was read, so a job's micro-dollars could overflow the database).

Bill sources: at most ``bounds.BILL_FILES`` files in a folder or objects under an S3 prefix;
S3 objects are streamed to a temporary file, one at a time, deleted once read (before, every
object under the prefix was read whole into memory before the first was parsed).
"""

from __future__ import annotations

import tempfile
from decimal import Decimal
from pathlib import Path

import boto3
import pytest
from moto import mock_aws

from tests.conftest import run_cli
from tests.test_bill_files import CUR_ROWS, EXPECTED, cur_csv_gz, cur_parquet, summary
from tracker import bounds
from tracker.aws import billing
from tracker.aws.billing import s3_bill_files
from tracker.cost.prices import PriceBook, read_price_csv
from tracker.errors import InputError, PriceBookError, TrackerError
from tracker.reconcile import bill_files
from tracker.reconcile.bill_files import local_bill_files, read_bill

HEADER = "region,instance_type,usd_per_hour\n"


# -- price files -----------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("rate", "problem"),
    [
        ("10000.01", "10000.01: expected a number from 0 to 10,000 USD per instance-hour"),
        ("99999999999999999999", "99999999999999999999: expected a number from 0 to 10,000 USD "
         "per instance-hour"),
        ("1" * 80, "1" * 37 + "...: expected a number from 0 to 10,000 USD per "
         "instance-hour"),
        ("1e308", "'1e308' is not a non-negative decimal; expected US dollars like 1.408"),
        ("nan", "'nan' is not a non-negative decimal; expected US dollars like 1.408"),
    ],
    ids=["just-above", "20-digits", "80-digits", "1e308", "nan"],
)  # fmt: skip
def test_read_price_csv_rate_beyond_bound_is_one_line(
    tmp_path: Path, rate: str, problem: str
) -> None:
    path = tmp_path / "overrides.csv"
    path.write_text(HEADER + "us-east-1,ml.m5.large,0.115\n" + f"us-east-1,ml.g5.xlarge,{rate}\n")
    with pytest.raises(PriceBookError) as caught:
        read_price_csv(path)
    assert str(caught.value) == f"{path}: line 3: usd_per_hour: {problem}"


def test_read_price_csv_largest_rate_is_read(tmp_path: Path) -> None:
    path = tmp_path / "overrides.csv"
    path.write_text(HEADER + "us-east-1,ml.p5.48xlarge,10000\nus-east-1,ml.m5.large,0\n")
    assert [row.usd_per_hour for row in read_price_csv(path)] == [Decimal(10000), Decimal(0)]


@pytest.mark.parametrize(
    ("name", "text", "column"),
    [
        ("storage.csv", "region,kind,usd_per_gb_month\nus-east-1,ml-storage,1000.5\n",
         "usd_per_gb_month"),
        ("tokens.csv", "region,base_model,usd_per_million_tokens\nus-east-1,*,5000\n",
         "usd_per_million_tokens"),
    ],
    ids=["storage", "tokens"],
)  # fmt: skip
def test_shipped_storage_and_token_rates_beyond_bound_are_one_line(
    tmp_path: Path, name: str, text: str, column: str
) -> None:
    (tmp_path / "training-on-demand.csv").write_text(HEADER + "us-east-1,ml.m5.large,0.115\n")
    (tmp_path / name).write_text(text)
    with pytest.raises(PriceBookError) as caught:
        PriceBook.load(shipped=tmp_path)
    value = text.rsplit(",", 1)[1].strip()
    assert str(caught.value) == (
        f"{tmp_path / name}: line 2: {column}: {value}: expected a number from 0 to 1,000 USD "
        "per unit"
    )


def test_cli_overrides_file_rate_beyond_bound_exits_2(tmp_path: Path) -> None:
    overrides = tmp_path / "overrides.csv"
    overrides.write_text(HEADER + "us-east-1,ml.m5.large,123456789012345678901234567890\n")
    config = tmp_path / "tracker.toml"
    config.write_text(f'[pricing]\noverrides = "{overrides}"\n')
    result = run_cli("--config", str(config), "--db", f"sqlite:///{tmp_path / 't.db'}",
                     "estimate", "--instance-type", "ml.m5.large", "--hours", "1")  # fmt: skip
    assert (result.returncode, result.stdout) == (2, "")
    assert result.stderr == (
        f"Error: {config}: pricing.overrides: {overrides}: line 2: usd_per_hour: 123456789012345678901234567890: expected a "
        "number from 0 to 10,000 USD per instance-hour\n"
    )


# -- bill files --------------------------------------------------------------------------------
def test_local_folder_of_more_bill_files_than_the_bound_is_one_line(tmp_path: Path) -> None:
    folder = tmp_path / "bills"
    folder.mkdir()
    for index in range(int(bounds.BILL_FILES.high) + 1):
        (folder / f"part-{index:05d}.csv").touch()
    with pytest.raises(InputError) as caught:
        local_bill_files(str(folder))
    assert str(caught.value) == (
        f"--source {folder}: more than 10,000 bill files in this folder; a reconciliation reads "
        "at most 10,000 files: point it at a narrower folder or prefix (one billing period's, say)"
    )
    (folder / "part-00000.csv").unlink()  # exactly the bound: listed
    assert len(local_bill_files(str(folder))) == 10_000


@pytest.fixture
def small_bound(monkeypatch: pytest.MonkeyPatch) -> None:
    """BILL_FILES at 2, where bill_files and billing read it."""
    bound = bounds.Bound("bill files", 1, 2, "files", "a test")
    monkeypatch.setattr(bill_files, "BILL_FILES", bound)
    monkeypatch.setattr(billing, "BILL_FILES", bound)


def test_s3_prefix_of_more_bill_files_than_the_bound_is_one_line(
    tmp_path: Path, small_bound: None
) -> None:
    with mock_aws():
        s3 = boto3.client("s3", region_name="us-east-1")
        s3.create_bucket(Bucket="billing")
        for index in range(3):
            s3.put_object(Bucket="billing", Key=f"cur/part-{index}.csv", Body=b"a\n1\n")
        s3.put_object(Bucket="billing", Key="cur/manifest.json", Body=b"{}")
        with pytest.raises(InputError) as caught:
            s3_bill_files(s3, "s3://billing/cur/")
        s3.delete_object(Bucket="billing", Key="cur/part-2.csv")
        assert [f.name for f in s3_bill_files(s3, "s3://billing/cur/")] == [
            "s3://billing/cur/part-0.csv",
            "s3://billing/cur/part-1.csv",
        ]
    assert str(caught.value) == (
        "--source s3://billing/cur/: more than 2 bill files under this prefix; a reconciliation "
        "reads at most 2 files: point it at a narrower folder or prefix (one billing period's, say)"
    )


def test_s3_objects_streamed_through_a_temporary_file_one_at_a_time(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Listing fetches nothing; each object is written to its own temporary folder just before
    it is read, and the folder is gone before the next is fetched and after the last."""
    temp = tmp_path / "temp"
    temp.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(temp))
    with mock_aws():
        s3 = boto3.client("s3", region_name="us-east-1")
        s3.create_bucket(Bucket="billing")
        s3.put_object(Bucket="billing", Key="cur/part-0.parquet",
                      Body=cur_parquet(tmp_path / "a.parquet", CUR_ROWS[:2]).read_bytes())  # fmt: skip
        s3.put_object(Bucket="billing", Key="cur/part-1.csv.gz",
                      Body=cur_csv_gz(tmp_path / "b.csv.gz", CUR_ROWS[2:]).read_bytes())  # fmt: skip
        files = s3_bill_files(s3, "s3://billing/cur/")
        assert [(f.data, f.local) for f in files] == [(None, None), (None, None)]
        seen: list[list[str]] = []
        for f in files:
            fetch = f.fetch
            assert fetch is not None

            def spy(target: Path, fetch=fetch) -> None:
                seen.append(sorted(p.name for p in temp.iterdir()))  # the previous one is gone
                fetch(target)

            object.__setattr__(f, "fetch", spy)
        read = read_bill(files, "team", "s3://billing/cur/")
    assert summary(read) == EXPECTED
    assert read.files == ["s3://billing/cur/part-0.parquet", "s3://billing/cur/part-1.csv.gz"]
    assert len(seen) == 2 and all(len(names) == 1 for names in seen)  # only its own folder
    assert list(temp.iterdir()) == []


def test_s3_object_gone_before_it_is_read_is_one_line_and_leaves_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    temp = tmp_path / "temp"
    temp.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(temp))
    with mock_aws():
        s3 = boto3.client("s3", region_name="us-east-1")
        s3.create_bucket(Bucket="billing")
        s3.put_object(Bucket="billing", Key="cur/part-0.csv", Body=b"a\n1\n")
        files = s3_bill_files(s3, "s3://billing/cur/")
        s3.delete_object(Bucket="billing", Key="cur/part-0.csv")
        with pytest.raises(TrackerError) as caught:
            read_bill(files, "team", "s3://billing/cur/")
    assert str(caught.value).startswith("s3://billing/cur/part-0.csv: cannot read (NoSuchKey")
    assert list(temp.iterdir()) == []
