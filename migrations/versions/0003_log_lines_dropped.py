"""Add daemons.log_lines_dropped: log lines the current run lost (buffer cap, stop timeout).

Revision ID: 0003_log_lines_dropped
Revises: 0002_seed_test_daemon
Create Date: 2026-12-02
"""

import sqlalchemy as sa
from alembic import op

revision = "0003_log_lines_dropped"
down_revision = "0002_seed_test_daemon"
branch_labels = None
depends_on = None


def upgrade():
    op.add_column(
        "daemons",
        sa.Column("log_lines_dropped", sa.BigInteger(), nullable=False, server_default="0"),
    )


def downgrade():
    with op.batch_alter_table("daemons") as batch:
        batch.drop_column("log_lines_dropped")
