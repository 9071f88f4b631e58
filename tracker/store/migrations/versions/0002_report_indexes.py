"""Covering indexes for reports: day-range sums over job_cost_days joined to job dimensions.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-26
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

DAY_COLUMNS = ["day", "job_id", "compute_micros", "spot_savings_micros", "warm_pool_micros",
               "storage_micros", "list_micros", "effective_micros", "artifact_micros_per_month"]  # fmt: skip
JOB_COLUMNS = ["id", "team", "unpriced", "project", "user", "instance_type", "account_id",
               "region", "status"]  # fmt: skip


def upgrade() -> None:
    # A database adopted from before migrations (create_all) may have them already.
    existing = {i["name"] for table in ("jobs", "job_cost_days")
                for i in sa.inspect(op.get_bind()).get_indexes(table)}  # fmt: skip
    if "ix_job_cost_days_report" not in existing:
        op.create_index("ix_job_cost_days_report", "job_cost_days", DAY_COLUMNS)
    if "ix_jobs_report" not in existing:
        op.create_index("ix_jobs_report", "jobs", JOB_COLUMNS)


def downgrade() -> None:
    op.drop_index("ix_jobs_report", table_name="jobs")
    op.drop_index("ix_job_cost_days_report", table_name="job_cost_days")
