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

from tracker.aws.pricing import fetch_training_rates, parse_price_item, refresh
from tracker.aws.session import pricing_client
from tracker.cost.prices import PriceBook, PriceRow
from tracker.errors import InputError, TrackerError
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
    component: str | None = "Training",
    instance: str | None = None,
    effective: str | None = "2026-09-01T00:00:00Z",
) -> str:
    """One PriceList entry as GetProducts returns it: a JSON *string*, aws_v1 format."""
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
    if component is not None:
        attributes["component"] = component
    term = {
        "priceDimensions": {
            f"{sku}.{ON_DEMAND}.{RATE}": {
                "unit": "Hrs",
                "endRange": "Inf",
                "description": f"${usd} per {component or 'fee'} {instance} hour",
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
    price_item("SPOTG52XLSKU0001", "USE1-TrSpt:ml.g5.2xlarge", "0.4545000000"),
    price_item("NOTEBOOKT3MSKU01", "USE1-Notebk:ml.t3.medium", "0.0500000000",
               component="Notebook"),
    price_item("HOSTM5XLSKU00001", "USE1-Host:ml.m5.xlarge", "0.2300000000",
               component="Hosting"),
]  # fmt: skip
USE1_PAGE_2 = [
    price_item("TRAING52XLSKU001", "USE1-Train:ml.g5.2xlarge", "1.5150000000"),
    price_item("TRAINP4DSKU00001", "USE1-Train:ml.p4d.24xlarge", "25.2510000000"),
    price_item("PLANFEEP4DSKU001", "USE1-TrainingPlanUpfrontFee", "13.5700000000",
               component=None, instance="ml.p4d.24xlarge"),
    price_item("CLUSTERP4DSKU001", "USE1-Cluster:ml.p4d.24xlarge", "25.9100000000",
               component="Cluster"),
]  # fmt: skip
USW2_PAGE = [
    price_item("TRAINUSW2G5XL001", "USW2-Train:ml.g5.xlarge", "1.4080000000",
               region="us-west-2", effective=None),
    price_item("SPOTUSW2G5XL0001", "USW2-TrSpt:ml.g5.xlarge", "0.4224000000",
               region="us-west-2"),
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


def request(region: str | None, token: str | None = None) -> dict:
    filters = [{"Type": "TERM_MATCH", "Field": "productFamily", "Value": "ML Instance"}]
    if region is not None:
        filters.append({"Type": "TERM_MATCH", "Field": "regionCode", "Value": region})
    params = {
        "ServiceCode": "AmazonSageMaker",
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


def test_fetch_training_rates_keeps_only_on_demand_training(pricing):
    client, stubber = pricing
    queue_two_regions(stubber)
    rows = fetch_training_rates(client, ["us-east-1", "us-west-2", "us-east-1"], now=NOW)
    assert rows == EXPECTED_ROWS


def test_refresh_writes_snapshot_that_wins_over_shipped(pricing, tmp_path: Path):
    client, stubber = pricing
    queue_two_regions(stubber)
    snapshot = tmp_path / "prices"
    snapshot.mkdir()  # the shipped rates under the refresh are the package's own

    path, count = refresh(client, snapshot, NOW, regions=iter(["us-east-1", "us-west-2"]))

    assert (path, count) == (snapshot / "refreshed-20261003.csv", 4)
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


def test_parse_price_item_drops_training_usage_with_other_component():
    item = price_item("SKU1", "USE1-Train:ml.g5.2xlarge", "1.0", component="Cluster")
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
