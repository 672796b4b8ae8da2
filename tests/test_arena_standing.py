"""An honest arena: a run with few votes is provisional and unranked, its interval widens
when votes are few, and battles are drawn among the pairs that met the fewest times."""

from __future__ import annotations

import itertools
import random

import numpy as np

from sandbox.arena import board as boards
from sandbox.arena import standing
from sandbox.arena.battle import draw_matchup
from sandbox.arena.ratings import Game, rate
from sandbox.playground.settings import SamplingSettings


def _games(strength: dict[str, float], pairs: list[tuple[str, str]], per_pair: int, seed: int) -> list[Game]:
    rng = np.random.default_rng(seed)
    out = []
    for a, b in pairs:
        for n in range(per_pair):
            p = 1.0 / (1.0 + np.exp(strength[b] - strength[a]))
            out.append(Game(f"{a}-{b}-{n}", a, b, "a" if rng.random() < p else "b"))
    return out


def _the_issue_case() -> list[Game]:
    """Three runs with 40-80 votes each, and `lucky` with one vote, which it won."""
    strength = {"x": 0.5, "y": 0.0, "z": -0.5}
    games = _games(strength, list(itertools.combinations(strength, 2)), 30, seed=1)
    return [*games, Game("one", "lucky", "z", "a")]


def test_a_one_vote_run_is_provisional_unranked_and_listed_last() -> None:
    r = rate(_the_issue_case(), n_boot=200, seed=0)
    board = boards.Leaderboard("combined", r, [])
    table = board.table()
    lucky = table[table["run"] == "lucky"].iloc[0]
    assert bool(lucky["provisional"]) and (lucky["rank"] is None or np.isnan(lucky["rank"]))
    assert list(table["run"])[-1] == "lucky"
    ranked = table[~table["provisional"].astype(bool)]
    assert list(ranked["rank"]) == list(range(1, len(ranked) + 1))
    # Its interval is the widest, not the narrowest (it was [1164, 1297] against 160-wide ones).
    widths = table["high"] - table["low"]
    assert widths[table["run"] == "lucky"].iloc[0] > widths[~table["provisional"].astype(bool)].max()
    text = boards.format_board(board.to_dict())
    assert any(line.split()[:2] == ["provisional", "lucky"] for line in text.splitlines()), text
    note = standing.provisional_note(standing.standings(r))
    assert note and note.startswith(f"1 run(s) with fewer than {standing.MIN_VOTES} votes are provisional")


def test_intervals_widen_when_votes_are_few() -> None:
    strength = {"x": 0.3, "y": 0.0, "z": -0.3}
    base = _games(strength, list(itertools.combinations(strength, 2)), 30, seed=2)
    widths = []
    for votes in (1, 5, 50):
        extra = [Game(f"n{n}", "new", "y", "a" if n % 2 == 0 else "b") for n in range(votes)]
        rows = {row["run"]: row for row in standing.standings(rate(base + extra, n_boot=200, seed=0))}
        widths.append(rows["new"]["high"] - rows["new"]["low"])
    assert widths[0] > widths[1] > widths[2], widths


def test_battles_are_balanced_across_pairs() -> None:
    runs = ["a", "b", "c", "d"]
    played: dict[frozenset, int] = {}
    rng = random.Random(0)
    for n in range(30):
        a, b = standing.least_played_pair(runs, played, rng)
        played[frozenset((a, b))] = played.get(frozenset((a, b)), 0) + 1
        counts = [played.get(frozenset(p), 0) for p in itertools.combinations(runs, 2)]
        assert max(counts) - min(counts) <= 1, (n, counts)
    # Through draw_matchup: a pair that never met is drawn before a pair that met four times.
    played = {frozenset(("a", "b")): 4, frozenset(("a", "c")): 4, frozenset(("b", "c")): 0}
    for seed in range(10):
        m = draw_matchup(["a", "b", "c"], "Once", SamplingSettings(), draw_seed=seed, played=played)
        assert {m.run_a, m.run_b} == {"b", "c"}
    assert standing.games_per_pair(_the_issue_case())[frozenset(("lucky", "z"))] == 1
