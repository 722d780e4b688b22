"""What must hold after any fault: one instance at a time, no lost or duplicated line, no
zombie. Evidence comes from the log rows each generation wrote (``generation``, ``seq``)."""

from __future__ import annotations

from collections import defaultdict

from sqlalchemy import select

from stashhog.extensions import db
from stashhog.models import DaemonLog


def lines_by_generation(daemon_id) -> dict[int, list[DaemonLog]]:
    query = (
        select(DaemonLog)
        .where(DaemonLog.daemon_id == daemon_id, DaemonLog.generation.is_not(None))
        .order_by(DaemonLog.id)
    )
    grouped: dict[int, list[DaemonLog]] = defaultdict(list)
    for line in db.session.scalars(query):
        grouped[line.generation].append(line)
    return dict(grouped)


def overlaps(daemon_id) -> list[tuple[int, int, float]]:
    """Pairs of generations whose lifetimes (first to last line written) overlap, with the
    overlap in seconds. Must be empty."""
    spans = sorted(
        (lines[0].created_at, max(line.created_at for line in lines), generation)
        for generation, lines in lines_by_generation(daemon_id).items()
    )
    found = []
    for (_, end, gen), (start, _, next_gen) in zip(spans, spans[1:], strict=False):
        if start < end:
            found.append((gen, next_gen, (end - start).total_seconds()))
    return found


def interleaved(daemon_id) -> list[tuple[int, int]]:
    """Pairs of generations whose lines interleave in the database's own order (row ids),
    which no host's clock can shift. Must be empty: a generation's lines all precede its
    successor's."""
    spans = sorted(
        (lines[0].id, lines[-1].id, generation)
        for generation, lines in lines_by_generation(daemon_id).items()
    )
    return [
        (gen, next_gen)
        for (_, end, gen), (start, _, next_gen) in zip(spans, spans[1:], strict=False)
        if start < end
    ]


def sequence_faults(daemon_id) -> list[str]:
    """Each generation's lines must be seq 1..N, each exactly once, in id order; a generation
    that stopped cleanly must end with its "stopped (...)" line."""
    faults = []
    for generation, lines in lines_by_generation(daemon_id).items():
        seqs = [line.seq for line in lines]
        if seqs != list(range(1, len(seqs) + 1)):
            faults.append(f"generation {generation}: seqs not 1..{len(seqs)} in order")
    return faults


def cleanly_stopped(daemon_id) -> set[int]:
    return {
        generation
        for generation, lines in lines_by_generation(daemon_id).items()
        if lines[-1].message.startswith("stopped (")
    }
