"""The models collection (``tracker collect-models``): model packages and models found in moto,
described once, and ``jobs.model`` linked by the lineage rule (tracker/store/lineage.py).

Moto (5.x) against the API reference, as these tests rely on it:
- ListModelPackages defaults ``ModelPackageType`` to ``Unversioned`` as the API does, so a
  Model Registry version is listed only with ``Both`` (or ``Versioned``);
- DescribeModelPackage of a versioned package leaves ``ModelPackageName`` out (the API returns
  the group's name there); its ARN is ``model-package/<group lowercased>/<version>``;
- ListModels ignores ``MaxResults``/``NextToken`` and returns whole model records where the
  API returns ModelSummary (name, ARN, creation time): the collector reads only those three;
- there is no DeleteModelPackage: a deleted package is removed from moto's backend directly;
- a package's and a model's ``CreationTime`` is moto's wall clock: tests that depend on the
  order set it on moto's objects, as simulate.py does for jobs.

The organisation (us-east-1, account 123456789012, 1 x ml.m5.xlarge at a test rate of
$0.20/h, no storage or S3 rate, so a job costs billable h x 0.20):

| job      | tuning job | status    | billable s | cost | model artifact      |
|----------|------------|-----------|------------|------|---------------------|
| sweep-1  | sweep      | Completed | 3600       | 0.20 | .../sweep-1/...     |
| sweep-2  | sweep      | Completed | 7200       | 0.40 | .../sweep-2/...     |
| sweep-3  | sweep      | Failed    | 1800       | 0.10 | none (failed)       |
| sweep-4  | sweep      | Stopped   | 900        | 0.05 | none (stopped)      |
| solo     | -          | Completed | 18000      | 1.00 | .../solo/...        |
| other    | -          | Completed | 36000      | 2.00 | not registered      |

The sweep costs 0.20 + 0.40 + 0.10 + 0.05 = 0.75; everything 0.75 + 1.00 + 2.00 = 3.75.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws
from moto.sagemaker.models import sagemaker_backends

from tests.conftest import DEFAULT_ACCOUNT, T0, run_cli, seed_job_fast
from tracker.aws.session import AwsContextFactory
from tracker.cli.main import main as tracker_main
from tracker.collect import models as models_service
from tracker.collect.models import collect_models, model_package_row, model_row
from tracker.collect.service import collect
from tracker.cost.prices import PriceBook
from tracker.daemon.tasks import JobContext, task
from tracker.report.spend import spend_rows
from tracker.settings import CollectionSettings, Settings, Source
from tracker.store.database import Store
from tracker.store.lineage import LineageRepository

REGION = "us-east-1"
NOW = datetime(2026, 10, 10, 12, 0, tzinfo=UTC)
BOOK = PriceBook({(REGION, "ml.m5.xlarge"): Decimal("0.20")})
# Artifact bytes are not what these tests are about: no S3 listing.
CFG = Settings(sources=(Source("prod", (REGION,)),),
               collection=CollectionSettings(max_attempts=2, measure_artifacts=False))  # fmt: skip
SWEEP = f"arn:aws:sagemaker:{REGION}:{DEFAULT_ACCOUNT}:hyper-parameter-tuning-job/sweep"
ROLE = f"arn:aws:iam::{DEFAULT_ACCOUNT}:role/SageMakerExecution"
JOBS = {  # name: (status, billable seconds, tuning job)
    "sweep-1": ("Completed", 3600, SWEEP),
    "sweep-2": ("Completed", 7200, SWEEP),
    "sweep-3": ("Failed", 1800, SWEEP),
    "sweep-4": ("Stopped", 900, SWEEP),
    "solo": ("Completed", 18000, None),
    "other": ("Completed", 36000, None),
}
SWEEP_JOBS = {"sweep-1", "sweep-2", "sweep-3", "sweep-4"}


def artifact(job: str) -> str:
    """What moto reports as the job's ModelArtifacts.S3ModelArtifacts: the job's folder under
    S3OutputPath (JobSpec's ``s3://sm-artifacts/output``), ``output/model.tar.gz``."""
    return f"s3://sm-artifacts/output/{job}/output/model.tar.gz"


def container(job: str) -> dict[str, Any]:
    return {"Image": "img", "ModelDataUrl": artifact(job)}


def package_spec(job: str) -> dict[str, Any]:
    return {"Containers": [container(job)], "SupportedContentTypes": ["text/csv"],
            "SupportedResponseMIMETypes": ["text/csv"]}  # fmt: skip


def sm() -> Any:
    return boto3.client("sagemaker", region_name=REGION)


def seed_jobs() -> None:
    """The table's jobs, straight into moto's backends (the server's too: same process)."""
    for i, (name, (status, billable, tuning)) in enumerate(JOBS.items()):
        seed_job_fast(name, status=status, billable=billable, tuning_job_arn=tuning,
                      start=T0 + timedelta(hours=i))  # fmt: skip


def register_package(group: str, job: str) -> str:
    """A new version of the package group ``group`` (created if need be) from ``job``."""
    client = sm()
    if group not in sagemaker_backends[DEFAULT_ACCOUNT][REGION].model_package_groups:
        client.create_model_package_group(ModelPackageGroupName=group)
    return client.create_model_package(
        ModelPackageGroupName=group, InferenceSpecification=package_spec(job)
    )["ModelPackageArn"]


def created(arn_or_name: str, at: datetime) -> None:
    """Set a package's (by ARN) or a model's (by name) CreationTime on moto's object."""
    backend = sagemaker_backends[DEFAULT_ACCOUNT][REGION]
    found = backend.model_packages.get(arn_or_name) or backend._models[arn_or_name]
    found.creation_time = at.replace(tzinfo=None)


@pytest.fixture
def aws() -> Iterator[AwsContextFactory]:
    with mock_aws():
        seed_jobs()
        yield AwsContextFactory(CFG.collection)


@pytest.fixture
def store(tmp_path: Path, aws: AwsContextFactory) -> Store:
    """The jobs of the table collected (clock: NOW), no model yet."""
    store = Store.open(f"sqlite:///{tmp_path / 'tracker.db'}")
    summary = collect(CFG, store, BOOK, clock=lambda: NOW, context_factory=aws)
    assert summary.ok and summary.total("new") == len(JOBS)
    return store


def run(store: Store, aws: AwsContextFactory) -> models_service.ModelsSummary:
    return collect_models(CFG, store, clock=lambda: NOW, context_factory=aws)


def links(store: Store) -> dict[str, str | None]:
    return {job.name: job.model for job in store.jobs()}


def by_model(store: Store) -> dict[str, tuple[int, Decimal]]:
    """Report rows by model; jobs of no model are in the row the report calls unallocated."""
    return {r["model"]: (r["jobs"], r["total_usd"]) for r in spend_rows(store, "model")}


def sagemaker_calls(summary: models_service.ModelsSummary) -> dict[str, int]:
    [pair] = summary.pairs
    return pair.calls.get("sagemaker", {})


# -- finding them ------------------------------------------------------------------------------
def test_collect_models_finds_versioned_and_unversioned_packages_and_models(
    store: Store, aws: AwsContextFactory
) -> None:
    versioned = register_package("llm", "sweep-1")
    sm().create_model_package(ModelPackageName="plain", InferenceSpecification=package_spec("solo"))
    sm().create_model(
        ModelName="primary", ExecutionRoleArn=ROLE, PrimaryContainer=container("solo")
    )
    sm().create_model(ModelName="pipeline-model", ExecutionRoleArn=ROLE,
                      Containers=[{"Image": "pre"}, container("sweep-2")])  # fmt: skip
    # The API's (and moto's) default lists no Model Registry version: hence "Both".
    listed = sm().list_model_packages()["ModelPackageSummaryList"]
    assert [p["ModelPackageArn"] for p in listed] == [
        f"arn:aws:sagemaker:{REGION}:{DEFAULT_ACCOUNT}:model-package/plain"
    ]

    summary = run(store, aws)

    assert (summary.status, summary.total("listed"), summary.total("described")) == ("ok", 4, 4)
    with store.session() as session:
        from sqlalchemy import select

        from tracker.store.schema import RegisteredModel

        rows = {m.name: m for m in session.execute(select(RegisteredModel)).scalars()}
    assert {name: (m.kind, m.model_data_url) for name, m in rows.items()} == {
        "llm/1": ("model_package", artifact("sweep-1")),
        "plain": ("model_package", artifact("solo")),
        "primary": ("model", artifact("solo")),
        "pipeline-model": ("model", artifact("sweep-2")),  # the first container with data
    }
    assert rows["llm/1"].arn == versioned
    assert {(m.account_id, m.region) for m in rows.values()} == {(DEFAULT_ACCOUNT, REGION)}
    assert all(m.created_at is not None and m.collected_at == NOW.replace(tzinfo=None)
               for m in rows.values())  # fmt: skip


def test_second_run_lists_and_describes_nothing_new(store: Store, aws: AwsContextFactory) -> None:
    register_package("llm", "sweep-1")
    sm().create_model(
        ModelName="primary", ExecutionRoleArn=ROLE, PrimaryContainer=container("solo")
    )

    first, second = run(store, aws), run(store, aws)
    register_package("llm", "sweep-2")
    third = run(store, aws)

    assert sagemaker_calls(first) == {"ListModelPackages": 1, "ListModels": 1,
                                      "DescribeModelPackage": 1, "DescribeModel": 1}  # fmt: skip
    assert sagemaker_calls(second) == {"ListModelPackages": 1, "ListModels": 1}
    assert sagemaker_calls(third) == {"ListModelPackages": 1, "ListModels": 1,
                                      "DescribeModelPackage": 1}  # fmt: skip
    assert [(s.total("listed"), s.total("described")) for s in (first, second, third)] == [
        (2, 2), (2, 0), (3, 1),
    ]  # fmt: skip


def test_no_collected_pair_no_call(tmp_path: Path) -> None:
    """Pairs come from the collector's watermarks: before any collection there is none."""
    store = Store.open(f"sqlite:///{tmp_path / 'empty.db'}")

    def no_aws(source: Source, region: str) -> Any:
        raise AssertionError("no AWS call without a collected pair")

    summary = collect_models(CFG, store, clock=lambda: NOW, context_factory=no_aws)
    assert (summary.pairs, summary.status, summary.jobs_linked) == ([], "ok", 0)


# -- linking ---------------------------------------------------------------------------------------
def test_link_covers_the_whole_sweep_failed_and_stopped_included(
    store: Store, aws: AwsContextFactory
) -> None:
    """llm/1 is sweep-1's artifact: its lineage is the whole sweep (0.75); ``solo`` and
    ``other`` are in no lineage (3.00 under no model). 0.75 + 3.00 = 3.75."""
    register_package("llm", "sweep-1")

    summary = run(store, aws)

    assert (summary.models_linked, summary.jobs_linked) == (1, 4)
    assert links(store) == {**dict.fromkeys(SWEEP_JOBS, "llm/1"), "solo": None, "other": None}
    assert by_model(store) == {"llm/1": (4, Decimal("0.75")), "unallocated": (2, Decimal("3.00"))}


def test_a_job_in_two_lineages_is_counted_once_under_the_older_model(
    store: Store, aws: AwsContextFactory
) -> None:
    """Two models came out of the sweep: ``llm/1`` (sweep-2's artifact, created first) and
    ``best`` (sweep-1's, a day later). Every sweep job goes to llm/1, so ``--by model`` adds up:
    llm/1 0.75 + solo-model 1.00 + none 2.00 = 3.75, the whole spend. ``best`` still has the
    whole sweep as its lineage (what ``tracker lineage`` lists)."""
    first = register_package("llm", "sweep-2")
    sm().create_model(
        ModelName="best", ExecutionRoleArn=ROLE, PrimaryContainer=container("sweep-1")
    )
    sm().create_model(ModelName="solo-model", ExecutionRoleArn=ROLE,
                      PrimaryContainer=container("solo"))  # fmt: skip
    created(first, NOW - timedelta(days=3))
    created("best", NOW - timedelta(days=2))
    created("solo-model", NOW - timedelta(days=1))

    summary = run(store, aws)

    assert (summary.models_linked, summary.jobs_linked) == (2, 5)
    assert links(store) == {**dict.fromkeys(SWEEP_JOBS, "llm/1"), "solo": "solo-model",
                            "other": None}  # fmt: skip
    rows = by_model(store)
    assert rows == {"llm/1": (4, Decimal("0.75")), "solo-model": (1, Decimal("1.00")),
                    "unallocated": (1, Decimal("2.00"))}  # fmt: skip
    assert sum(total for _, total in rows.values()) == Decimal("3.75")
    lineage = LineageRepository(store)
    assert {job.name for job in lineage.jobs(lineage.find("best"))} == SWEEP_JOBS


def test_relink_after_the_older_model_is_deleted(store: Store, aws: AwsContextFactory) -> None:
    """``early`` (a model, sweep-1's artifact) is older than ``llm/1`` (sweep-2's): the sweep is
    early's. Once early is deleted, the next run forgets it and the sweep moves to llm/1; once
    llm/1 is gone too (moto has no DeleteModelPackage: removed from its backend), no link stays."""
    sm().create_model(
        ModelName="early", ExecutionRoleArn=ROLE, PrimaryContainer=container("sweep-1")
    )
    later = register_package("llm", "sweep-2")
    created("early", NOW - timedelta(days=2))
    created(later, NOW - timedelta(days=1))
    run(store, aws)
    assert set(links(store).values()) == {"early", None}

    sm().delete_model(ModelName="early")
    after_delete = run(store, aws)
    assert after_delete.total("removed") == 1
    assert links(store) == {**dict.fromkeys(SWEEP_JOBS, "llm/1"), "solo": None, "other": None}

    del sagemaker_backends[DEFAULT_ACCOUNT][REGION].model_packages[later]
    gone = run(store, aws)
    assert (gone.total("removed"), gone.jobs_linked) == (1, 0)
    assert set(links(store).values()) == {None}


def test_a_failed_listing_keeps_the_stored_models_and_links(
    store: Store, aws: AwsContextFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    from botocore.exceptions import ClientError

    register_package("llm", "sweep-1")
    run(store, aws)

    def denied(client: Any) -> Iterator[dict]:
        raise ClientError({"Error": {"Code": "AccessDeniedException", "Message": "no"}},
                          "ListModels")  # fmt: skip

    monkeypatch.setattr(models_service.aws_models, "list_models", denied)
    summary = run(store, aws)

    assert summary.status == "failed"
    assert summary.errors == [
        f"{DEFAULT_ACCOUNT}/{REGION}: AccessDeniedException on ListModels: no"
    ]
    assert (summary.total("removed"), summary.jobs_linked) == (0, 4)
    assert set(links(store).values()) == {"llm/1", None}


def test_models_task_runs_as_a_scheduled_job(store: Store, aws: AwsContextFactory) -> None:
    register_package("llm", "sweep-1")
    ctx = JobContext(CFG, store, lambda: NOW, lambda: NOW)

    outcome = task("models")(ctx)

    assert outcome.status == "ok"
    assert outcome.detail == (
        "1 account-region(s): 1 models listed, 1 new, 0 removed; "
        "4 linked job(s) in the lineage of 1 model(s)"
    )


# -- parsing -----------------------------------------------------------------------------------
def test_rows_read_model_data_sources_and_names() -> None:
    """An unversioned package keeps its name; uncompressed model data (ModelDataSource) counts;
    a model built from a package (no model data of its own) has none."""
    package = model_package_row(
        {
            "ModelPackageArn": "arn:aws:sagemaker:us-east-1:1:model-package/p",
            "ModelPackageName": "p",
            "CreationTime": datetime(2026, 1, 1),
            "InferenceSpecification": {
                "Containers": [
                    {
                        "Image": "i",
                        "ModelDataSource": {
                            "S3DataSource": {"S3Uri": "s3://b/model/", "S3DataType": "S3Prefix"}
                        },
                    }
                ]  # fmt: skip
            },
        },
        "1",
        REGION,
        NOW,
    )
    model = model_row(
        {
            "ModelArn": "arn:aws:sagemaker:us-east-1:1:model/m",
            "ModelName": "m",
            "PrimaryContainer": {
                "ModelPackageName": "arn:aws:sagemaker:us-east-1:1:model-package/p"
            },
        },
        "1",
        REGION,
        NOW,
    )
    assert (package.name, package.model_data_url, package.created_at) == (
        "p", "s3://b/model/", datetime(2026, 1, 1, tzinfo=UTC),
    )  # fmt: skip
    assert (model.name, model.kind, model.model_data_url, model.created_at) == (
        "m", "model", None, None,
    )  # fmt: skip


# -- the command -------------------------------------------------------------------------------
def test_collect_models_command_end_to_end(
    moto_endpoint: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``tracker collect``, then the real ``tracker collect-models`` (a subprocess) against a
    moto server; a second run (in process) describes nothing; ``report --by model`` shows the
    sweep (0.75) and the rest (3.00)."""
    seed_jobs()
    register_package("llm", "sweep-1")  # sagemaker_backends is the server's: same process
    config = tmp_path / "tracker.toml"
    db = tmp_path / "tracker.db"
    config.write_text(f'[database]\nurl = "sqlite:///{db}"\n[[sources]]\nname = "prod"\n'
                      f'regions = ["{REGION}"]\n[pricing]\noverrides = "{tmp_path / "p.csv"}"\n')  # fmt: skip
    (tmp_path / "p.csv").write_text(
        f"region,instance_type,usd_per_hour\n{REGION},ml.m5.xlarge,0.20\n"
    )
    assert tracker_main(["--config", str(config), "collect"]) == 0
    capsys.readouterr()

    first = run_cli("--config", str(config), "collect-models")  # the real command
    assert tracker_main(["--config", str(config), "collect-models", "--format", "json"]) == 0
    second = json.loads(capsys.readouterr().out)
    assert (
        tracker_main(["--config", str(config), "report", "--by", "model", "--format", "json"]) == 0
    )
    report = json.loads(capsys.readouterr().out, parse_float=Decimal)

    assert first.returncode == 0, first.stderr
    assert first.stdout.splitlines() == [
        "Models: 1 account-region(s): 1 models listed, 1 new, 0 removed; "
        "4 linked job(s) in the lineage of 1 model(s)",
        f"  {DEFAULT_ACCOUNT}  {REGION}       prod: 1 listed, 1 new, 0 removed",
    ]
    assert (second["status"], second["listed"], second["described"], second["jobs_linked"]) == (
        "ok", 1, 0, 4,
    )  # fmt: skip
    assert second["pairs"][0]["calls"]["sagemaker"] == {"ListModelPackages": 1, "ListModels": 1}
    rows = {r["model"]: (r["jobs"], r["total_usd"]) for r in report}
    assert rows == {"llm/1": (4, Decimal("0.75")), "unallocated": (2, Decimal("3.00"))}


def test_schedule_models_key(tmp_path: Path) -> None:
    """``[schedule] models``: hourly by default, any schedule expression, or off."""
    from tracker.errors import ConfigError
    from tracker.settings import parse_settings

    config = tmp_path / "tracker.toml"
    config.write_text("[schedule]\ncollect = '*/5 * * * *'\n")
    assert parse_settings(config).schedule.models == "0 * * * *"
    config.write_text("[schedule]\nmodels = '@every 2h'\n")
    assert parse_settings(config).schedule.models == "@every 2h"
    config.write_text("[schedule]\nmodels = 'off'\n")
    assert parse_settings(config).schedule.models == "off"
    config.write_text("[schedule]\nmodels = 'after collect'\n")
    with pytest.raises(ConfigError, match=r"schedule\.models"):
        parse_settings(config)
