"""Create the daemons, daemon_logs, daemon_job_history, jobs and cluster_state tables.

Revision ID: 0001_create_daemon_tables
Revises:
Create Date: 2026-11-28
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0001_create_daemon_tables"
down_revision = None
branch_labels = None
depends_on = None

JSONType = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def ts(name: str, nullable: bool = True) -> sa.Column:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade():
    op.create_table(
        "daemons",
        sa.Column("id", sa.Uuid(), primary_key=True),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("type", sa.String(100), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False, server_default=sa.true()),
        sa.Column("auto_start", sa.Boolean(), nullable=False, server_default=sa.false()),
        sa.Column("status", sa.String(50), nullable=False, server_default="STOPPED"),
        sa.Column("configuration", JSONType, nullable=False),
        ts("started_at"),
        ts("last_heartbeat"),
        ts("created_at", nullable=False),
        ts("updated_at", nullable=False),
        sa.Column("desired_state", sa.String(20), nullable=False, server_default="STOPPED"),
        sa.Column("generation", sa.BigInteger(), nullable=False, server_default="0"),
        sa.Column("task_id", sa.String(155)),
        sa.Column("worker", sa.String(255)),
        sa.Column("worker_pid", sa.Integer()),
        sa.Column("status_line", sa.Text()),
        ts("stopped_at"),
        sa.Column("last_error", sa.Text()),
        sa.Column("restart_policy", sa.String(20), nullable=False, server_default="on-failure"),
        sa.Column("max_restarts", sa.Integer(), nullable=False, server_default="5"),
        sa.Column("restart_window", sa.Integer(), nullable=False, server_default="600"),
        sa.Column("restart_count", sa.Integer(), nullable=False, server_default="0"),
        ts("next_restart_at"),
        sa.UniqueConstraint("name", name="uq_daemons_name"),
    )
    op.create_table(
        "jobs",
        sa.Column("id", sa.Uuid(), primary_key=True),
        sa.Column("type", sa.String(100), nullable=False),
        sa.Column("status", sa.String(20), nullable=False, server_default="pending"),
        sa.Column("progress", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("message", sa.Text()),
        sa.Column("result", JSONType),
        sa.Column("error", sa.Text()),
        sa.Column("metadata", JSONType, nullable=False),
        sa.Column("celery_task_id", sa.String(155)),
        sa.Column("daemon_id", sa.Uuid(), sa.ForeignKey("daemons.id", ondelete="SET NULL")),
        ts("created_at", nullable=False),
        ts("started_at"),
        ts("completed_at"),
        ts("updated_at", nullable=False),
        sa.CheckConstraint("progress BETWEEN 0 AND 100", name="ck_jobs_progress_range"),
    )
    op.create_index("ix_jobs_status_created_at", "jobs", ["status", "created_at"])
    op.create_index("ix_jobs_daemon_id_created_at", "jobs", ["daemon_id", "created_at"])
    op.create_table(
        "daemon_logs",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column(
            "daemon_id",
            sa.Uuid(),
            sa.ForeignKey("daemons.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("level", sa.String(20), nullable=False),
        sa.Column("message", sa.Text(), nullable=False),
        ts("created_at", nullable=False),
        sa.Column("generation", sa.BigInteger()),
        sa.Column("seq", sa.BigInteger()),
    )
    op.create_index("ix_daemon_logs_daemon_id_id", "daemon_logs", ["daemon_id", "id"])
    op.create_index(
        "ix_daemon_logs_daemon_id_level_id", "daemon_logs", ["daemon_id", "level", "id"]
    )
    # A line's identity: a flush retried after a lost commit reply cannot duplicate it.
    op.create_index(
        "uq_daemon_logs_daemon_id_generation_seq",
        "daemon_logs",
        ["daemon_id", "generation", "seq"],
        unique=True,
    )
    op.create_table(
        "daemon_job_history",
        sa.Column("id", sa.Uuid(), primary_key=True),
        sa.Column(
            "daemon_id",
            sa.Uuid(),
            sa.ForeignKey("daemons.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("job_id", sa.Uuid(), sa.ForeignKey("jobs.id", ondelete="SET NULL")),
        sa.Column("action", sa.String(50), nullable=False),
        sa.Column("reason", sa.Text()),
        ts("created_at", nullable=False),
    )
    op.create_index(
        "ix_daemon_job_history_daemon_id_created_at",
        "daemon_job_history",
        ["daemon_id", "created_at"],
    )
    op.create_index("ix_daemon_job_history_job_id", "daemon_job_history", ["job_id"])
    # Exactly one terminal record per job, even across daemon restarts and re-adoption.
    terminal = sa.text("action IN ('FINISHED', 'FAILED', 'CANCELLED')")
    op.create_index(
        "uq_daemon_job_history_terminal",
        "daemon_job_history",
        ["job_id"],
        unique=True,
        postgresql_where=terminal,
        sqlite_where=terminal,
    )


    op.create_table(
        "cluster_state",
        sa.Column("name", sa.String(100), primary_key=True),
        sa.Column("value", JSONType),
        ts("updated_at", nullable=False),
    )


def downgrade():
    op.drop_table("cluster_state")
    op.drop_table("daemon_job_history")
    op.drop_table("daemon_logs")
    op.drop_table("jobs")
    op.drop_table("daemons")
