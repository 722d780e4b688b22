"""daemon_logs (PostgreSQL): analysed and vacuumed after 0.5 % / 2 % new rows rather than the
defaults' 10 % / 20 %. Under a steady ingest a new word had no statistics for tens of seconds
(1.3M lines at 13M rows), the planner took it for rare, and a search read millions of matches
through the full-text index (seconds instead of milliseconds).

Revision ID: 0008_log_statistics
Revises: 0007_dependencies_and_limits
Create Date: 2026-12-01
"""

from alembic import op

revision = "0008_log_statistics"
down_revision = "0007_dependencies_and_limits"
branch_labels = None
depends_on = None

SETTINGS = {
    "autovacuum_analyze_scale_factor": "0.005",
    "autovacuum_analyze_threshold": "20000",
    "autovacuum_vacuum_insert_scale_factor": "0.02",
}


def upgrade():
    if op.get_bind().dialect.name == "postgresql":
        values = ", ".join(f"{name} = {value}" for name, value in SETTINGS.items())
        op.execute(f"ALTER TABLE daemon_logs SET ({values})")


def downgrade():
    if op.get_bind().dialect.name == "postgresql":
        op.execute(f"ALTER TABLE daemon_logs RESET ({', '.join(SETTINGS)})")
