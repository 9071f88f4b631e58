"""The first released schema: jobs, their per-day cost split, watermarks, collection runs.

Exactly the tables of tracker/store/schema.py at its first release (commit bae2f64). Times are
naive UTC (``DateTime`` without time zone), money integer micro-dollars (``BigInteger``).

Revision ID: 0001
Revises:
Create Date: 2026-11-26
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def _money(name: str) -> sa.Column:
    return sa.Column(name, sa.BigInteger(), nullable=False)


def upgrade() -> None:
    op.create_table(
        "jobs",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("account_id", sa.String(), nullable=False),
        sa.Column("region", sa.String(), nullable=False),
        sa.Column("name", sa.String(), nullable=False),
        sa.Column("arn", sa.String(), nullable=False),
        sa.Column("status", sa.String(), nullable=False),
        sa.Column("secondary_status", sa.String(), nullable=True),
        sa.Column("failure_reason", sa.Text(), nullable=True),
        sa.Column("final", sa.Boolean(), nullable=False),
        sa.Column("creation_time", sa.DateTime(), nullable=False),
        sa.Column("start_time", sa.DateTime(), nullable=True),
        sa.Column("end_time", sa.DateTime(), nullable=True),
        sa.Column("last_modified_time", sa.DateTime(), nullable=False),
        sa.Column("instance_type", sa.String(), nullable=True),
        sa.Column("instance_count", sa.Integer(), nullable=False),
        sa.Column("requested_instance_type", sa.String(), nullable=True),
        sa.Column("requested_instance_count", sa.Integer(), nullable=True),
        sa.Column("selected_instance_type", sa.String(), nullable=True),
        sa.Column("selected_instance_count", sa.Integer(), nullable=True),
        sa.Column("instance_groups_json", sa.Text(), nullable=False),
        sa.Column("volume_gb", sa.Integer(), nullable=False),
        sa.Column("spot", sa.Boolean(), nullable=False),
        sa.Column("billable_seconds", sa.Integer(), nullable=True),
        sa.Column("training_seconds", sa.Integer(), nullable=True),
        sa.Column("warm_pool_status", sa.String(), nullable=True),
        sa.Column("warm_pool_retained_seconds", sa.Integer(), nullable=True),
        sa.Column("warm_pool_reused_by", sa.String(), nullable=True),
        sa.Column("keep_alive_seconds", sa.Integer(), nullable=True),
        sa.Column("training_plan_arn", sa.String(), nullable=True),
        sa.Column("serverless_base_model_arn", sa.String(), nullable=True),
        sa.Column("billable_token_count", sa.BigInteger(), nullable=True),
        sa.Column("max_runtime_seconds", sa.Integer(), nullable=True),
        sa.Column("max_wait_seconds", sa.Integer(), nullable=True),
        sa.Column("model_artifact_uri", sa.Text(), nullable=True),
        sa.Column("output_path_uri", sa.Text(), nullable=True),
        sa.Column("checkpoint_uri", sa.Text(), nullable=True),
        sa.Column("artifact_bytes", sa.BigInteger(), nullable=False),
        sa.Column("tags_json", sa.Text(), nullable=False),
        sa.Column("team", sa.String(), nullable=False),
        sa.Column("project", sa.String(), nullable=True),
        sa.Column("user", sa.String(), nullable=True),
        _money("compute_micros"),
        _money("spot_savings_micros"),
        _money("warm_pool_micros"),
        _money("storage_micros"),
        _money("plan_value_micros"),
        _money("artifact_micros_per_month"),
        _money("list_micros"),
        _money("effective_micros"),
        sa.Column("unpriced", sa.Boolean(), nullable=False),
        sa.Column("flags", sa.String(), nullable=False),
        sa.Column("raw_json", sa.Text(), nullable=False),
        sa.Column("collected_at", sa.DateTime(), nullable=False),
        sa.Column("costed_at", sa.DateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("arn", name="uq_jobs_arn"),
    )
    for column in ("account_id", "creation_time", "instance_type", "name", "project", "region",
                   "status", "team", "unpriced", "user"):  # fmt: skip
        op.create_index(f"ix_jobs_{column}", "jobs", [column])
    op.create_index("ix_jobs_team_end", "jobs", ["team", "end_time"])

    op.create_table(
        "job_cost_days",
        sa.Column("job_id", sa.Integer(), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        _money("compute_micros"),
        _money("spot_savings_micros"),
        _money("warm_pool_micros"),
        _money("storage_micros"),
        _money("list_micros"),
        _money("effective_micros"),
        _money("artifact_micros_per_month"),
        sa.ForeignKeyConstraint(["job_id"], ["jobs.id"]),
        sa.PrimaryKeyConstraint("job_id", "day"),
    )
    op.create_index("ix_job_cost_days_day", "job_cost_days", ["day"])

    op.create_table(
        "watermarks",
        sa.Column("account_id", sa.String(), nullable=False),
        sa.Column("region", sa.String(), nullable=False),
        sa.Column("source", sa.String(), nullable=False),
        sa.Column("last_modified", sa.DateTime(), nullable=True),
        sa.Column("last_success_at", sa.DateTime(), nullable=True),
        sa.Column("last_attempt_at", sa.DateTime(), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("account_id", "region"),
    )

    op.create_table(
        "collection_runs",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("started_at", sa.DateTime(), nullable=False),
        sa.Column("finished_at", sa.DateTime(), nullable=True),
        sa.Column("status", sa.String(), nullable=False),
        sa.Column("summary_json", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )


def downgrade() -> None:
    op.drop_table("collection_runs")
    op.drop_table("watermarks")
    op.drop_index("ix_job_cost_days_day", table_name="job_cost_days")
    op.drop_table("job_cost_days")
    for column in ("account_id", "creation_time", "instance_type", "name", "project", "region",
                   "status", "team", "unpriced", "user", "team_end"):  # fmt: skip
        op.drop_index(f"ix_jobs_{column}", table_name="jobs")
    op.drop_table("jobs")
