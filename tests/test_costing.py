"""The pure cost engine, table by table. Money in the tables is integer micro-dollars
(``to_micros`` of each JobCost item): 230_000 is $0.23.

Rates (USD per instance-hour, on-demand SageMaker Training, from verified-training-rates.csv):

    =========  ===============  ======  =============================================
    region     instance type    rate    note
    =========  ===============  ======  =============================================
    us-east-1  ml.m5.xlarge     0.23
    us-east-1  ml.m5.4xlarge    0.922
    us-east-1  ml.g5.2xlarge    1.515   NVMe family (no EBS volume)
    us-east-1  ml.p4d.24xlarge  25.251  NVMe family
    us-east-1  ml.p5.48xlarge   --      no traced rate: unpriced
    eu-west-1  ml.m5.xlarge     0.257   storage 0.154 per GB-month (hours of the month)
    eu-west-1  ml.g5.xlarge     1.57    NVMe family
    eu-west-1  ml.p3.2xlarge    4.131
    tokens     (illustrative)   0.50    per million tokens, not an AWS rate
    s3         (S3 Standard)    0.023   per GB-month, us-east-1
    =========  ===============  ======  =============================================

Default job (``make_job`` in tests/factories.py): us-east-1, Completed, 1 x ml.m5.xlarge,
2026-03-10 10:00 to 11:00 UTC, billable 3600 s, training 3600 s, no volume. Each row overrides
what it shows (a row that moves the start states its end: the factory's end follows the start).

Storage is GB-month x hours held / hours of the UTC calendar month (rule 5): the default job
is in March, 744 h; April has 720 h, February 2026 672 h.

Arithmetic of the rows whose numbers are not obvious (H = sum of rate x count):

    row                      H / rate            x hours         = item
    multi-instance           0.922 x 4           x 1.5           = 5.532
    heterogeneous-3-groups   3.03+0.23+2.766     x 0.5           = 3.013
    storage-ebs-eu           0.257 x 4           x 10            = 10.28 compute
                             500 GB x 4 x 0.154  x 10/744        = 4.1397849... storage
    storage-mixed-groups     1.57x2 + 0.257      x 7.3           = 24.7981 compute
                             100 GB x 1 x 0.154  x 7.3/744       = 0.1511021... storage (g5 NVMe)
    storage-*-73gb           73 GB x 0.154       x 1/744         = 0.0151102... per hour held
                             (x 2 h with the warm pool           = 0.0302204...)
    storage-april-720        72 GB x 0.154       x 1/720         = 0.0154
    storage-february-672     72 GB x 0.154       x 1/672         = 0.0165
    storage-march-744        72 GB x 0.154       x 1/744         = 0.0149032...
    discount-20-*            (0.257 [+ 0.257 warm]) x 0.8 + storage (never discounted)
                             = 0.2056 + 0.0154 = 0.221 | 0.4112 + 0.0308 = 0.442 effective
    token-count-zero-*       BillableTokenCount 0 but no ServerlessJobConfig: an instance
                             job (0.23 for its m5 hour; unpriced where no m5 rate is given)
    training-plan            4.131 x 2           x (10 + 0.5)    = 86.751 plan value
                             100 GB x 2 x 0.154  x 10.5/744      = 0.4346774... storage
    serverless-tokens        12,345,678 x 0.50 / 1e6             = 6.172839
    stopped-short            0.23                x 600/3600      = 0.0383333...
    discount-28              252.51 x (1 - 0.28)                 = 181.8072 effective
    artifacts                250 GiB x 0.023                     = 5.75 per month
"""

from __future__ import annotations

import ast
from dataclasses import dataclass, field, fields, replace
from datetime import UTC, date, datetime
from decimal import Decimal
from fractions import Fraction
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.factories import make_job
from tracker.cost.engine import (
    DEFAULT_LOCAL_STORAGE_FAMILIES,
    CostPolicy,
    cost_job,
    hours_in_month,
    instance_family,
    job_micros,
    period_micros,
)
from tracker.records import (
    InstanceGroup,
    JobCost,
    JobRecord,
    Rates,
    cents_parts,
    to_micros,
    usd_cents,
)

D = Decimal
NOW = datetime(2026, 3, 11, 0, 0, tzinfo=UTC)

US = Rates(
    hourly={
        "ml.m5.xlarge": D("0.23"),
        "ml.m5.4xlarge": D("0.922"),
        "ml.g5.2xlarge": D("1.515"),
        "ml.p4d.24xlarge": D("25.251"),
    }
)
EU = Rates(
    hourly={"ml.m5.xlarge": D("0.257"), "ml.g5.xlarge": D("1.57"), "ml.p3.2xlarge": D("4.131")},
    storage_usd_per_gb_month=D("0.154"),
)
TOKENS = Rates(hourly={}, usd_per_million_tokens=D("0.50"))
BASE_MODEL = "arn:aws:sagemaker:us-east-1:aws:hub-content/SageMakerPublicHub/Model/example/1.0.0"
PLAN = "arn:aws:sagemaker:eu-west-1:111122223333:training-plan/p3-march"


def at(day: int, hour: int, minute: int = 0, month: int = 3) -> datetime:
    return datetime(2026, month, day, hour, minute, tzinfo=UTC)


def groups(*pairs: tuple[str, int]) -> tuple[InstanceGroup, ...]:
    return tuple(
        InstanceGroup(itype, count, f"group-{i}") for i, (itype, count) in enumerate(pairs)
    )


@dataclass(frozen=True)
class Expect:
    """Expected JobCost in micro-dollars; every money column written out."""

    compute: int
    list: int
    effective: int
    spot: int = 0
    warm: int = 0
    storage: int = 0
    plan: int = 0
    artifact: int = 0
    flags: tuple[str, ...] = ()
    unpriced: bool = False


@dataclass(frozen=True)
class Case:
    id: str
    job: dict[str, Any]
    rates: Rates
    expect: Expect
    now: datetime = NOW
    policy: CostPolicy = field(default_factory=CostPolicy)


CASES = [
    # --- rule 1: billed instances ---------------------------------------------------------
    Case("single-instance", {}, US, Expect(compute=230_000, list=230_000, effective=230_000)),
    Case(
        "multi-instance",
        {"instance_type": "ml.m5.4xlarge", "instance_count": 4, "billable_seconds": 5400},
        US,
        Expect(compute=5_532_000, list=5_532_000, effective=5_532_000),
    ),
    Case(
        "heterogeneous-2-groups",
        {"instance_groups": groups(("ml.p4d.24xlarge", 1), ("ml.m5.xlarge", 2))},
        US,
        Expect(compute=25_711_000, list=25_711_000, effective=25_711_000),
    ),
    Case(
        "heterogeneous-3-groups",
        {
            "instance_groups": groups(
                ("ml.g5.2xlarge", 2), ("ml.m5.xlarge", 1), ("ml.m5.4xlarge", 3)
            ),
            "billable_seconds": 1800,
        },
        US,
        Expect(compute=3_013_000, list=3_013_000, effective=3_013_000),
    ),
    Case(
        "selected-type-wins-over-instance-type",
        {"selected_instance_type": "ml.g5.2xlarge", "selected_instance_count": 2},
        US,
        Expect(compute=3_030_000, list=3_030_000, effective=3_030_000),
    ),
    Case(
        "selected-type-with-requested-count",
        {"instance_count": 3, "selected_instance_type": "ml.g5.2xlarge"},
        US,
        Expect(compute=4_545_000, list=4_545_000, effective=4_545_000),
    ),
    Case(
        "groups-win-over-selected",
        {
            "instance_groups": groups(("ml.m5.xlarge", 3)),
            "selected_instance_type": "ml.g5.2xlarge",
            "selected_instance_count": 2,
        },
        US,
        Expect(compute=690_000, list=690_000, effective=690_000),
    ),
    Case(
        "unpriced-type",
        {"instance_type": "ml.p5.48xlarge"},
        US,
        Expect(compute=0, list=0, effective=0, flags=("unpriced:ml.p5.48xlarge",), unpriced=True),
    ),
    Case(
        "partly-priced-heterogeneous",
        {
            "instance_groups": groups(("ml.g5.2xlarge", 1), ("ml.p5.48xlarge", 1)),
            "billable_seconds": 7200,
        },
        US,
        Expect(
            compute=3_030_000,
            list=3_030_000,
            effective=3_030_000,
            flags=("unpriced:ml.p5.48xlarge",),
            unpriced=True,
        ),
    ),
    Case(
        "no-instance-type",
        {"instance_type": None, "instance_count": None},
        US,
        Expect(compute=0, list=0, effective=0, flags=("no-instance-type",), unpriced=True),
    ),
    Case(
        "no-instance-count",
        {"instance_count": None},
        US,
        Expect(compute=0, list=0, effective=0, flags=("no-instance-count",)),
    ),
    # --- rule 2: seconds billed -----------------------------------------------------------
    Case(
        "stopped-short",
        {"status": "Stopped", "billable_seconds": 600},
        US,
        Expect(compute=38_333, list=38_333, effective=38_333),
    ),
    Case(
        "failed-without-billable-from-interval",
        {"status": "Failed", "billable_seconds": None, "end_time": at(10, 10, 45)},
        US,
        Expect(compute=172_500, list=172_500, effective=172_500, flags=("billable-from-interval",)),
    ),
    Case(
        "failed-without-billable-start-or-end",
        {"status": "Failed", "billable_seconds": None, "start_time": None, "end_time": None},
        US,
        Expect(compute=0, list=0, effective=0, flags=("no-billable-time",)),
    ),
    Case(
        "failed-with-start-only",
        {"status": "Failed", "billable_seconds": None, "end_time": None},
        US,
        Expect(compute=0, list=0, effective=0, flags=("no-billable-time",)),
    ),
    Case(
        "naive-datetimes-read-as-utc",
        {
            "status": "Failed",
            "billable_seconds": None,
            "start_time": datetime(2026, 3, 10, 10, 0),
            "end_time": datetime(2026, 3, 10, 10, 45),
        },
        US,
        Expect(compute=172_500, list=172_500, effective=172_500, flags=("billable-from-interval",)),
    ),
    Case(
        "running-injected-now",
        {
            "status": "InProgress",
            "instance_type": "ml.g5.2xlarge",
            "end_time": None,
            "billable_seconds": None,
            "training_seconds": None,
        },
        US,
        Expect(compute=5_050_000, list=5_050_000, effective=5_050_000, flags=("running",)),
        now=at(10, 13, 20),
    ),
    Case(
        "stopping-ignores-partial-billable",
        {"status": "Stopping", "end_time": None, "billable_seconds": 60},
        US,
        Expect(compute=115_000, list=115_000, effective=115_000, flags=("running",)),
        now=at(10, 10, 30),
    ),
    Case(
        "running-without-start",
        {"status": "InProgress", "start_time": None, "end_time": None},
        US,
        Expect(compute=0, list=0, effective=0, flags=("no-billable-time", "running")),
    ),
    Case(
        "running-now-before-start",
        {"status": "InProgress", "end_time": None},
        US,
        Expect(compute=0, list=0, effective=0, flags=("negative-duration", "running")),
        now=at(10, 9),
    ),
    # --- rule 3: managed spot -------------------------------------------------------------
    Case(
        "spot-half-billed",
        {
            "instance_type": "ml.g5.2xlarge",
            "instance_count": 2,
            "spot": True,
            "billable_seconds": 1800,
        },
        US,
        Expect(compute=1_515_000, spot=1_515_000, list=1_515_000, effective=1_515_000),
    ),
    Case(
        "spot-billable-above-training-saves-nothing",
        {"spot": True, "billable_seconds": 3600, "training_seconds": 1800},
        US,
        Expect(compute=230_000, list=230_000, effective=230_000),
    ),
    Case(
        "spot-training-unknown-saves-nothing",
        {"spot": True, "billable_seconds": 1800, "training_seconds": None},
        US,
        Expect(compute=115_000, list=115_000, effective=115_000),
    ),
    Case(
        "not-spot-reports-no-savings",
        {"billable_seconds": 1800, "training_seconds": 3600},
        US,
        Expect(compute=115_000, list=115_000, effective=115_000),
    ),
    # --- rule 4: warm pool ----------------------------------------------------------------
    Case(
        "warm-pool",
        {"warm_pool_retained_seconds": 1800},
        US,
        Expect(compute=230_000, warm=115_000, list=345_000, effective=345_000),
    ),
    Case(
        "warm-pool-multi-instance",
        {"instance_type": "ml.m5.4xlarge", "instance_count": 2, "warm_pool_retained_seconds": 900},
        US,
        Expect(compute=1_844_000, warm=461_000, list=2_305_000, effective=2_305_000),
    ),
    # An open pool: retained time so far (now 12:30 - end 11:00 = 1.5 h) at the same rate.
    Case(
        "warm-pool-open-estimate",
        {"warm_pool_status": "Available"},
        US,
        Expect(
            compute=230_000,
            warm=345_000,
            list=575_000,
            effective=575_000,
            flags=("warm-pool-open",),
        ),
        now=at(10, 12, 30),
    ),  # fmt: skip
    Case(
        "warm-pool-in-use-estimate-spans-midnight",
        {"warm_pool_status": "InUse", "instance_count": 2},
        US,
        Expect(
            compute=460_000,
            warm=6_440_000,
            list=6_900_000,
            effective=6_900_000,
            flags=("warm-pool-open",),
        ),
        now=at(11, 1),
    ),  # fmt: skip
    Case(
        "warm-pool-reused-is-final",
        {"warm_pool_status": "Reused", "warm_pool_retained_seconds": 600},
        US,
        Expect(compute=230_000, warm=38_333, list=268_333, effective=268_333),
        now=at(11, 1),
    ),
    # --- rule 5: ML storage volume --------------------------------------------------------
    Case(
        "storage-ebs-eu",
        {
            "region": "eu-west-1",
            "instance_count": 4,
            "volume_gb": 500,
            "billable_seconds": 36000,
            "training_seconds": 36000,
            "start_time": at(10, 8),
            "end_time": at(10, 18),
        },
        EU,
        Expect(compute=10_280_000, storage=4_139_785, list=14_419_785, effective=14_419_785),
    ),
    Case(
        "storage-nvme-family-has-no-volume",
        {
            "region": "eu-west-1",
            "instance_type": "ml.g5.xlarge",
            "instance_count": 4,
            "volume_gb": 500,
            "billable_seconds": 36000,
            "training_seconds": 36000,
        },
        EU,
        Expect(compute=62_800_000, list=62_800_000, effective=62_800_000),
    ),
    Case(
        "storage-mixed-groups-bills-ebs-group-only",
        {
            "region": "eu-west-1",
            "instance_groups": groups(("ml.g5.xlarge", 2), ("ml.m5.xlarge", 1)),
            "volume_gb": 100,
            "billable_seconds": 26280,
            "training_seconds": 26280,
        },
        EU,
        Expect(compute=24_798_100, storage=151_102, list=24_949_202, effective=24_949_202),
    ),
    Case(
        "storage-73gb-uses-training-seconds-not-billable",
        {"region": "eu-west-1", "volume_gb": 73, "spot": True, "billable_seconds": 1800},
        EU,
        Expect(compute=128_500, spot=128_500, storage=15_110, list=143_610, effective=143_610),
    ),
    Case(
        "storage-73gb-from-interval-when-training-unknown",
        {
            "region": "eu-west-1",
            "volume_gb": 73,
            "billable_seconds": 1800,
            "training_seconds": None,
        },
        EU,
        Expect(compute=128_500, storage=15_110, list=143_610, effective=143_610),
    ),
    Case(
        "storage-73gb-from-billed-when-no-interval",
        {
            "region": "eu-west-1",
            "volume_gb": 73,
            "training_seconds": None,
            "start_time": None,
            "end_time": None,
        },
        EU,
        Expect(compute=257_000, storage=15_110, list=272_110, effective=272_110),
    ),
    Case(
        "storage-73gb-with-warm-pool",
        {"region": "eu-west-1", "volume_gb": 73, "warm_pool_retained_seconds": 3600},
        EU,
        Expect(compute=257_000, warm=257_000, storage=30_220, list=544_220, effective=544_220),
    ),
    Case(
        "storage-unpriced-region",
        {"volume_gb": 100},
        US,
        Expect(compute=230_000, list=230_000, effective=230_000, flags=("storage-unpriced",)),
    ),
    Case(
        "storage-policy-treats-m5-as-local",
        {"region": "eu-west-1", "volume_gb": 73},
        EU,
        Expect(compute=257_000, list=257_000, effective=257_000),
        policy=CostPolicy(local_storage_families=frozenset({"ml.m5"})),
    ),
    Case(
        "storage-april-720-hour-month",
        {"region": "eu-west-1", "volume_gb": 72, "start_time": at(10, 10, month=4)},
        EU,
        Expect(compute=257_000, storage=15_400, list=272_400, effective=272_400),
    ),
    Case(
        "storage-february-672-hour-month",
        {"region": "eu-west-1", "volume_gb": 72, "start_time": at(10, 10, month=2)},
        EU,
        Expect(compute=257_000, storage=16_500, list=273_500, effective=273_500),
    ),
    Case(
        "storage-march-744-hour-month",
        {"region": "eu-west-1", "volume_gb": 72, "start_time": at(10, 10, month=3)},
        EU,
        Expect(compute=257_000, storage=14_903, list=271_903, effective=271_903),
    ),
    # --- rule 6: training plans -----------------------------------------------------------
    Case(
        "training-plan",
        {
            "region": "eu-west-1",
            "instance_type": "ml.p3.2xlarge",
            "instance_count": 2,
            "volume_gb": 100,
            "billable_seconds": 36000,
            "training_seconds": 36000,
            "warm_pool_retained_seconds": 1800,
            "training_plan_arn": PLAN,
        },
        EU,
        Expect(
            compute=0,
            plan=86_751_000,
            storage=434_677,
            list=434_677,
            effective=434_677,
            flags=("training-plan",),
        ),
    ),
    Case(
        "training-plan-spot-saves-nothing",
        {
            "instance_type": "ml.g5.2xlarge",
            "instance_count": 2,
            "spot": True,
            "billable_seconds": 1800,
            "training_plan_arn": PLAN,
        },
        US,
        Expect(compute=0, plan=1_515_000, list=0, effective=0, flags=("training-plan",)),
    ),
    # --- rule 7: serverless ---------------------------------------------------------------
    Case(
        "serverless-tokens",
        {
            "instance_type": None,
            "instance_count": None,
            "serverless_base_model_arn": BASE_MODEL,
            "billable_token_count": 12_345_678,
        },
        TOKENS,
        Expect(compute=6_172_839, list=6_172_839, effective=6_172_839),
    ),
    Case(
        "serverless-ignores-instances-and-volume",
        {
            "region": "eu-west-1",
            "volume_gb": 100,
            "warm_pool_retained_seconds": 600,
            "serverless_base_model_arn": BASE_MODEL,
            "billable_token_count": 2_000_000,
        },
        replace(EU, usd_per_million_tokens=D("0.50")),
        Expect(compute=1_000_000, list=1_000_000, effective=1_000_000),
    ),
    Case(
        "serverless-unpriced",
        {
            "instance_type": None,
            "serverless_base_model_arn": BASE_MODEL,
            "billable_token_count": 12_345_678,
        },
        US,
        Expect(compute=0, list=0, effective=0, flags=("unpriced:tokens",), unpriced=True),
    ),
    Case(
        "serverless-final-without-tokens",
        {"instance_type": None, "serverless_base_model_arn": BASE_MODEL},
        TOKENS,
        Expect(compute=0, list=0, effective=0, flags=("no-billable-tokens",)),
    ),
    Case(
        "serverless-running-without-tokens",
        {
            "status": "InProgress",
            "end_time": None,
            "instance_type": None,
            "serverless_base_model_arn": BASE_MODEL,
        },
        TOKENS,
        Expect(compute=0, list=0, effective=0, flags=("running",)),
    ),
    Case(
        "token-count-zero-without-serverless-config-is-an-instance-job",
        {"billable_token_count": 0},
        TOKENS,
        Expect(compute=0, list=0, effective=0, flags=("unpriced:ml.m5.xlarge",), unpriced=True),
    ),
    Case(
        "token-count-zero-without-serverless-config-costs-its-instances",
        {"billable_token_count": 0},
        US,
        Expect(compute=230_000, list=230_000, effective=230_000),
    ),
    # --- rule 8: list vs effective --------------------------------------------------------
    Case(
        "discount-20-leaves-storage-unchanged",
        {"region": "eu-west-1", "volume_gb": 72, "start_time": at(10, 10, month=4)},
        replace(EU, discount_pct=D(20)),
        Expect(compute=257_000, storage=15_400, list=272_400, effective=221_000),
    ),
    Case(
        "discount-20-on-warm-pool-too",
        {
            "region": "eu-west-1",
            "volume_gb": 72,
            "warm_pool_retained_seconds": 3600,
            "start_time": at(10, 10, month=4),
        },
        replace(EU, discount_pct=D(20)),
        Expect(compute=257_000, warm=257_000, storage=30_800, list=544_800, effective=442_000),
    ),  # fmt: skip
    Case(
        "discount-28",
        {"instance_type": "ml.p4d.24xlarge", "billable_seconds": 36000},
        replace(US, discount_pct=D(28)),
        Expect(compute=252_510_000, list=252_510_000, effective=181_807_200),
    ),
    Case(
        "discount-100",
        {},
        replace(US, discount_pct=D(100)),
        Expect(compute=230_000, list=230_000, effective=0),
    ),
    Case(
        "discount-above-100-clamped",
        {},
        replace(US, discount_pct=D(150)),
        Expect(compute=230_000, list=230_000, effective=0, flags=("discount-out-of-range",)),
    ),
    Case(
        "discount-negative-clamped",
        {},
        replace(US, discount_pct=D(-5)),
        Expect(compute=230_000, list=230_000, effective=230_000, flags=("discount-out-of-range",)),
    ),
    # --- rule 9: S3 artifacts -------------------------------------------------------------
    Case(
        "artifacts-monthly-run-rate",
        {"artifact_bytes": 250 * 2**30},
        replace(US, s3_usd_per_gb_month=D("0.023")),
        Expect(compute=230_000, artifact=5_750_000, list=230_000, effective=230_000),
    ),
    Case(
        "artifacts-unpriced",
        {"artifact_bytes": 2**30},
        US,
        Expect(compute=230_000, list=230_000, effective=230_000, flags=("artifact-unpriced",)),
    ),
    # --- rule 11: never negative ----------------------------------------------------------
    Case(
        "negative-billable-seconds",
        {"billable_seconds": -100},
        US,
        Expect(compute=0, list=0, effective=0, flags=("negative-duration",)),
    ),
    Case(
        "negative-warm-pool-seconds",
        {"warm_pool_retained_seconds": -50},
        US,
        Expect(compute=230_000, list=230_000, effective=230_000, flags=("negative-duration",)),
    ),
    Case(
        "negative-instance-count",
        {"instance_count": -2},
        US,
        Expect(compute=0, list=0, effective=0, flags=("negative-quantity",)),
    ),
    Case(
        "negative-volume",
        {"region": "eu-west-1", "volume_gb": -10},
        EU,
        Expect(compute=257_000, list=257_000, effective=257_000, flags=("negative-quantity",)),
    ),
    Case(
        "negative-interval-failed",
        {
            "status": "Failed",
            "billable_seconds": None,
            "start_time": at(10, 12),
            "end_time": at(10, 11),
        },
        US,
        Expect(
            compute=0, list=0, effective=0, flags=("billable-from-interval", "negative-duration")
        ),
    ),
]


def micros_of(cost: JobCost) -> Expect:
    return Expect(
        compute=to_micros(cost.compute_usd),
        list=to_micros(cost.list_usd),
        effective=to_micros(cost.effective_usd),
        spot=to_micros(cost.spot_savings_usd),
        warm=to_micros(cost.warm_pool_usd),
        storage=to_micros(cost.storage_usd),
        plan=to_micros(cost.plan_value_usd),
        artifact=to_micros(cost.artifact_usd_per_month),
        flags=cost.flags,
        unpriced=cost.unpriced,
    )


def run_case(case: Case) -> JobCost:
    return cost_job(make_job(**case.job), case.rates, case.now, case.policy)


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_cost_job_items(case: Case):
    assert micros_of(run_case(case)) == case.expect


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_cost_job_list_is_compute_plus_warm_plus_storage(case: Case):
    cost = run_case(case)
    parts = (cost.compute_usd, cost.warm_pool_usd, cost.storage_usd)
    assert Fraction(cost.list_usd) == sum(Fraction(part) for part in parts)
    assert cost.total_usd == cost.list_usd


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_period_micros_sum_to_job_micros(case: Case):
    assert_days_sum_exactly(run_case(case))


def test_cost_job_items_are_exact_not_rounded():
    cost = run_case(next(c for c in CASES if c.id == "storage-ebs-eu"))
    # 500 GB x 4 x 0.154 x 10 h / 744 = 3080 / 744 = 4.139784946236559139784946236559140...
    assert cost.storage_usd == D("4.139784946236559139784946236559140")
    assert cost.list_usd == D("14.419784946236559139784946236559140")


# --- rule 10: days and months --------------------------------------------------------------


def day(
    iso: str,
    compute: int = 0,
    list_: int = 0,
    effective: int | None = None,
    spot: int = 0,
    warm: int = 0,
    storage: int = 0,
) -> tuple[date, dict[str, int]]:
    """One expected period_micros row; effective defaults to list (no discount)."""
    return (
        date.fromisoformat(iso),
        {
            "compute_micros": compute,
            "spot_savings_micros": spot,
            "warm_pool_micros": warm,
            "storage_micros": storage,
            "list_micros": list_,
            "effective_micros": list_ if effective is None else effective,
        },
    )


@dataclass(frozen=True)
class PeriodCase:
    """Days of one job.

    =============================  =========================================================
    id                             split
    =============================  =========================================================
    day-boundary                   6 h g5.2xlarge (9.09): 2 h -> 3.03, 4 h -> 6.06
    month-boundary-storage-10pct   3 h eu m5 73 GB: compute 0.257/h; storage 11.242/744
                                   per hour in January (0.0151102...), 11.242/672 in
                                   February (0.0167291...): 1 h on Jan 31 -> 15,110.2,
                                   2 h on Feb 1 -> 33,458.3; job storage 48,568.5 ->
                                   48,569, the extra micro-dollar to Feb (larger
                                   remainder). effective = 90% of compute + storage:
                                   231,300 + 15,110.2 | 462,600 + 33,458.3 (job 742,468.5
                                   -> 742,469, +1 to Feb)
    awkward-thirds                 0.23 billed over 3 h wall clock, 1/3 | 2/3;
                                   spot savings 0.46 likewise
    three-full-days                0.23 over 72 h: 76,666.67 x 3 -> 76,667 + 76,666 + 76,667
    warm-pool-after-midnight       eu m5 22:00-23:30 + 1 h warm to 00:30, 73 GB:
                                   storage 1.5 h x 0.0151102 = 22,665.3 training +
                                   15,110.2 warm (half each day): 30,220.4 | 7,555.1;
                                   job 37,775.5 -> 37,776, +1 to the first day
    running-over-midnight          g5.2xlarge 23:00 -> now 01:00: 1.515 per day
    end-exactly-midnight           23:00-00:00: one day only
    missing-start                  all on the end day
    missing-start-and-end          all on the creation day
    zero-length-interval           start == end (as moto reports): all on that day
    all-zero                       unpriced over midnight: one row of zeros, end day
    =============================  =========================================================
    """

    id: str
    job: dict[str, Any]
    rates: Rates
    days: list[tuple[date, dict[str, int]]]
    now: datetime = NOW


PERIOD_CASES = [
    PeriodCase(
        "day-boundary",
        {
            "instance_type": "ml.g5.2xlarge",
            "billable_seconds": 21600,
            "training_seconds": 21600,
            "start_time": at(10, 22),
            "end_time": at(11, 4),
        },
        US,
        [day("2026-03-10", 3_030_000, 3_030_000), day("2026-03-11", 6_060_000, 6_060_000)],
    ),
    PeriodCase(
        "month-boundary-storage-10pct",
        {
            "region": "eu-west-1",
            "volume_gb": 73,
            "billable_seconds": 10800,
            "training_seconds": 10800,
            "start_time": at(31, 23, month=1),
            "end_time": at(1, 2, month=2),
        },
        replace(EU, discount_pct=D(10)),
        [
            day("2026-01-31", 257_000, 272_110, 246_410, storage=15_110),
            day("2026-02-01", 514_000, 547_459, 496_059, storage=33_459),
        ],
    ),
    PeriodCase(
        "awkward-thirds",
        {
            "spot": True,
            "billable_seconds": 3600,
            "training_seconds": 10800,
            "start_time": at(10, 23),
            "end_time": at(11, 2),
        },
        US,
        [
            day("2026-03-10", 76_667, 76_667, spot=153_333),
            day("2026-03-11", 153_333, 153_333, spot=306_667),
        ],
    ),
    PeriodCase(
        "three-full-days",
        {
            "billable_seconds": 3600,
            "training_seconds": 259200,
            "start_time": at(10, 0),
            "end_time": at(13, 0),
        },
        US,
        [
            day("2026-03-10", 76_667, 76_667),
            day("2026-03-11", 76_666, 76_666),
            day("2026-03-12", 76_667, 76_667),
        ],
    ),
    PeriodCase(
        "warm-pool-after-midnight",
        {
            "region": "eu-west-1",
            "volume_gb": 73,
            "billable_seconds": 5400,
            "training_seconds": None,
            "warm_pool_retained_seconds": 3600,
            "start_time": at(10, 22),
            "end_time": at(10, 23, 30),
        },
        EU,
        [
            day("2026-03-10", 385_500, 544_221, warm=128_500, storage=30_221),
            day("2026-03-11", 0, 136_055, warm=128_500, storage=7_555),
        ],
    ),
    PeriodCase(
        "running-over-midnight",
        {
            "status": "InProgress",
            "instance_type": "ml.g5.2xlarge",
            "start_time": at(10, 23),
            "end_time": None,
            "billable_seconds": None,
            "training_seconds": None,
        },
        US,
        [day("2026-03-10", 1_515_000, 1_515_000), day("2026-03-11", 1_515_000, 1_515_000)],
        now=at(11, 1),
    ),
    PeriodCase(
        "end-exactly-midnight",
        {"start_time": at(10, 23), "end_time": at(11, 0)},
        US,
        [day("2026-03-10", 230_000, 230_000)],
    ),
    PeriodCase(
        "missing-start",
        {"start_time": None, "end_time": at(11, 0, 30)},
        US,
        [day("2026-03-11", 230_000, 230_000)],
    ),
    PeriodCase(
        "missing-start-and-end",
        {"start_time": None, "end_time": None, "creation_time": at(9, 23, 50)},
        US,
        [day("2026-03-09", 230_000, 230_000)],
    ),
    PeriodCase(
        "zero-length-interval",
        {"start_time": at(10, 23, 59), "end_time": at(10, 23, 59)},
        US,
        [day("2026-03-10", 230_000, 230_000)],
    ),
    PeriodCase(
        "all-zero",
        {"instance_type": "ml.p5.48xlarge", "start_time": at(10, 22), "end_time": at(11, 2)},
        US,
        [day("2026-03-11")],
    ),
]


def run_period_case(case: PeriodCase) -> JobCost:
    return cost_job(make_job(**case.job), case.rates, case.now)


@pytest.mark.parametrize("case", PERIOD_CASES, ids=[c.id for c in PERIOD_CASES])
def test_period_micros_days(case: PeriodCase):
    assert period_micros(run_period_case(case)) == case.days


@pytest.mark.parametrize("case", PERIOD_CASES, ids=[c.id for c in PERIOD_CASES])
def test_period_parts_sum_to_items_exactly(case: PeriodCase):
    assert_days_sum_exactly(run_period_case(case))


def assert_days_sum_exactly(cost: JobCost) -> None:
    """Decimal day parts sum to each item exactly; micro-dollar days to the job's stored
    micro-dollars (``job_micros``), whose parts sum to its total = to_micros(list) and are
    each within one micro-dollar of to_micros(item); every day adds up as the job does."""
    stored = job_micros(cost)
    parts_of_total = ("compute_micros", "warm_pool_micros", "storage_micros")
    assert stored["list_micros"] == to_micros(cost.list_usd)
    assert sum(stored[key] for key in parts_of_total) == stored["list_micros"]
    days = period_micros(cost)
    for item in (
        "compute_usd",
        "spot_savings_usd",
        "warm_pool_usd",
        "storage_usd",
        "list_usd",
        "effective_usd",
    ):
        parts = [Fraction(getattr(p, item)) for p in cost.periods]
        assert sum(parts) == Fraction(getattr(cost, item)), item
        assert all(part >= 0 for part in parts), item
        key = item.replace("_usd", "_micros")
        assert abs(stored[key] - to_micros(getattr(cost, item))) <= 1, item
        micros = [row[key] for _, row in days]
        assert sum(micros) == stored[key], item
        assert all(m >= 0 for m in micros), item
    for _, row in days:
        assert sum(row[key] for key in parts_of_total) == row["list_micros"]
    assert [p.day for p in cost.periods] == sorted({p.day for p in cost.periods})


def test_period_micros_of_empty_cost_is_empty():
    assert period_micros(JobCost()) == []


def test_period_micros_refuses_money_without_days():
    with pytest.raises(ValueError, match="no periods"):
        period_micros(JobCost(compute_usd=D("1.00"), list_usd=D("1.00")))


# --- policy and helpers ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("instance_type", "family"),
    [
        ("ml.p4d.24xlarge", "ml.p4d"),
        ("ml.g5.2xlarge", "ml.g5"),
        ("ml.trn1n.32xlarge", "ml.trn1n"),
        ("ml.p6-b200.48xlarge", "ml.p6-b200"),
    ],
    ids=["p4d", "g5", "trn1n", "hyphenated"],
)
def test_instance_family(instance_type: str, family: str):
    assert instance_family(instance_type) == family


def test_default_local_storage_families_include_the_ones_aws_names():
    assert {"ml.p4d", "ml.g4dn", "ml.g5"} <= DEFAULT_LOCAL_STORAGE_FAMILIES
    assert not {"ml.m5", "ml.c5", "ml.p2", "ml.p3"} & DEFAULT_LOCAL_STORAGE_FAMILIES


@pytest.mark.parametrize(
    ("day_in_month", "hours"),
    [
        (date(2026, 1, 31), 744),
        (date(2026, 2, 1), 672),
        (date(2028, 2, 29), 696),
        (date(2026, 3, 15), 744),
        (date(2026, 4, 30), 720),
        (date(2026, 12, 31), 744),
    ],
    ids=["january", "february", "leap-february", "march", "april", "december"],
)
def test_hours_in_month_is_the_calendar_month(day_in_month: date, hours: int):
    assert hours_in_month(day_in_month) == hours


def test_cost_policy_accepts_config_types():
    policy = CostPolicy(local_storage_families=["ml.m5"])  # type: ignore[arg-type]
    assert policy.local_storage_families == frozenset({"ml.m5"})


def test_costing_imports_no_aws_and_no_database():
    source = Path(__file__).resolve().parent.parent / "tracker" / "cost" / "engine.py"
    tree = ast.parse(source.read_text(encoding="utf-8"))
    imported = {
        node.module if isinstance(node, ast.ImportFrom) else alias.name
        for node in ast.walk(tree)
        if isinstance(node, ast.Import | ast.ImportFrom)
        for alias in node.names
    }
    assert imported <= {
        "__future__",
        "collections.abc",
        "dataclasses",
        "datetime",
        "decimal",
        "tracker.errors",
        "tracker.records",
    }


# --- rule 11: nothing a JobRecord can hold makes it raise ------------------------------------

TYPES = ["ml.m5.xlarge", "ml.g5.2xlarge", "ml.p4d.24xlarge", "ml.p5.48xlarge", ""]
moments = st.one_of(
    st.none(),
    st.datetimes(min_value=datetime(2025, 12, 1), max_value=datetime(2026, 2, 1)),
    st.datetimes(
        min_value=datetime(2025, 12, 1), max_value=datetime(2026, 2, 1), timezones=st.just(UTC)
    ),
)
ints = st.one_of(st.none(), st.integers(min_value=-(10**6), max_value=10**7))
group_st = st.builds(InstanceGroup, st.sampled_from(TYPES), st.integers(-2, 6))
job_st = st.builds(
    make_job,
    status=st.sampled_from(["Completed", "Failed", "Stopped", "InProgress", "Stopping", ""]),
    creation_time=st.datetimes(min_value=datetime(2025, 12, 1), max_value=datetime(2026, 2, 1)),
    start_time=moments,
    end_time=moments,
    instance_type=st.one_of(st.none(), st.sampled_from(TYPES)),
    instance_count=ints,
    selected_instance_type=st.one_of(st.none(), st.sampled_from(TYPES)),
    selected_instance_count=ints,
    instance_groups=st.lists(group_st, max_size=5).map(tuple),
    volume_gb=st.integers(-100, 2000),
    spot=st.booleans(),
    billable_seconds=ints,
    training_seconds=ints,
    warm_pool_retained_seconds=ints,
    training_plan_arn=st.one_of(st.none(), st.just(PLAN)),
    serverless_base_model_arn=st.one_of(st.none(), st.just(BASE_MODEL)),
    billable_token_count=st.one_of(st.none(), st.integers(-10, 10**9)),
    artifact_bytes=st.integers(-10, 10**13),
)
money_st = st.one_of(st.none(), st.decimals(min_value=0, max_value=100, places=3))
rates_st = st.builds(
    Rates,
    hourly=st.just(dict(US.hourly)),
    storage_usd_per_gb_month=money_st,
    s3_usd_per_gb_month=money_st,
    usd_per_million_tokens=money_st,
    discount_pct=st.decimals(min_value=-10, max_value=120, places=2),
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    job=job_st,
    rates=rates_st,
    now=st.datetimes(min_value=datetime(2025, 12, 1), max_value=datetime(2026, 2, 1)),
)
def test_cost_job_never_raises_or_goes_negative(job: JobRecord, rates: Rates, now: datetime):
    cost = cost_job(job, rates, now)
    for item in fields(JobCost):
        value = getattr(cost, item.name)
        if isinstance(value, Decimal):
            assert value >= 0, item.name
    assert cost.effective_usd <= cost.list_usd
    assert cost.flags == tuple(sorted(set(cost.flags)))
    assert cost.periods, "every job has at least one day"
    assert_days_sum_exactly(cost)


# --- rule 12: stored parts add up to the stored total -------------------------------------


def short_jobs(count: int = 2000) -> list[JobRecord]:
    """Short eu-west-1 ml.m5.xlarge jobs with a 73 GB volume, 601..(600 + count) s each,
    spread over February and March, some with a warm pool: every one has compute and storage
    with fractional micro-dollars."""
    jobs = []
    for i in range(count):
        seconds = 601 + i
        start = at(1 + i % 28, i % 24, i % 60, month=2 + i % 2)
        jobs.append(
            make_job(
                region="eu-west-1",
                volume_gb=73,
                billable_seconds=seconds,
                training_seconds=seconds,
                warm_pool_retained_seconds=(i % 7) * 97 or None,
                start_time=start,
            )
        )
    return jobs


def test_stored_parts_sum_to_stored_total_over_2000_short_jobs():
    """Per job and in sum: compute + warm pool + storage micro-dollars = list micro-dollars.

    Rounding each item on its own (to_micros per item, the old rule) drifts from the total
    over these jobs; job_micros apportions the total, so it cannot."""
    parts = ("compute_micros", "warm_pool_micros", "storage_micros")
    costs = [cost_job(job, EU, NOW) for job in short_jobs()]
    stored = [job_micros(cost) for cost in costs]
    for micros in stored:
        assert sum(micros[key] for key in parts) == micros["list_micros"]
    assert sum(m[key] for m in stored for key in parts) == sum(m["list_micros"] for m in stored)
    independent = sum(
        to_micros(c.compute_usd) + to_micros(c.warm_pool_usd) + to_micros(c.storage_usd)
        for c in costs
    )
    assert independent != sum(m["list_micros"] for m in stored)  # the case the rule is for


@pytest.mark.parametrize(
    ("total", "parts", "expected"),
    [
        # rule 4's warm-pool job: 0.26 + 0.13 + 0.02 under 0.40 when rounded one by one
        (401_024, [257_000, 128_500, 15_524], (40, [26, 13, 1])),
        # three thirds of a cent: the shown cent goes to the first part on the tie
        (10_000, [3_334, 3_333, 3_333], (1, [1, 0, 0])),
        # 0.005 rounds up to 0.01: the one cent goes to the part with the larger remainder
        (5_000, [1_000, 4_000, 0], (1, [0, 1, 0])),
        (0, [0, 0, 0], (0, [0, 0, 0])),
    ],
    ids=["warm-pool-job", "thirds", "half-cent", "zero"],
)
def test_cents_parts_add_up_to_the_shown_total(
    total: int, parts: list[int], expected: tuple[int, list[int]]
):
    shown_total, shown_parts = cents_parts(total, parts)
    assert (shown_total, shown_parts) == expected
    assert sum(shown_parts) == shown_total
    assert shown_total == int(usd_cents(total) * 100)
