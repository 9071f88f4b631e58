"""Wiring for reconciliation: store + price book + bill sources -> the pure stages.

The CLI (``tracker reconcile``) and scheduled jobs call these; they read the database, ask
AWS only for the bill (Cost Explorer or files in S3) and hand plain records to
:mod:`tracker.reconcile.rules`. For alerts, :func:`bill_findings` and :func:`stored_bill_findings`
return :class:`tracker.reconcile.rules.Finding` records.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING

from tracker.bounds import day_after
from tracker.cost.engine import cost_job
from tracker.errors import InputError
from tracker.estimate.rules import resolve_estimate, worst_case_job
from tracker.estimate.service import recorded_index
from tracker.reconcile.rules import (
    COMPARED_KINDS,
    KIND_UNRECOGNISED,
    BillLine,
    BillRow,
    EstimateRow,
    Finding,
    attribute_lines,
    drift_findings,
    estimate_row,
    job_rows,
    team_rows,
)
from tracker.records import UNALLOCATED, JobRecord, format_usd, from_micros
from tracker.settings import Settings

if TYPE_CHECKING:
    from tracker.aws.session import AwsClient
    from tracker.cost.prices import PriceBook
    from tracker.store.database import Store

CE_SOURCE = "ce"


def estimate_tolerance(settings: Settings) -> Decimal:
    """``[estimates] tolerance_pct``, else ``[reconcile] tolerance_pct`` (10 by default)."""
    return settings.estimate_tolerance_pct


# -- estimates -----------------------------------------------------------------------------
def reconcile_estimates(
    settings: Settings,
    store: Store,
    now: datetime,
    *,
    since: date | None = None,
    until: date | None = None,
    team: str | None = None,
    tolerance_pct: Decimal | None = None,
) -> list[EstimateRow]:
    """One row per finished job (ended within the window) against its estimate."""
    from tracker.store.estimates import EstimateRepository

    repo = EstimateRepository(store)
    index = recorded_index(store)
    tolerance = tolerance_pct if tolerance_pct is not None else estimate_tolerance(settings)
    price_book = None
    rows = []
    for stored in repo.finished_jobs(since, until, team):
        job = stored.record
        resolved = resolve_estimate(job.name, job.tags, job.creation_time, index)
        if resolved.usd is None:
            price_book = price_book or settings.price_book()
            worst = _worst_case_usd(job, price_book, settings, now)
            resolved = resolve_estimate(job.name, job.tags, job.creation_time, index, worst)
        rows.append(
            estimate_row(
                job.name,
                job.arn,
                job.team,
                from_micros(stored.list_micros),
                resolved,
                tolerance,
                stored.unpriced,
            )
        )
    return rows


def _worst_case_usd(
    job: JobRecord, price_book: PriceBook, settings: Settings, now: datetime
) -> Decimal | None:
    worst = worst_case_job(job)
    if worst is None:
        return None
    rates = price_book.rates_for(worst, settings.discount_pct)
    cost = cost_job(worst, rates, now, settings.cost_policy())
    return None if cost.unpriced else cost.list_usd


# -- the bill --------------------------------------------------------------------------------
@dataclass
class BillReport:
    """A reconciliation against one bill source over one window."""

    source: str
    granularity: str
    since: date
    until: date
    lines: list[BillLine]
    rows: list[BillRow]
    job_rows: list[BillRow] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    stored: int = 0


def default_window(now: datetime) -> tuple[date, date]:
    """From the first day of last month to today (UTC)."""
    today = now.date()
    first_this = today.replace(day=1)
    first_last = (first_this - timedelta(days=1)).replace(day=1)
    return first_last, today


def fetch_lines(
    settings: Settings,
    source: str,
    since: date | None,
    until: date | None,
    granularity: str,
    ce_client: AwsClient | None = None,
    s3_client: AwsClient | None = None,
) -> tuple[list[BillLine], date, date]:
    """Read the bill from Cost Explorer, S3 or local files; returns lines and the window.
    Clients are made from the standard credential chain unless given."""
    team_tag = settings.attribution.team_tag
    if source == CE_SOURCE:
        from tracker.aws import billing

        if since is None or until is None:
            raise ValueError("a Cost Explorer window needs both since and until")
        end = day_after(until)
        if end is None:  # Cost Explorer's End is exclusive and must be a date
            raise InputError(
                f"--until {until}: Cost Explorer needs the day after --until, and no day follows "
                "it; pass an earlier --until"
            )
        client = ce_client or billing.ce_client(settings.collection)
        return billing.fetch_ce_lines(client, since, end, granularity, team_tag), since, until
    from tracker.reconcile.bill_files import local_bill_files, read_bill

    if source.startswith("s3://"):
        from tracker.aws import billing

        client = s3_client or billing.s3_client(settings.collection)
        files = billing.s3_bill_files(client, source)
    else:
        files = local_bill_files(source)
    read = read_bill(files, team_tag, source)
    first = since or read.first_day
    last = until or read.last_day
    if first is None or last is None:
        raise InputError(
            f"--source {source}: no Amazon SageMaker usage lines in {len(read.files)} file(s); "
            "pass --since and --until to compare with an empty bill"
        )
    return read.lines, first, last


def reconcile_bill(
    settings: Settings,
    store: Store,
    now: datetime,
    *,
    source: str | None = None,
    since: date | None = None,
    until: date | None = None,
    granularity: str | None = None,
    team: str | None = None,
    by_job: bool = False,
    ce_client: AwsClient | None = None,
    s3_client: AwsClient | None = None,
) -> BillReport:
    """Fetch the bill, store its lines, and compare it with the tracker per team and period
    (and per job when ``by_job`` and the bill names resources)."""
    from tracker.store.bills import BillRepository

    config = settings.reconcile
    source = source or config.source
    granularity = granularity or config.granularity
    if source == CE_SOURCE and (since is None or until is None):
        default_since, default_until = default_window(now)
        since, until = since or default_since, until or default_until
    if since is not None and until is not None and since > until:
        raise InputError(f"--since {since} is after --until {until}")
    lines, since, until = fetch_lines(
        settings, source, since, until, granularity, ce_client, s3_client
    )
    if source == CE_SOURCE and lines:
        # Cost Explorer answers within the window asked; should it not, widen the window so
        # the tracker side covers every period it billed rather than drop billed cost.
        since = min(since, min(line.period_start for line in lines))
        until = max(until, max(line.period_start for line in lines))
    lines = [line for line in lines if since <= line.period_start <= until]
    repo = BillRepository(store)
    stored = repo.replace_lines(source, since, until, lines, now)
    return compare(
        settings, store, now, source, lines, since, until, granularity, team, by_job, stored
    )


def compare(
    settings: Settings,
    store: Store,
    now: datetime,
    source: str,
    lines: list[BillLine],
    since: date,
    until: date,
    granularity: str,
    team: str | None = None,
    by_job: bool = False,
    stored: int = 0,
) -> BillReport:
    """Compare bill lines with the tracker's stored costs (no AWS call)."""
    from tracker.store.bills import BillRepository

    policy = settings.reconcile.policy
    repo = BillRepository(store)
    lines = attribute_lines(lines, repo.arn_teams())
    if team is not None:
        lines = [line for line in lines if (line.team or UNALLOCATED) == team]
    tracker = repo.tracker_days(since, until, team)
    rows = team_rows(tracker, lines, granularity, now, policy)
    report = BillReport(
        source=source,
        granularity=granularity,
        since=since,
        until=until,
        lines=lines,
        rows=rows,
        job_rows=job_rows(tracker, lines, granularity, now, policy) if by_job else [],
        findings=drift_findings(rows, policy.drift_pct, source),
        stored=stored,
    )
    report.notes = notes(report, policy.settle_days)
    return report


def stored_bill_findings(
    settings: Settings,
    store: Store,
    now: datetime,
    *,
    source: str = CE_SOURCE,
    since: date | None = None,
    until: date | None = None,
) -> list[Finding]:
    """Drift findings from the bill lines already stored (no AWS call): for alerting."""
    from tracker.store.bills import BillRepository

    config = settings.reconcile
    default_since, default_until = default_window(now)
    since, until = since or default_since, until or default_until
    lines = BillRepository(store).lines(source, since, until)
    if not lines:
        return []
    return compare(settings, store, now, source, lines, since, until, config.granularity).findings


def bill_findings(
    settings: Settings, store: Store, now: datetime, *, source: str | None = None
) -> list[Finding]:
    """Fetch the bill (default source from ``[reconcile]``), store it, return drift findings."""
    return reconcile_bill(settings, store, now, source=source).findings


def notes(report: BillReport, settle_days: int) -> list[str]:
    """Plain-language notes: unrecognised usage types, usage left out, unsettled periods."""
    out = []
    unrecognised: dict[str, Decimal] = defaultdict(Decimal)
    left_out: dict[str, Decimal] = defaultdict(Decimal)
    for line in report.lines:
        if line.kind == KIND_UNRECOGNISED:
            unrecognised[line.usage_type] += line.list_usd
        elif line.kind not in COMPARED_KINDS:
            left_out[f"{line.usage_type} ({line.kind})"] += line.list_usd
    for usage_type, usd in sorted(unrecognised.items()):
        out.append(
            f"unrecognised usage type {usage_type}: {format_usd(usd, symbol=True)} billed, counted in "
            "billed_usd; check whether the tracker prices it"
        )
    for usage_type, usd in sorted(left_out.items()):
        out.append(
            f"not training, left out of the comparison: {usage_type} {format_usd(usd, symbol=True)}"
        )
    unsettled = sorted({row.period for row in report.rows if not row.settled and row.period})
    if unsettled:
        out.append(
            f"unsettled (billing data may still change for {settle_days} day(s) after a period "
            f"ends): {', '.join(unsettled)}"
        )
    for finding in report.findings:
        out.append(f"drift: {finding.message}")
    return out
