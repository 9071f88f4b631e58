"""The alert ledger records what a receiver needs to recognise a repeat: the idempotency key
every attempt carries, the attempts started (``sends``) and the resends of a claim whose
sender died (``crash_resends``, at most 1). Existing rows keep their status and get the key
their alert and channel always had.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-06
"""

from __future__ import annotations

import hashlib

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

TABLE = "alert_deliveries"
KEY_INDEX = "ix_alert_deliveries_idempotency_key"


def idempotency_key(alert_key: str, channel: str) -> str:
    """``tracker.alert.channels.idempotency_key`` as of this revision (tests check they agree)."""
    return hashlib.sha256(f"{alert_key}\n{channel}".encode()).hexdigest()[:32]


def upgrade() -> None:
    bind = op.get_bind()
    # A database adopted from before migrations (create_all) may have the columns already.
    existing = {c["name"] for c in sa.inspect(bind).get_columns(TABLE)}
    if {"idempotency_key", "sends", "crash_resends"} <= existing:
        return
    with op.batch_alter_table(TABLE) as batch:
        batch.add_column(sa.Column("idempotency_key", sa.String(), nullable=True))
        batch.add_column(sa.Column("sends", sa.Integer(), nullable=False, server_default="0"))
        batch.add_column(
            sa.Column("crash_resends", sa.Integer(), nullable=False, server_default="0")
        )
    ledger = sa.table(
        TABLE,
        sa.column("id", sa.Integer()),
        sa.column("alert_key", sa.String()),
        sa.column("channel", sa.String()),
        sa.column("status", sa.String()),
        sa.column("attempts", sa.Integer()),
        sa.column("idempotency_key", sa.String()),
        sa.column("sends", sa.Integer()),
    )
    rows = bind.execute(
        sa.select(ledger.c.id, ledger.c.alert_key, ledger.c.channel, ledger.c.status,
                  ledger.c.attempts)
    ).all()  # fmt: skip
    for row_id, alert_key, channel, status, attempts in rows:
        # Every finished attempt was started; a row still "sending" has one more under way.
        started = attempts + (1 if status == "sending" else 0)
        bind.execute(
            ledger.update()
            .where(ledger.c.id == row_id)
            .values(idempotency_key=idempotency_key(alert_key, channel), sends=started)
        )
    with op.batch_alter_table(TABLE) as batch:
        batch.alter_column("idempotency_key", existing_type=sa.String(), nullable=False)
        batch.create_index(KEY_INDEX, ["idempotency_key"])


def downgrade() -> None:
    with op.batch_alter_table(TABLE) as batch:
        batch.drop_index(KEY_INDEX)
        batch.drop_column("crash_resends")
        batch.drop_column("sends")
        batch.drop_column("idempotency_key")
