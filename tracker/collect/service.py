"""Incremental collection of SageMaker training jobs, one watermark per (account, region).

For each source and region (``[collection] method``, docs/collection.md):
``search`` (default) asks SageMaker Search for the jobs modified since the watermark (minus
a safety overlap), oldest first, 100 whole records a call with their tags, and describes
only the jobs whose cost needs a field Search lacks (serverless). ``list`` lists the
changed jobs, describes those that are new or whose LastModifiedTime changed and fetches
their tags in bulk. Both then measure S3 artifacts (shared prefixes listed once per batch),
parse, cost and save in batches. The watermark moves to the newest LastModifiedTime listed only
after every batch of the region is committed, so an interrupted run loses nothing
and a rerun duplicates nothing (saves are upserts by ARN). Running jobs are stored
with their cost so far and recosted, without AWS calls, at the end of every run. A job
whose warm pool is still open (Available, InUse) is read again every run (Describe, or Search by name), whatever
its LastModifiedTime, until AWS reports the pool Terminated or Reused with its retained time.

A region that fails with an AWS error is recorded and reported; the others go on.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, TypeVar

from tracker.aws import AWS_ERRORS, describe_error
from tracker.aws import organizations as aws_organizations
from tracker.aws import s3 as aws_s3
from tracker.aws import sagemaker as aws_sagemaker
from tracker.aws import tagging as aws_tagging
from tracker.aws.session import (
    AwsContext,
    AwsContextFactory,
    CallCounter,
    ContextFactory,
    make_client,
)
from tracker.collect import parse
from tracker.collect.allocate import allocate
from tracker.collect.recost import allocation_of, recost
from tracker.cost.engine import CostPolicy, cost_job
from tracker.records import JobCost, JobRecord
from tracker.settings import Settings, Source
from tracker.store.engine import sqlite_file
from tracker.store.locks import PairLease, PairLocks, pair_locks

if TYPE_CHECKING:
    from tracker.aws.session import AwsClient
    from tracker.cost.prices import PriceBook
    from tracker.store.database import Store

BATCH_SIZE = 200  # jobs described, tagged and committed together
# S3 folders of one batch are listed concurrently on this many clients of the region (a
# bounded pool; S3 allows thousands of listings a second per prefix, so 8 stay far below).
S3_CLIENTS = 8
ARTIFACT_FLAG = "artifact-bytes-unknown"
UNKNOWN_ACCOUNT = "unknown"
MAX_WARNINGS_KEPT = 5

Item = tuple[JobRecord, JobCost, dict]
T = TypeVar("T")


@dataclass
class RegionSummary:
    """What collection did in one (source, account, region)."""

    source: str
    account_id: str
    region: str
    new: int = 0
    updated: int = 0
    unchanged: int = 0
    vanished: int = 0  # listed, then gone before DescribeTrainingJob (deleted)
    error: str | None = None
    calls: dict[str, dict[str, int]] = field(default_factory=dict)
    aws_seconds: dict[str, float] = field(default_factory=dict)  # time inside calls, per service
    retries: int = 0
    seconds: float = 0.0
    watermark: datetime | None = None
    artifact_warnings: int = 0
    warnings: list[str] = field(default_factory=list)

    @property
    def listed(self) -> int:
        return self.new + self.updated + self.unchanged + self.vanished

    @property
    def api_calls(self) -> int:
        return sum(n for ops in self.calls.values() for n in ops.values())

    def calls_to(self, service: str, operation: str | None = None) -> int:
        """Calls made to one service (and operation) in this region."""
        ops = self.calls.get(service, {})
        return ops.get(operation, 0) if operation else sum(ops.values())

    def to_dict(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "account_id": self.account_id,
            "region": self.region,
            "new": self.new,
            "updated": self.updated,
            "unchanged": self.unchanged,
            "vanished": self.vanished,
            "error": self.error,
            "api_calls": self.api_calls,
            "calls": self.calls,
            "aws_seconds": {k: round(v, 3) for k, v in self.aws_seconds.items()},
            "retries": self.retries,
            "seconds": round(self.seconds, 3),
            "watermark": self.watermark.isoformat() if self.watermark else None,
            "artifact_warnings": self.artifact_warnings,
            "warnings": list(self.warnings),
        }


@dataclass
class CollectSummary:
    """The outcome of one collection run, per region (``tracker.report.collection`` shows it)."""

    started_at: datetime
    regions: list[RegionSummary] = field(default_factory=list)
    recosted: int = 0
    seconds: float = 0.0
    # Pairs another collector process held (shard locks): not errors, collected by it.
    skipped: list[SkippedPair] = field(default_factory=list)
    # Organization source -> the member account ids its listing returned.
    organizations: dict[str, list[str]] = field(default_factory=dict)
    # What the idle-GPU metrics fetch after collection did (tracker.collect.gpu.GpuSummary),
    # or why it did not run.
    gpu: Any = None

    @property
    def ok(self) -> bool:
        return all(r.error is None for r in self.regions)

    @property
    def status(self) -> str:
        """``ok``, ``partial`` (some regions failed) or ``failed`` (all did)."""
        failed = sum(r.error is not None for r in self.regions)
        if not failed:
            return "ok"
        return "failed" if failed == len(self.regions) else "partial"

    def total(self, name: str) -> int:
        """Sum of a per-region count: new, updated, unchanged, api_calls, retries."""
        return sum(getattr(r, name) for r in self.regions)

    def calls(self) -> dict[str, dict[str, int]]:
        """API calls by service and operation over all regions."""
        merged: dict[str, dict[str, int]] = {}
        for region in self.regions:
            for service, ops in region.calls.items():
                for op, n in ops.items():
                    merged.setdefault(service, {}).setdefault(op, 0)
                    merged[service][op] += n
        return {s: dict(sorted(ops.items())) for s, ops in sorted(merged.items())}

    def to_dict(self) -> dict[str, Any]:
        return {
            "started_at": self.started_at.isoformat(),
            "status": self.status,
            "seconds": round(self.seconds, 3),
            "new": self.total("new"),
            "updated": self.total("updated"),
            "unchanged": self.total("unchanged"),
            "api_calls": self.total("api_calls"),
            "calls": self.calls(),
            "recosted_running": self.recosted,
            "regions": [r.to_dict() for r in self.regions],
            "skipped": [s.to_dict() for s in self.skipped],
            "organizations": {name: list(ids) for name, ids in self.organizations.items()},
        }


def collect(
    settings: Settings,
    store: Store,
    price_book: PriceBook,
    *,
    clock: Callable[[], datetime],
    context_factory: ContextFactory | None = None,
    locks: PairLocks | None = None,
) -> CollectSummary:
    """Collect every configured source and region once; returns what was done.

    ``store`` is a :class:`tracker.store.database.Store`, ``price_book`` a
    :class:`tracker.cost.prices.PriceBook`. ``context_factory(source, region)`` builds the
    AWS clients (default: :class:`AwsContextFactory` over boto3's standard chain).
    Organization sources are expanded into one source per member account first; the
    (source, region) pairs are then collected by ``[collection] workers`` threads, each
    pair under its shard lock (``locks``, default :func:`tracker.store.locks.pair_locks`
    of the store: PostgreSQL advisory locks, none on SQLite). A pair another process holds
    is skipped and listed in ``summary.skipped``.
    """
    factory = context_factory or AwsContextFactory(settings.collection)
    now = clock()
    summary = CollectSummary(started_at=now)
    run_id = store.start_run(now)
    began = time.perf_counter()
    own_locks = locks is None
    shard_locks = locks if locks is not None else pair_locks(store.url)
    try:
        policy = settings.cost_policy()
        sources = _expand_sources(settings, store, factory, summary, now)
        pairs = [(source, region) for source in sources for region in source.regions]
        work = _PairWork(
            store,
            lambda into: _RegionCollector(settings, into, price_book, policy, now),
            factory,
            shard_locks,
        )
        for outcome in work.run_all(pairs, settings.collection.workers):
            if isinstance(outcome, SkippedPair):
                summary.skipped.append(outcome)
            else:
                summary.regions.append(outcome)
        summary.recosted = recost(
            store, price_book, policy, settings.discount_pct, now, running_only=True,
            allocation=allocation_of(settings),
        )  # fmt: skip
        reached = {r.account_id: s for s in sources for r in summary.regions
                   if r.source == s.name and r.error is None}  # fmt: skip
        summary.gpu = _fetch_gpu(settings, store, reached, clock, factory)
    except BaseException:
        summary.seconds = time.perf_counter() - began
        with contextlib.suppress(Exception):  # the original error matters more
            store.finish_run(run_id, "failed", summary.to_dict(), clock())
        raise
    finally:
        if own_locks:
            shard_locks.close()
    summary.seconds = time.perf_counter() - began
    store.finish_run(run_id, summary.status, summary.to_dict(), clock())
    return summary


def _fetch_gpu(
    settings: Settings,
    store: Store,
    sources: dict[str, Source],
    clock: Callable[[], datetime],
    factory: ContextFactory,
) -> Any:
    """Idle-GPU metrics of finished GPU jobs (issue 15), after the jobs are stored: a failure
    here never fails the collection (the jobs are fetched again next run)."""
    from tracker.collect.gpu import fetch_gpu_metrics

    try:
        return fetch_gpu_metrics(settings, store, sources, clock=clock, context_factory=factory)
    except Exception as exc:  # noqa: BLE001 - an optional feature, reported in the summary
        return f"GPU metrics not fetched: {exc}"


def collect_named(
    settings: Settings,
    store: Store,
    price_book: PriceBook,
    ctx: AwsContext,
    jobs: Sequence[tuple[str, str]],
    *,
    now: datetime,
) -> tuple[RegionSummary, set[str]]:
    """Collect exactly the named jobs, ``(name, arn)`` pairs, of one (source, account, region)
    through the region collector's path (Search by name or Describe, tags, S3, cost, save);
    the watermark is not moved. Returns the summary and the ARNs found (the others no longer
    exist). AWS errors propagate: the caller (the event listener) retries the whole batch."""
    result = RegionSummary(ctx.source_name, ctx.account_id, ctx.region)
    began = time.perf_counter()
    collector = _RegionCollector(settings, store, price_book, settings.cost_policy(), now)
    try:
        found = collector.collect_named(ctx, list(dict.fromkeys(jobs)), result)
    finally:
        result.calls = ctx.counter.by_service()
        result.seconds = time.perf_counter() - began
    return result, found


# -- organizations -------------------------------------------------------------------------------
ORGANIZATION_ACCOUNT = "organization"  # the status row of an organization's account listing


def member_source(source: Source, account_id: str) -> Source:
    """The source of one member account of an organization source (its own name and role)."""
    return replace(
        source,
        name=f"{source.name}/{account_id}",
        role_arn=f"arn:aws:iam::{account_id}:role/{source.role_name}",
        organization=False,
        role_name=None,
        include=(),
        exclude=(),
        ous=(),
    )


def _expand_sources(
    settings: Settings,
    store: Store,
    factory: ContextFactory,
    summary: CollectSummary,
    now: datetime,
) -> list[Source]:
    """Each organization source replaced by its ACTIVE member accounts (through their role).

    The listing's outcome is kept as the watermark row (account ``organization``, the
    Organizations region) of the source, so ``tracker status`` shows a failed listing like a
    failed region; the source's accounts are then skipped for this run, the others go on.
    """
    expanded: list[Source] = []
    for source in settings.sources:
        if not source.organization:
            expanded.append(source)
            continue
        counter = CallCounter()
        result = RegionSummary(
            source.name, ORGANIZATION_ACCOUNT, aws_organizations.ORGANIZATIONS_REGION
        )
        began = time.perf_counter()
        try:
            client = _organizations_client(factory, counter, settings)
            accounts = aws_organizations.member_accounts(
                client, ous=source.ous, include=source.include, exclude=source.exclude
            )
        except AWS_ERRORS as exc:
            result.error = describe_error(exc)
            store.record_region_failure(
                ORGANIZATION_ACCOUNT, result.region, source.name, result.error, now
            )
            accounts = []
        else:
            store.advance_watermark(ORGANIZATION_ACCOUNT, result.region, source.name, None, now)
        result.calls = counter.by_service()
        result.seconds = time.perf_counter() - began
        if result.error is not None:
            summary.regions.append(result)
        summary.organizations[source.name] = [a.account_id for a in accounts]
        expanded.extend(member_source(source, a.account_id) for a in accounts)
    return expanded


def _organizations_client(
    factory: ContextFactory, counter: CallCounter, settings: Settings
) -> AwsClient:
    """Organizations on the base credentials: the factory's (its base session), else boto3's
    standard chain, with the collection's retry settings either way."""
    region = aws_organizations.ORGANIZATIONS_REGION
    base_client = getattr(factory, "base_client", None)
    if base_client is not None:
        return base_client("organizations", region, counter)
    return make_client("organizations", region, collection=settings.collection, counter=counter)


# -- pairs, in parallel ----------------------------------------------------------------------------
@dataclass(frozen=True)
class SkippedPair:
    """A pair another collector process was collecting (its shard lock was held)."""

    source: str
    account_id: str
    region: str
    reason: str = "held by another collector"

    def to_dict(self) -> dict[str, str]:
        return {"source": self.source, "account_id": self.account_id, "region": self.region,
                "reason": self.reason}  # fmt: skip


class _PairHeld(Exception):
    """Raised inside a pair's context factory when another process holds the pair."""

    def __init__(self, account_id: str) -> None:
        super().__init__(account_id)
        self.account_id = account_id


class _SerialStore:
    """The store with its calls taken one at a time: SQLite has one writer, and a
    collector's batches are short next to its AWS calls, so threads queue here rather than
    on SQLite's busy timeout."""

    def __init__(self, store: Store) -> None:
        self._store = store
        self._lock = threading.RLock()

    def __getattr__(self, name: str) -> Any:
        value = getattr(self._store, name)
        if not callable(value):
            return value

        def serialized(*args: Any, **kwargs: Any) -> Any:
            with self._lock:
                return value(*args, **kwargs)

        return serialized


class _PairWork:
    """Collects (source, region) pairs, serially or in a bounded thread pool, each pair
    with its own AWS clients and under its shard lock."""

    def __init__(
        self,
        store: Store,
        collector: Callable[[Store], _RegionCollector],
        factory: ContextFactory,
        locks: PairLocks,
    ) -> None:
        self.store = store
        self.collector = collector  # one per pair: a _RegionCollector serves one run
        self.factory = factory
        self.locks = locks

    def run_all(
        self, pairs: list[tuple[Source, str]], workers: int
    ) -> list[RegionSummary | SkippedPair]:
        """Every pair's outcome, in the order of ``pairs`` whatever order they finished in."""
        threads = min(workers, len(pairs))
        if threads <= 1 or not _shareable(self.store):
            return [self.one(self.store, source, region) for source, region in pairs]
        store = self.store if _concurrent_writes(self.store) else _SerialStore(self.store)
        with ThreadPoolExecutor(threads, thread_name_prefix="collect") as pool:
            futures = [pool.submit(self.one, store, source, region) for source, region in pairs]
            try:
                return [future.result() for future in futures]
            except BaseException:
                for future in futures:
                    future.cancel()
                raise

    def one(self, store: Store, source: Source, region: str) -> RegionSummary | SkippedPair:
        """Collect one pair if no other process holds it; its lease is released after."""
        leases: list[PairLease] = []
        known = _role_account(source)
        try:
            if known is not None:
                lease = self.locks.try_acquire(known, region)
                if lease is None:
                    return SkippedPair(source.name, known, region)
                leases.append(lease)

            def locked_factory(src: Source, reg: str) -> AwsContext:
                ctx = self.factory(src, reg)
                if ctx.account_id != known:
                    lease = self.locks.try_acquire(ctx.account_id, reg)
                    if lease is None:
                        raise _PairHeld(ctx.account_id)
                    leases.append(lease)
                return ctx

            collector = self.collector(store)
            return collector.run(locked_factory, source, region)
        except _PairHeld as held:
            return SkippedPair(source.name, held.account_id, region)
        finally:
            for lease in leases:
                lease.release()


def _shareable(store: Store) -> bool:
    """Threads can share the store: not an in-memory SQLite (one connection per thread)."""
    url = str(store.url)
    return not url.startswith("sqlite") or sqlite_file(url) is not None


def _concurrent_writes(store: Store) -> bool:
    return not str(store.url).startswith("sqlite")


def _role_account(source: Source) -> str | None:
    """The account a source's role ARN names (organization members always have one)."""
    if source.role_arn:
        parts = source.role_arn.split(":")
        if len(parts) > 4 and parts[4]:
            return parts[4]
    return None


class _RegionCollector:
    """Collects one (source, region); every AWS call goes through its AwsContext."""

    def __init__(
        self,
        settings: Settings,
        store: Store,
        price_book: PriceBook,
        policy: CostPolicy,
        now: datetime,
    ) -> None:
        self.settings = settings
        self.store = store
        self.price_book = price_book
        self.policy = policy
        self.now = now
        self._s3_pool: list[tuple[Any, CallCounter]] = []  # the extra S3 clients of one run

    def run(self, factory: ContextFactory, source: Source, region: str) -> RegionSummary:
        """Collect, turning any AWS failure into a recorded, reported region error."""
        result = RegionSummary(source.name, _fallback_account(source), region)
        began = time.perf_counter()
        ctx: AwsContext | None = None
        try:
            ctx = factory(source, region)
            result.account_id = ctx.account_id
            self._collect(ctx, result)
        except (*AWS_ERRORS, parse.ResponseError) as exc:
            result.error = describe_error(exc)
            self.store.record_region_failure(
                result.account_id, region, source.name, result.error, self.now
            )
        finally:
            if ctx is not None:
                for _, counter in self._s3_pool:  # their calls are this region's calls
                    for mine, theirs in ((ctx.counter.calls, counter.calls),
                                         (ctx.counter.attempts, counter.attempts),
                                         (ctx.counter.errors, counter.errors),
                                         (ctx.counter.seconds, counter.seconds)):  # fmt: skip
                        mine.update(theirs)
                self._s3_pool = []
                result.calls = ctx.counter.by_service()
                result.aws_seconds = ctx.counter.seconds_by_service()
                result.retries = ctx.counter.retries()
            result.seconds = time.perf_counter() - began
        return result

    def collect_named(
        self, ctx: AwsContext, jobs: list[tuple[str, str]], result: RegionSummary
    ) -> set[str]:
        """Save the named jobs that exist (see :func:`collect_named`); their ARNs."""
        open_pools = self.store.open_warm_pool_jobs(ctx.account_id, ctx.region)
        found: set[str] = set()
        if self.settings.collection.method == "list":
            summaries = [parse.JobSummary(name=n, arn=a, last_modified_time=datetime.min)
                         for n, a in jobs]  # fmt: skip
            forced = {**open_pools, **{a: n for n, a in jobs}}  # each is described
            before = result.vanished
            for batch in _batches(summaries, BATCH_SIZE):
                vanished = result.vanished
                self._save_batch(ctx, batch, result, forced)
                if result.vanished == vanished:
                    found.update(s.arn for s in batch)
                else:  # which ones: those not stored now
                    stored = self.store.job_versions(ctx.account_id, ctx.region,
                                                     [s.arn for s in batch])  # fmt: skip
                    found.update(arn for arn in stored)
            result.vanished = before + len(jobs) - len(found)
            return found
        records = aws_sagemaker.search_jobs_by_name(ctx.client("sagemaker"), [n for n, _ in jobs])
        for batch in _batches(_unique_records(records), BATCH_SIZE):
            found.update(s.arn for s, _ in batch)
            self._save_records(ctx, batch, result, open_pools)
        result.vanished += len(jobs) - len(found)
        return found

    def _collect(self, ctx: AwsContext, result: RegionSummary) -> None:
        if self.settings.collection.method == "list":
            self._collect_listed(ctx, result)
        else:
            self._collect_searched(ctx, result)

    def _collect_searched(self, ctx: AwsContext, result: RegionSummary) -> None:
        """The Search path: whole records (tags included) 100 a call, oldest change first.

        Only records that may be serverless are described (Search lacks their config and
        token count); stored open warm pools and running jobs the search did not return are
        re-read by name, 100 a Search call.
        """
        account, region = ctx.account_id, ctx.region
        collection = self.settings.collection
        watermark = self.store.watermark(account, region)
        overlap = timedelta(seconds=collection.search_overlap_seconds)
        since = watermark - overlap if watermark is not None else None
        sagemaker = ctx.client("sagemaker")
        records = aws_sagemaker.search_changed_jobs(sagemaker, since, collection.page_size)
        open_pools = self.store.open_warm_pool_jobs(account, region)
        # Stored running jobs are re-read by name too (saved only if changed): a change the
        # eventually consistent index showed later than the overlap allows is not lost.
        reread = {**self.store.running_jobs(account, region), **open_pools}
        newest = watermark
        for batch in _batches(_unique_records(records), BATCH_SIZE):
            self._save_records(ctx, batch, result, open_pools)
            batch_newest = max(s.last_modified_time for s, _ in batch)
            newest = batch_newest if newest is None else max(newest, batch_newest)
            for summary, _ in batch:
                open_pools.pop(summary.arn, None)
                reread.pop(summary.arn, None)
        if reread:
            found = _unique_records(
                aws_sagemaker.search_jobs_by_name(sagemaker, list(reread.values()))
            )
            seen = 0
            for batch in _batches(found, BATCH_SIZE):
                seen += len(batch)
                self._save_records(ctx, batch, result, open_pools)
            result.vanished += len(reread) - seen
        self.store.advance_watermark(account, region, ctx.source_name, newest, self.now)
        result.watermark = newest

    def _save_records(
        self,
        ctx: AwsContext,
        batch: list[tuple[parse.JobSummary, dict]],
        result: RegionSummary,
        open_pools: dict[str, str],
    ) -> None:
        stored = self.store.job_versions(ctx.account_id, ctx.region, [s.arn for s, _ in batch])
        changed = [
            (s, record)
            for s, record in batch
            if s.arn in open_pools or stored.get(s.arn) != s.last_modified_time
        ]
        result.unchanged += len(batch) - len(changed)
        described: list[tuple[dict, dict[str, str]]] = []
        for summary, record in changed:
            desc, tags = parse.search_record_parts(record)
            if parse.needs_describe(record):
                full = aws_sagemaker.describe_job(ctx.client("sagemaker"), summary.name)
                if full is None:
                    result.vanished += 1
                    continue
                desc = full
            described.append((desc, tags))
        self._save(ctx, described, result)

    def _collect_listed(self, ctx: AwsContext, result: RegionSummary) -> None:
        """The list path: ListTrainingJobs summaries, then DescribeTrainingJob and tags."""
        account, region = ctx.account_id, ctx.region
        watermark = self.store.watermark(account, region)
        overlap = timedelta(seconds=self.settings.collection.overlap_seconds)
        since = watermark - overlap if watermark is not None else None
        listing = aws_sagemaker.list_changed_jobs(
            ctx.client("sagemaker"), since, self.settings.collection.page_size
        )
        # An open warm pool's retained time appears without LastModifiedTime changing, so
        # those jobs are described every run, listed or not, until the pool ends.
        open_pools = self.store.open_warm_pool_jobs(account, region)
        newest = watermark
        for batch in _batches(_unique(listing), BATCH_SIZE):
            self._save_batch(ctx, batch, result, open_pools)
            batch_newest = max(s.last_modified_time for s in batch)
            newest = batch_newest if newest is None else max(newest, batch_newest)
            for summary in batch:
                open_pools.pop(summary.arn, None)
        for batch in _batches(_unlisted(open_pools), BATCH_SIZE):
            self._save_batch(ctx, batch, result, open_pools)
        # Only now is every listed job committed: moving the watermark cannot lose one.
        self.store.advance_watermark(account, region, ctx.source_name, newest, self.now)
        result.watermark = newest

    def _save_batch(
        self,
        ctx: AwsContext,
        batch: list[parse.JobSummary],
        result: RegionSummary,
        open_pools: dict[str, str],
    ) -> None:
        stored = self.store.job_versions(ctx.account_id, ctx.region, [s.arn for s in batch])
        changed = [
            s for s in batch if s.arn in open_pools or stored.get(s.arn) != s.last_modified_time
        ]
        result.unchanged += len(batch) - len(changed)
        if not changed:
            return
        sagemaker = ctx.client("sagemaker")
        found = [aws_sagemaker.describe_job(sagemaker, s.name) for s in changed]
        descs = [desc for desc in found if desc is not None]
        result.vanished += len(found) - len(descs)
        if not descs:
            return
        tags = aws_tagging.tags_for_arns(
            ctx.client("resourcegroupstaggingapi"),
            sagemaker,
            [s.arn for s, desc in zip(changed, found, strict=True) if desc is not None],
        )
        self._save(ctx, [(d, tags.get(d.get("TrainingJobArn", ""), {})) for d in descs], result)

    def _save(
        self, ctx: AwsContext, described: list[tuple[dict, dict[str, str]]], result: RegionSummary
    ) -> None:
        """Parse, measure (in bulk), cost and save one batch of (describe response, tags)."""
        if not described:
            return
        rules = self.settings.allocation.rules  # untagged jobs get a team by the first match
        records = [
            allocate(
                parse.job_from_describe(
                    desc, ctx.account_id, ctx.region, tags, 0, self.settings.attribution
                ),
                rules,
            )
            for desc, tags in described
        ]
        sizes = self._artifacts(ctx, records)
        items = [
            self._item(record, size, desc, result)
            for record, size, (desc, _) in zip(records, sizes, described, strict=True)
        ]
        new, updated = self.store.save_jobs(items, self.now)
        result.new += new
        result.updated += updated

    def _item(
        self, record: JobRecord, size: aws_s3.ArtifactSize, desc: dict, result: RegionSummary
    ) -> Item:
        record = replace(record, artifact_bytes=size.bytes)
        rates = self.price_book.rates_for(record, self.settings.discount_pct)
        cost = cost_job(record, rates, self.now, self.policy)
        if not size.complete:
            result.artifact_warnings += 1
            room = max(MAX_WARNINGS_KEPT - len(result.warnings), 0)
            result.warnings.extend(f"{record.name}: {w}" for w in size.warnings[:room])
            cost = replace(cost, flags=tuple(sorted({*cost.flags, ARTIFACT_FLAG})))
        return record, cost, desc

    def _artifacts(self, ctx: AwsContext, records: list[JobRecord]) -> list[aws_s3.ArtifactSize]:
        if not self.settings.collection.measure_artifacts:
            return [aws_s3.ArtifactSize(0) for _ in records]
        if not self._s3_pool:
            for _ in range(S3_CLIENTS - 1):
                counter = CallCounter()
                client = make_client(
                    "s3", ctx.region, session=ctx.session, config=ctx.config, counter=counter
                )
                self._s3_pool.append((client, counter))
        return aws_s3.measure_many(
            ctx.client("s3"),
            [(r.name, r.output_path_uri, r.model_artifact_uri, r.checkpoint_uri) for r in records],
            more_clients=[client for client, _ in self._s3_pool],
        )


def _unique_records(
    records: Iterable[dict],
) -> Iterator[tuple[parse.JobSummary, dict]]:
    """Search records with their summaries, each ARN once."""
    seen: set[str] = set()
    for record in records:
        summary = parse.summary_from_list(record)
        if summary.arn not in seen:
            seen.add(summary.arn)
            yield summary, record


def _unique(listing: Iterable[dict]) -> Iterator[parse.JobSummary]:
    """Summaries parsed, each ARN once (a job modified mid-listing can appear twice)."""
    seen: set[str] = set()
    for item in listing:
        summary = parse.summary_from_list(item)
        if summary.arn not in seen:
            seen.add(summary.arn)
            yield summary


def _unlisted(open_pools: dict[str, str]) -> Iterator[parse.JobSummary]:
    """Stored open-pool jobs the listing did not return, as summaries to describe."""
    for arn, name in open_pools.items():
        # Never compared with a stored time: membership in open_pools forces the describe.
        yield parse.JobSummary(name=name, arn=arn, last_modified_time=datetime.min)


def _batches(items: Iterable[T], size: int) -> Iterator[list[T]]:
    batch: list[T] = []
    for item in items:
        batch.append(item)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


def _fallback_account(source: Source) -> str:
    """The account a failed region is recorded under when STS could not tell us."""
    if source.role_arn:
        parts = source.role_arn.split(":")
        if len(parts) > 4 and parts[4]:
            return parts[4]
    return UNKNOWN_ACCOUNT
