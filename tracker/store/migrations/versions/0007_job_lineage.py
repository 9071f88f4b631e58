"""What produced each job and where its team came from (issue 16): the lineage columns
(``tuning_job``, ``automl_job``, ``pipeline``, ``pipeline_execution``, ``experiment``,
``trial``, ``base_model``, ``model``), ``team_source`` and ``role_arn`` on ``jobs``, and the
``models`` table the models collection fills.

Existing rows gain them from the record and tags already stored (``raw_json``,
``tags_json``), read by the collector's own parser, so an upgraded database answers lineage
questions without an AWS call. ``model`` stays empty until the models collection links it.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from tracker.collect.parse import lineage
from tracker.store.migrations.backfill import each_job, json_value

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

LINEAGE = ["tuning_job", "automl_job", "pipeline", "pipeline_execution", "experiment", "trial",
           "base_model", "model"]  # fmt: skip


def upgrade() -> None:
    bind = op.get_bind()
    if "models" not in sa.inspect(bind).get_table_names():
        _models()
    existing = {column["name"] for column in sa.inspect(bind).get_columns("jobs")}
    if "team_source" in existing:  # adopted from create_all
        return
    with op.batch_alter_table("jobs") as batch:
        batch.add_column(
            sa.Column("team_source", sa.String(), nullable=False, server_default="unallocated")
        )
        batch.add_column(sa.Column("role_arn", sa.Text(), nullable=True))
        for name in LINEAGE:
            batch.add_column(sa.Column(name, sa.String(), nullable=True))
            batch.create_index(f"ix_jobs_{name}", [name])
    _backfill(bind)


def _models() -> None:
    op.create_table(
        "models",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("arn", sa.String(), nullable=False),
        sa.Column("kind", sa.String(), nullable=False),
        sa.Column("name", sa.String(), nullable=False),
        sa.Column("account_id", sa.String(), nullable=False),
        sa.Column("region", sa.String(), nullable=False),
        sa.Column("model_data_url", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=True),
        sa.Column("collected_at", sa.DateTime(), nullable=False),
        sa.UniqueConstraint("arn", name="uq_models_arn"),
    )
    op.create_index("ix_models_name", "models", ["name"])
    op.create_index("ix_models_model_data_url", "models", ["model_data_url"])


def _backfill(bind: sa.Connection) -> None:
    names = ["raw_json", "tags_json", "team"]
    jobs = sa.table("jobs", *(sa.column(c) for c in ["id", *names, "team_source", "role_arn",
                                                     *LINEAGE]))  # fmt: skip
    for job_id, raw_json, tags_json, team in each_job(bind, jobs, names):
        raw = json_value(raw_json, {})
        values = lineage(raw, json_value(tags_json, {}))
        role = raw.get("RoleArn")
        values["role_arn"] = role if isinstance(role, str) else None
        values["team_source"] = "tag" if team and team != "unallocated" else "unallocated"
        bind.execute(sa.update(jobs).where(jobs.c.id == job_id).values(**values))


def downgrade() -> None:
    op.drop_table("models")
    with op.batch_alter_table("jobs") as batch:
        for name in LINEAGE:
            batch.drop_index(f"ix_jobs_{name}")
            batch.drop_column(name)
        batch.drop_column("role_arn")
        batch.drop_column("team_source")
