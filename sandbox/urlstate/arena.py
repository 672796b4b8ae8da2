"""The Arena page's state in the URL: the pool of runs and the open section.

A link shares a pool with labmates (``runs=a&runs=b&runs=c``) and may open the leaderboard
(``view=leaderboard``). Nothing about a battle is ever in the URL: which run is at A or B
lives only in the server's session state, so a link can never name them before the vote.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass, field

from sandbox.urlstate import parse

VIEWS = {"battle": "Battle", "leaderboard": "Leaderboard", "judge": "Judge"}  # URL value -> label
DEFAULT_VIEW = "battle"
QUERY_KEYS = ("runs", "view")


@dataclass
class ArenaState:
    """The pool (empty: every run not flagged as untrained) and the open section."""

    pool: list[str] = field(default_factory=list)
    view: str = DEFAULT_VIEW


def from_query(params: Mapping[str, parse.Raw], run_ids: Collection[str]) -> tuple[ArenaState, list[str]]:
    """The state a link asks for, and a warning sentence per value that is ignored."""
    pool, warnings = parse.parse_choices(params.get("runs"), run_ids, what="run", why="it is not in the models directory")
    view, warning = parse.parse_choice(params.get("view"), VIEWS, DEFAULT_VIEW, what="section", why="use battle, leaderboard or judge")
    return ArenaState(pool, view), warnings + ([warning] if warning else [])


def to_query(state: ArenaState) -> dict[str, list[str] | str]:
    """The URL parameters of ``state`` (the default section is left out)."""
    return {"runs": list(state.pool), "view": [] if state.view == DEFAULT_VIEW else [state.view]}
