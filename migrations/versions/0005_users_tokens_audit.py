"""Create users, api_tokens and audit_events: who may sign in, their API tokens (hashed),
and the audit trail of operator actions.

Revision ID: 0005_users_tokens_audit
Revises: 0004_media_files
Create Date: 2026-12-04
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0005_users_tokens_audit"
down_revision = "0004_media_files"
branch_labels = None
depends_on = None

JSONType = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def ts(name: str, nullable: bool = True) -> sa.Column:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade():
    op.create_table(
        "users",
        sa.Column("id", sa.Uuid(), primary_key=True),
        sa.Column("username", sa.String(100), nullable=False, unique=True),
        sa.Column("password_hash", sa.String(255), nullable=False),
        sa.Column("role", sa.String(20), nullable=False),
        sa.Column("session_nonce", sa.String(32), nullable=False),
        ts("created_at", nullable=False),
        ts("updated_at", nullable=False),
        ts("last_login_at"),
    )
    op.create_table(
        "api_tokens",
        sa.Column("id", sa.Uuid(), primary_key=True),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column(
            "user_id", sa.Uuid(), sa.ForeignKey("users.id", ondelete="CASCADE"), nullable=False
        ),
        sa.Column("token_hash", sa.String(64), nullable=False, unique=True),
        sa.Column("prefix", sa.String(16), nullable=False),
        ts("created_at", nullable=False),
        ts("last_used_at"),
        ts("revoked_at"),
    )
    op.create_table(
        "audit_events",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        ts("created_at", nullable=False),
        sa.Column("actor", sa.String(255), nullable=False),
        sa.Column("actor_via", sa.String(120)),
        sa.Column("actor_role", sa.String(20)),
        sa.Column("action", sa.String(50), nullable=False),
        sa.Column("target_type", sa.String(50)),
        sa.Column("target_id", sa.String(64)),
        sa.Column("target_name", sa.String(255)),
        sa.Column("outcome", sa.String(20), nullable=False),
        sa.Column("message", sa.Text()),
        sa.Column("address", sa.String(64)),
        sa.Column("user_agent", sa.String(512)),
        sa.Column("details", JSONType, nullable=False),
    )
    op.create_index("ix_audit_events_created_at", "audit_events", ["created_at"])
    op.create_index("ix_audit_events_actor_id", "audit_events", ["actor", "id"])
    op.create_index("ix_audit_events_action_id", "audit_events", ["action", "id"])
    op.create_index("ix_audit_events_target_id_id", "audit_events", ["target_id", "id"])


def downgrade():
    op.drop_table("audit_events")
    op.drop_table("api_tokens")
    op.drop_table("users")
