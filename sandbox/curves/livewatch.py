"""Notice when training logs change, so that pages redraw only what changed.

One watcher per models directory and process (shared by every session). watchdog's
observer thread only bumps counters under a lock; readers compare counters. Nothing here
touches Streamlit: no ``st.*`` call is safe from another thread.

When the observer cannot start (inotify limit, unsupported filesystem) or polling is
asked for (``SANDBOX_LOG_WATCH=poll``: inotify misses changes made on network
filesystems), the same counters are kept by comparing ``os.stat`` results when asked.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterable
from pathlib import Path

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

LOG_NAME = "log_data.csv"
_EVENTS = [
    FileModifiedEvent, FileClosedEvent, FileCreatedEvent, FileDeletedEvent, FileMovedEvent,
    DirCreatedEvent, DirDeletedEvent, DirMovedEvent,
]  # fmt: skip


class LogWatcher:
    """Change counters for the logs under ``root`` and for the set of run folders."""

    def __init__(self, root: Path | str, *, poll: bool = False) -> None:
        self.root = Path(root)
        self.mode = "polling"
        self.reason = "polling was asked for" if poll else ""
        self._lock = threading.Lock()
        self._versions: dict[str, int] = {}
        self._tree = 0
        self._stats: dict[str, tuple[int, int] | None] = {}
        self._tree_signature: tuple | None = None
        self._observer = None
        if not poll:
            self._start_observer()

    # -- watchdog side (runs on the observer thread) -------------------------------------

    def _start_observer(self) -> None:
        watcher = self

        class Handler(FileSystemEventHandler):
            def on_any_event(self, event: FileSystemEvent) -> None:
                watcher._on_event(event)

        observer = Observer()
        try:
            observer.schedule(Handler(), os.fspath(self.root), recursive=True, event_filter=_EVENTS)
            observer.start()
        except OSError as exc:  # inotify watch limit, missing folder, unsupported filesystem
            self.reason = f"the file watcher could not start ({exc}); checking files instead"
            return
        self._observer = observer
        self.mode = "watchdog"

    def _on_event(self, event: FileSystemEvent) -> None:
        paths = [os.fsdecode(event.src_path), os.fsdecode(getattr(event, "dest_path", "") or "")]
        structural = event.event_type in ("created", "deleted", "moved")
        with self._lock:
            for path in filter(None, paths):
                if os.path.basename(path) == LOG_NAME:
                    key = os.path.normpath(path)
                    self._versions[key] = self._versions.get(key, 0) + 1
                    self._tree += structural  # a log appearing adds a run to the picker
            if event.is_directory and structural:
                self._tree += 1

    # -- readers (any thread) ------------------------------------------------------------

    def version(self, path: Path | str) -> int:
        """A number that changes whenever the file at ``path`` changes."""
        key = os.path.normpath(os.fspath(path))
        if self.mode == "polling":
            self._poll(key)
        with self._lock:
            return self._versions.get(key, 0)

    def versions(self, paths: Iterable[Path | str]) -> tuple[int, ...]:
        """:meth:`version` of each path: a cheap cache key for "has any of these changed"."""
        return tuple(self.version(p) for p in paths)

    def tree_version(self) -> int:
        """A number that changes when a run folder or a log appears or disappears."""
        if self.mode == "polling":
            signature = tuple(
                (p.parent.name, p.name, (p / LOG_NAME).exists())
                for p in sorted(self.root.glob("*/trained/*"))
            )
            with self._lock:
                if signature != self._tree_signature:
                    self._tree += self._tree_signature is not None
                    self._tree_signature = signature
        with self._lock:
            return self._tree

    def _poll(self, key: str) -> None:
        try:
            st = os.stat(key)
            stat: tuple[int, int] | None = (st.st_size, st.st_mtime_ns)
        except OSError:
            stat = None
        with self._lock:
            if key in self._stats and self._stats[key] != stat:
                self._versions[key] = self._versions.get(key, 0) + 1
            self._stats[key] = stat

    def stop(self) -> None:
        """Stop the observer thread (the counters stay readable, as a polling watcher)."""
        if self._observer is not None:
            self._observer.stop()
            self._observer.join(timeout=5)
            self._observer = None
        self.mode = "polling"


_SHARED: dict[str, LogWatcher] = {}
_SHARED_LOCK = threading.Lock()


def shared_watcher(root: Path | str) -> LogWatcher:
    """The process-wide watcher of ``root``, started on first use."""
    key = os.path.normpath(os.fspath(root))
    with _SHARED_LOCK:
        watcher = _SHARED.get(key)
        if watcher is None:
            poll = os.environ.get("SANDBOX_LOG_WATCH", "").lower() == "poll"
            watcher = _SHARED[key] = LogWatcher(key, poll=poll)
        return watcher


def stop_all() -> None:
    """Stop every shared watcher (tests, interpreter shutdown)."""
    with _SHARED_LOCK:
        watchers = list(_SHARED.values())
        _SHARED.clear()
    for watcher in watchers:
        watcher.stop()
