"""The optional shared access token for LAN use (``SANDBOX_TOKEN``).

When the variable is set, a visitor types the token once per browser session; when it is
unset the app is open, as on localhost. Streamlit's own `st.login` is OIDC-only, so a shared
token is the app's own: compared in constant time, never logged, never put in a URL, and
wrong tries are rate-limited per client (:class:`Throttle`).
"""

from __future__ import annotations

import hmac
import os
import threading
import time
from collections import OrderedDict
from collections.abc import Iterable


def expected_token() -> str | None:
    """The token visitors must give, or None when the app is open."""
    token = os.environ.get("SANDBOX_TOKEN", "")
    return token or None


def token_matches(given: str, expected: str) -> bool:
    """Constant-time comparison (no timing side channel on how much of the token matched)."""
    return hmac.compare_digest(given.encode("utf-8"), expected.encode("utf-8"))


class Throttle:
    """Wrong-token tries per client: a few are free, then each one must wait longer.

    A client is known by several keys (its browser session, its address when the server
    sees one): a try must wait as long as the most-throttled of its keys says, and a wrong
    one counts against all of them, so a new browser session from the same address gains
    nothing. After ``free_tries`` wrong tries the next one waits ``first_wait`` seconds, and
    every further wrong one doubles that, up to ``max_wait``. Tries made while waiting are
    not checked at all. A key with no wrong try for ``forget_after`` seconds past its wait
    starts afresh (a server-wide key would otherwise gather every typo for good).
    Thread-safe; at most ``max_clients`` keys are remembered (the oldest are forgotten first).
    """

    def __init__(self, free_tries: int = 5, first_wait: float = 2.0, max_wait: float = 300.0,
                 max_clients: int = 10_000, clock=None, forget_after: float = 3600.0) -> None:  # fmt: skip
        self.free_tries, self.first_wait, self.max_wait = free_tries, first_wait, max_wait
        self.max_clients, self.forget_after = max_clients, forget_after
        self.clock = clock or time.monotonic
        self._clients: OrderedDict[str, tuple[int, float]] = OrderedDict()  # key -> (wrong tries, not before)
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._clients)

    def _entry(self, key: str, now: float) -> tuple[int, float]:
        tries, until = self._clients.get(key, (0, now))
        return (0, now) if now > until + self.forget_after else (tries, until)

    def wait_left(self, keys: Iterable[str]) -> float:
        """Seconds before these keys may try again (0: now)."""
        now = self.clock()
        with self._lock:
            until = max((self._entry(key, now)[1] for key in keys), default=now)
        return max(0.0, until - now)

    def failed(self, keys: Iterable[str]) -> None:
        """Count one wrong token against every key of the client."""
        now = self.clock()
        with self._lock:
            for key in keys:
                tries = self._entry(key, now)[0] + 1
                self._clients.pop(key, None)
                wait = 0.0 if tries < self.free_tries else min(
                    self.max_wait, self.first_wait * 2 ** (tries - self.free_tries))
                self._clients[key] = (tries, now + wait)
            while len(self._clients) > self.max_clients:
                self._clients.popitem(last=False)

    def succeeded(self, keys: Iterable[str]) -> None:
        """The right token: the client's keys start afresh."""
        with self._lock:
            for key in keys:
                self._clients.pop(key, None)
