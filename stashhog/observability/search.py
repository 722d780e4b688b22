"""Log search: words and "quoted phrases" over log messages, for one daemon or all.

On PostgreSQL a query is ``websearch_to_tsquery`` against the GIN index of
``to_tsvector('simple', message)`` (the expression the index was built on, so the planner
uses it); on the embedded SQLite default each word or phrase is a LIKE (a scan: fine for
the small logs it holds). Both read the same syntax: every term must occur, ``-term``
excludes.
"""

from __future__ import annotations

import re
import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, and_, func, literal_column, not_, select

from stashhog.extensions import db
from stashhog.models import DaemonLog
from stashhog.serializers import log_to_dict

logs = DaemonLog.__table__
TERM = re.compile(r'(-?)"([^"]*)"|(-?)(\S+)')
CONFIG = literal_column("'simple'")


def search_terms(q: str) -> list[tuple[bool, str]]:
    """``(excluded, text)`` for each word or phrase of ``q``."""
    terms = []
    for quoted_neg, phrase, neg, word in TERM.findall(q):
        text = (phrase if phrase else word).strip()
        if text and text != "-":
            terms.append((bool(quoted_neg or neg), text))
    return terms


def matches(q: str) -> ColumnElement[bool]:
    """The WHERE clause for ``q`` on this database."""
    if db.engine.dialect.name == "postgresql":
        document = func.to_tsvector(CONFIG, logs.c.message)
        return document.op("@@")(func.websearch_to_tsquery(CONFIG, q))
    clauses = []
    for excluded, text in search_terms(q):
        like = logs.c.message.ilike("%" + _escape(text) + "%", escape="\\")
        clauses.append(not_(like) if excluded else like)
    return and_(*clauses) if clauses else and_(True)


def _escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def search_logs(
    q: str | None = None,
    *,
    levels: list[str] | None = None,
    since: datetime | None = None,
    daemon_id: uuid.UUID | None = None,
    generation: int | None = None,
    before_id: int | None = None,
    limit: int = 100,
) -> list[dict[str, Any]]:
    """Lines across daemons (or of one), newest first."""
    query = select(logs)
    if q:
        query = query.where(matches(q))
    if levels:
        query = query.where(logs.c.level.in_(levels))
    if since is not None:
        query = query.where(logs.c.created_at >= since)
    if daemon_id is not None:
        query = query.where(logs.c.daemon_id == daemon_id)
    if generation is not None:
        query = query.where(logs.c.generation == generation)
    if before_id is not None:
        query = query.where(logs.c.id < before_id)
    with db.engine.connect() as conn:
        rows = conn.execute(query.order_by(logs.c.id.desc()).limit(limit)).all()
    return [log_to_dict(row) for row in rows]
