"""Observability: daemon_runs, daemon_metrics, alert_rules, alerts, alert_channels,
alert_deliveries; per-daemon log retention settings; the ERROR-lines index and (PostgreSQL
only) the full-text index of log messages.

Revision ID: 0006_observability
Revises: 0005_users_tokens_audit
Create Date: 2026-12-05
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0006_observability"
down_revision = "0005_users_tokens_audit"
branch_labels = None
depends_on = None

JSONType = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
FIRING = sa.text("status = 'firing'")
ERRORS = sa.text("level = 'ERROR'")


def ts(name: str, nullable: bool = True) -> sa.Column:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def daemon_fk(nullable: bool = False) -> sa.Column:
    fk = sa.ForeignKey("daemons.id", ondelete="CASCADE")
    return sa.Column("daemon_id", sa.Uuid(), fk, nullable=nullable)


def upgrade():
    op.create_table(
        "daemon_runs",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        daemon_fk(),
        sa.Column("generation", sa.BigInteger(), nullable=False),
        ts("started_at", nullable=False),
        ts("stopped_at"),
        sa.Column("worker", sa.String(255)),
        sa.Column("pid", sa.Integer()),
        sa.Column("outcome", sa.String(20)),
        sa.Column("error", sa.Text()),
        sa.Column("lines_logged", sa.BigInteger(), nullable=False, server_default="0"),
        sa.Column("lines_dropped", sa.BigInteger(), nullable=False, server_default="0"),
        sa.Column("peak_rss", sa.BigInteger()),
        sa.Column("cpu_percent", sa.Float()),
        sa.Column("rss", sa.BigInteger()),
    )
    op.create_index(
        "uq_daemon_runs_daemon_id_generation", "daemon_runs", ["daemon_id", "generation"],
        unique=True,
    )  # fmt: skip
    op.create_table(
        "daemon_metrics",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        daemon_fk(),
        sa.Column("resolution", sa.Integer(), nullable=False, server_default="0"),
        ts("created_at", nullable=False),
        sa.Column("generation", sa.BigInteger()),
        sa.Column("cpu_percent", sa.Float(), nullable=False),
        sa.Column("rss", sa.BigInteger(), nullable=False),
        sa.Column("threads", sa.Integer(), nullable=False),
        sa.Column("open_files", sa.Integer(), nullable=False),
    )
    op.create_index(
        "ix_daemon_metrics_daemon_res_created", "daemon_metrics",
        ["daemon_id", "resolution", "created_at"],
    )  # fmt: skip
    _alert_tables()
    op.add_column("daemons", sa.Column("log_max_lines", sa.BigInteger()))
    op.add_column("daemons", sa.Column("log_max_age_days", sa.Integer()))
    if op.get_bind().dialect.name != "postgresql":
        op.create_index(
            "ix_daemon_logs_errors_created_at", "daemon_logs", ["created_at"],
            sqlite_where=ERRORS,
        )  # fmt: skip
        return
    # Built CONCURRENTLY, outside the migration's transaction: on a large daemon_logs a plain
    # CREATE INDEX would block every daemon's log writes for the whole build.
    with op.get_context().autocommit_block():
        op.create_index(
            "ix_daemon_logs_errors_created_at", "daemon_logs", ["created_at"],
            postgresql_where=ERRORS, postgresql_concurrently=True,
        )  # fmt: skip
        op.execute(
            "CREATE INDEX CONCURRENTLY ix_daemon_logs_message_fts ON daemon_logs "
            "USING gin (to_tsvector('simple', message))"
        )


def _alert_tables():
    op.create_table(
        "alert_rules",
        sa.Column("name", sa.String(50), primary_key=True),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("threshold", sa.Float()),
        sa.Column("window", sa.Integer()),
        ts("updated_at", nullable=False),
    )
    op.create_table(
        "alerts",
        sa.Column("id", sa.Uuid(), primary_key=True),
        sa.Column("rule", sa.String(50), nullable=False),
        sa.Column("subject", sa.String(100), nullable=False),
        daemon_fk(nullable=True),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("value", sa.Float()),
        ts("started_at", nullable=False),
        ts("resolved_at"),
        ts("notified_at"),
        ts("resolve_notified_at"),
    )
    op.create_index(
        "uq_alerts_firing", "alerts", ["rule", "subject"], unique=True,
        postgresql_where=FIRING, sqlite_where=FIRING,
    )  # fmt: skip
    op.create_index("ix_alerts_status_started_at", "alerts", ["status", "started_at"])
    op.create_table(
        "alert_channels",
        sa.Column("id", sa.Uuid(), primary_key=True),
        sa.Column("type", sa.String(20), nullable=False),
        sa.Column("url", sa.Text(), nullable=False),
        ts("created_at", nullable=False),
    )
    op.create_table(
        "alert_deliveries",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column(
            "channel_id",
            sa.Uuid(),
            sa.ForeignKey("alert_channels.id", ondelete="CASCADE"),
            nullable=False,
        ),  # fmt: skip
        sa.Column("job_id", sa.Uuid()),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("ok", sa.Boolean(), nullable=False),
        sa.Column("status_code", sa.Integer()),
        sa.Column("error", sa.Text()),
        sa.Column("events", JSONType, nullable=False),
        ts("created_at", nullable=False),
    )
    op.create_index("ix_alert_deliveries_channel_id_id", "alert_deliveries", ["channel_id", "id"])


def downgrade():
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP INDEX IF EXISTS ix_daemon_logs_message_fts")
    op.drop_index("ix_daemon_logs_errors_created_at", table_name="daemon_logs")
    with op.batch_alter_table("daemons") as batch:
        batch.drop_column("log_max_age_days")
        batch.drop_column("log_max_lines")
    for table in ("alert_deliveries", "alert_channels", "alerts", "alert_rules"):
        op.drop_table(table)
    op.drop_table("daemon_metrics")
    op.drop_table("daemon_runs")
