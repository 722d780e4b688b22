"""Dependencies and resource limits per daemon: daemons.depends_on (a list of daemon ids),
max_memory_mb, max_cpu_percent and limit_action (restart, stop or warn).

Revision ID: 0007_dependencies_and_limits
Revises: 0006_observability
Create Date: 2026-12-01
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0007_dependencies_and_limits"
down_revision = "0006_observability"
branch_labels = None
depends_on = None

JSONType = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def upgrade():
    with op.batch_alter_table("daemons") as batch:
        batch.add_column(sa.Column("depends_on", JSONType, nullable=False, server_default="[]"))
        batch.add_column(sa.Column("max_memory_mb", sa.Integer()))
        batch.add_column(sa.Column("max_cpu_percent", sa.Float()))
        batch.add_column(
            sa.Column("limit_action", sa.String(10), nullable=False, server_default="restart")
        )


def downgrade():
    with op.batch_alter_table("daemons") as batch:
        for column in ("limit_action", "max_cpu_percent", "max_memory_mb", "depends_on"):
            batch.drop_column(column)
