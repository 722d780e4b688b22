"""Cluster-wide facts the supervisor keeps in the database, where a Redis restart cannot
erase them (e.g. when a supervision pass last ran, which tells a cluster start)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

from stashhog.extensions import db
from stashhog.models.types import JSONType, UTCDateTime, utcnow


class ClusterState(db.Model):
    __tablename__ = "cluster_state"

    name: Mapped[str] = mapped_column(String(100), primary_key=True)
    value: Mapped[dict | None] = mapped_column(JSONType)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
