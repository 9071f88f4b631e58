"""``report --view units``: what a unit of training work cost, per team, instance type, base
model or month (docs/views/units.md).

Per group of finished jobs: the compute they were billed, and per measure (instance-hour,
GPU-hour, epoch, million training tokens) that compute divided by the work, over the jobs
that report the measure (``tracker.store.units``). Sums are exact integers from SQL; each
shown value is rounded once from them: money to the cent (``records.usd_cents``), work to
two decimals (:func:`shown`). A ratio is never a quotient of rounded values, and a measure
no job reports is empty, never 0.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from typing import TYPE_CHECKING, Any

from tracker.collect.parse import EPOCH_HYPERPARAMETERS, EPOCH_METRICS, TOKEN_METRICS
from tracker.errors import InputError
from tracker.records import usd_cents
from tracker.report.charts import Chart, Series
from tracker.report.table import Column, Table, count, money, number, text

if TYPE_CHECKING:
    from tracker.store.database import Store
    from tracker.store.window import Window

#: What the rows of the units view can be grouped by.
UNITS_BY = ("team", "instance_type", "base_model", "month")
QUANTUM = Decimal("0.01")


@dataclass(frozen=True)
class Measure:
    """One unit of work: ``name`` prefixes its SQL sums (``<name>_jobs``, ``_micros``,
    ``_units``); ``per`` SQL units make one shown unit (3,600 seconds an hour, 1,000
    thousandths an epoch, 1,000,000 tokens a million)."""

    name: str
    work: str
    ratio: str
    per: int

    @property
    def jobs(self) -> str:
        return f"{self.name}_jobs"


MEASURES = (
    Measure("instance", "instance_hours", "usd_per_instance_hour", 3600),
    Measure("gpu", "gpu_hours", "usd_per_gpu_hour", 3600),
    Measure("epoch", "epochs", "usd_per_epoch", 1000),
    Measure("token", "tokens_m", "usd_per_million_tokens", 1_000_000),
)


def columns(by: str) -> list[Column]:
    """The view's columns: the group, its jobs and compute, then per measure its work, its
    unit cost and the jobs counted for it."""
    out = [text(by), count("jobs"), money("compute_usd"), count("unpriced_jobs")]
    for measure in MEASURES:
        out += [number(measure.work), money(measure.ratio), count(measure.jobs)]
    return out


def shown(value: Decimal) -> Decimal:
    """The one rounding of shown work (hours, epochs, millions of tokens): half up to 0.01."""
    return value.quantize(QUANTUM, rounding=ROUND_HALF_UP)


def row(by: str, label: Any, sums: dict[str, int]) -> dict[str, Any]:
    """One shown row from a group's exact sums (see ``UnitQueries.units``)."""
    out: dict[str, Any] = {
        by: label,
        "jobs": sums["jobs"],
        "compute_usd": usd_cents(sums["compute"]),
        "unpriced_jobs": sums["unpriced_jobs"],
    }
    for measure in MEASURES:
        units = sums[f"{measure.name}_units"]
        micros = sums[f"{measure.name}_micros"]
        counted = sums[measure.jobs] > 0 and units > 0
        out[measure.work] = shown(Decimal(units) / measure.per) if counted else None
        # USD per unit = micros / 1e6 / (units / per), rounded once (usd_cents takes micros).
        out[measure.ratio] = usd_cents(Decimal(micros) * measure.per / units) if counted else None
        out[measure.jobs] = sums[measure.jobs]
    return out


def notes() -> list[str]:
    """What the numbers mean; the exact names read for epochs and tokens."""
    return [
        "Finished jobs only, each counted whole in the UTC day it ended (its whole compute and "
        "work); --since/--until select jobs by that day.",
        "compute_usd is list compute: billable seconds x billed instances x the on-demand rate "
        "(tokens x the token rate for serverless jobs); warm-pool retention and ML storage are "
        "excluded, discounts are not applied.",
        "instance_hours = billable seconds x billed instances / 3600 (managed spot: the billable "
        "seconds paid); gpu_hours = billable seconds x GPUs of the billed instances / 3600 "
        "(GPUs per instance type from the GPU table, per group of a heterogeneous cluster).",
        "Each usd_per_* is the compute of the jobs counted for it (its *_jobs) divided by their "
        "work: jobs that are unpriced, billed no compute (training plans) or do not report that "
        "work are left out of both.",
        f"epochs: the final metric {' or '.join(EPOCH_METRICS)}, else for a Completed job the "
        f"hyperparameter {', '.join(EPOCH_HYPERPARAMETERS)}; tokens_m (millions): the final "
        f"metric {', '.join(TOKEN_METRICS)}, else a serverless job's BillableTokenCount "
        "(names compared ignoring case, the first present wins).",
    ]


def _quiet(_: str) -> None:
    """The progress callback when nobody is watching."""


def units(
    store: Store,
    window: Window,
    by: str = "team",
    progress: Callable[[str], None] = _quiet,
    *,
    described: str = "",
) -> Table:
    """The units view of ``window`` (jobs that ended in it), rows per ``by``; ``described``
    is the window in words (``views.describe_window``)."""
    from tracker.store.units import UnitQueries

    if by not in UNITS_BY:
        raise InputError(f"units --by {by!r}: expected one of {', '.join(UNITS_BY)}")
    progress(f"units: summing compute and work of finished jobs by {by}")
    found = UnitQueries(store).units(by, window)
    rows = [row(by, group[by], group) for group in found]
    totals = (
        {key: sum(group[key] for group in found) for key in found[0] if key != by} if found else {}
    )
    return Table(
        view="units",
        title=f"Unit costs by {by}",
        subtitle=f"{described or 'the window'}; jobs that ended in it",
        columns=columns(by),
        rows=rows,
        total=row(by, "TOTAL", totals) if rows else None,
        charts=[chart(by, rows)],
        notes=notes(),
        empty="No finished jobs in this window.",
    )


def chart(by: str, rows: list[dict[str, Any]]) -> Chart:
    """USD per GPU-hour of the rows that have one (else per instance-hour): a line over
    months, bars otherwise."""
    ratio = next(
        (key for key in ("usd_per_gpu_hour", "usd_per_instance_hour") if any(r[key] for r in rows)),
        "usd_per_gpu_hour",
    )
    kept = [r for r in rows if r[ratio] is not None]
    return Chart(
        "line" if by == "month" else "hbar",
        f"USD per {'GPU' if ratio == 'usd_per_gpu_hour' else 'instance'}-hour by {by}",
        tuple(str(r[by]) for r in kept),
        (Series(ratio, tuple(r[ratio] for r in kept)),),
    )
