"""The spend rollup ``spend_days`` (issue 14): spend per UTC day per dimension tuple, kept by
the store's save path in the same transaction as the jobs; back-filled here from the job
tables (the same recomputation as ``tracker db rebuild-rollups``, frozen as of this revision).

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

TABLE = "spend_days"
KEY = ["team", "project", "user", "instance_type", "account_id", "region", "status"]
FLAGS = ["final", "unpriced"]
UNPRICED_FLAGS = "unpriced_flags"  # a job's flags when one names an unpriced part, else ''

COUNTS = ["jobs", "first_jobs"]
MONEY = ["compute_micros", "spot_savings_micros", "warm_pool_micros", "storage_micros",
         "list_micros", "effective_micros", "artifact_micros_per_month"]  # fmt: skip


def upgrade() -> None:
    bind = op.get_bind()
    if TABLE in sa.inspect(bind).get_table_names():  # adopted from create_all
        return
    op.create_table(
        TABLE,
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("day", sa.Date(), nullable=False),
        *(sa.Column(name, sa.String(), nullable=False) for name in KEY),
        *(sa.Column(name, sa.Boolean(), nullable=False) for name in FLAGS),
        sa.Column(UNPRICED_FLAGS, sa.String(), nullable=False),
        *(sa.Column(name, sa.Integer(), nullable=False) for name in COUNTS),
        *(sa.Column(name, sa.BigInteger(), nullable=False) for name in MONEY),
        sa.UniqueConstraint("day", *KEY, *FLAGS, UNPRICED_FLAGS, name="uq_spend_days_key"),
    )
    jobs = sa.table("jobs", *(sa.column(c) for c in ["id", *KEY, *FLAGS, "flags"]))
    days = sa.table("job_cost_days", sa.column("job_id"), sa.column("day"),
                    *(sa.column(c) for c in MONEY))  # fmt: skip
    first = (
        sa.select(days.c.job_id, sa.func.min(days.c.day).label("first_day"))
        .group_by(days.c.job_id)
        .subquery()
    )
    keys = [sa.func.coalesce(jobs.c[name], "unallocated").label(name) for name in KEY]
    keys += [jobs.c[name].label(name) for name in FLAGS]
    flagged = jobs.c.flags.contains("unpriced", autoescape=True)
    keys += [sa.case((flagged, jobs.c.flags), else_="").label(UNPRICED_FLAGS)]
    query = (
        sa.select(
            days.c.day,
            *keys,
            sa.func.count().label("jobs"),
            sa.func.sum(sa.case((days.c.day == first.c.first_day, 1), else_=0)),
            *(sa.func.sum(days.c[name]) for name in MONEY),
        )
        .select_from(days)
        .join(jobs, jobs.c.id == days.c.job_id)
        .join(first, first.c.job_id == days.c.job_id)
        .group_by(days.c.day, *keys)
    )
    names = ["day", *KEY, *FLAGS, UNPRICED_FLAGS, *COUNTS, *MONEY]
    rollup = sa.table(TABLE, *(sa.column(c) for c in names))
    bind.execute(sa.insert(rollup).from_select(names, query))


def downgrade() -> None:
    op.drop_table(TABLE)
