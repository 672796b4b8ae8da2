"""A battle streamed live for the Arena page: two blind columns, then a `Battle` to vote on.

The page draws a `Matchup` (`sandbox.arena.battle.draw_matchup`), wraps it in a `LiveBattle`
and streams both sides at once through `sandbox.playground.multistream`, folding every
message into the Playground's own `ColumnState` (keyed by position, "A" and "B", never by
run). When both columns are done, `LiveBattle.battle` gives the `Battle` the visitor votes
on. Everything a visitor can see before the vote (column keys, headers, error sentences,
notices) speaks of positions only: `hide_names` takes the run ids and names out of a
worker's error sentence, which may quote them.
"""

from __future__ import annotations

import re
import secrets
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from sandbox.arena.battle import (
    POSITIONS,
    Battle,
    BattleError,
    Matchup,
    Reveal,
    battle_jobs,
    draw_matchup,
    fingerprints,
)
from sandbox.playground.columns import ColumnState
from sandbox.playground.multistream import Message
from sandbox.playground.settings import RANGES, SamplingSettings

# Before the vote both sides wear the same neutral colour: a run's own colour (the same on
# every page) would name it.
HIDDEN_COLOR = "#8a8f98"
SEED_MAX = int(RANGES["seed"][1])


def battle_settings(settings: SamplingSettings, draw_seed: int, fresh_seed: bool) -> SamplingSettings:
    """The settings both sides use: ``settings``, with a seed drawn from ``draw_seed`` when
    ``fresh_seed`` (so that two battles on the same prompt and pair do not repeat a text)."""
    if not fresh_seed:
        return settings
    return replace(settings, seed=int(draw_seed) % (SEED_MAX + 1))


def new_matchup(pool: Sequence[str], prompt: str | Sequence[str], settings: SamplingSettings, *,
                fresh_seed: bool = True, source: str | None = None,
                played: Mapping[frozenset, int] | None = None) -> Matchup:
    """A fresh battle's matchup for the page: two runs of ``pool`` (the two, when it holds
    two), a prompt (``prompt`` itself, or drawn from a list), random positions, and the
    settings of `battle_settings`; everything drawn from one new ``draw_seed``. ``played``:
    votes per pair, so that the pair is one that met the fewest times."""
    draw_seed = secrets.randbits(63)
    shared = battle_settings(settings, draw_seed, fresh_seed)
    return draw_matchup(pool, prompt, shared, draw_seed=draw_seed, source=source, played=played)


def hide_names(text: str, matchup: Matchup) -> str:
    """``text`` with each run's id, folder name and experiment name replaced by its position.

    For sentences a visitor sees before the vote (a worker's error may quote its run).
    Longer names go first, so "exp/run" is replaced whole before "run" alone.
    """
    names: list[tuple[str, str]] = []
    for position in POSITIONS:
        run_id = matchup.run_at(position)
        experiment, _, run = run_id.partition("/")
        names += [(n, f"the run at {position}") for n in (run_id, run, experiment) if n]
    for name, label in sorted(names, key=lambda item: -len(item[0])):
        text = re.sub(rf"(?<![\w/.-]){re.escape(name)}(?![\w/.-])", label, text)
    return text


@dataclass
class LiveBattle:
    """A matchup being generated: its two columns by position, and what the runs are made of."""

    matchup: Matchup
    prints: tuple[str, str]  # code-and-weights fingerprints of run_a and run_b, taken at the start
    columns: dict[str, ColumnState] = field(default_factory=dict)
    open: bool = True  # True until the stream has ended, however it ended (see the page)

    @classmethod
    def start(cls, models_dir: Path | str | None, matchup: Matchup) -> LiveBattle:
        """A live battle with two empty columns (raises `UnknownRunError` for a vanished run)."""
        now = time.perf_counter()
        columns = {p: ColumnState(p, matchup.settings, started_at=now) for p in POSITIONS}
        return cls(matchup, fingerprints(models_dir, matchup), columns)

    def jobs(self, pool: Any, models_dir: Path | str | None, lane_pool: Any = None) -> dict[str, Callable[[], Iterator[dict]]]:
        """The two streams for `MultiStream`, keyed by position (see `battle_jobs`)."""
        return battle_jobs(pool, models_dir, self.matchup, lane_pool)

    def apply(self, message: Message) -> None:
        """Fold one stream message into its column."""
        self.columns[message.key].apply(message)

    def stop(self) -> None:
        """The stream ended early (Stop, a rerun): unfinished columns are marked stopped."""
        for column in self.columns.values():
            column.mark_stopped()
        self.open = False

    def error(self, position: str) -> str | None:
        """The sentence of a failed column, with the run names hidden; None when it did not fail."""
        err = self.columns[position].error
        if err is None:
            return None
        return hide_names(err.get("message") or "it failed", self.matchup)

    @property
    def complete(self) -> bool:
        """Both columns wrote all their tokens."""
        return all(c.status == "done" for c in self.columns.values())

    def battle(self) -> Battle:
        """The battle to vote on; raises `BattleError` (one sentence, no run names) unless complete."""
        for position in POSITIONS:
            sentence = self.error(position)
            if sentence is not None:
                raise BattleError(f"Story {position} could not be generated: {sentence}")
        if not self.complete:
            raise BattleError("The battle was interrupted before both stories were written; start a new one.")
        a, b = self.columns["A"].text, self.columns["B"].text
        return Battle.from_texts(self.matchup, a, b, self.prints)


def reveal_sentence(reveal: Reveal) -> str:
    """"A was x, B was y. You chose …" for after the vote (plain text: names are untrusted)."""
    chose = {"A": "A", "B": "B", "tie": "a tie", "both_bad": "both bad"}[reveal.choice]
    outcome = f"{reveal.winner} wins this battle." if reveal.winner else "Neither run wins this battle."
    return f"A was {reveal.run_at_a}, B was {reveal.run_at_b}. You chose {chose}: {outcome}"
