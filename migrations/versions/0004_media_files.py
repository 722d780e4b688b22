"""Create media_files: the media library's size + mtime index and generated metadata.

Revision ID: 0004_media_files
Revises: 0003_log_lines_dropped
Create Date: 2026-12-03
"""

import sqlalchemy as sa
from alembic import op

revision = "0004_media_files"
down_revision = "0003_log_lines_dropped"
branch_labels = None
depends_on = None


def ts(name: str, nullable: bool = True) -> sa.Column:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade():
    op.create_table(
        "media_files",
        sa.Column("id", sa.Uuid(), primary_key=True),
        sa.Column("path", sa.Text(), nullable=False),
        sa.Column("root", sa.Text(), nullable=False),
        sa.Column("kind", sa.String(10), nullable=False),
        sa.Column("status", sa.String(20), nullable=False, server_default="pending"),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("mtime_ns", sa.BigInteger(), nullable=False),
        sa.Column("checksum", sa.String(16)),
        sa.Column("phash", sa.String(16)),
        sa.Column("container", sa.String(100)),
        sa.Column("duration", sa.Float()),
        sa.Column("width", sa.Integer()),
        sa.Column("height", sa.Integer()),
        sa.Column("frame_rate", sa.Float()),
        sa.Column("video_codec", sa.String(50)),
        sa.Column("audio_codec", sa.String(50)),
        sa.Column("bit_rate", sa.BigInteger()),
        sa.Column("has_thumbnail", sa.Boolean(), nullable=False, server_default=sa.false()),
        sa.Column("outputs", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("generator_version", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("error", sa.Text()),
        sa.Column("attempts", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("job_id", sa.Uuid(), sa.ForeignKey("jobs.id", ondelete="SET NULL")),
        ts("missing_since"),
        ts("generated_at"),
        ts("created_at", nullable=False),
        ts("updated_at", nullable=False),
    )
    op.create_index("uq_media_files_path", "media_files", ["path"], unique=True)
    op.create_index("ix_media_files_root", "media_files", ["root"])
    op.create_index("ix_media_files_status_path", "media_files", ["status", "path"])
    op.create_index("ix_media_files_checksum", "media_files", ["checksum"])
    op.create_index("ix_media_files_job_id", "media_files", ["job_id"])


def downgrade():
    op.drop_table("media_files")
