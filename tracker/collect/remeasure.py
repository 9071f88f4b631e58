"""The daily artifact re-measure: S3 bytes of recently ended jobs, measured again.

Checkpoints and outputs are often copied after a job ends, so the bytes measured when the job
was collected can be short. Once a day (``[schedule] remeasure``) every final job that ended
within ``[collection] remeasure_days`` is measured again with the collector's S3 function;
a job whose bytes changed gets the new bytes and the artifact run-rate cost computed from
them. An incomplete measurement (a denied or missing location) keeps what was stored.
Jobs of an account no configured source reaches any more are counted and left alone.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

from tracker.aws import AWS_ERRORS, describe_error
from tracker.aws import s3 as aws_s3
from tracker.aws.session import AwsContext, AwsContextFactory, ContextFactory
from tracker.collect.service import member_source
from tracker.cost.engine import cost_job
from tracker.cost.prices import PriceBook
from tracker.settings import Settings, Source
from tracker.store.artifacts import ArtifactRepository
from tracker.store.database import Store


@dataclass
class RemeasureSummary:
    """What one re-measure did."""

    since: datetime
    measured: int = 0
    grown: int = 0  # bytes changed (usually grew) and were stored
    unchanged: int = 0
    incomplete: int = 0  # a location could not be measured: stored bytes kept
    no_source: int = 0  # the job's account is no longer configured
    errors: list[str] = field(default_factory=list)

    @property
    def status(self) -> str:
        return "partial" if self.errors or self.incomplete else "ok"


def remeasure_artifacts(
    settings: Settings,
    store: Store,
    price_book: PriceBook,
    *,
    clock: Callable[[], datetime],
    context_factory: ContextFactory | None = None,
) -> RemeasureSummary:
    """Measure again the S3 artifacts of jobs that ended within ``remeasure_days``."""
    now = clock()
    summary = RemeasureSummary(since=now - timedelta(days=settings.collection.remeasure_days))
    factory = context_factory or AwsContextFactory(settings.collection)
    sources = sources_by_account(settings, store)
    policy = settings.cost_policy()
    repository = ArtifactRepository(store)
    contexts: dict[tuple[str, str], AwsContext | None] = {}
    for batch in repository.ended_since(summary.since):
        for stored in batch:
            record = stored.record
            key = (record.account_id, record.region)
            if key not in contexts:
                contexts[key] = _context(factory, sources.get(record.account_id), key, summary)
            ctx = contexts[key]
            if ctx is None:
                summary.no_source += 1
                continue
            size = aws_s3.measure(
                ctx.client("s3"),
                record.name,
                record.output_path_uri,
                record.model_artifact_uri,
                record.checkpoint_uri,
            )
            summary.measured += 1
            if not size.complete:
                summary.incomplete += 1
            elif size.bytes == record.artifact_bytes:
                summary.unchanged += 1
            else:
                grown = replace(record, artifact_bytes=size.bytes)
                rates = price_book.rates_for(grown, settings.discount_pct)
                if repository.update_bytes(
                    stored.job_id, size.bytes, cost_job(grown, rates, now, policy), now
                ):
                    summary.grown += 1
    return summary


def _context(
    factory: ContextFactory,
    source: Source | None,
    key: tuple[str, str],
    summary: RemeasureSummary,
) -> AwsContext | None:
    if source is None:
        return None
    try:
        return factory(source, key[1])
    except AWS_ERRORS as exc:
        summary.errors.append(f"{key[0]}/{key[1]}: {describe_error(exc)}")
        return None


def sources_by_account(settings: Settings, store: Store) -> dict[str, Source]:
    """Account id -> the configured source that reaches it, from the watermarks the
    collector wrote (each names its source; organization members ``<name>/<account>``)."""
    by_name = {source.name: source for source in settings.sources}
    found: dict[str, Source] = {}
    for mark in store.watermarks():
        name = mark.source or ""
        source = by_name.get(name)
        if source is None and "/" in name:
            parent = by_name.get(name.rsplit("/", 1)[0])
            if parent is not None and parent.organization:
                source = member_source(parent, mark.account_id)
        if source is not None and not source.organization:
            found.setdefault(mark.account_id, source)
    return found
