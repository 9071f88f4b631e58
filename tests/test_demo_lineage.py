"""The demo's lineage cases (tracker.aws.simulate._lineage_jobs, seed_models), collected and
reported: ``report --by tuning_job|pipeline_execution|experiment|base_model|model`` give the
totals worked out here by hand, not read from the tool.

Shipped rates: ml.g5.2xlarge in us-east-1 $1.515/h, ml.g5.xlarge in us-west-2 $1.408/h. The g5
family has local NVMe storage, so no ML storage volume is billed; the demo ships no S3 rate (the
artifact run-rate is not part of a job's total anyway). So each job costs
billable seconds x instances x rate / 3600:

| job (demo name)                                   | n | billable s | rate  | cost     |
|---------------------------------------------------|---|------------|-------|----------|
| nlp-llm-sweep-001-001 (Completed, best: nlp-llm/1)| 1 | 7200       | 1.515 | 3.030000 |
| nlp-llm-sweep-001-002 (Completed)                 | 1 | 5400       | 1.515 | 2.272500 |
| nlp-llm-sweep-001-003 (Failed)                    | 1 | 1800       | 1.515 | 0.757500 |
| nlp-llm-sweep-001-004 (Stopped early)             | 1 | 2700       | 1.515 | 1.136250 |
| sweep nlp-llm-sweep-001 = model nlp-llm/1         | 4 |            |       | 7.196250 -> 7.20 |
| vision-train-Preprocess (Completed)               | 1 | 900        | 1.408 | 0.352000 |
| vision-train-Train (Failed attempt)               | 2 | 1800       | 1.408 | 1.408000 |
| vision-train-Train (retry, Completed)             | 2 | 5400       | 1.408 | 4.224000 |
| execution vision-train/7k2m9x4q1b3z = experiment vision-train = model vision-detector-7k2m9x4q1b3z | 3 | | | 5.984000 -> 5.98 |
| nlp-llm-jumpstart-ft-011 (base model meta-textgeneration-llama-3-8b) | 1 | 3600 | 1.515 | 1.515000 -> 1.52 |

Failed attempts (``tracker lineage``): nlp-llm/1's failed and stopped sweep jobs 0.757500 +
1.136250 = 1.893750 -> 1.89; vision-detector-7k2m9x4q1b3z's failed training attempt 1.408 -> 1.41.

Units of work (``report --view units``, completed jobs only for hyperparameter epochs): the two
completed sweep jobs ran ``epochs`` "3" each and report ``train_tokens`` 48,000,000 each; the
JumpStart fine-tune ran ``epoch`` "\"2\"" and reports ``num_input_tokens_seen`` 12,500,000:

| jobs                    | compute  | epochs | per epoch            | tokens (M) | per M tokens          |
|-------------------------|----------|--------|----------------------|------------|-----------------------|
| sweep 001 + 002         | 5.302500 | 6      | 0.883750 -> 0.88     | 96         | 0.055234 -> 0.06      |
| JumpStart fine-tune     | 1.515000 | 2      | 0.757500 -> 0.76     | 12.5       | 0.121200 -> 0.12      |
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest
from moto import mock_aws

from tracker.aws import simulate
from tracker.cli.main import main as tracker_main
from tracker.collect.models import collect_models
from tracker.collect.service import collect
from tracker.settings import CollectionSettings, Settings, Source
from tracker.store.database import Store
from tracker.store.lineage import LineageRepository

NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)  # the demo's pinned clock
RANDOM_JOBS = 4  # a few of the demo's random jobs, which belong to no lineage
SETTINGS = Settings(
    sources=(
        Source("prod", ("us-east-1", "us-west-2")),
        Source("research", ("us-east-1", "eu-west-1"),
               role_arn="arn:aws:iam::210987654321:role/SpendTrackerRead"),
    ),
    collection=CollectionSettings(measure_artifacts=False),
)  # fmt: skip
EXPECTED = {  # dimension: {value: (jobs, total USD)}
    "tuning_job": {"nlp-llm-sweep-001": (4, Decimal("7.20"))},
    "pipeline_execution": {"vision-train/7k2m9x4q1b3z": (3, Decimal("5.98"))},
    "pipeline": {"vision-train": (3, Decimal("5.98"))},
    "experiment": {"vision-train": (3, Decimal("5.98"))},
    "trial": {"7k2m9x4q1b3z": (3, Decimal("5.98"))},
    "base_model": {"meta-textgeneration-llama-3-8b": (1, Decimal("1.52"))},
    "model": {
        "nlp-llm/1": (4, Decimal("7.20")),
        "vision-detector-7k2m9x4q1b3z": (3, Decimal("5.98")),
    },
}


@pytest.fixture(scope="module")
def demo_db(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The demo organisation (its special cases and a few random jobs) and its two models,
    collected and linked at the demo's clock."""
    url = f"sqlite:///{tmp_path_factory.mktemp('demo-lineage') / 'demo.db'}"
    with pytest.MonkeyPatch.context() as patch:
        for key, value in {"AWS_ACCESS_KEY_ID": "demo", "AWS_SECRET_ACCESS_KEY": "demo",
                           "AWS_DEFAULT_REGION": "us-east-1"}.items():  # fmt: skip
            patch.setenv(key, value)
        patch.delenv("AWS_ENDPOINT_URL", raising=False)
        with mock_aws():
            simulate.seed_organisation(simulate.demo_jobs(NOW, RANDOM_JOBS, seed=7))
            simulate.seed_models(NOW)
            store = Store.open(url)
            summary = collect(SETTINGS, store, SETTINGS.price_book(), clock=lambda: NOW)
            assert summary.ok
            models = collect_models(SETTINGS, store, clock=lambda: NOW)
            assert (models.status, models.total("described"), models.jobs_linked) == ("ok", 2, 7)
    yield url


@pytest.mark.parametrize("dimension", EXPECTED)
def test_demo_report_by_lineage_matches_the_hand_calculation(
    demo_db: str, dimension: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code = tracker_main(["--db", demo_db, "report", "--by", dimension, "--format", "json"])
    rows = json.loads(capsys.readouterr().out, parse_float=Decimal)

    assert code == 0
    found = {r[dimension]: (r["jobs"], r["total_usd"]) for r in rows if r[dimension] in
             EXPECTED[dimension]}  # fmt: skip
    assert found == EXPECTED[dimension]
    # Every other job is in the row of no value: the rows add up to the whole spend.
    assert sum(r["jobs"] for r in rows) == len(simulate.demo_jobs(NOW, RANDOM_JOBS, seed=7))


def test_demo_models_lineage_holds_the_failed_and_stopped_attempts(demo_db: str) -> None:
    lineage = LineageRepository(Store.open(demo_db))
    package = lineage.find("nlp-llm/1")
    jobs = lineage.jobs(package)

    assert package.kind == "model_package"
    assert package.arn == "arn:aws:sagemaker:us-east-1:123456789012:model-package/nlp-llm/1"
    assert [p.name for p in lineage.producers(package)] == [simulate.SWEEP_JOBS[0]]
    assert sorted((j.name, j.status) for j in jobs) == [
        (simulate.SWEEP_JOBS[0], "Completed"),
        (simulate.SWEEP_JOBS[1], "Completed"),
        (simulate.SWEEP_JOBS[2], "Failed"),
        (simulate.SWEEP_JOBS[3], "Stopped"),
    ]
    model = lineage.find("vision-detector-7k2m9x4q1b3z")
    assert (model.kind, [j.name for j in lineage.jobs(model)]) == (
        "model", list(simulate.PIPELINE_JOBS),
    )  # fmt: skip


@pytest.mark.parametrize(
    ("model", "total", "failed"),
    [("nlp-llm/1", "7.20", "1.89"), ("vision-detector-7k2m9x4q1b3z", "5.98", "1.41")],
)
def test_demo_lineage_command_gives_the_cost_to_produce_with_failed_attempts(
    demo_db: str, model: str, total: str, failed: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code = tracker_main(["--db", demo_db, "lineage", model, "--format", "json"])
    out = json.loads(capsys.readouterr().out, parse_float=Decimal)

    assert code == 0
    assert (out["total_usd"], out["failed_attempts_usd"]) == (Decimal(total), Decimal(failed))


def test_readme_quotes_the_demo_lineage_as_the_command_gives_it() -> None:
    """The README's lineage example states the demo's numbers tested above."""
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
    claim = "`tracker lineage nlp-llm/1` gives $7.20 over 4 jobs, $1.89 of it failed or stopped"
    assert claim in " ".join(readme.split())


def test_demo_unit_costs_per_epoch_and_per_million_tokens(
    demo_db: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code = tracker_main(
        ["--db", demo_db, "report", "--view", "units", "--by", "base_model", "--format", "json"]
    )
    rows = {r["base_model"]: r for r in json.loads(capsys.readouterr().out, parse_float=Decimal)}

    assert code == 0
    tuned = rows["meta-textgeneration-llama-3-8b"]
    assert (tuned["epochs"], tuned["usd_per_epoch"]) == (Decimal("2.00"), Decimal("0.76"))
    assert (tuned["tokens_m"], tuned["usd_per_million_tokens"]) == (
        Decimal("12.50"), Decimal("0.12"),
    )  # fmt: skip
    rest = rows["unallocated"]  # the sweep's completed jobs are the only others reporting work
    assert (rest["epoch_jobs"], rest["epochs"], rest["usd_per_epoch"]) == (
        2,
        Decimal("6.00"),
        Decimal("0.88"),
    )
    assert (rest["token_jobs"], rest["tokens_m"], rest["usd_per_million_tokens"]) == (
        2, Decimal("96.00"), Decimal("0.06"),
    )  # fmt: skip
