"""SQLModel tables. Money is stored as exact integer micro-dollars (BigInteger), times as
naive UTC (the store converts at its boundary), so SQLite and PostgreSQL agree to the cent."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import BigInteger, Column, Index, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

from tracker.cost.items import CHARGE_ITEMS, COST_ITEMS, DAY_ITEMS, CostItem


def _money_columns(name: str, items: tuple[CostItem, ...]) -> type[SQLModel]:
    """A column mixin: one integer micro-dollar column per cost item of the catalogue."""
    namespace: dict[str, object] = {"__annotations__": {item.column: int for item in items}}
    for item in items:
        namespace[item.column] = Field(default=0, sa_type=BigInteger, nullable=False)
    return type(name, (SQLModel,), namespace)


# Money columns derived from the cost-item catalogue (tracker/cost/items.py): jobs carry every
# item, the per-day split the day items, a recorded estimate the items a job-day incurs.
JobMoney = _money_columns("JobMoney", COST_ITEMS)
DayMoney = _money_columns("DayMoney", DAY_ITEMS)
EstimateMoney = _money_columns("EstimateMoney", CHARGE_ITEMS)


class Job(JobMoney, table=True):
    """One SageMaker training job, its attribution and its itemised cost."""

    __tablename__ = "jobs"
    __table_args__ = (
        UniqueConstraint("arn", name="uq_jobs_arn"),
        Index("ix_jobs_team_end", "team", "end_time"),
        # The units view selects finished jobs by the day they ended (tracker/store/units.py).
        Index("ix_jobs_ended", "end_time", "last_modified_time"),
    )

    id: int | None = Field(default=None, primary_key=True)
    account_id: str = Field(index=True)
    region: str = Field(index=True)
    name: str = Field(index=True)
    arn: str
    status: str = Field(index=True)
    secondary_status: str | None = None
    failure_reason: str | None = Field(default=None, sa_column=Column(Text))
    final: bool = False
    creation_time: datetime = Field(index=True)
    start_time: datetime | None = None
    end_time: datetime | None = None
    last_modified_time: datetime

    instance_type: str | None = Field(default=None, index=True)  # billed type(s), '+' joined
    instance_count: int = 0  # billed instances, summed over groups
    requested_instance_type: str | None = None
    requested_instance_count: int | None = None
    selected_instance_type: str | None = None
    selected_instance_count: int | None = None
    instance_groups_json: str = Field(default="[]", sa_column=Column(Text, nullable=False))
    volume_gb: int = 0
    spot: bool = False
    billable_seconds: int | None = None
    training_seconds: int | None = None
    warm_pool_status: str | None = None
    warm_pool_retained_seconds: int | None = None
    warm_pool_reused_by: str | None = None
    keep_alive_seconds: int | None = None
    training_plan_arn: str | None = None
    serverless_base_model_arn: str | None = None
    billable_token_count: int | None = Field(default=None, sa_column=Column(BigInteger))
    max_runtime_seconds: int | None = None
    max_wait_seconds: int | None = None
    model_artifact_uri: str | None = Field(default=None, sa_column=Column(Text))
    output_path_uri: str | None = Field(default=None, sa_column=Column(Text))
    checkpoint_uri: str | None = Field(default=None, sa_column=Column(Text))
    artifact_bytes: int = Field(default=0, sa_column=Column(BigInteger, nullable=False, default=0))

    tags_json: str = Field(default="{}", sa_column=Column(Text, nullable=False))
    team: str = Field(default="unallocated", index=True)
    project: str | None = Field(default=None, index=True)
    user: str | None = Field(default=None, index=True)
    # tag | <allocation rule name> | unallocated
    team_source: str = Field(
        default="unallocated", sa_column_kwargs={"server_default": "unallocated"}
    )
    role_arn: str | None = Field(default=None, sa_column=Column(Text))
    # Lineage (records.LINEAGE): what produced the job, read from its record at collection;
    # ``model`` is linked by the models collection (the registered model it is part of).
    tuning_job: str | None = Field(default=None, index=True)
    automl_job: str | None = Field(default=None, index=True)
    pipeline: str | None = Field(default=None, index=True)
    pipeline_execution: str | None = Field(default=None, index=True)
    experiment: str | None = Field(default=None, index=True)
    trial: str | None = Field(default=None, index=True)
    base_model: str | None = Field(default=None, index=True)
    model: str | None = Field(default=None, index=True)
    # Work measures for unit costs (``report --view units``): GPUs of the billed instances
    # (count x GPUs per instance, summed over groups; tracker/cost/data/gpus.csv), and the work
    # the job reports (records.JobRecord.milli_epochs, train_tokens).
    gpu_count: int = Field(default=0, sa_column_kwargs={"server_default": "0"})
    milli_epochs: int | None = Field(default=None, sa_column=Column(BigInteger))
    train_tokens: int | None = Field(default=None, sa_column=Column(BigInteger))

    unpriced: bool = Field(default=False, index=True)
    flags: str = ""  # comma-separated cost flags, e.g. "unpriced:ml.x,missing-billable-seconds"

    raw_json: str = Field(default="{}", sa_column=Column(Text, nullable=False))
    collected_at: datetime
    costed_at: datetime | None = None


class JobCostDay(DayMoney, table=True):
    """A job's cost split pro rata over the UTC days of its training interval. The S3
    run-rate (``artifact_micros_per_month``) is not time-split: it sits on the job's last day."""

    __tablename__ = "job_cost_days"

    job_id: int = Field(foreign_key="jobs.id", primary_key=True)
    day: date = Field(primary_key=True, index=True)


class Watermark(SQLModel, table=True):
    """How far collection got for one (account, region); advanced only after a commit."""

    __tablename__ = "watermarks"

    account_id: str = Field(primary_key=True)
    region: str = Field(primary_key=True)
    source: str = ""
    last_modified: datetime | None = None
    last_success_at: datetime | None = None
    last_attempt_at: datetime | None = None
    last_error: str | None = Field(default=None, sa_column=Column(Text))


class CollectionRun(SQLModel, table=True):
    """One run of ``tracker collect``: what it did, for ``tracker status``."""

    __tablename__ = "collection_runs"

    id: int | None = Field(default=None, primary_key=True)
    started_at: datetime
    finished_at: datetime | None = None
    status: str = "running"  # running | ok | partial | failed
    summary_json: str = Field(default="{}", sa_column=Column(Text, nullable=False))


# -- Budgets, alerts and the daemon (issue 4) ---------------------------------------------------
class AlertDelivery(SQLModel, table=True):
    """One alert on one channel: the ledger that delivers each alert once per channel.

    The unique (alert_key, channel) pair is the claim: whoever inserts it delivers. ``status``
    is ``sending`` while claimed (committed before the send), ``sent`` once delivered,
    ``failed`` to be retried next run, ``unconfirmed`` when the sender died during the first
    send and again during its one resend (never sent again). ``idempotency_key`` is what every
    attempt carries to the receiver; ``sends`` counts the attempts started, ``crash_resends``
    the resends of a claim whose sender died (at most 1). ``channel`` never holds a secret
    (a webhook URL is stored as its hash).
    """

    __tablename__ = "alert_deliveries"
    __table_args__ = (
        UniqueConstraint("alert_key", "channel", name="uq_alert_deliveries_key_channel"),
    )

    id: int | None = Field(default=None, primary_key=True)
    alert_key: str = Field(index=True)
    channel: str
    idempotency_key: str = Field(index=True)
    kind: str = Field(index=True)
    subject: str = Field(default="", sa_column=Column(Text, nullable=False))
    payload_json: str = Field(default="{}", sa_column=Column(Text, nullable=False))
    status: str = Field(default="sending", index=True)  # sending | sent | failed | unconfirmed
    attempts: int = 0  # attempts finished (sent or failed)
    sends: int = 0  # attempts started: the row was committed as sending, then the send began
    crash_resends: int = 0  # claims of a dead sender taken over and resent: 0 or 1
    claim_token: str | None = None
    created_at: datetime
    claimed_at: datetime | None = None
    sent_at: datetime | None = None
    last_error: str | None = Field(default=None, sa_column=Column(Text))


class JobRun(SQLModel, table=True):
    """One run of a scheduled job (collect, alerts, reconcile, prices), for ``tracker status``."""

    __tablename__ = "job_runs"
    __table_args__ = (Index("ix_job_runs_job_started", "job", "started_at"),)

    id: int | None = Field(default=None, primary_key=True)
    job: str
    trigger: str = "cli"  # daemon | cli
    started_at: datetime
    finished_at: datetime | None = None
    status: str = "running"  # running | ok | partial | failed
    seconds: float | None = None
    detail: str = Field(default="", sa_column=Column(Text, nullable=False))
    owner: str = ""  # host:pid that ran it


class DaemonLock(SQLModel, table=True):
    """The single-daemon lock: one row per database, kept alive by a heartbeat."""

    __tablename__ = "daemon_lock"

    name: str = Field(primary_key=True)
    owner: str
    acquired_at: datetime
    heartbeat_at: datetime


# -- Estimates and reconciliation (issue 3) -----------------------------------------------------
class EstimateRecord(EstimateMoney, table=True):
    """An estimate recorded before a job ran (``tracker estimate --record``), itemised like a job.

    It is matched to jobs later by the ``tracker:estimate-id`` tag, the exact job name or a name
    prefix (see docs/reconciliation.md). Money is integer micro-dollars; ``hours`` and
    ``spot_ratio`` are kept as the decimal text the user gave.
    """

    __tablename__ = "estimates"

    id: str = Field(primary_key=True)
    created_at: datetime = Field(index=True)
    region: str
    instance_type: str
    instance_count: int
    hours: str
    spot_ratio: str | None = None
    volume_gb: int = 0
    team: str | None = Field(default=None, index=True)
    job_name: str | None = Field(default=None, index=True)
    name_prefix: str | None = Field(default=None, index=True)
    usd_per_hour: str | None = None
    flags: str = ""


class BilledLine(SQLModel, table=True):
    """One line of the AWS bill as read from Cost Explorer or a CUR 2.0 / FOCUS file.

    Lines are aggregated per (source, day or CE period, team, usage type, resource). ``kind``
    is the usage class (instance, spot, volume, warm-pool, unrecognised, other); ``list`` is
    the on-demand (list) cost, ``effective`` the cost after discounts and commitments.
    """

    __tablename__ = "billed_lines"
    __table_args__ = (Index("ix_billed_lines_source_start", "source", "period_start"),)

    id: int | None = Field(default=None, primary_key=True)
    source: str = Field(sa_column=Column(Text, nullable=False))
    period_start: date
    period_end: date
    team: str = Field(default="unallocated", index=True)
    usage_type: str = ""
    kind: str = ""
    resource_id: str | None = Field(default=None, sa_column=Column(Text))
    account_id: str | None = None
    line_type: str = ""
    list_micros: int = Field(default=0, sa_type=BigInteger, nullable=False)
    effective_micros: int = Field(default=0, sa_type=BigInteger, nullable=False)
    fetched_at: datetime


# -- Report indexes (issue 6: scale) ------------------------------------------------------------
# ``tracker report`` sums job_cost_days over a day range joined to each job's dimensions.
# These two covering indexes let SQLite and PostgreSQL answer it from the indexes alone,
# without reading the wide rows of either table (see bench/bench_reports.py).
Index(
    "ix_job_cost_days_report",
    JobCostDay.day,
    JobCostDay.job_id,
    *(getattr(JobCostDay, item.column) for item in DAY_ITEMS),
)
Index(
    "ix_jobs_report",
    Job.id,
    Job.team,
    Job.unpriced,
    Job.project,
    Job.user,
    Job.instance_type,
    Job.account_id,
    Job.region,
    Job.status,
)


# -- The spend rollup (issue 14: reports under 0.3 s) -------------------------------------------
class SpendDay(DayMoney, table=True):
    """Spend per UTC day per dimension tuple: the sum of ``job_cost_days`` rows of the jobs
    that share the tuple, maintained in the same transaction as the jobs (store.rollup).

    Dimension values are stored as reports show them (missing: ``unallocated``). ``jobs``
    counts the job-days summed (a job running on the day counts once); ``first_jobs`` the
    jobs whose first cost day is this day: with ``jobs`` on a window's first day it counts
    distinct jobs over any window exactly (a job's cost days are consecutive).
    """

    __tablename__ = "spend_days"
    __table_args__ = (
        UniqueConstraint(
            "day", "team", "project", "user", "instance_type", "account_id", "region",
            "status", "final", "unpriced", "unpriced_flags", name="uq_spend_days_key",
        ),
    )  # fmt: skip

    id: int | None = Field(default=None, primary_key=True)
    day: date
    team: str
    project: str
    user: str
    instance_type: str
    account_id: str
    region: str
    status: str
    final: bool
    unpriced: bool
    unpriced_flags: str  # the job's flags when one names an unpriced part, else ''
    jobs: int = 0
    first_jobs: int = 0


# -- GPU utilisation (issue 15: idle-GPU cost) --------------------------------------------------
class JobGpu(SQLModel, table=True):
    """A finished GPU job's CloudWatch utilisation, fetched once (tracker.collect.gpu).

    ``status`` is ``ok`` or ``no-metrics`` (no datapoint by the give-up time: never fetched
    again). Utilisations are percent per GPU as exact decimal text; ``hosts`` counts the hosts
    with datapoints.
    """

    __tablename__ = "job_gpu"

    job_id: int = Field(foreign_key="jobs.id", primary_key=True)
    status: str
    gpus_per_host: int
    hosts: int
    gpu_util_mean: str | None = None
    gpu_util_p95: str | None = None
    gpu_mem_mean: str | None = None
    gpu_mem_p95: str | None = None
    fetched_at: datetime


# -- Registered models and what produced them (issue 16: lineage) -------------------------------
class RegisteredModel(SQLModel, table=True):
    """A SageMaker model package or model, as the models collection found it.

    ``name`` is how reports show it: ``<group>/<version>`` for a versioned model package, the
    package's or the model's own name otherwise. ``model_data_url`` is the S3 model data it
    was built from (``InferenceSpecification.Containers[0].ModelDataUrl``, or the model's
    ``PrimaryContainer.ModelDataUrl``); a training job whose ``ModelArtifacts.S3ModelArtifacts``
    is that URL produced it (:mod:`tracker.store.lineage`).
    """

    __tablename__ = "models"
    __table_args__ = (UniqueConstraint("arn", name="uq_models_arn"),)

    id: int | None = Field(default=None, primary_key=True)
    arn: str
    kind: str  # model_package | model
    name: str = Field(index=True)
    account_id: str
    region: str
    model_data_url: str | None = Field(default=None, sa_column=Column(Text, index=True))
    created_at: datetime | None = None
    collected_at: datetime
