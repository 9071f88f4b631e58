"""GPU utilisation of finished GPU jobs (issue 15): one ``job_gpu`` row per job whose
CloudWatch metrics were fetched, ``status`` ``ok`` or ``no-metrics`` (never fetched again).
Utilisations are percent per GPU as decimal text (exact, a thousandth of a percent).

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

TABLE = "job_gpu"


def upgrade() -> None:
    if TABLE in sa.inspect(op.get_bind()).get_table_names():  # adopted from create_all
        return
    op.create_table(
        TABLE,
        sa.Column("job_id", sa.Integer(), sa.ForeignKey("jobs.id"), primary_key=True),
        sa.Column("status", sa.String(), nullable=False),
        sa.Column("gpus_per_host", sa.Integer(), nullable=False),
        sa.Column("hosts", sa.Integer(), nullable=False),
        sa.Column("gpu_util_mean", sa.String(), nullable=True),
        sa.Column("gpu_util_p95", sa.String(), nullable=True),
        sa.Column("gpu_mem_mean", sa.String(), nullable=True),
        sa.Column("gpu_mem_p95", sa.String(), nullable=True),
        sa.Column("fetched_at", sa.DateTime(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table(TABLE)
