"""``tracker collect`` and the demo: one collection run's summary as one Table and one screen."""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal

from tracker.collect.service import CollectSummary, RegionSummary
from tracker.report.render import to_text
from tracker.report.table import Column, Table, count, number, text

COLLECTION_COLUMNS: tuple[Column, ...] = (
    text("source"), text("account_id", "account"), text("region"), count("new"),
    count("updated"), count("unchanged"), count("api_calls", "api calls"),
    number("seconds", places=2), text("status"),
)  # fmt: skip
COUNTS = ("new", "updated", "unchanged", "api_calls")
CENTI = Decimal("0.01")


def collection_table(summary: CollectSummary) -> Table:
    """One row per (source, account, region) collected, then the run's totals."""
    total = {"source": "total", **{k: summary.total(k) for k in COUNTS}}
    total |= {"seconds": _seconds(summary.seconds), "status": summary.status}
    return Table(
        f"Collection at {summary.started_at:%Y-%m-%d %H:%M:%S} UTC: {summary.status}",
        list(COLLECTION_COLUMNS),
        [_region_row(r) for r in summary.regions],
        view="collect",
        total=total,
        empty="No source region was collected.",
    )


def collection_text(summary: CollectSummary) -> str:
    """The one-screen summary: the table, then API calls, retries, skips and each region's
    error or artifact warning, as lines people and log scrapers read."""
    out: list[str] = []
    calls = summary.calls()
    if calls:
        out.append("API calls:")
        for service, ops in calls.items():
            out.append(f"  {service}: " + ", ".join(f"{op} {n}" for op, n in ops.items()))
    retries = summary.total("retries")
    if retries:
        out.append(f"Retried requests (throttling, transient errors): {retries}")
    vanished = summary.total("vanished")
    if vanished:
        out.append(f"Jobs deleted between listing and describing (skipped): {vanished}")
    out.append(f"Running jobs recosted: {summary.recosted}")
    if summary.skipped:
        held = ", ".join(f"{s.source}/{s.account_id}/{s.region}" for s in summary.skipped)
        out.append(f"Skipped (held by another collector): {held}")
    for r in summary.regions:
        if r.error:
            out.append(f"FAILED {r.source}/{r.account_id}/{r.region}: {r.error}")
        if r.artifact_warnings:
            sample = "; ".join(r.warnings[:2])
            out.append(
                f"warning {r.source}/{r.region}: {r.artifact_warnings} job(s) with "
                f"unmeasured S3 artifacts ({sample})"
            )
    return to_text(collection_table(summary)) + "\n" + "\n".join(out) + "\n"


def _region_row(region: RegionSummary) -> dict[str, object]:
    return {
        "source": region.source,
        "account_id": region.account_id,
        "region": region.region,
        **{k: getattr(region, k) for k in COUNTS},
        "seconds": _seconds(region.seconds),
        "status": "ok" if region.error is None else "FAILED",
    }


def _seconds(seconds: float) -> Decimal:
    # A Decimal, so the renderer formats it by the column (floats print as repr).
    return Decimal(seconds).quantize(CENTI, ROUND_HALF_UP)
