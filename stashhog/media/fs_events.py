"""Filesystem events for prompt pickup: a watchdog observer (a thread) records which paths
under each watched folder changed, and hands them to the daemon's asyncio loop with
``call_soon_threadsafe``. The daemon takes a path once it has been quiet for a moment, so a
file still being written is read once, complete. Events are only a hint: the daemon re-reads
what is at each path, and the periodic rescan catches anything an event missed.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from watchdog.events import (
    DirCreatedEvent,
    DirDeletedEvent,
    DirMovedEvent,
    FileClosedEvent,
    FileCreatedEvent,
    FileDeletedEvent,
    FileModifiedEvent,
    FileMovedEvent,
    FileSystemEvent,
    FileSystemEventHandler,
)
from watchdog.observers import Observer

# Only changes: opens and reads (our own jobs read every file) would wake the daemon for
# nothing, and a folder's "modified" repeats what its files' events say.
EVENTS = [
    FileCreatedEvent, FileDeletedEvent, FileModifiedEvent, FileMovedEvent, FileClosedEvent,
    DirCreatedEvent, DirDeletedEvent, DirMovedEvent,
]  # fmt: skip


class _Handler(FileSystemEventHandler):
    def __init__(self, deliver: Callable[[list[str]], None]) -> None:
        self.deliver = deliver

    def on_any_event(self, event: FileSystemEvent) -> None:
        paths = [event.src_path, getattr(event, "dest_path", "") or ""]
        self.deliver([str(p) for p in paths if p])


class FsEvents:
    """Touched paths per watched folder, with the loop time of each one's last event."""

    def __init__(self, loop: asyncio.AbstractEventLoop, wake: Callable[[], None]) -> None:
        self.loop, self.wake = loop, wake
        self.observer = Observer()
        self.observer.daemon = True
        self.watches: dict[str, object] = {}
        self.touched: dict[str, dict[str, float]] = {}

    def start(self) -> None:
        self.observer.start()

    def stop(self) -> None:
        self.observer.stop()
        self.observer.join(5)

    def watch(self, root: str) -> None:
        """Start watching ``root`` (recursively); raises OSError if it cannot be watched."""
        if root not in self.watches:
            handler = _Handler(lambda paths: self._from_thread(root, paths))
            self.watches[root] = self.observer.schedule(
                handler, root, recursive=True, event_filter=EVENTS
            )

    def unwatch(self, root: str) -> None:
        watch = self.watches.pop(root, None)
        if watch is not None:
            try:
                self.observer.unschedule(watch)
            except (KeyError, OSError):
                pass  # the folder went away and took its watch with it

    def _from_thread(self, root: str, paths: list[str]) -> None:
        try:
            self.loop.call_soon_threadsafe(self._record, root, paths)
        except RuntimeError:
            pass  # the loop is closed: the daemon is stopping

    def _record(self, root: str, paths: list[str]) -> None:
        now = self.loop.time()
        for path in paths:
            self.touched.setdefault(root, {})[path] = now
        self.wake()

    def take_settled(self, quiet: float) -> dict[str, set[str]]:
        """Pop the paths whose last event is at least ``quiet`` seconds old, per root."""
        cutoff = self.loop.time() - quiet
        settled: dict[str, set[str]] = {}
        for root, paths in self.touched.items():
            ready = {path for path, seen in paths.items() if seen <= cutoff}
            for path in ready:
                del paths[path]
            if ready:
                settled[root] = ready
        return settled

    def next_settle(self, quiet: float) -> float | None:
        """Seconds until the next touched path has been quiet for ``quiet`` (None: none)."""
        times = [seen for paths in self.touched.values() for seen in paths.values()]
        return max(0.0, min(times) + quiet - self.loop.time()) if times else None
