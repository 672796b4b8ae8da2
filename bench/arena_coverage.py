"""Coverage of the arena's 95 % rating intervals for a run with 1, 5 and 50 votes, by simulation.

Three settled runs (log-strengths 0.4, 0, -0.4; 20 votes per pair) and a new run whose true
strength is drawn from N(0, 0.5²) each trial, with N votes against settled runs drawn at
random; votes follow Bradley–Terry. The truth is on the displayed scale (strengths anchored to
a mean of 1000 Elo, as the ratings are). Printed per N: how often the interval of the new run
holds its true rating, for the bootstrap over battles alone (before) and the leaderboard's
interval (`sandbox.arena.standing.standings`: widened to the fit's Wald interval), ± one
binomial standard error, and the median widths.

    python bench/arena_coverage.py [--trials 300] [--boot 200]
"""

from __future__ import annotations

import argparse
import math

import numpy as np

from sandbox.arena import standing
from sandbox.arena.ratings import ELO_PER_NAT, Game, rate

SETTLED = {"x": 0.4, "y": 0.0, "z": -0.4}


def trial(n_votes: int, rng: np.random.Generator, n_boot: int) -> tuple[bool, bool, float, float]:
    """One simulated arena: (bootstrap holds, shown interval holds, their widths)."""
    strength = dict(SETTLED, new=float(rng.normal(0.0, 0.5)))
    games = []

    def vote(a: str, b: str, tag: str) -> None:
        p = 1.0 / (1.0 + math.exp(strength[b] - strength[a]))
        games.append(Game(tag, a, b, "a" if rng.random() < p else "b"))

    for a, b in (("x", "y"), ("x", "z"), ("y", "z")):
        for n in range(20):
            vote(a, b, f"{a}{b}{n}")
    for n in range(n_votes):
        vote("new", str(rng.choice(list(SETTLED))), f"new{n}")
    r = rate(games, n_boot=n_boot, seed=int(rng.integers(1 << 30)))
    mean = np.mean(list(strength.values()))
    truth = (strength["new"] - mean) * ELO_PER_NAT + 1000.0
    i = r.players.index("new")
    boot = bool(r.low[i] <= truth <= r.high[i])
    row = next(row for row in standing.standings(r) if row["run"] == "new")
    shown = bool(row["low"] <= truth <= row["high"])
    return boot, shown, float(r.high[i] - r.low[i]), float(row["high"] - row["low"])


def main() -> None:
    """Print the coverage table."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--trials", type=int, default=300)
    ap.add_argument("--boot", type=int, default=200)
    args = ap.parse_args()
    rng = np.random.default_rng(0)
    print(f"{args.trials} trials, {args.boot} bootstrap resamples; nominal 0.95")
    print(f"{'votes':>5}  {'bootstrap alone':>15}  {'shown':>13}  median width (Elo) bootstrap / shown")
    for n in (1, 5, 50):
        got = [trial(n, rng, args.boot) for _ in range(args.trials)]
        cells = []
        for k in (0, 1):
            share = float(np.mean([g[k] for g in got]))
            cells.append(f"{share:.3f} ± {math.sqrt(share * (1 - share) / args.trials):.3f}")
        widths = f"{np.median([g[2] for g in got]):.0f} / {np.median([g[3] for g in got]):.0f}"
        print(f"{n:>5}  {cells[0]:>15}  {cells[1]:>13}  {widths}", flush=True)


if __name__ == "__main__":
    main()
