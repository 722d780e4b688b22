"""Counting the statements that write (INSERT, UPDATE, DELETE) on an engine, to prove that a
scan of an unchanged library writes nothing. Shared by the tests and ``bench/media_scan.py``."""

from __future__ import annotations

from contextlib import contextmanager

from sqlalchemy import event

WRITES = ("INSERT", "UPDATE", "DELETE", "MERGE")


@contextmanager
def counting_writes(engine):
    """``with counting_writes(db.engine) as writes:`` — ``writes`` lists each write
    statement executed on the engine, from any thread, meanwhile."""
    writes: list[str] = []

    def record(_conn, _cursor, statement, _params, _context, _executemany):
        if statement.lstrip().split(None, 1)[0].upper() in WRITES:
            writes.append(statement)

    event.listen(engine, "before_cursor_execute", record)
    try:
        yield writes
    finally:
        event.remove(engine, "before_cursor_execute", record)
