"""Real AWS shapes: the fixtures in tests/fixtures/aws/ checked against botocore's own service
model, then run through the parser and the cost engine.

Where each fixture comes from is in tests/fixtures/aws/README.md. The shape check is what
keeps an invented field out: every key must be a member of botocore's output shape for the
operation, and every value must have the member's type, all the way down.

Expected costs are written out with their arithmetic. Rates marked "traced" are the shipped
price book's (tracker/cost/data/training-on-demand.csv); the others are test inputs, not
prices. Values that only the rules of issue 11 give (training plans on instance preferences,
serverless detection by ServerlessJobConfig, month-length storage) are kept apart, in each
case's ``pending`` and in the month-length test, so the rule each one checks is named.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.model import Shape

from tracker.collect.parse import ResponseError, job_from_describe, to_utc
from tracker.cost.engine import CostPolicy, cost_job
from tracker.records import JobCost, JobRecord, Rates
from tracker.settings import Attribution

FIXTURES = Path(__file__).parent / "fixtures" / "aws"
DESCRIBE_DIR = FIXTURES / "describe-training-job"
GET_PRODUCTS_DIR = FIXTURES / "get-products"
DESCRIBE_FIXTURES = sorted(p.name for p in DESCRIBE_DIR.glob("*.json"))
GET_PRODUCTS_FIXTURES = sorted(p.name for p in GET_PRODUCTS_DIR.glob("*.json"))
QUANTUM = Decimal("1e-12")


def output_shape(service: str, operation: str) -> Shape:
    client = boto3.client(service, region_name="us-east-1")
    return client.meta.service_model.operation_model(operation).output_shape


def shape_problems(value: Any, shape: Shape, path: str = "$") -> list[str]:
    """Every place ``value`` departs from botocore's ``shape``: unknown keys, wrong types."""
    kind = shape.type_name
    if kind == "structure":
        if not isinstance(value, dict):
            return [f"{path}: expected an object ({shape.name}), got {type(value).__name__}"]
        problems = []
        for key, item in value.items():
            member = shape.members.get(key)
            if member is None:
                problems.append(f"{path}.{key}: not a member of {shape.name}")
            else:
                problems.extend(shape_problems(item, member, f"{path}.{key}"))
        return problems
    if kind == "list":
        if not isinstance(value, list):
            return [f"{path}: expected a list ({shape.name}), got {type(value).__name__}"]
        return [p for i, item in enumerate(value) for p in shape_problems(item, shape.member, f"{path}[{i}]")]  # fmt: skip
    if kind == "map":
        if not isinstance(value, dict):
            return [f"{path}: expected a map ({shape.name}), got {type(value).__name__}"]
        problems = []
        for key, item in value.items():
            problems.extend(shape_problems(key, shape.key, f"{path} key {key!r}"))
            problems.extend(shape_problems(item, shape.value, f"{path}[{key!r}]"))
        return problems
    if kind == "string":
        ok = isinstance(value, str) and (not shape.enum or value in shape.enum)
        return [] if ok else [f"{path}: {value!r} is not a {shape.name} string {shape.enum or ''}"]
    if kind in ("integer", "long"):
        ok = isinstance(value, int) and not isinstance(value, bool)
        return [] if ok else [f"{path}: {value!r} is not an {kind}"]
    if kind in ("float", "double"):
        ok = isinstance(value, int | float) and not isinstance(value, bool)
        return [] if ok else [f"{path}: {value!r} is not a {kind}"]
    if kind == "boolean":
        return [] if isinstance(value, bool) else [f"{path}: {value!r} is not a boolean"]
    if kind == "timestamp":
        # The JSON protocol sends epoch seconds; the recordings carry ISO 8601 text.
        if isinstance(value, int | float) and not isinstance(value, bool):
            return []
        try:
            to_utc(value, path)
        except ResponseError as exc:
            return [f"{path}: {value!r} is not a timestamp ({exc})"]
        return []
    return [f"{path}: shape type {kind} is not checked by this test; extend shape_problems"]


def as_boto3(value: Any, shape: Shape) -> Any:
    """The JSON document as boto3 returns it: timestamps become aware datetimes."""
    kind = shape.type_name
    if kind == "structure":
        return {key: as_boto3(item, shape.members[key]) for key, item in value.items()}
    if kind == "list":
        return [as_boto3(item, shape.member) for item in value]
    if kind == "map":
        return {key: as_boto3(item, shape.value) for key, item in value.items()}
    if kind == "timestamp":
        if isinstance(value, int | float):
            return datetime.fromtimestamp(value, UTC)
        return to_utc(value)
    return value


DESCRIBE_SHAPE = output_shape("sagemaker", "DescribeTrainingJob")


def load_describe(name: str) -> dict[str, Any]:
    return json.loads((DESCRIBE_DIR / name).read_text(encoding="utf-8"))


@pytest.mark.parametrize("name", DESCRIBE_FIXTURES)
def test_describe_fixture_matches_botocore_output_shape(name: str) -> None:
    assert shape_problems(load_describe(name), DESCRIBE_SHAPE) == []


@pytest.mark.parametrize("name", GET_PRODUCTS_FIXTURES)
def test_get_products_fixture_matches_botocore_output_shape(name: str) -> None:
    response = json.loads((GET_PRODUCTS_DIR / name).read_text(encoding="utf-8"))
    assert shape_problems(response, output_shape("pricing", "GetProducts")) == []
    assert response["FormatVersion"] == "aws_v1"
    for entry in response["PriceList"]:  # each entry is a JSON document in a string
        assert set(json.loads(entry)) >= {"product", "serviceCode", "terms"}


def test_shape_check_rejects_invented_fields_and_wrong_types() -> None:
    """The check can fail: a made-up key at any depth, a wrong type or an unknown enum value."""
    doc = load_describe("ack-completed.json")
    doc["BillableSeconds"] = 159
    doc["ResourceConfig"]["TrainingPlanArns"] = ["arn:aws:sagemaker:us-east-1:123456789012:x"]
    doc["ResourceConfig"]["InstanceCount"] = "1"
    doc["EnableManagedSpotTraining"] = "false"
    doc["SecondaryStatusTransitions"][0]["StartTime"] = "yesterday"
    doc["WarmPoolStatus"] = {"Status": "Open"}
    assert shape_problems(doc, DESCRIBE_SHAPE) == [
        "$.EnableManagedSpotTraining: 'false' is not a boolean",
        "$.ResourceConfig.InstanceCount: '1' is not an integer",
        "$.ResourceConfig.TrainingPlanArns: not a member of ResourceConfig",
        "$.SecondaryStatusTransitions[0].StartTime: 'yesterday' is not a timestamp "
        "($.SecondaryStatusTransitions[0].StartTime: 'yesterday' is not an ISO 8601 time)",
        "$.BillableSeconds: not a member of DescribeTrainingJobResponse",
        "$.WarmPoolStatus.Status: 'Open' is not a WarmPoolResourceStatus string "
        "['Available', 'Terminated', 'Reused', 'InUse']",
    ]


# --- through the parser and the engine --------------------------------------------------

ACK_START = datetime(2021, 10, 12, 5, 52, 46, 108000, tzinfo=UTC)  # TrainingStartTime
# Test inputs, not prices: us-west-2 ml.m4.xlarge and ml.c5.xlarge have no traced rate.
M4_XLARGE = Decimal("0.30")
C5_XLARGE = Decimal("0.20")
STORAGE = Decimal("0.10")  # USD per GB-month, test input
TOKENS = Decimal("4.00")  # USD per million tokens, test input
# Traced (shipped us-east-1 rows of training-on-demand.csv).
P4D_24XLARGE = Decimal("25.251")
M5_LARGE = Decimal("0.115")
USW2 = Rates(
    hourly={"ml.m4.xlarge": M4_XLARGE, "ml.c5.xlarge": C5_XLARGE},
    storage_usd_per_gb_month=STORAGE,
)
USE1 = Rates(
    hourly={"ml.p4d.24xlarge": P4D_24XLARGE, "ml.m5.large": M5_LARGE},
    storage_usd_per_gb_month=STORAGE,
    usd_per_million_tokens=TOKENS,
)


@dataclass(frozen=True)
class Case:
    """One fixture: what the parser must read and what today's and issue 11's rules agree on."""

    fixture: str
    rates: Rates
    parsed: Mapping[str, object]
    cost: Mapping[str, Decimal]
    flags: tuple[str, ...] | None = None  # exact, when both rule sets agree on all of them
    flags_include: tuple[str, ...] = ()
    now: datetime = datetime(2026, 10, 10, tzinfo=UTC)
    pending: Mapping[str, object] = field(default_factory=dict)


CASES = [
    # 1 x ml.m4.xlarge, 159 billable s: 0.30 x 159 / 3600 = 0.01325.
    Case(
        "ack-completed.json",
        USW2,
        parsed={
            "status": "Completed",
            "instance_type": "ml.m4.xlarge",
            "instance_count": 1,
            "billable_seconds": 159,
            "training_seconds": 159,
            "volume_gb": 5,
            "warm_pool_status": None,
        },
        cost={
            "compute_usd": Decimal("0.01325"),
            "warm_pool_usd": Decimal(0),
            "spot_savings_usd": Decimal(0),
            "plan_value_usd": Decimal(0),
        },
        flags=(),
    ),  # fmt: skip
    # The recording has no BillableTimeInSeconds and no TrainingEndTime: compute 0, flagged.
    # Retained 69 s x 1 x 0.30 / 3600 = 0.00575.
    Case(
        "ack-warm-pool-terminated.json",
        USW2,
        parsed={
            "warm_pool_status": "Terminated",
            "warm_pool_retained_seconds": 69,
            "billable_seconds": None,
            "end_time": None,
        },
        cost={"compute_usd": Decimal(0), "warm_pool_usd": Decimal("0.00575")},
        flags=("no-billable-time",),
    ),  # fmt: skip
    # Reused by the next job: the same 69 retained seconds, 0.00575.
    Case(
        "ack-warm-pool-reused.json",
        USW2,
        parsed={
            "warm_pool_status": "Reused",
            "warm_pool_retained_seconds": 69,
            "warm_pool_reused_by": "Trainingjob-ccsjjbdsjhhcsvdj",
        },
        cost={"compute_usd": Decimal(0), "warm_pool_usd": Decimal("0.00575")},
        flags=("no-billable-time",),
    ),  # fmt: skip
    # Pool still Available: retained time unknown, so the job stays open (warm-pool-open).
    Case(
        "ack-warm-pool-available.json",
        USW2,
        parsed={"warm_pool_status": "Available", "warm_pool_retained_seconds": None},
        cost={"compute_usd": Decimal(0), "warm_pool_usd": Decimal(0)},
        flags_include=("no-billable-time", "warm-pool-open"),
    ),  # fmt: skip
    # Running an hour (now = start + 3600 s): 0.30 x 3600 / 3600 = 0.30.
    Case(
        "ack-warm-pool-in-use.json",
        USW2,
        parsed={"status": "InProgress", "warm_pool_status": "InUse"},
        cost={"compute_usd": Decimal("0.30"), "warm_pool_usd": Decimal(0)},
        # A running job is re-read every collection anyway: warm-pool-open marks a pool kept
        # after a job ended (docs/cost-model.md, rule 4), so this one is only "running".
        flags_include=("running",),
        now=ACK_START + timedelta(hours=1),
    ),  # fmt: skip
    # Two groups running an hour: (0.20 x 1 + 0.30 x 1) x 3600 / 3600 = 0.50.
    Case(
        "ack-instance-groups-in-progress.json",
        USW2,
        parsed={
            "status": "InProgress",
            "instance_count": 0,
            "groups": (("ml.c5.xlarge", 1, "preprocess"), ("ml.m4.xlarge", 1, "train")),
        },
        cost={"compute_usd": Decimal("0.50"), "warm_pool_usd": Decimal(0)},
        flags=("running",),
        now=ACK_START + timedelta(hours=1),
    ),  # fmt: skip
    # Selected preference 1 x ml.p4d.24xlarge (traced $25.251/h) carries a plan: 36,000 s are
    # prepaid. On-demand value 25.251 x 36000 / 3600 = 252.51, shown as plan_value_usd.
    # ml.p4d has local NVMe (AWS names it): no billed volume, storage 0 under any rule.
    Case(
        "constructed-instance-preferences-training-plan.json",
        USE1,
        parsed={
            "selected_instance_type": "ml.p4d.24xlarge",
            "selected_instance_count": 1,
            "instance_type": None,
            "billable_seconds": 36000,
        },
        cost={
            "warm_pool_usd": Decimal(0),
            "spot_savings_usd": Decimal(0),
            "storage_usd": Decimal(0),
        },
        pending={
            "compute_usd": Decimal(0),
            "plan_value_usd": Decimal("252.51"),
            "flags": ("training-plan",),
        },
    ),  # fmt: skip
    # 2,500,000 tokens x $4.00 (test input) per million = 10.00; no instance time, no volume.
    Case(
        "constructed-serverless.json",
        USE1,
        parsed={
            "billable_token_count": 2_500_000,
            "instance_type": None,
            "serverless_base_model_arn": "arn:aws:sagemaker:us-east-1:aws:hub-content/"
            "SageMakerPublicHub/Model/meta-textgeneration-llama-3-2-1b/1.0.0",
        },
        cost={"compute_usd": Decimal("10.00"), "storage_usd": Decimal(0)},
        flags=(),
    ),  # fmt: skip
    # An instance job that reports BillableTokenCount 0 and no ServerlessJobConfig:
    # 2 x ml.m5.large (traced $0.115/h) x 3600 s / 3600 = 0.23.
    Case(
        "constructed-instance-job-token-count-zero.json",
        USE1,
        parsed={
            "instance_type": "ml.m5.large",
            "instance_count": 2,
            "billable_token_count": 0,
            "serverless_base_model_arn": None,
        },
        cost={"warm_pool_usd": Decimal(0), "spot_savings_usd": Decimal(0)},
        pending={"compute_usd": Decimal("0.23"), "flags": ()},
    ),  # fmt: skip
    # Managed spot, the API reference's example: billable 100 s of 500 s trained.
    # compute 0.115 x 100 / 3600 = 0.003194444444...; savings 0.115 x 400 / 3600 = 0.012777...
    Case(
        "constructed-managed-spot.json",
        USE1,
        parsed={
            "spot": True,
            "billable_seconds": 100,
            "training_seconds": 500,
            "checkpoint_uri": "s3://example-bucket-123456789012/spot/checkpoints",
        },
        cost={
            "compute_usd": Decimal("0.003194444444"),
            "spot_savings_usd": Decimal("0.012777777778"),
        },
        flags=(),
    ),  # fmt: skip
]
CASE_IDS = [case.fixture.removesuffix(".json") for case in CASES]


def parse_fixture(name: str) -> JobRecord:
    desc = as_boto3(load_describe(name), DESCRIBE_SHAPE)
    _, _, _, region, account, _ = desc["TrainingJobArn"].split(":", 5)
    return job_from_describe(desc, account, region, {}, 0, Attribution())


def cost_of(case: Case) -> JobCost:
    return cost_job(parse_fixture(case.fixture), case.rates, case.now, CostPolicy())


def value(record: JobRecord, name: str) -> object:
    if name == "groups":
        return tuple((g.instance_type, g.count, g.name) for g in record.instance_groups)
    return getattr(record, name)


def assert_cost(cost: JobCost, expected: Mapping[str, object]) -> None:
    for name, want in expected.items():
        if name == "flags":
            assert cost.flags == want
        elif name == "flags_include":
            assert set(want) <= set(cost.flags), cost.flags
        else:
            assert getattr(cost, name).quantize(QUANTUM) == want, name


def test_every_describe_fixture_has_a_cost_case() -> None:
    assert sorted(case.fixture for case in CASES) == DESCRIBE_FIXTURES


@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_fixture_parses(case: Case) -> None:
    record = parse_fixture(case.fixture)
    assert (record.account_id, record.name) == (
        "123456789012",
        load_describe(case.fixture)["TrainingJobName"],
    )
    assert {name: value(record, name) for name in case.parsed} == dict(case.parsed)


@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_fixture_costs_what_both_rule_sets_agree_on(case: Case) -> None:
    cost = cost_of(case)
    assert_cost(cost, case.cost)
    if case.flags is not None:
        assert cost.flags == case.flags
    assert set(case.flags_include) <= set(cost.flags), cost.flags


PENDING = [
    pytest.param(case, id=case_id)
    for case, case_id in zip(CASES, CASE_IDS, strict=True)
    if case.pending
]  # fmt: skip


@pytest.mark.parametrize("case", PENDING)
def test_fixture_costs_under_issue_11_rules(case: Case) -> None:
    assert_cost(cost_of(case), case.pending)


def test_fixture_storage_follows_the_hours_of_its_month() -> None:
    """ack-completed trained 159 s in October 2021 (31 days, 744 h): 5 GB x 1 instance x
    $0.10 (test input) per GB-month x 159 s / (744 h x 3600 s) = 79.5 / 2,678,400
    = 0.0000296818996..."""
    cost = cost_of(CASES[0])
    assert cost.storage_usd.quantize(QUANTUM) == Decimal("0.000029681900")
