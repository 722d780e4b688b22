"""Insert the seed daemon: "Test Daemon" (TEST_DAEMON), default configuration, stopped.

Revision ID: 0002_seed_test_daemon
Revises: 0001_create_daemon_tables
Create Date: 2026-11-28
"""

import uuid
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0002_seed_test_daemon"
down_revision = "0001_create_daemon_tables"
branch_labels = None
depends_on = None

# A fixed id so the seed row is the same on every install.
TEST_DAEMON_ID = uuid.UUID("5e1f0c3a-7d2b-4c8e-9a61-3b0d2f4e8c17")
# The TestDaemon's defaults as they were at this revision; written out, not imported, so the
# migration never changes when the code does.
TEST_DAEMON_CONFIGURATION = {
    "log_interval": 5,
    "job_interval": 30,
    "heartbeat_interval": 10,
    "simulate_errors": False,
}

daemons = sa.table(
    "daemons",
    sa.column("id", sa.Uuid()),
    sa.column("name", sa.String()),
    sa.column("type", sa.String()),
    sa.column("enabled", sa.Boolean()),
    sa.column("auto_start", sa.Boolean()),
    sa.column("status", sa.String()),
    sa.column("configuration", sa.JSON().with_variant(postgresql.JSONB(), "postgresql")),
    sa.column("created_at", sa.DateTime(timezone=True)),
    sa.column("updated_at", sa.DateTime(timezone=True)),
)


def upgrade():
    now = datetime.now(UTC)
    op.bulk_insert(
        daemons,
        [
            {
                "id": TEST_DAEMON_ID,
                "name": "Test Daemon",
                "type": "TEST_DAEMON",
                "enabled": True,
                "auto_start": False,
                "status": "STOPPED",
                "configuration": TEST_DAEMON_CONFIGURATION,
                "created_at": now,
                "updated_at": now,
            }
        ],
    )


def downgrade():
    op.execute(daemons.delete().where(daemons.c.id == TEST_DAEMON_ID))
