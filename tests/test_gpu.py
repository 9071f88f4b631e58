"""Idle-GPU cost (issue 15): CloudWatch GPU metrics fetched once per finished GPU job,
idle GPU cost = compute x (1 - mean / 100) beside the job's cost, the waste view's
``idle_gpu`` category with a right-sizing hint.

Test rates: ml.g5.12xlarge (4 GPUs) $8.00/h, ml.g5.48xlarge (8 GPUs) $16.00/h, ml.g5.xlarge
$1.00/h. NOW = 2026-10-10 12:00 UTC; every job ran one hour from 2026-10-10 06:00.

| job   | type x count      | compute | GPUUtilization per host (x GPUs) | mean/GPU | idle   |
|-------|-------------------|---------|----------------------------------|----------|--------|
| busy  | ml.g5.12xlarge x2 | $16.00  | algo-1 80, 120; algo-2 60, 140   | 25 %     | $12.00 |
| quiet | ml.g5.48xlarge x1 | $16.00  | algo-1 88, 88                    | 11 %     | $14.24 |
| dark  | ml.g5.xlarge x1   | $1.00   | none                             | no-metrics | -    |
| cpu   | ml.m5.xlarge x1   | $0.20   | not fetched (not a GPU type)     |          |        |
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import boto3
import pytest
from moto import mock_aws

from tests.conftest import DEFAULT_ACCOUNT, seed_job
from tracker.aws.session import AwsContextFactory
from tracker.collect.gpu import fetch_gpu_metrics
from tracker.collect.service import collect
from tracker.cost.gpu import gpu_table, idle_micros, job_stats, rightsize_hint
from tracker.cost.prices import PriceBook
from tracker.records import usd_cents
from tracker.report.views import ViewRequest, build
from tracker.settings import CollectionSettings, Settings, Source
from tracker.store.database import Store
from tracker.store.gpu import GpuRepository

NOW = datetime(2026, 10, 10, 12, 0, tzinfo=UTC)
START = datetime(2026, 10, 10, 6, 0)
BOOK = PriceBook({("us-east-1", "ml.g5.12xlarge"): Decimal("8.00"),
                  ("us-east-1", "ml.g5.48xlarge"): Decimal("16.00"),
                  ("us-east-1", "ml.g5.xlarge"): Decimal("1.00"),
                  ("us-east-1", "ml.m5.xlarge"): Decimal("0.20")})  # fmt: skip
CFG = Settings(sources=(Source("prod", ("us-east-1",)),),
               collection=CollectionSettings(max_attempts=2))  # fmt: skip
SOURCES = {DEFAULT_ACCOUNT: CFG.sources[0]}
JOBS = {"busy": ("ml.g5.12xlarge", 2), "quiet": ("ml.g5.48xlarge", 1),
        "dark": ("ml.g5.xlarge", 1), "cpu": ("ml.m5.xlarge", 1)}  # fmt: skip
METRICS = {"busy/algo-1": (80, 120), "busy/algo-2": (60, 140), "quiet/algo-1": (88, 88)}


class CountingFactory(AwsContextFactory):
    """The real factory, keeping every context so a test can read its call counters."""

    def __init__(self, *args, **kwargs) -> None:  # type: ignore[no-untyped-def]
        super().__init__(*args, **kwargs)
        self.contexts: list = []

    def __call__(self, source, region):  # type: ignore[no-untyped-def]
        ctx = super().__call__(source, region)
        self.contexts.append(ctx)
        return ctx

    def calls(self, operation: str) -> int:
        return sum(c.counter.calls[("cloudwatch", operation)] for c in self.contexts)


def _seed(metrics: dict[str, tuple[int, ...]] = METRICS) -> None:
    sm = boto3.client("sagemaker", region_name="us-east-1")
    for name, (instance_type, count) in JOBS.items():
        seed_job(sm, name, instance_type=instance_type, count=count, start=START, billable=3600)
    cw = boto3.client("cloudwatch", region_name="us-east-1")
    for host, values in metrics.items():
        for minute, value in enumerate(values, start=1):
            cw.put_metric_data(
                Namespace="/aws/sagemaker/TrainingJobs",
                MetricData=[{"MetricName": "GPUUtilization", "Value": value, "Unit": "Percent",
                             "Timestamp": START + timedelta(minutes=minute),
                             "Dimensions": [{"Name": "Host", "Value": host}]}],
            )  # fmt: skip


def _collected(tmp_path: Path) -> tuple[Store, CountingFactory]:
    store = Store.open(f"sqlite:///{tmp_path / 'tracker.db'}")
    factory = CountingFactory(CFG.collection)
    collect(CFG, store, BOOK, clock=lambda: NOW, context_factory=factory)
    return store, factory


def test_collect_gpu_metrics_idle_cost_is_75_percent_at_25_percent_mean(tmp_path: Path) -> None:
    with mock_aws():
        _seed()
        store, factory = _collected(tmp_path)
        again = fetch_gpu_metrics(CFG, store, SOURCES, clock=lambda: NOW, context_factory=factory)
    gpu = GpuRepository(store)
    busy = store.job_by_name("busy")
    stored = gpu.for_job(busy.id)
    assert (stored.status, stored.hosts, stored.gpus_per_host) == ("ok", 2, 4)
    # algo-1 20 %, 30 %; algo-2 15 %, 35 %: means 25 and 25; nearest-rank p95s 30 and 35.
    assert (stored.gpu_util_mean, stored.gpu_util_p95) == ("25.000", "32.500")
    assert busy.compute_micros == 16_000_000
    assert idle_micros(busy.compute_micros, Decimal(stored.gpu_util_mean)) == Decimal(12_000_000)
    assert gpu.for_job(store.job_by_name("cpu").id) is None  # not a GPU type: never fetched
    # Fetched once: the second run finds nothing to fetch and calls nothing.
    assert (again.jobs, factory.calls("GetMetricData")) == (0, 1)


def test_collect_gpu_metrics_job_without_datapoints_waits_then_says_no_metrics(
    tmp_path: Path,
) -> None:
    with mock_aws():
        _seed()
        store = Store.open(f"sqlite:///{tmp_path / 'tracker.db'}")
        factory = AwsContextFactory(CFG.collection)
        early = NOW.replace(hour=8)  # 1 h after the end: CloudWatch may still lag
        collect(CFG, store, BOOK, clock=lambda: early, context_factory=factory)
        dark = store.job_by_name("dark").id
        assert GpuRepository(store).for_job(dark) is None
        late = fetch_gpu_metrics(CFG, store, SOURCES, clock=lambda: NOW, context_factory=factory)
    assert (late.jobs, late.ok, late.no_metrics, late.waiting) == (1, 0, 1, 0)
    assert GpuRepository(store).for_job(dark).status == "no-metrics"


def test_fetch_gpu_metrics_many_jobs_in_one_call(tmp_path: Path) -> None:
    many = {f"job-{n:03d}": ("ml.g5.12xlarge", 2) for n in range(100)}  # 400 queries
    with mock_aws():
        sm = boto3.client("sagemaker", region_name="us-east-1")
        for name, (instance_type, count) in many.items():
            seed_job(sm, name, instance_type=instance_type, count=count, start=START)
        store, factory = _collected(tmp_path)
    assert factory.calls("GetMetricData") == 1  # 100 jobs x 2 hosts x 2 metrics in one call
    assert GpuRepository(store).for_job(store.job_by_name("job-000").id).status == "no-metrics"


def test_report_waste_view_shows_idle_gpu_with_hint(tmp_path: Path) -> None:
    with mock_aws():
        _seed()
        store, _ = _collected(tmp_path)
    table = build(store, ViewRequest("waste"), NOW)
    idle = [(r["team"], r["jobs"], r["waste_usd"], r["note"])
            for r in table.rows if r["category"] == "idle_gpu"]  # fmt: skip
    assert idle == [
        ("ml", 1, Decimal("14.24"), "quiet: 8 GPUs, mean 11.0 %: try ml.g5.xlarge"),
        ("ml", 1, Decimal("12.00"), "busy: 8 GPUs, mean 25.0 %: try ml.g5.12xlarge"),
    ]
    chart = dict(zip(table.charts[0].labels, table.charts[0].series[0].values, strict=True))
    assert chart["idle_gpu"] == Decimal("26.24")


@pytest.mark.parametrize(
    ("instance_type", "count", "mean", "hint"),
    [
        ("ml.g5.48xlarge", 1, "11", "8 GPUs, mean 11.0 %: try ml.g5.xlarge"),
        ("ml.g5.48xlarge", 1, "40", "8 GPUs, mean 40.0 %: try ml.g5.12xlarge"),  # 4 GPUs
        ("ml.g5.48xlarge", 1, "90", "8 GPUs, mean 90.0 %"),  # needs all 8
        ("ml.p4d.24xlarge", 2, "30", "16 GPUs, mean 30.0 %: try ml.p4d.24xlarge"),  # 5 of 8
        ("ml.p4d.24xlarge", 1, "30", "8 GPUs, mean 30.0 %"),  # no smaller p4d
        ("ml.g5.xlarge", 1, "5", "1 GPU, mean 5.0 %"),
    ],
)
def test_rightsize_hint_cases(instance_type: str, count: int, mean: str, hint: str) -> None:
    assert rightsize_hint(instance_type, count, Decimal(mean)) == hint


def test_job_stats_divide_by_gpus_and_average_hosts() -> None:
    stats = job_stats({"a/algo-1": [400.0, 200.0], "a/algo-2": [], "a/algo-3": [100.0]}, 4)
    # algo-1: 100 %, 50 % -> mean 75, p95 100; algo-3: 25; algo-2 has no data and is left out.
    assert (stats.mean, stats.p95, stats.hosts) == (Decimal("50.000"), Decimal("62.500"), 2)
    assert job_stats({"a/algo-1": []}, 4) is None


def test_idle_micros_is_never_negative() -> None:
    assert idle_micros(1_000_000, Decimal("120")) == 0
    assert idle_micros(1_000_000, Decimal("0")) == Decimal(1_000_000)


def test_gpu_table_rows_each_have_a_source() -> None:
    import csv
    from importlib import resources

    text = resources.files("tracker.cost").joinpath("data/gpus.csv").read_text(encoding="utf-8")
    rows = list(csv.DictReader(text.splitlines()))
    assert all(row["source"].strip() for row in rows)
    assert gpu_table()["ml.g5.48xlarge"] == 8


def _gpu_examples() -> list[dict]:
    import json
    import re

    from tests.conftest import REPO

    text = (REPO / "docs" / "cost-model.md").read_text(encoding="utf-8")
    examples = []
    for body in re.findall(r"^```gpu-example\n(.*?)^```", text, re.S | re.M):
        example = {}
        for line in body.strip().splitlines():
            key, _, value = line.partition(":")
            example[key.strip()] = value.strip() if key == "name" else json.loads(value)
        examples.append(example)
    return examples


def test_doc_gpu_examples_exist() -> None:
    assert [e["name"] for e in _gpu_examples()] == ["quarter-used", "eight-gpus-mostly-idle"]


@pytest.mark.parametrize("example", _gpu_examples(), ids=lambda e: e["name"])
def test_doc_gpu_example_matches_rules(example: dict) -> None:
    gpus = gpu_table()[example["instance_type"]]
    stats = job_stats(example["hosts"], gpus)
    mean = stats.mean
    idle = idle_micros(Decimal(example["compute_usd"]) * 10**6, mean)
    assert {
        "mean_pct": str(stats.mean),
        "p95_pct": str(stats.p95),
        "idle_usd": str(usd_cents(idle)),
        "hint": rightsize_hint(example["instance_type"], example["count"], mean),
    } == example["expect"]


def test_web_job_page_shows_utilisation_or_no_metrics(tmp_path: Path) -> None:
    from fastapi.testclient import TestClient

    from tracker.web.app import create_app

    with mock_aws():
        _seed()
        store, _ = _collected(tmp_path)
    client = TestClient(create_app(store, clock=lambda: NOW))
    busy = client.get(f"/jobs/{store.job_by_name('busy').id}").text
    dark = client.get(f"/jobs/{store.job_by_name('dark').id}").text
    cpu = client.get(f"/jobs/{store.job_by_name('cpu').id}").text
    assert "<td>25.000 / 32.500</td>" in busy
    assert "<td>12.00 USD</td>" in busy
    assert "8 GPUs, mean 25.0 %: try ml.g5.12xlarge" in busy
    assert "no GPU metrics: CloudWatch had no GPUUtilization datapoints" in dark
    assert "GPU utilisation" not in cpu


def test_collect_gpu_metrics_denied_keeps_collection_ok_and_retries(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from botocore.exceptions import ClientError

    from tracker.aws import cloudwatch

    def denied(*args, **kwargs):  # type: ignore[no-untyped-def]
        raise ClientError({"Error": {"Code": "AccessDenied", "Message": "no"}}, "GetMetricData")

    with mock_aws():
        _seed()
        store = Store.open(f"sqlite:///{tmp_path / 'tracker.db'}")
        factory = AwsContextFactory(CFG.collection)
        with monkeypatch.context() as patch:
            patch.setattr(cloudwatch, "fetch", denied)
            first = collect(CFG, store, BOOK, clock=lambda: NOW, context_factory=factory)
        assert first.ok and first.gpu.errors == [
            f"{DEFAULT_ACCOUNT}/us-east-1: AccessDenied on GetMetricData: no"
        ]
        assert GpuRepository(store).for_job(store.job_by_name("busy").id) is None
        second = fetch_gpu_metrics(CFG, store, SOURCES, clock=lambda: NOW, context_factory=factory)
    assert (second.ok, second.no_metrics, second.errors) == (2, 1, [])
