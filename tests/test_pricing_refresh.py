"""`tracker prices refresh`: AWS Price List GetProducts (stubbed, moto has no Pricing API)."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import boto3
import pytest
from botocore.stub import Stubber

from tracker.aws.pricing import (
    Refreshed,
    fetch_training_rates,
    parse_price_item,
    parse_storage_item,
    refresh,
)
from tracker.aws.session import pricing_client
from tracker.cost.prices import PriceBook, PriceRow, StorageRow, write_storage_snapshot
from tracker.errors import InputError, PriceBookError, TrackerError
from tracker.settings import CollectionSettings

NOW = datetime(2026, 10, 3, 6, 0, tzinfo=UTC)
LOCATIONS = {"us-east-1": "US East (N. Virginia)", "us-west-2": "US West (Oregon)"}
ON_DEMAND = "JRTCKXETXF"  # the offer term code of every on-demand term
RATE = "6YS6EN2CT7"  # the rate code of a single, untiered price dimension


def price_item(
    sku: str,
    usagetype: str,
    usd: str,
    *,
    region: str = "us-east-1",
    platoinstancetype: str | None = "Training",
    instance: str | None = None,
    effective: str | None = "2026-09-01T00:00:00Z",
) -> str:
    """One PriceList entry as GetProducts returns it: a JSON *string*, aws_v1 format, with the
    attributes real AmazonSageMaker products carry (tests/fixtures/aws/README.md)."""
    instance = instance or usagetype.rpartition(":")[2]
    attributes = {
        "regionCode": region,
        "servicecode": "AmazonSageMaker",
        "usagetype": usagetype,
        "locationType": "AWS Region",
        "location": LOCATIONS[region],
        "servicename": "Amazon SageMaker",
        "instanceName": instance,
        "operation": "RunInstance",
    }
    if platoinstancetype is not None:
        attributes["platoinstancetype"] = platoinstancetype
        attributes["instanceType"] = f"{instance}-{platoinstancetype}"
    term = {
        "priceDimensions": {
            f"{sku}.{ON_DEMAND}.{RATE}": {
                "unit": "Hrs",
                "endRange": "Inf",
                "description": f"${usd} per {platoinstancetype or 'fee'} {instance} hour",
                "appliesTo": [],
                "rateCode": f"{sku}.{ON_DEMAND}.{RATE}",
                "beginRange": "0",
                "pricePerUnit": {"USD": usd},
            }
        },
        "sku": sku,
        "offerTermCode": ON_DEMAND,
        "termAttributes": {},
    }
    if effective is not None:
        term["effectiveDate"] = effective
    return json.dumps(
        {
            "product": {"productFamily": "ML Instance", "attributes": attributes, "sku": sku},
            "serviceCode": "AmazonSageMaker",
            "terms": {"OnDemand": {f"{sku}.{ON_DEMAND}": term}},
            "version": "20260915161514",
            "publicationDate": "2026-09-15T16:15:14Z",
        }
    )


# us-east-1 over two pages. Every dropped row, if kept, would change the result: it
# adds a type or clashes with a training rate (a clash drops the type).
USE1_PAGE_1 = [
    price_item("JMCWJEAPVJNFJ5P4", "USE1-Train:ml.m5.large", "0.1150000000"),
    price_item("SPOTG52XLSKU0001", "USE1-TrSpt:ml.g5.2xlarge", "0.4545000000",
               platoinstancetype="SpotTraining"),
    price_item("NOTEBOOKT3MSKU01", "USE1-Notebk:ml.t3.medium", "0.0500000000",
               platoinstancetype="Notebook"),
    price_item("HOSTM5XLSKU00001", "USE1-Host:ml.m5.xlarge", "0.2300000000",
               platoinstancetype="Hosting"),
]  # fmt: skip
USE1_PAGE_2 = [
    price_item("TRAING52XLSKU001", "USE1-Train:ml.g5.2xlarge", "1.5150000000"),
    price_item("TRAINP4DSKU00001", "USE1-Train:ml.p4d.24xlarge", "25.2510000000"),
    price_item("PLANFEEP4DSKU001", "USE1-TrainingPlanUpfrontFee", "13.5700000000",
               platoinstancetype=None, instance="ml.p4d.24xlarge"),
    price_item("CLUSTERP4DSKU001", "USE1-Cluster:ml.p4d.24xlarge", "25.9100000000",
               platoinstancetype="Cluster"),
]  # fmt: skip
USW2_PAGE = [
    price_item("TRAINUSW2G5XL001", "USW2-Train:ml.g5.xlarge", "1.4080000000",
               region="us-west-2", effective=None),
    price_item("SPOTUSW2G5XL0001", "USW2-TrSpt:ml.g5.xlarge", "0.4224000000",
               region="us-west-2", platoinstancetype="SpotTraining"),
]  # fmt: skip

EXPECTED_ROWS = [
    PriceRow("us-east-1", "ml.g5.2xlarge", Decimal("1.515"),
             "AWS Price List API get_products, SKU TRAING52XLSKU001, usagetype "
             "USE1-Train:ml.g5.2xlarge", "2026-09-01"),
    PriceRow("us-east-1", "ml.m5.large", Decimal("0.115"),
             "AWS Price List API get_products, SKU JMCWJEAPVJNFJ5P4, usagetype "
             "USE1-Train:ml.m5.large", "2026-09-01"),
    PriceRow("us-east-1", "ml.p4d.24xlarge", Decimal("25.251"),
             "AWS Price List API get_products, SKU TRAINP4DSKU00001, usagetype "
             "USE1-Train:ml.p4d.24xlarge", "2026-09-01"),
    # No effectiveDate on the offer: the fetch date.
    PriceRow("us-west-2", "ml.g5.xlarge", Decimal("1.408"),
             "AWS Price List API get_products, SKU TRAINUSW2G5XL001, usagetype "
             "USW2-Train:ml.g5.xlarge", "2026-10-03"),
]  # fmt: skip


def request(
    region: str | None,
    token: str | None = None,
    *,
    service: str = "AmazonSageMaker",
    family: str = "ML Instance",
) -> dict:
    filters = [{"Type": "TERM_MATCH", "Field": "productFamily", "Value": family}]
    if region is not None:
        filters.append({"Type": "TERM_MATCH", "Field": "regionCode", "Value": region})
    if service == "AmazonS3":
        filters += [
            {"Type": "TERM_MATCH", "Field": "volumeType", "Value": "Standard"},
            {"Type": "TERM_MATCH", "Field": "storageClass", "Value": "General Purpose"},
        ]
    params = {
        "ServiceCode": service,
        "Filters": filters,
        "FormatVersion": "aws_v1",
        "MaxResults": 100,
    }
    if token is not None:
        params["NextToken"] = token
    return params


def page(items: list[str], token: str | None = None) -> dict:
    response = {"FormatVersion": "aws_v1", "PriceList": items}
    if token is not None:
        response["NextToken"] = token
    return response


@pytest.fixture
def pricing(monkeypatch):
    """A real pricing client (us-east-1 endpoint) with a Stubber; all responses used."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    client = boto3.client("pricing", region_name="us-east-1")
    with Stubber(client) as stubber:
        yield client, stubber
        stubber.assert_no_pending_responses()


def queue_two_regions(stubber: Stubber) -> None:
    stubber.add_response("get_products", page(USE1_PAGE_1, "page-2-token"), request("us-east-1"))
    stubber.add_response("get_products", page(USE1_PAGE_2), request("us-east-1", "page-2-token"))
    stubber.add_response("get_products", page(USW2_PAGE), request("us-west-2"))


def storage_request(region: str | None, service: str = "AmazonSageMaker") -> dict:
    return request(region, service=service, family="Storage")


def queue_no_storage(stubber: Stubber, regions: list[str]) -> None:
    """The storage queries a refresh makes after the training ones, answered with nothing."""
    for region in regions:
        stubber.add_response("get_products", page([]), storage_request(region))
    for region in regions:
        stubber.add_response("get_products", page([]), storage_request(region, "AmazonS3"))


def test_fetch_training_rates_keeps_only_on_demand_training(pricing):
    client, stubber = pricing
    queue_two_regions(stubber)
    rows = fetch_training_rates(client, ["us-east-1", "us-west-2", "us-east-1"], now=NOW)
    assert rows == EXPECTED_ROWS


def test_refresh_writes_snapshot_that_wins_over_shipped(pricing, tmp_path: Path):
    client, stubber = pricing
    queue_two_regions(stubber)
    queue_no_storage(stubber, ["us-east-1", "us-west-2"])
    snapshot = tmp_path / "prices"
    snapshot.mkdir()  # the shipped rates under the refresh are the package's own

    refreshed = refresh(client, snapshot, NOW, regions=iter(["us-east-1", "us-west-2"]))
    path = refreshed.path

    assert (path, refreshed.rates) == (snapshot / "refreshed-20261003.csv", 4)
    assert (refreshed.storage_path, refreshed.storage_rates) == (None, 0)
    assert sorted(p.name for p in snapshot.iterdir()) == ["refreshed-20261003.csv"]
    assert path.read_text(encoding="utf-8") == (
        "region,instance_type,usd_per_hour,source,source_date,confidence\n"
        'us-east-1,ml.g5.2xlarge,1.515,"AWS Price List API get_products, SKU TRAING52XLSKU001,'
        ' usagetype USE1-Train:ml.g5.2xlarge",2026-09-01,high\n'
        'us-east-1,ml.m5.large,0.115,"AWS Price List API get_products, SKU JMCWJEAPVJNFJ5P4,'
        ' usagetype USE1-Train:ml.m5.large",2026-09-01,high\n'
        'us-east-1,ml.p4d.24xlarge,25.251,"AWS Price List API get_products, SKU '
        'TRAINP4DSKU00001, usagetype USE1-Train:ml.p4d.24xlarge",2026-09-01,high\n'
        'us-west-2,ml.g5.xlarge,1.408,"AWS Price List API get_products, SKU TRAINUSW2G5XL001,'
        ' usagetype USW2-Train:ml.g5.xlarge",2026-10-03,high\n'
    )
    book = PriceBook.load(snapshot)
    assert book.source("us-east-1", "ml.p4d.24xlarge") == (
        f"{path} line 4 (AWS Price List API get_products, SKU TRAINP4DSKU00001, "
        "usagetype USE1-Train:ml.p4d.24xlarge)"
    )
    assert book.hourly("eu-west-1", "ml.p3.2xlarge") == Decimal("4.131")  # shipped, kept
    assert book.hourly("us-east-1", "ml.t3.medium") is None
    assert book.hourly("us-east-1", "ml.m5.xlarge") == Decimal("0.23")  # shipped, not Hosting


def test_refresh_refuses_empty_snapshot(pricing, tmp_path: Path):
    client, stubber = pricing
    dropped_only = [item for item in USE1_PAGE_1 + USE1_PAGE_2 if "-Train:" not in item]
    stubber.add_response("get_products", page(dropped_only), request("us-east-1"))
    with pytest.raises(TrackerError) as caught:
        refresh(client, tmp_path, NOW, regions=["us-east-1"])
    assert str(caught.value) == (
        "the AWS Price List API returned no on-demand SageMaker training rates for "
        "us-east-1; no snapshot written (check the region codes and that the pricing client "
        "uses one of us-east-1, eu-central-1, ap-south-1)"
    )
    assert list(tmp_path.iterdir()) == []


def test_fetch_training_rates_all_regions_has_no_region_filter(pricing):
    client, stubber = pricing
    stubber.add_response("get_products", page(USW2_PAGE[:1]), request(None))
    assert fetch_training_rates(client) == [
        PriceRow("us-west-2", "ml.g5.xlarge", Decimal("1.408"), EXPECTED_ROWS[3].source, "")
    ]


def test_fetch_training_rates_api_error_is_one_line(pricing):
    client, stubber = pricing
    stubber.add_client_error(
        "get_products",
        service_error_code="AccessDeniedException",
        service_message="User is not authorized to perform: pricing:GetProducts",
        http_status_code=400,
        expected_params=request("us-east-1"),
    )
    with pytest.raises(TrackerError) as caught:
        fetch_training_rates(client, ["us-east-1"])
    assert str(caught.value) == (
        "AWS Price List API get_products (AmazonSageMaker, us-east-1) failed: An error "
        "occurred (AccessDeniedException) when calling the GetProducts operation: User is "
        "not authorized to perform: pricing:GetProducts"
    )


def test_fetch_training_rates_conflicting_skus_leave_type_unpriced(pricing, caplog):
    client, stubber = pricing
    items = [
        price_item("TRAINM5LSKUAAAA1", "USE1-Train:ml.m5.large", "0.1150000000"),
        price_item("TRAINM5LSKUBBBB2", "USE1-Train:ml.m5.large", "0.1200000000"),
        price_item("TRAINM5LSKUCCCC3", "USE1-Train:ml.g5.2xlarge", "1.5150000000"),
        price_item("TRAINM5LSKUDDDD4", "USE1-Train:ml.g5.2xlarge", "1.515"),  # same rate
    ]
    stubber.add_response("get_products", page(items), request("us-east-1"))
    with caplog.at_level(logging.WARNING, logger="tracker.aws.pricing"):
        rows = fetch_training_rates(client, ["us-east-1"], now=NOW)
    assert [(r.instance_type, r.usd_per_hour) for r in rows] == [
        ("ml.g5.2xlarge", Decimal("1.515"))
    ]
    assert "no rate for us-east-1 ml.m5.large" in caplog.text


def test_fetch_training_rates_rejects_bad_region_before_calling(pricing):
    client, _ = pricing
    with pytest.raises(InputError) as caught:
        fetch_training_rates(client, ["us-east-1", "US East"])
    assert str(caught.value) == (
        "regions: 'US East' is not an AWS region code; expected one like us-east-1"
    )


@pytest.mark.parametrize(
    "usagetype",
    [
        "USE1-TrSpt:ml.g5.2xlarge",
        "USE1-Train:ml.g5.2xlarge-Spot",
        "USE1-TrainingPlanUpfrontFee",
        "USE1-Cluster:ml.g5.2xlarge",
        "USE1-Host:ml.g5.2xlarge",
        "USE1-Notebk:ml.g5.2xlarge",
        "USE1-Processing:ml.g5.2xlarge",
    ],
)
def test_parse_price_item_drops_non_training_usage(usagetype: str):
    assert parse_price_item(price_item("SKU1", usagetype, "1.0")) is None


@pytest.mark.parametrize("platoinstancetype", ["Cluster", "SpotTraining", "Hosting", None])
def test_parse_price_item_drops_training_usage_with_other_platoinstancetype(
    platoinstancetype: str | None,
):
    item = price_item(
        "SKU1", "USE1-Train:ml.g5.2xlarge", "1.0", platoinstancetype=platoinstancetype
    )
    assert parse_price_item(item) is None


def test_pricing_client_takes_the_collection_retries_when_given(monkeypatch):
    monkeypatch.setenv("AWS_ENDPOINT_URL_PRICING", "http://127.0.0.1:4566")
    default = pricing_client()
    tuned = pricing_client(
        "eu-central-1", CollectionSettings(retry_mode="adaptive", max_attempts=2)
    )
    assert (default.meta.region_name, default.meta.endpoint_url) == (
        "us-east-1",
        "http://127.0.0.1:4566",
    )
    assert default.meta.config.retries == {"mode": "standard", "total_max_attempts": 4}
    assert tuned.meta.region_name == "eu-central-1"
    assert tuned.meta.config.retries == {"mode": "adaptive", "total_max_attempts": 2}


# --- GetProducts documents in the real attribute layout (tests/fixtures/aws/get-products) ---

FIXTURES = Path(__file__).parent / "fixtures" / "aws" / "get-products"


def fixture_page(name: str) -> dict:
    """A recorded-shape GetProducts response: PriceList holds JSON strings."""
    return json.loads((FIXTURES / name).read_text(encoding="utf-8"))


def fixture_items(name: str) -> list[str]:
    return fixture_page(name)["PriceList"]


def queue_fixtures(stubber: Stubber) -> None:
    """us-east-1 (instances over two pages) and eu-west-1, then their storage and S3 pages."""
    first = fixture_page("sagemaker-ml-instance-us-east-1-page-1.json")
    stubber.add_response("get_products", first, request("us-east-1"))
    stubber.add_response(
        "get_products",
        fixture_page("sagemaker-ml-instance-us-east-1-page-2.json"),
        request("us-east-1", first["NextToken"]),
    )
    stubber.add_response(
        "get_products", fixture_page("sagemaker-ml-instance-eu-west-1.json"), request("eu-west-1")
    )
    for region in ("us-east-1", "eu-west-1"):
        stubber.add_response(
            "get_products",
            fixture_page(f"sagemaker-storage-{region}.json"),
            storage_request(region),
        )
    for region in ("us-east-1", "eu-west-1"):
        stubber.add_response(
            "get_products",
            fixture_page(f"s3-standard-{region}.json"),
            storage_request(region, "AmazonS3"),
        )


def test_refresh_reads_real_layout_products(pricing, tmp_path: Path, caplog):
    """Training rows only (SpotTraining, Hosting, Cluster, Notebook and the plan fee skipped),
    the training volume (not Hosting or Processing volumes) and S3 Standard's first tier."""
    client, stubber = pricing
    queue_fixtures(stubber)
    with caplog.at_level(logging.WARNING, logger="tracker.aws.pricing"):
        refreshed = refresh(client, tmp_path, NOW, regions=["us-east-1", "eu-west-1"])

    assert refreshed == Refreshed(
        tmp_path / "refreshed-20261003.csv", 7, tmp_path / "refreshed-storage-20261003.csv", 3
    )
    rows = [line.split(",")[:3] for line in refreshed.path.read_text().splitlines()[1:]]
    assert rows == [
        ["eu-west-1", "ml.g4dn.xlarge", "0.822"],
        ["eu-west-1", "ml.g5.xlarge", "1.57"],
        ["eu-west-1", "ml.m5.xlarge", "0.257"],  # the SpotTraining row would clash: kept
        ["eu-west-1", "ml.p3.2xlarge", "4.131"],
        ["us-east-1", "ml.g5.2xlarge", "1.515"],
        ["us-east-1", "ml.m5.large", "0.115"],
        ["us-east-1", "ml.p4d.24xlarge", "25.251"],  # the Cluster row (25.91) would clash
    ]
    assert refreshed.storage_path.read_text(encoding="utf-8") == (
        "region,kind,usd_per_gb_month,source,source_date,confidence\n"
        'eu-west-1,ml-storage,0.154,"AWS Price List API get_products, SKU EUTRAINVOLGP2001, '
        'usagetype EU-Train:VolumeUsage.gp2",2026-09-01,high\n'
        'eu-west-1,s3-standard,0.023,"AWS Price List API get_products, SKU EUS3STANDARD0001, '
        'usagetype EU-TimedStorage-ByteHrs",2026-09-01,high\n'
        'us-east-1,s3-standard,0.023,"AWS Price List API get_products, SKU WP9ANXAXYUS3STD1, '
        'usagetype TimedStorage-ByteHrs",2026-09-01,high\n'
    )
    # The us-east-1 page has only the Hosting volume: training storage stays unpriced, said so.
    assert "no ml-storage rate for us-east-1 in the Price List" in caplog.text
    book = PriceBook.load(tmp_path)
    assert book.storage_usd_per_gb_month("us-east-1") is None
    assert book.s3_usd_per_gb_month("us-east-1") == Decimal("0.023")
    assert book.hourly("us-east-1", "ml.m5.4xlarge") == Decimal("0.922")  # shipped, not Hosting


@pytest.mark.parametrize(
    ("fixture", "sku", "expected"),
    [
        ("sagemaker-storage-eu-west-1.json", "EUTRAINVOLGP2001", ("eu-west-1", "ml-storage", "0.154")),
        ("sagemaker-storage-eu-west-1.json", "EUHOSTVOLGP20001", None),
        ("sagemaker-storage-eu-west-1.json", "EUPROCVOLGP20001", None),
        ("sagemaker-storage-us-east-1.json", "USE1HOSTVOLGP201", None),
        ("s3-standard-eu-west-1.json", "EUS3STANDARD0001", ("eu-west-1", "s3-standard", "0.023")),
        ("sagemaker-ml-instance-us-east-1-page-2.json", "P4DTRAIN24XL0001", None),
    ],
)  # fmt: skip
def test_parse_storage_item_reads_training_volume_and_s3_standard_only(fixture, sku, expected):
    (item,) = [i for i in fixture_items(fixture) if json.loads(i)["product"]["sku"] == sku]
    row = parse_storage_item(item, "2026-10-03")
    got = None if row is None else (row.region, row.kind, format(row.usd_per_gb_month.normalize()))
    assert got == expected


@pytest.mark.parametrize(
    "sku",
    ["Q4FJ7ZVNW2SPTRN1", "H7XW2KQ9NOTEBK01", "R2D8VHOSTP4D0001", "C1USTERP4D24XL01",
     "UPFR0NTFEEP4D001"],
)  # fmt: skip
def test_parse_price_item_skips_real_layout_non_training_products(sku):
    items = fixture_items("sagemaker-ml-instance-us-east-1-page-1.json") + fixture_items(
        "sagemaker-ml-instance-us-east-1-page-2.json"
    )
    (item,) = [i for i in items if json.loads(i)["product"]["sku"] == sku]
    assert parse_price_item(item) is None


def test_parse_storage_item_takes_first_s3_tier_whatever_the_order():
    """The eu-west-1 document lists the over-500 TB tier first; the 0 GB tier is the rate."""
    (item,) = fixture_items("s3-standard-eu-west-1.json")
    dimensions = next(iter(json.loads(item)["terms"]["OnDemand"].values()))["priceDimensions"]
    assert next(iter(dimensions.values()))["beginRange"] == "512000"
    assert parse_storage_item(item).usd_per_gb_month == Decimal("0.0230000000")


def test_refreshed_storage_snapshot_wins_over_shipped_and_loses_to_settings(tmp_path: Path):
    old = [StorageRow("eu-west-1", "ml-storage", Decimal("0.5"))]
    write_storage_snapshot(old, tmp_path, datetime(2026, 9, 1, tzinfo=UTC))
    new = [
        StorageRow("eu-west-1", "ml-storage", Decimal("0.2")),  # test inputs, not prices
        StorageRow("us-west-2", "s3-standard", Decimal("0.03")),
    ]
    write_storage_snapshot(new, tmp_path, NOW)
    assert PriceBook.load().storage_usd_per_gb_month("eu-west-1") == Decimal("0.154")  # shipped
    book = PriceBook.load(tmp_path)
    assert book.storage_usd_per_gb_month("eu-west-1") == Decimal("0.2")  # newest file wins
    assert book.s3_usd_per_gb_month("us-west-2") == Decimal("0.03")
    configured = PriceBook.load(tmp_path, storage_overrides={"eu-west-1": Decimal("0.3")})
    assert configured.storage_usd_per_gb_month("eu-west-1") == Decimal("0.3")


def test_write_storage_snapshot_rejects_duplicates_and_leaves_no_file(tmp_path: Path):
    rows = [StorageRow("eu-west-1", "ml-storage", Decimal("0.2"))] * 2
    with pytest.raises(PriceBookError) as caught:
        write_storage_snapshot(rows, tmp_path, NOW)
    assert str(caught.value) == (
        f"{tmp_path}/refreshed-storage-20261003.csv: line 3: kind: duplicate ml-storage rate "
        "for eu-west-1; expected one row per region and kind"
    )
    assert list(tmp_path.iterdir()) == []
