"""An honest leaderboard: provisional runs, intervals that widen when votes are few, fair pairs.

- **Provisional**: a run with fewer than `MIN_VOTES` votes is shown after the ranked runs,
  marked provisional, with no rank: one lucky vote must not put a run first.
- **Intervals**: the bootstrap over battles alone is *narrow* for a run with one vote (every
  resample holding its battle gives it the same rating), so each end is widened to at least
  the Wald interval of the penalised Bradley–Terry fit (its Fisher information: the games
  played, plus the prior's virtual games), which is wide where votes are few and close to
  the bootstrap's where they are many.
- **Balanced battles**: `least_played_pair` picks among the pairs of the pool that met the
  fewest times (ties broken at random), so every pair meets before any meets again.
"""

from __future__ import annotations

import itertools
import math
import random
from collections.abc import Mapping, Sequence
from statistics import NormalDist

import numpy as np

from sandbox.arena.ratings import ELO_PER_NAT, Ratings

MIN_VOTES = 10  # fewer votes than this: provisional, not ranked


def wald_halfwidths(r: Ratings, confidence: float = 0.95, min_votes: int = MIN_VOTES) -> np.ndarray:
    """Half-widths (Elo) of each run's Wald interval from the penalised fit's information.

    The negative Hessian of the log-likelihood at the fit (games between runs, and the prior's
    ``prior`` virtual games against a run of strength 0); one run's variance is its diagonal
    entry of the inverse, taken for the run's difference to the anchor (the base run, or the
    mean of the runs with at least ``min_votes`` votes). With prior 0 the mean is fixed, as in
    the fit.
    """
    k = len(r.players)
    if k == 0:
        return np.zeros(0)
    theta = r.elo / ELO_PER_NAT
    theta = theta - theta.mean()
    p = 1.0 / (1.0 + np.exp(-(theta[:, None] - theta[None, :])))
    curvature = r.games * p * (1.0 - p)
    info = np.diag(curvature.sum(axis=1)) - curvature
    if r.prior > 0:
        q = 1.0 / (1.0 + np.exp(-theta))
        info += np.diag(r.prior * q * (1.0 - q))
    else:
        info += np.ones((k, k)) / k
    try:
        cov = np.linalg.inv(info)
    except np.linalg.LinAlgError:
        return np.full(k, math.inf)
    # Ratings are anchored (mean 1000, or a base run at 1000): the variance that matters is
    # that of each run's difference to the anchor, not of the level the prior barely fixes.
    # Against the mean, that of the runs with enough votes: a provisional run's large
    # uncertainty would otherwise leak into every other run's interval through the mean.
    settled = np.array([r.record[p]["votes"] >= min_votes for p in r.players])
    weights = settled / settled.sum() if settled.any() else np.full(k, 1.0 / k)
    anchor = np.tile(weights, (k, 1)) if r.base_run is None else np.eye(k)[[r.players.index(r.base_run)] * k]
    contrast = np.eye(k) - anchor
    var = np.einsum("ij,jk,ik->i", contrast, cov, contrast)
    z = NormalDist().inv_cdf(0.5 + confidence / 2.0)
    return z * np.sqrt(np.maximum(var, 0.0)) * ELO_PER_NAT


def standings(r: Ratings, min_votes: int = MIN_VOTES) -> list[dict]:
    """`Ratings.rows` with honest intervals and ranks: ``provisional`` runs (under
    ``min_votes`` votes) get no rank and come after the ranked ones."""
    half = dict(zip(r.players, wald_halfwidths(r, min_votes=min_votes), strict=True))
    rows = r.rows()
    for row in rows:
        w = half[row["run"]]
        wide_lo, wide_hi = row["rating"] - w, row["rating"] + w
        row["low"] = wide_lo if row["low"] is None else min(row["low"], wide_lo)
        row["high"] = wide_hi if row["high"] is None else max(row["high"], wide_hi)
        row["provisional"] = row["votes"] < min_votes
    ranked = [row for row in rows if not row["provisional"]]
    for n, row in enumerate(ranked, start=1):
        row["rank"] = n
    provisional = [dict(row, rank=None) for row in rows if row["provisional"]]
    return ranked + provisional


def provisional_note(rows: Sequence[dict], min_votes: int = MIN_VOTES) -> str | None:
    """A sentence naming how many runs are provisional (fewer than ``min_votes`` votes)."""
    n = sum(1 for row in rows if row.get("provisional"))
    if not n:
        return None
    return (f"{n} run(s) with fewer than {min_votes} votes are provisional: shown last, without a rank, "
            "their intervals from the fit's information as well as the bootstrap.")


def least_played_pair(pool: Sequence[str], played: Mapping[frozenset, int], rng: random.Random) -> tuple[str, str]:
    """Two runs of ``pool`` among the pairs that met the fewest times (``played``: games per
    ``frozenset({run, run})``), at random among those, in random order."""
    runs = sorted(set(pool))
    if len(runs) < 2:
        raise ValueError("An arena needs at least two runs in its pool.")
    pairs = list(itertools.combinations(runs, 2))
    fewest = min(played.get(frozenset(p), 0) for p in pairs)
    choice = rng.choice([p for p in pairs if played.get(frozenset(p), 0) == fewest])
    return choice if rng.random() < 0.5 else (choice[1], choice[0])


def games_per_pair(games: Sequence) -> dict[frozenset, int]:
    """How many votes each pair of runs has (``Game``-like: ``run_a``, ``run_b``)."""
    out: dict[frozenset, int] = {}
    for g in games:
        key = frozenset((g.run_a, g.run_b))
        out[key] = out.get(key, 0) + 1
    return out
