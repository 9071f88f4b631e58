"""Work measures for unit costs (issue 16, ``report --view units``): ``gpu_count``,
``milli_epochs`` and ``train_tokens`` on ``jobs``, and the index ``ix_jobs_ended`` that finds
finished jobs by the day they ended.

Existing rows gain them without an AWS call: ``gpu_count`` from the billed instances already
stored (``instance_groups_json``, else ``instance_type`` x ``instance_count``) and the GPU
table, the work from the stored record (``raw_json``) read by the collector's own parser.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from tracker.collect.parse import work_units
from tracker.cost.gpu import billed_gpus
from tracker.store.migrations.backfill import each_job, json_value

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    bind = op.get_bind()
    existing = {column["name"] for column in sa.inspect(bind).get_columns("jobs")}
    if "gpu_count" in existing:  # adopted from create_all
        return
    with op.batch_alter_table("jobs") as batch:
        batch.add_column(sa.Column("gpu_count", sa.Integer(), nullable=False, server_default="0"))
        batch.add_column(sa.Column("milli_epochs", sa.BigInteger(), nullable=True))
        batch.add_column(sa.Column("train_tokens", sa.BigInteger(), nullable=True))
        batch.create_index("ix_jobs_ended", ["end_time", "last_modified_time"])
    _backfill(bind)


def _backfill(bind: sa.Connection) -> None:
    names = ["raw_json", "instance_groups_json", "instance_type", "instance_count"]
    jobs = sa.table("jobs", *(sa.column(c) for c in ["id", *names, "gpu_count", "milli_epochs",
                                                     "train_tokens"]))  # fmt: skip
    for job_id, raw_json, groups_json, instance_type, instance_count in each_job(bind, jobs, names):
        values = work_units(json_value(raw_json, {}))
        values["gpu_count"] = billed_gpus(_groups(groups_json, instance_type, instance_count))
        if any(values.values()):
            bind.execute(sa.update(jobs).where(jobs.c.id == job_id).values(**values))


def _groups(
    groups_json: str | None, instance_type: str | None, instance_count: int | None
) -> list[tuple[str, int]]:
    """The billed (instance type, count) groups as the store wrote them: the heterogeneous
    groups, else the one billed type and count."""
    groups = json_value(groups_json, [])
    if isinstance(groups, list) and groups:
        return [
            (str(g.get("instance_type") or ""), int(g.get("count") or 0))
            for g in groups
            if isinstance(g, dict)
        ]
    return [(instance_type, int(instance_count or 0))] if instance_type else []


def downgrade() -> None:
    with op.batch_alter_table("jobs") as batch:
        batch.drop_index("ix_jobs_ended")
        batch.drop_column("train_tokens")
        batch.drop_column("milli_epochs")
        batch.drop_column("gpu_count")
