"""The app's process-wide objects that no visitor may reset: workers, limits, pending votes.

Streamlit clears every ``st.cache_resource`` and ``st.cache_data`` entry when *any*
connected browser session sends its "clear cache" message (a raw websocket client can send
it before giving the access token). A cache may hold only what can be computed again; the
worker pools (other visitors' evaluations and generations run on them), the cap on live
workers, the record of wrong tokens and the arena store (votes waiting for a retry) are
state, and live here instead: made once per process on first use, closed only by
:meth:`Shared.close_all` (the tests; never a request).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any


class Shared:
    """Named objects made once per process, each with an optional close function.

    Thread-safe: two sessions asking for the same name at once get the same object. A
    factory that raises leaves nothing behind (the next call tries again).
    """

    def __init__(self) -> None:
        self._items: dict[str, tuple[Any, Callable[[Any], None] | None]] = {}
        self._lock = threading.RLock()

    def get(self, name: str, make: Callable[[], Any], close: Callable[[Any], None] | None = None) -> Any:
        """The object called ``name``, made by ``make()`` on first use."""
        with self._lock:
            if name not in self._items:
                self._items[name] = (make(), close)
            return self._items[name][0]

    def names(self) -> list[str]:
        """The names made so far, oldest first."""
        with self._lock:
            return list(self._items)

    def close_all(self) -> None:
        """Forget every object, closing those that have a close function (newest first)."""
        with self._lock:
            items, self._items = list(self._items.values()), {}
        for value, close in reversed(items):
            if close is not None:
                close(value)
