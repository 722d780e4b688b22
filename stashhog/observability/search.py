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
from sqlalchemy import text as sql

from stashhog.extensions import db
from stashhog.models import DaemonLog
from stashhog.serializers import log_to_dict

logs = DaemonLog.__table__
TERM = re.compile(r'(-?)"([^"]*)"|(-?)(\S+)')
# Ids the newest-first pass tests before the planner chooses (see _newest_window_first).
NEWEST_WINDOW = 50_000
WORD = re.compile(r"[^\W_]+")  # letters and digits: what the text search parser keeps
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
        found = document.op("@@")(func.websearch_to_tsquery(CONFIG, q))
        return and_(*substring_prefilter(q), found)
    clauses = []
    for excluded, text in search_terms(q):
        like = logs.c.message.ilike("%" + _escape(text) + "%", escape="\\")
        clauses.append(not_(like) if excluded else like)
    return and_(*clauses) if clauses else and_(True)


def substring_prefilter(q: str) -> list[ColumnElement[bool]]:
    """A cheap necessary condition for the full-text match: every letter-or-digit run of
    every required word occurs in the lowercased message. Newest-first, PostgreSQL often
    walks the primary key backwards testing each line; ``strpos(lower(…))`` costs about a
    quarter of ``to_tsvector`` and runs first, so lines that cannot match are skipped
    cheaply (README, log search). It is written as a function, not ILIKE: ILIKE's estimate
    (a few lines in a thousand) talked the planner into bitmap scans over millions of
    matches. None with ``or``, which makes terms optional."""
    terms = search_terms(q)
    if any(text.lower() == "or" for excluded, text in terms if not excluded):
        return []
    chunks = {chunk for excluded, text in terms if not excluded for chunk in WORD.findall(text)}
    message = func.lower(logs.c.message)
    return [func.strpos(message, func.lower(chunk)) > 0 for chunk in sorted(chunks)]


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
    query = query.order_by(logs.c.id.desc()).limit(limit)
    with db.engine.connect() as conn:
        if q and conn.dialect.name == "postgresql":
            rows = _newest_window_first(conn, query, before_id, limit)
        else:
            rows = conn.execute(query).all()
    return [log_to_dict(row) for row in rows]


def _newest_window_first(conn, query, before_id: int | None, limit: int) -> list:
    """The newest ``NEWEST_WINDOW`` ids first, walking the primary key backwards (bounded:
    at most that many lines tested), then the rest as the planner likes. A word that only
    the lines of the last seconds carry has no statistics yet; the planner takes it for
    rare and reads every match through the full-text index, seconds for a word millions of
    new lines hold, where the newest lines answer in a millisecond."""
    top = conn.execute(select(func.max(logs.c.id))).scalar()
    if top is None:
        return []
    floor = (before_id if before_id is not None else top + 1) - NEWEST_WINDOW
    conn.execute(sql("SET LOCAL enable_bitmapscan = off"))  # until this transaction ends
    rows = conn.execute(query.where(logs.c.id >= floor)).all()
    conn.commit()
    if len(rows) < limit:
        rest = query.where(logs.c.id < floor).limit(limit - len(rows))
        rows += conn.execute(rest).all()
    return rows
