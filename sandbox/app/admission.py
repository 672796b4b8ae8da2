"""Admission rules for expensive actions that one visitor could repeat without end.

A judge run spends the owner's API key for up to 200 battles; nothing stopped a visitor from
starting one in every tab at once. :class:`Admission` lets at most ``at_once`` runs of one
kind go on in the whole app, and ``per_session`` in one browser session; a run that would
pass either is refused with one sentence (`Refused`) before it starts.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager


class Refused(RuntimeError):
    """An action not admitted now; the message is one sentence for the visitor."""


class Admission:
    """Counts the runs of one kind of action in progress, per browser session and in all."""

    def __init__(self, what: str, at_once: int, per_session: int = 1) -> None:
        if at_once < 1 or per_session < 1:
            raise ValueError("an admission rule must let at least one run in")
        self.what, self.at_once, self.per_session = what, at_once, per_session
        self._running: Counter[str] = Counter()
        self._lock = threading.Lock()

    def running(self, session: str | None = None) -> int:
        """Runs in progress (of ``session``, when given)."""
        with self._lock:
            return self._running[session] if session is not None else sum(self._running.values())

    @contextmanager
    def enter(self, session: str) -> Iterator[None]:
        """Hold one run for ``session`` while the block runs; raises `Refused` when full."""
        with self._lock:
            if self._running[session] >= self.per_session:
                raise Refused(f"This browser session already has {self._runs(self._running[session])} going; "
                              "wait for it to finish.")  # fmt: skip
            if sum(self._running.values()) >= self.at_once:
                raise Refused(f"The server already has {self._runs(self.at_once)} going, the most at once; "
                              "try again when one has finished.")  # fmt: skip
            self._running[session] += 1
        try:
            yield
        finally:
            with self._lock:
                self._running[session] -= 1
                if self._running[session] <= 0:
                    del self._running[session]

    def _runs(self, n: int) -> str:
        return f"{n} {self.what}" + ("" if n == 1 else "s")
