"""``tracker lineage`` and the dashboard's model pages: what a registered model cost to produce.

The jobs of a model's lineage come from :class:`tracker.store.lineage.LineageRepository`
(the rule lives there, once); this module prices them from their stored whole-job money
(integer micro-dollars, not windowed: a model's cost is every day of every job) and shapes
one :class:`~tracker.report.table.Table` that every format renders, plus the JSON object of
``--format json`` and ``/api/lineage``.

Money is rounded once: each job's shown parts (compute, warm pool, storage) add up to its
shown total (:func:`tracker.report.spend.shown_usd`), and the totals row is the exact sum of
the jobs' micro-dollars rounded once, never a sum of rounded cells, as ``report --by`` does.
A job with a part left unpriced is named in its row (``unpriced_parts``) and in a note; the
total then says it excludes those parts, never reading as a silent 0.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from tracker.cost.items import (
    COMPUTE,
    LIST,
    PLAN_VALUE,
    REPORT_ITEMS,
    SPOT_SAVINGS,
    STORAGE,
    WARM_POOL,
)
from tracker.errors import InputError
from tracker.records import UNALLOCATED, format_usd, usd_cents
from tracker.report.spend import shown_usd
from tracker.report.table import REPORT_MONEY, Column, Table, count, money, text
from tracker.report.unpriced import FIX, split_flags, unpriced_parts
from tracker.store.database import Store
from tracker.store.engine import aware_utc
from tracker.store.lineage import LineageRepository, reasons
from tracker.store.query import WASTED_STATUSES
from tracker.store.schema import Job, RegisteredModel

#: How a model's kind reads in a sentence.
KIND_NAMES = {"model_package": "model package", "model": "model"}
#: The lineage rows as people read them (text, Markdown, HTML): one line per job.
LINEAGE_TABLE_COLUMNS: tuple[Column, ...] = (
    text("job"), text("status"), text("reasons", "why"), text("team"), text("instances"),
    count("billable_seconds", "billable s"), text("start_time", "start (UTC)"),
    text("end_time", "end (UTC)"),
    *(money(i.key, i.label.lower()) for i in (LIST, COMPUTE, WARM_POOL, STORAGE, SPOT_SAVINGS)),
    text("unpriced_parts", "unpriced"),
)  # fmt: skip
#: The lineage rows of CSV and JSON: every detail and every cost item of ``report --by job``.
LINEAGE_RECORD_COLUMNS: tuple[Column, ...] = (
    text("job"), text("status"), text("reasons"), text("team"), text("team_source"),
    text("instance_type"), count("instance_count"), count("billable_seconds"),
    text("start_time"), text("end_time"), text("tuning_job"), text("automl_job"),
    text("pipeline_execution"), text("account"), text("region"), text("arn"),
    *REPORT_MONEY, text("flags"), text("unpriced_parts"),
    money(PLAN_VALUE.key, PLAN_VALUE.label.lower()),
)  # fmt: skip
#: The columns of the dashboard's list of models.
MODEL_LIST_COLUMNS: tuple[Column, ...] = (
    text("model"), text("kind"), text("account"), text("region"),
    text("produced_by", "produced by"), count("jobs"), money(LIST.key, "total to produce"),
    text("created_at", "created (UTC)"), text("arn", "ARN"),
)  # fmt: skip


@dataclass(frozen=True)
class Lineage:
    """A model, the jobs that produced it and every job of its lineage (oldest first)."""

    model: RegisteredModel
    producers: tuple[Job, ...]
    jobs: tuple[Job, ...]


def find_lineage(store: Store, name_or_arn: str) -> Lineage:
    """The lineage of the model with this ARN or name (InputError when none or several)."""
    return lineage_of(store, LineageRepository(store).find(name_or_arn))


def lineage_of(store: Store, model: RegisteredModel) -> Lineage:
    """The lineage of ``model``: its producers and the jobs of the same attempts."""
    repository = LineageRepository(store)
    producers = repository.producers(model)
    jobs = repository.jobs(model) if producers else []
    return Lineage(model, tuple(producers), tuple(jobs))


def find_model(store: Store, ref: str) -> RegisteredModel:
    """The model a dashboard URL names: its row id, else its ARN or name (InputError)."""
    repository = LineageRepository(store)
    if ref.isascii() and ref.isdigit() and len(ref) <= 18:
        found = repository.by_id(int(ref))
        if found is not None:
            return found
    return repository.find(ref)


# -- money ---------------------------------------------------------------------------------------
def job_micros(job: Job) -> dict[str, int]:
    """The job's whole stored cost, micro-dollars by cost-item name."""
    return {item.name: int(getattr(job, item.column) or 0) for item in REPORT_ITEMS}


def _sum_micros(jobs: Sequence[Job]) -> dict[str, int]:
    summed = dict.fromkeys((item.name for item in REPORT_ITEMS), 0)
    for job in jobs:
        for name, micros in job_micros(job).items():
            summed[name] += micros
    return summed


def failed_attempts(lineage: Lineage) -> list[Job]:
    """The lineage's failed and stopped jobs."""
    return [job for job in lineage.jobs if job.status in WASTED_STATUSES]


def total_usd(jobs: Sequence[Job]) -> Decimal:
    """The jobs' list cost in USD: the exact sum rounded once."""
    return usd_cents(sum(int(job.list_micros or 0) for job in jobs))


# -- rows ----------------------------------------------------------------------------------------
def job_row(job: Job, producers: Sequence[Job]) -> dict[str, Any]:
    """One job of the lineage: who, why, what ran, and its itemised whole-job cost."""
    flags = split_flags(job.flags)
    row: dict[str, Any] = {
        "job": job.name,
        "status": job.status,
        "reasons": reasons(job, producers),
        "team": job.team or UNALLOCATED,
        "team_source": job.team_source,
        "instance_type": job.instance_type,
        "instance_count": job.instance_count,
        "instances": f"{job.instance_count or 0} x {job.instance_type}"
        if job.instance_type
        else None,
        "billable_seconds": job.billable_seconds,
        "start_time": _utc(job.start_time),
        "end_time": _utc(job.end_time),
        "tuning_job": job.tuning_job,
        "automl_job": job.automl_job,
        "pipeline_execution": job.pipeline_execution,
        "account": job.account_id,
        "region": job.region,
        "arn": job.arn,
    }
    row.update(shown_usd(job_micros(job)))
    row["flags"] = flags
    row["unpriced_parts"] = unpriced_parts(flags)
    row[PLAN_VALUE.key] = usd_cents(int(job.plan_value_micros or 0))
    row["_job_id"] = job.id
    return row


def _utc(moment: datetime | None) -> datetime | None:
    """A stored (naive UTC) time as an aware UTC time to the second (JSON: ISO 8601)."""
    aware = aware_utc(moment)
    return None if aware is None else aware.replace(microsecond=0)


def _iso(moment: datetime | None) -> str | None:
    aware = _utc(moment)
    return None if aware is None else aware.isoformat()


def _total_row(lineage: Lineage) -> dict[str, Any]:
    total: dict[str, Any] = {"job": "TOTAL"}
    total.update(shown_usd(_sum_micros(lineage.jobs)))
    seconds = [j.billable_seconds for j in lineage.jobs if j.billable_seconds is not None]
    total["billable_seconds"] = sum(seconds) if seconds else None
    return total


def _jobs(n: int) -> str:
    return f"{n:,} job" if n == 1 else f"{n:,} jobs"


def lineage_notes(lineage: Lineage) -> list[str]:
    """What the numbers mean and what is not known: the totals, the failed attempts, running
    and unpriced jobs, or why a model has no jobs."""
    model = lineage.model
    if not lineage.producers:
        where = (
            f"no collected training job has {model.model_data_url} as its model artifact"
            if model.model_data_url
            else "the model has no model data URL to match a training job's artifact by"
        )
        return [
            f"no collected producing job: {where}, so the cost to produce it is not known "
            f"(0.00 here); collect the account and region it was trained in "
            f"({model.account_id}, {model.region}) or check it was trained by a SageMaker "
            "training job"
        ]
    failed = failed_attempts(lineage)
    unpriced = [job for job in lineage.jobs if unpriced_parts(job.flags)]
    unknown = f", not counting the unpriced parts of {_jobs(len(unpriced))}" if unpriced else ""
    notes = [
        f"total cost to produce: {format_usd(total_usd(lineage.jobs))} USD over "
        f"{_jobs(len(lineage.jobs))}, whole jobs (every day they ran){unknown}",
        f"cost of failed attempts: {format_usd(total_usd(failed))} USD "
        f"({_jobs(len(failed))} failed or stopped)",
    ]
    running = [job for job in lineage.jobs if not job.final]
    if running:
        notes.append(
            f"{_jobs(len(running))} still running ({', '.join(j.name for j in running)}): "
            "cost so far"
        )
    for job in unpriced:
        notes.append(
            f"{job.name}: no price for {', '.join(unpriced_parts(job.flags))}, so that part "
            f"is not in the total: {FIX}"
        )
    return notes


def lineage_table(lineage: Lineage) -> Table:
    """The lineage as one Table: a row per job, the totals row, the summary in the subtitle
    and the notes."""
    model = lineage.model
    produced_by = ", ".join(j.name for j in lineage.producers) or "no collected job"
    subtitle = (
        f"{KIND_NAMES.get(model.kind, model.kind)} {model.arn}; model data "
        f"{model.model_data_url or 'unknown'}; produced by {produced_by}"
    )
    rows = [job_row(job, lineage.producers) for job in lineage.jobs]
    return Table(
        view="lineage",
        title=f"Cost to produce model {model.name}",
        subtitle=subtitle,
        columns=list(LINEAGE_TABLE_COLUMNS),
        record_columns=list(LINEAGE_RECORD_COLUMNS),
        rows=rows,
        total=_total_row(lineage) if rows else None,
        notes=lineage_notes(lineage),
        empty="No collected job produced this model.",
    )


def model_facts(model: RegisteredModel) -> dict[str, Any]:
    """The model as the JSON object's ``model`` shows it."""
    return {
        "id": model.id,
        "name": model.name,
        "arn": model.arn,
        "kind": model.kind,
        "account": model.account_id,
        "region": model.region,
        "model_data_url": model.model_data_url,
        "created_at": _iso(model.created_at),
    }


def lineage_json(lineage: Lineage) -> dict[str, Any]:
    """The object of ``tracker lineage --format json`` and ``/api/lineage``."""
    failed = failed_attempts(lineage)
    table = lineage_table(lineage)
    keys = [c.key for c in table.records]
    jobs = [{k: row.get(k) for k in keys} for row in table.rows]
    totals = shown_usd(_sum_micros(lineage.jobs))
    return {
        "model": model_facts(lineage.model)
        | {
            "produced_by": [j.name for j in lineage.producers],
            "jobs": len(lineage.jobs),
            "failed_jobs": len(failed),
        },
        "jobs": jobs,
        "total_usd": totals[LIST.key],
        "failed_attempts_usd": total_usd(failed),
        "totals": totals,
        "unpriced_jobs": sum(1 for job in lineage.jobs if unpriced_parts(job.flags)),
        "notes": table.notes,
    }


def model_summary(lineage: Lineage) -> list[tuple[str, str]]:
    """The model page's facts, in reading order."""
    model, failed = lineage.model, failed_attempts(lineage)
    created = _utc(model.created_at)
    return [
        ("name", model.name),
        ("kind", KIND_NAMES.get(model.kind, model.kind)),
        ("ARN", model.arn),
        ("account", model.account_id),
        ("region", model.region),
        ("model data", model.model_data_url or "unknown"),
        ("created (UTC)", f"{created:%Y-%m-%d %H:%M:%S}" if created else "unknown"),
        ("producing job", ", ".join(j.name for j in lineage.producers) or "none collected"),
        ("jobs counted", str(len(lineage.jobs))),
        ("of which failed or stopped", str(len(failed))),
        ("cost of failed attempts (USD)", format_usd(total_usd(failed))),
        ("total cost to produce (USD)", format_usd(total_usd(lineage.jobs))),
    ]


def models_table(store: Store, models: Sequence[RegisteredModel]) -> Table:
    """The list of models with what each cost to produce (one lineage per model)."""
    rows = []
    for model in models:
        lineage = lineage_of(store, model)
        rows.append(
            {
                "model": model.name,
                "kind": KIND_NAMES.get(model.kind, model.kind),
                "account": model.account_id,
                "region": model.region,
                "produced_by": ", ".join(j.name for j in lineage.producers) or None,
                "jobs": len(lineage.jobs),
                LIST.key: total_usd(lineage.jobs) if lineage.producers else None,
                "created_at": _utc(model.created_at),
                "arn": model.arn,
                "_model_id": model.id,
            }
        )
    return Table(
        view="models",
        title="Registered models",
        columns=list(MODEL_LIST_COLUMNS),
        rows=rows,
        empty="No models collected yet.",
        blank="-",
    )


def unique_ids(rows: Sequence[dict[str, Any]], key: str, id_key: str) -> dict[Any, int]:
    """``row[key]`` -> ``row[id_key]`` for the values of ``key`` that only one row has: what a
    table can link by its cell's text alone."""
    seen: dict[Any, list[int]] = {}
    for row in rows:
        seen.setdefault(row[key], []).append(row[id_key])
    return {value: ids[0] for value, ids in seen.items() if len(ids) == 1}


def check_model_ref(ref: str) -> str:
    """A model reference as typed (ARN or name), refused when empty."""
    if not ref or not ref.strip():
        raise InputError("model: expected a model or model package ARN or name")
    if "\x00" in ref:
        raise InputError("model: a value cannot hold a NUL character")
    return ref
