"""The models collection: registered model packages and models, and which jobs made them.

For every (account, region) the collector reaches (the pairs of its watermarks whose source is
still configured, as the re-measure finds them), list the model packages (versioned and
unversioned: ``ModelPackageType="Both"``) and the models, describe only those whose ARN is not
stored yet (what is read of a model never changes), store them, and delete the stored ones a
complete listing no longer returns. Then link ``jobs.model`` from scratch by the one lineage
rule (:mod:`tracker.store.lineage`): each model's name on the jobs of its lineage, oldest model
first, a job keeping the first model it is linked to. Linking changes no cost, and ``model`` is
not a rolled-up dimension, so nothing else is recomputed.

A pair whose calls fail is reported and keeps what was stored; the others go on, and the link
runs over what is stored either way.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from tracker.aws import AWS_ERRORS, describe_error
from tracker.aws import models as aws_models
from tracker.aws.session import AwsContext, AwsContextFactory, ContextFactory
from tracker.collect.remeasure import sources_by_account
from tracker.settings import Settings, Source
from tracker.store.database import Store
from tracker.store.lineage import LineageRepository
from tracker.store.schema import RegisteredModel

MODEL_PACKAGE = "model_package"
MODEL = "model"


@dataclass
class PairModels:
    """What the models collection did in one (account, region)."""

    source: str
    account_id: str
    region: str
    listed: int = 0
    described: int = 0  # new ARNs, described and stored
    removed: int = 0  # stored, no longer listed: deleted in AWS
    error: str | None = None
    calls: dict[str, dict[str, int]] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "account_id": self.account_id,
            "region": self.region,
            "listed": self.listed,
            "described": self.described,
            "removed": self.removed,
            "error": self.error,
            "calls": self.calls,
        }


@dataclass
class ModelsSummary:
    """What one models collection did: per pair, then the link."""

    pairs: list[PairModels] = field(default_factory=list)
    models_linked: int = 0  # models whose lineage holds at least one job not linked before
    jobs_linked: int = 0
    seconds: float = 0.0

    @property
    def errors(self) -> list[str]:
        return [f"{p.account_id}/{p.region}: {p.error}" for p in self.pairs if p.error]

    @property
    def status(self) -> str:
        """``ok``, ``partial`` (some pairs failed) or ``failed`` (all did)."""
        failed = sum(p.error is not None for p in self.pairs)
        if not failed:
            return "ok"
        return "failed" if failed == len(self.pairs) else "partial"

    def total(self, name: str) -> int:
        return sum(getattr(p, name) for p in self.pairs)

    def detail(self) -> str:
        """One line: counts, the link, each failed pair."""
        text = (
            f"{len(self.pairs)} account-region(s): {self.total('listed')} models listed, "
            f"{self.total('described')} new, {self.total('removed')} removed; "
            f"{self.jobs_linked} linked job(s) in the lineage of {self.models_linked} model(s)"
        )
        if self.errors:
            text += "; failed: " + "; ".join(self.errors[:3])
        return text

    def to_dict(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "listed": self.total("listed"),
            "described": self.total("described"),
            "removed": self.total("removed"),
            "models_linked": self.models_linked,
            "jobs_linked": self.jobs_linked,
            "seconds": round(self.seconds, 3),
            "pairs": [p.to_dict() for p in self.pairs],
        }


def collect_models(
    settings: Settings,
    store: Store,
    *,
    clock: Callable[[], datetime],
    context_factory: ContextFactory | None = None,
) -> ModelsSummary:
    """Collect the models of every reached (account, region), then link ``jobs.model``."""
    began = time.perf_counter()
    now = clock()
    factory = context_factory or AwsContextFactory(settings.collection)
    repository = LineageRepository(store)
    summary = ModelsSummary()
    for source, region in _pairs(settings, store):
        summary.pairs.append(_collect_pair(factory, source, region, repository, now))
    summary.models_linked, summary.jobs_linked = repository.link()
    summary.seconds = time.perf_counter() - began
    return summary


def _pairs(settings: Settings, store: Store) -> list[tuple[Source, str]]:
    """(source, region) of every watermark whose account a configured source still reaches,
    in a region that source still names; each once."""
    sources = sources_by_account(settings, store)
    pairs: dict[tuple[str, str], tuple[Source, str]] = {}
    for mark in store.watermarks():
        source = sources.get(mark.account_id)
        if source is not None and mark.region in source.regions:
            pairs.setdefault((source.name, mark.region), (source, mark.region))
    return list(pairs.values())


def _collect_pair(
    factory: ContextFactory,
    source: Source,
    region: str,
    repository: LineageRepository,
    now: datetime,
) -> PairModels:
    result = PairModels(source.name, "", region)
    ctx: AwsContext | None = None
    try:
        ctx = factory(source, region)
        result.account_id = ctx.account_id
        _collect(ctx, repository, result, now)
    except AWS_ERRORS as exc:
        result.error = describe_error(exc)
    finally:
        if ctx is not None:
            result.calls = ctx.counter.by_service()
    return result


def _collect(
    ctx: AwsContext, repository: LineageRepository, result: PairModels, now: datetime
) -> None:
    """List both kinds, describe the new ones, store them, drop the deleted ones."""
    sagemaker = ctx.client("sagemaker")
    packages = {p["ModelPackageArn"]: p for p in aws_models.list_model_packages(sagemaker)}
    models = {m["ModelArn"]: m for m in aws_models.list_models(sagemaker)}
    result.listed = len(packages) + len(models)
    known = repository.stored_arns(ctx.account_id, ctx.region)
    rows: list[RegisteredModel] = []
    for arn in packages.keys() - known:
        desc = aws_models.describe_model_package(sagemaker, arn)
        if desc is not None:
            rows.append(model_package_row(desc, ctx.account_id, ctx.region, now))
    for arn in models.keys() - known:
        desc = aws_models.describe_model(sagemaker, models[arn]["ModelName"])
        if desc is not None:
            rows.append(model_row(desc, ctx.account_id, ctx.region, now))
    result.described = repository.save_models(sorted(rows, key=lambda r: r.arn), now)
    # Only after both listings completed: a failed listing deletes nothing.
    result.removed = repository.remove_missing(ctx.account_id, ctx.region, {*packages, *models})


# -- parsing (pure) -----------------------------------------------------------------------------
def model_package_row(
    desc: Mapping[str, Any], account_id: str, region: str, now: datetime
) -> RegisteredModel:
    """A DescribeModelPackage response as a row: a versioned package is named
    ``<group>/<version>``, an unversioned one by its own name; its model data is the first
    container's with any."""
    group, version = desc.get("ModelPackageGroupName"), desc.get("ModelPackageVersion")
    name = f"{group}/{version}" if group and version else desc.get("ModelPackageName")
    containers = _dict(desc.get("InferenceSpecification")).get("Containers")
    return RegisteredModel(
        arn=desc["ModelPackageArn"],
        kind=MODEL_PACKAGE,
        name=str(name or desc["ModelPackageArn"].rsplit("/", 1)[-1]),
        account_id=account_id,
        region=region,
        model_data_url=_first_model_data(containers if isinstance(containers, list) else []),
        created_at=_time(desc.get("CreationTime")),
        collected_at=now,
    )


def model_row(
    desc: Mapping[str, Any], account_id: str, region: str, now: datetime
) -> RegisteredModel:
    """A DescribeModel response as a row: its model data is ``PrimaryContainer``'s, else the
    first of ``Containers`` with any (an inference pipeline)."""
    containers = [_dict(desc.get("PrimaryContainer"))]
    if isinstance(desc.get("Containers"), list):
        containers += desc["Containers"]
    return RegisteredModel(
        arn=desc["ModelArn"],
        kind=MODEL,
        name=str(desc.get("ModelName") or desc["ModelArn"].rsplit("/", 1)[-1]),
        account_id=account_id,
        region=region,
        model_data_url=_first_model_data(containers),
        created_at=_time(desc.get("CreationTime")),
        collected_at=now,
    )


def _first_model_data(containers: list[Any]) -> str | None:
    """The first container's S3 model data: ``ModelDataUrl`` (a model.tar.gz), else
    ``ModelDataSource.S3DataSource.S3Uri`` (uncompressed model data)."""
    for container in containers:
        item = _dict(container)
        url = item.get("ModelDataUrl") or _dict(
            _dict(item.get("ModelDataSource")).get("S3DataSource")
        ).get("S3Uri")
        if isinstance(url, str) and url.strip():
            return url.strip()
    return None


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _time(value: Any) -> datetime | None:
    if not isinstance(value, datetime):
        return None
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)
