"""Estimates: itemised by the cost engine, validated, tagged, recorded, and matched to jobs.

Shipped rates used (USD per instance-hour, us-east-1 unless noted): ml.m5.xlarge 0.23,
ml.g5.2xlarge 1.515 (NVMe: no storage volume); eu-west-1 ml.m5.xlarge 0.257 with ML storage
0.154 per GB-month, by the hours of the month (docs/cost-model.md rule 5: November, 720 h).

| request                                   | arithmetic                              | total  |
|-------------------------------------------|-----------------------------------------|--------|
| 2 x m5.xlarge, 3 h                        | 0.23 x 2 x 3                            | 1.38   |
| 2 x g5.2xlarge, 3 h, spot ratio 0.3       | 1.515 x 2 x 3 x 0.3 = 2.727             | 2.73   |
|   (spot savings)                          | 1.515 x 2 x 3 x 0.7 = 6.363             | 6.36   |
| eu-west-1 2 x m5.xlarge, 10 h, 100 GB     | 0.257 x 2 x 10 = 5.14                   |        |
|                                           | + 100 x 2 x 0.154 x 10/720 = 0.42777... | 5.57   |
| 1 x m5.xlarge, 2.5 h, 20% discount        | 0.23 x 2.5 = 0.575; x 0.8 = 0.46        | 0.58   |
"""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from tests.conftest import REPO
from tests.reconcile_data import PRICES, make_job
from tracker.errors import ConfigError, InputError
from tracker.estimate.rules import (
    ESTIMATE_ID_TAG,
    ESTIMATE_USD_TAG,
    EstimateIndex,
    EstimateRequest,
    RecordedEstimate,
    build_estimate,
    parse_usd_tag,
    require_priced,
    resolve_estimate,
    worst_case_job,
    worst_case_seconds,
)
from tracker.settings import load_settings

NOW = datetime(2026, 11, 19, 9, 0, tzinfo=UTC)
D = Decimal


def estimate(**kw):
    fields = {"instance_type": "ml.m5.xlarge", "instance_count": 1, "hours": D(1), **kw}
    return build_estimate(EstimateRequest(**fields), PRICES, NOW)


@pytest.mark.parametrize(
    ("kw", "total", "compute", "storage", "savings"),
    [
        ({"instance_count": 2, "hours": D(3)}, "1.38", "1.38", "0.00", "0.00"),
        (
            {
                "instance_type": "ml.g5.2xlarge",
                "instance_count": 2,
                "hours": D(3),
                "spot_ratio": D("0.3"),
            },
            "2.73",
            "2.73",
            "0.00",
            "6.36",
        ),  # fmt: skip
        (
            {"region": "eu-west-1", "instance_count": 2, "hours": D(10), "volume_gb": 100},
            "5.57",
            "5.14",
            "0.43",
            "0.00",
        ),  # fmt: skip
        (
            {"instance_type": "ml.g5.2xlarge", "volume_gb": 100, "hours": D(2)},
            "3.03",
            "3.03",
            "0.00",
            "0.00",
        ),  # fmt: skip
    ],
    ids=["on-demand", "spot-ratio", "storage-eu", "nvme-no-volume"],
)
def test_build_estimate_itemises_like_actual_costs(kw, total, compute, storage, savings) -> None:
    result = estimate(**kw).to_dict()
    assert result["total_usd"] == D(total)
    assert result["compute_usd"] == D(compute)
    assert result["storage_usd"] == D(storage)
    assert result["spot_savings_usd"] == D(savings)
    assert result["tags"] == {ESTIMATE_USD_TAG: total}
    assert result["estimate_id"] is None and result["recorded"] is False


def test_build_estimate_spot_bills_the_ratio_of_training_time() -> None:
    est = estimate(instance_count=2, hours=D(3), spot_ratio=D("0.3"))
    assert est.request.training_seconds == 10800
    assert est.request.billable_seconds == 3240


def test_build_estimate_applies_discount_to_effective_only() -> None:
    request = EstimateRequest("ml.m5.xlarge", 1, D("2.5"))
    est = build_estimate(request, PRICES, NOW, discount_pct=D(20))
    assert est.total_usd == D("0.58")  # list 0.575, half up
    assert est.to_dict()["effective_usd"] == D("0.46")


def test_build_estimate_recorded_id_goes_on_the_tags() -> None:
    request = EstimateRequest("ml.m5.xlarge", 2, D(3), team="nlp", job_name="train-a")
    est = build_estimate(request, PRICES, NOW, estimate_id="est-000000000001")
    assert est.tags() == {ESTIMATE_ID_TAG: "est-000000000001", ESTIMATE_USD_TAG: "1.38"}
    assert est.sagemaker_tags() == [
        {"Key": ESTIMATE_ID_TAG, "Value": "est-000000000001"},
        {"Key": ESTIMATE_USD_TAG, "Value": "1.38"},
    ]


def test_require_priced_refuses_unpriced_type_with_the_fix() -> None:
    est = estimate(instance_type="ml.trn1.32xlarge")
    assert est.unpriced
    with pytest.raises(
        InputError, match=r"no training rate for ml.trn1.32xlarge in us-east-1.*overrides"
    ):
        require_priced(est)


@pytest.mark.parametrize(
    ("kw", "message"),
    [
        ({"instance_type": "m5.xlarge"}, "--instance-type 'm5.xlarge'"),
        ({"instance_count": 0}, "--count 0"),
        ({"hours": D(0)}, "--hours 0"),
        ({"hours": "abc"}, "--hours 'abc'"),
        ({"region": "mars-1"}, "--region 'mars-1'"),
        ({"spot_ratio": D("1.5")}, "--spot-ratio 1.5"),
        ({"spot_ratio": D(0)}, "--spot-ratio 0"),
        ({"volume_gb": -1}, "--volume-gb -1"),
        ({"job_name": "a", "name_prefix": "b"}, "give one of them"),
        ({"team": " "}, "--team"),
    ],
)
def test_estimate_request_rejects_bad_values_naming_them(kw, message) -> None:
    fields = {"instance_type": "ml.m5.xlarge", "instance_count": 1, "hours": D(1), **kw}
    with pytest.raises(InputError) as error:
        EstimateRequest(**fields)
    assert message in str(error.value)
    assert "\n" not in str(error.value)


# -- worst case ------------------------------------------------------------------------------
def test_worst_case_on_demand_uses_max_runtime() -> None:
    job = make_job("j", "ml", instance_count=2, max_runtime_seconds=7200)
    worst = worst_case_job(job)
    assert worst_case_seconds(job) == 7200
    assert worst.billable_seconds == 7200 and worst.end_time == job.start_time + timedelta(hours=2)


def test_worst_case_spot_uses_max_wait_at_on_demand_rate() -> None:
    job = make_job(
        "j", "ml", spot=True, max_runtime_seconds=3600, max_wait_seconds=7200, billable_seconds=1800
    )
    worst = worst_case_job(job)
    assert worst.billable_seconds == 7200 and worst.spot is False


def test_worst_case_adds_warm_pool_keep_alive() -> None:
    job = make_job("j", "ml", max_runtime_seconds=3600, keep_alive_seconds=1800)
    assert worst_case_job(job).warm_pool_retained_seconds == 1800


def test_worst_case_none_without_stopping_condition_or_for_serverless() -> None:
    assert worst_case_job(make_job("j", "ml", max_runtime_seconds=None)) is None
    serverless = make_job("s", "ml", serverless_base_model_arn="arn:model", billable_token_count=10)
    assert worst_case_job(serverless) is None


# -- which estimate belongs to a job ---------------------------------------------------------
T0 = datetime(2026, 11, 1, tzinfo=UTC)
CREATED = datetime(2026, 11, 20, tzinfo=UTC)
RECORDED = [
    RecordedEstimate("est-a", T0, D("1.38"), job_name="train-a"),
    RecordedEstimate("est-name", T0, D("0.92"), job_name="exact-b"),
    RecordedEstimate("est-name-later", CREATED + timedelta(days=1), D("5.00"), job_name="exact-b"),
    RecordedEstimate("est-night", T0, D("0.23"), name_prefix="night"),
    RecordedEstimate("est-nightly", T0, D("0.69"), name_prefix="nightly-"),
]
INDEX = EstimateIndex.build(RECORDED)


@pytest.mark.parametrize(
    ("name", "tags", "worst", "source", "usd", "estimate_id"),
    [
        # the id tag wins over the job's own exact name
        ("exact-b", {ESTIMATE_ID_TAG: "est-a"}, None, "estimate-id", "1.38", "est-a"),
        # exact name: the estimate recorded before the job was created wins over a later one
        ("exact-b", {}, None, "job-name", "0.92", "est-name"),
        # prefix: the longest recorded prefix wins
        ("nightly-2026-11-20", {}, None, "name-prefix", "0.69", "est-nightly"),
        ("nightshift", {}, None, "name-prefix", "0.23", "est-night"),
        # a recorded estimate wins over the amount tag
        ("nightly-x", {ESTIMATE_USD_TAG: "9.99"}, None, "name-prefix", "0.69", "est-nightly"),
        ("tagged", {ESTIMATE_USD_TAG: "$1,000.505"}, None, "estimate-usd-tag", "1000.51", None),
        ("tagged", {ESTIMATE_USD_TAG: "1.00"}, D("9"), "estimate-usd-tag", "1.00", None),
        ("worst", {}, D("0.4551"), "worst-case", "0.46", None),
        ("none", {}, None, "none", None, None),
    ],
)
def test_resolve_estimate_precedence(name, tags, worst, source, usd, estimate_id) -> None:
    resolved = resolve_estimate(name, tags, CREATED, INDEX, worst)
    assert resolved.source == source
    assert resolved.usd == (None if usd is None else D(usd))
    assert resolved.estimate_id == estimate_id


def test_resolve_estimate_unknown_id_falls_through_with_a_note() -> None:
    resolved = resolve_estimate("x", {ESTIMATE_ID_TAG: "est-gone"}, CREATED, INDEX, D("0.23"))
    assert (resolved.source, resolved.usd) == ("worst-case", D("0.23"))
    assert "est-gone" in resolved.note


def test_resolve_estimate_bad_amount_tag_is_noted_not_used() -> None:
    resolved = resolve_estimate("x", {ESTIMATE_USD_TAG: "lots"}, CREATED, INDEX, None)
    assert resolved.source == "none"
    assert "'lots' is not an amount" in resolved.note


@pytest.mark.parametrize(
    ("text", "usd"),
    [
        ("12.34", "12.34"),
        (" $7 ", "7.00"),
        ("1,234.5", "1234.50"),
        ("-1", None),
        ("NaN", None),
        ("", None),
    ],
)
def test_parse_usd_tag(text, usd) -> None:
    assert parse_usd_tag(text) == (None if usd is None else D(usd))


# -- config sections -------------------------------------------------------------------------
def test_config_sections_parse_and_default(tmp_path: Path) -> None:
    path = tmp_path / "t.toml"
    path.write_text("[estimates]\ntolerance_pct = 7.5\n[reconcile]\nsettle_days = 3\ndrift_pct = 2\n"
                    'granularity = "monthly"\nsource = "bills/"\n')  # fmt: skip
    settings = load_settings(str(path))
    assert settings.estimates.tolerance_pct == D("7.5")
    reconcile = settings.reconcile
    assert (reconcile.settle_days, reconcile.drift_pct, reconcile.granularity) == (
        3,
        D(2),
        "monthly",
    )
    assert reconcile.source == str(tmp_path / "bills")
    path.write_text("[database]\n")
    defaults = load_settings(str(path))
    assert defaults.estimates.tolerance_pct is None
    assert defaults.reconcile.tolerance_pct == D(10)
    assert (defaults.reconcile.settle_days, defaults.reconcile.source) == (
        2,
        "ce",
    )


def test_config_sections_report_every_problem(tmp_path: Path) -> None:
    path = tmp_path / "t.toml"
    path.write_text("[estimates]\ntolerance_pct = -1\ncolour = 1\n[reconcile]\nsettle_days = -2\n"
                    'drift_pct = "x"\ngranularity = "weekly"\n')  # fmt: skip
    with pytest.raises(ConfigError) as error:
        load_settings(str(path))
    problems = error.value.problems
    assert any(p.startswith("estimates.tolerance_pct:") for p in problems)
    assert any(p.startswith("estimates.colour: unknown key") for p in problems)
    assert any(p.startswith("reconcile.settle_days:") for p in problems)
    assert any(p.startswith("reconcile.drift_pct:") for p in problems)
    assert any(p.startswith("reconcile.granularity:") for p in problems)


# -- the Python API ----------------------------------------------------------------------------
API_SCRIPT = """
import json, sys
sys.modules["boto3"] = None  # any import of boto3 now fails
sys.modules["botocore"] = None
from datetime import datetime, timezone
from tracker.estimate.api import estimate_job
est = estimate_job("ml.m5.xlarge", 2, "3", team="nlp", name_prefix="nightly-", record=True,
                   db=sys.argv[1], now=datetime(2026, 11, 19, 9, tzinfo=timezone.utc))
print(json.dumps({"tags": est.tags(), "total": str(est.total_usd), "id": est.estimate_id}))
"""


def test_python_api_estimates_and_records_without_boto3(tmp_path: Path) -> None:
    db = tmp_path / "api.db"
    result = subprocess.run(
        [sys.executable, "-c", API_SCRIPT, f"sqlite:///{db}"],
        capture_output=True, text=True, cwd=tmp_path, timeout=60,
        env={"PATH": "", "PYTHONPATH": str(REPO)},
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout)
    assert out["total"] == "1.38"
    assert out["tags"] == {ESTIMATE_ID_TAG: out["id"], ESTIMATE_USD_TAG: "1.38"}
    row = (
        sqlite3.connect(db)
        .execute(
            "select name_prefix, team, list_micros, hours, created_at from estimates where id = ?",
            (out["id"],),
        )
        .fetchone()
    )
    assert row == ("nightly-", "nlp", 1_380_000, "3", "2026-11-19 09:00:00.000000")
