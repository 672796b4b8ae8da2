"""Who may keep uploaded files on the server, and how many bytes each browser session may hold.

Streamlit's upload endpoint stores a file for any connected session that asks for an
upload URL, whether or not a page shows a file uploader, and keeps it until the session
ends. The app therefore decides itself: a session that has not given the access token
keeps nothing, and one that has keeps its newest files within :class:`UploadBounds` (the
oldest go first; the Evaluation page's uploader only ever reads the newest).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True)
class UploadBounds:
    """What one browser session may hold in uploaded files at once."""

    max_files: int
    max_bytes: int

    def to_drop(self, files: Iterable[tuple[str, int]]) -> list[str]:
        """Ids of the oldest of ``files`` ((id, size), oldest first) to drop so the rest fit;
        the newest is always kept (a single file is capped by the server's upload size)."""
        files = list(files)
        drop, count, total = [], len(files), sum(size for _, size in files)
        for file_id, size in files[:-1]:
            if count <= self.max_files and total <= self.max_bytes:
                break
            drop.append(file_id)
            count, total = count - 1, total - size
        return drop


class SessionSet:
    """Browser sessions that gave the access token: the most recent ``max_sessions`` of them.

    Thread-safe. A session forgotten because there are too many must give the token again
    before it may upload (its pages ask anyway once its own state is gone).
    """

    def __init__(self, max_sessions: int = 10_000) -> None:
        self.max_sessions = max_sessions
        self._sessions: OrderedDict[str, None] = OrderedDict()
        self._lock = threading.Lock()

    def add(self, session_id: str) -> None:
        with self._lock:
            self._sessions.pop(session_id, None)
            self._sessions[session_id] = None
            while len(self._sessions) > self.max_sessions:
                self._sessions.popitem(last=False)

    def __contains__(self, session_id: object) -> bool:
        with self._lock:
            return session_id in self._sessions

    def __len__(self) -> int:
        return len(self._sessions)
