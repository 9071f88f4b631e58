"""Tables of the features built on the core: the alert ledger, scheduled job runs, the daemon
lock (budgets, alerts and the daemon), estimates and billed lines (reconciliation).

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-26
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def _money(name: str) -> sa.Column:
    return sa.Column(name, sa.BigInteger(), nullable=False)


def upgrade() -> None:
    # A database adopted from before migrations (create_all) may hold some of these already.
    existing = set(sa.inspect(op.get_bind()).get_table_names())
    if "alert_deliveries" not in existing:
        _alert_deliveries()
    if "job_runs" not in existing:
        _job_runs()
    if "daemon_lock" not in existing:
        _daemon_lock()
    if "estimates" not in existing:
        _estimates()
    if "billed_lines" not in existing:
        _billed_lines()


def _alert_deliveries() -> None:
    op.create_table(
        "alert_deliveries",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("alert_key", sa.String(), nullable=False),
        sa.Column("channel", sa.String(), nullable=False),
        sa.Column("kind", sa.String(), nullable=False),
        sa.Column("subject", sa.Text(), nullable=False),
        sa.Column("payload_json", sa.Text(), nullable=False),
        sa.Column("status", sa.String(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("claim_token", sa.String(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("claimed_at", sa.DateTime(), nullable=True),
        sa.Column("sent_at", sa.DateTime(), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("alert_key", "channel", name="uq_alert_deliveries_key_channel"),
    )
    for column in ("alert_key", "kind", "status"):
        op.create_index(f"ix_alert_deliveries_{column}", "alert_deliveries", [column])


def _job_runs() -> None:
    op.create_table(
        "job_runs",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("job", sa.String(), nullable=False),
        sa.Column("trigger", sa.String(), nullable=False),
        sa.Column("started_at", sa.DateTime(), nullable=False),
        sa.Column("finished_at", sa.DateTime(), nullable=True),
        sa.Column("status", sa.String(), nullable=False),
        sa.Column("seconds", sa.Float(), nullable=True),
        sa.Column("detail", sa.Text(), nullable=False),
        sa.Column("owner", sa.String(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_job_runs_job_started", "job_runs", ["job", "started_at"])


def _daemon_lock() -> None:
    op.create_table(
        "daemon_lock",
        sa.Column("name", sa.String(), nullable=False),
        sa.Column("owner", sa.String(), nullable=False),
        sa.Column("acquired_at", sa.DateTime(), nullable=False),
        sa.Column("heartbeat_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("name"),
    )


def _estimates() -> None:
    op.create_table(
        "estimates",
        sa.Column("id", sa.String(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("region", sa.String(), nullable=False),
        sa.Column("instance_type", sa.String(), nullable=False),
        sa.Column("instance_count", sa.Integer(), nullable=False),
        sa.Column("hours", sa.String(), nullable=False),
        sa.Column("spot_ratio", sa.String(), nullable=True),
        sa.Column("volume_gb", sa.Integer(), nullable=False),
        sa.Column("team", sa.String(), nullable=True),
        sa.Column("job_name", sa.String(), nullable=True),
        sa.Column("name_prefix", sa.String(), nullable=True),
        sa.Column("usd_per_hour", sa.String(), nullable=True),
        _money("compute_micros"),
        _money("spot_savings_micros"),
        _money("warm_pool_micros"),
        _money("storage_micros"),
        _money("list_micros"),
        _money("effective_micros"),
        sa.Column("flags", sa.String(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    for column in ("created_at", "job_name", "name_prefix", "team"):
        op.create_index(f"ix_estimates_{column}", "estimates", [column])


def _billed_lines() -> None:
    op.create_table(
        "billed_lines",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("source", sa.Text(), nullable=False),
        sa.Column("period_start", sa.Date(), nullable=False),
        sa.Column("period_end", sa.Date(), nullable=False),
        sa.Column("team", sa.String(), nullable=False),
        sa.Column("usage_type", sa.String(), nullable=False),
        sa.Column("kind", sa.String(), nullable=False),
        sa.Column("resource_id", sa.Text(), nullable=True),
        sa.Column("account_id", sa.String(), nullable=True),
        sa.Column("line_type", sa.String(), nullable=False),
        _money("list_micros"),
        _money("effective_micros"),
        sa.Column("fetched_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_billed_lines_source_start", "billed_lines", ["source", "period_start"])
    op.create_index("ix_billed_lines_team", "billed_lines", ["team"])


def downgrade() -> None:
    op.drop_index("ix_billed_lines_team", table_name="billed_lines")
    op.drop_index("ix_billed_lines_source_start", table_name="billed_lines")
    op.drop_table("billed_lines")
    for column in ("created_at", "job_name", "name_prefix", "team"):
        op.drop_index(f"ix_estimates_{column}", table_name="estimates")
    op.drop_table("estimates")
    op.drop_table("daemon_lock")
    op.drop_index("ix_job_runs_job_started", table_name="job_runs")
    op.drop_table("job_runs")
    for column in ("alert_key", "kind", "status"):
        op.drop_index(f"ix_alert_deliveries_{column}", table_name="alert_deliveries")
    op.drop_table("alert_deliveries")
