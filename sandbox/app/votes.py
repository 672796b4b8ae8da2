"""How many votes each visitor may give, and on what (README: "Reliability").

Votes are anonymous, so a "visitor" is what the server can tell apart: a browser session
and, when the server sees one, a client address (the keys of `pages.common.client_keys`).
Each key may vote once on a battle's content (`sandbox.arena.battle.Matchup.content`: the
same prompt, settings and seed through the same pair write the same two texts, so a voter who
saw one revealed would know the sides of the next), and at most ``max_votes`` times in all.
The ledger is the process's, not a session's: a session cannot forget it.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Iterable


class VoteLedger:
    """The battle contents each client key has voted on. Thread-safe; at most ``max_clients``
    keys are remembered (the oldest are forgotten first)."""

    def __init__(self, max_votes: int = 300, max_clients: int = 10_000) -> None:
        self.max_votes, self.max_clients = max_votes, max_clients
        self._voted: OrderedDict[str, set[str]] = OrderedDict()
        self._lock = threading.Lock()

    def seen(self, keys: Iterable[str], content: str) -> bool:
        """Whether any of the client's keys has voted on ``content``."""
        with self._lock:
            return any(content in self._voted.get(key, ()) for key in keys)

    def refusal(self, keys: Iterable[str], content: str) -> str | None:
        """The sentence that refuses this client's vote on ``content``, or None to take it."""
        keys = list(keys)
        if self.seen(keys, content):
            return ("You have voted on this battle already: the same prompt, settings and seed "
                    "through the same two runs write the same two stories.")  # fmt: skip
        with self._lock:
            if any(len(self._voted.get(key, ())) >= self.max_votes for key in keys):
                return f"This browser or address has given {self.max_votes} votes, the most one visitor may give."
        return None

    def record(self, keys: Iterable[str], content: str) -> None:
        """Count one vote on ``content`` against every key of the client."""
        with self._lock:
            for key in keys:
                voted = self._voted.pop(key, set())
                voted.add(content)
                self._voted[key] = voted
            while len(self._voted) > self.max_clients:
                self._voted.popitem(last=False)
