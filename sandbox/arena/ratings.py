"""Bradley–Terry ratings of runs from pairwise votes, on the Elo scale, with bootstrap intervals.

The model: run i beats run j with probability ``σ(θ_i − θ_j)``. Ties count as half a win for
each side (so do "both bad" verdicts: neither story won), the simple convention LMSYS's
arena used; "unparsed" judge answers are left out. The maximum-likelihood strengths are found
by Newton's method on the log-likelihood, which is concave in θ (a few steps, fast enough to
refit every bootstrap resample), with a backtracking line search.

``prior`` adds that many virtual games, half won and half lost, between each run and a
virtual run of strength 0. It keeps the fit finite when a run never lost (or never won) — the
plain MLE is then infinite — and pulls runs with few votes slightly toward the middle; with
hundreds of votes it changes nothing that matters. With ``prior=0`` the fit is the plain MLE
(Hunter 2004), which exists only when every split of the runs into two groups has a win (or
tie) each way; otherwise a `ValueError` says so.

Ratings are reported as Elo: ``400 · log10`` of the odds, so a 100-point gap means the
higher run wins about 64 % of the time; anchored so that their mean is 1000, or so that a
chosen base run is at 1000. Intervals: 95 % percentile bootstrap over battles (all votes of a
battle are drawn together), every resample fitted and anchored the same way.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np

ELO_PER_NAT = 400.0 / math.log(10.0)  # Elo points per unit of log-odds
BASE_RATING = 1000.0
DEFAULT_PRIOR = 1.0
DEFAULT_BOOTSTRAP = 1000
SCORES = {"a": 1.0, "b": 0.0, "tie": 0.5, "both_bad": 0.5}  # run_a's share of a win
AGREEMENT_CLASSES = {"a": "a", "b": "b", "tie": "neither", "both_bad": "neither"}


@dataclass(frozen=True)
class Game:
    """One vote between two runs: ``verdict`` is "a", "b", "tie", "both_bad" or "unparsed"."""

    battle_id: str
    run_a: str
    run_b: str
    verdict: str


def games_from(rows: Iterable) -> list[Game]:
    """`Game` objects from anything with battle_id, run_a, run_b and verdict (store rows)."""
    return [Game(r.battle_id, r.run_a, r.run_b, r.verdict) for r in rows]


# -- the fit --------------------------------------------------------------------------


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * x))  # exact, and never overflows


def _log_sigmoid(x: np.ndarray) -> np.ndarray:
    return -np.logaddexp(0.0, -x)


def log_likelihood(theta: np.ndarray, wins: np.ndarray, prior: float = 0.0) -> float:
    """Log-likelihood of strengths ``theta`` given ``wins[i, j]`` (i's wins over j), prior included."""
    diff = theta[:, None] - theta[None, :]
    total = float(np.sum(wins * _log_sigmoid(diff)))
    if prior > 0:
        total += float(np.sum(0.5 * prior * (_log_sigmoid(theta) + _log_sigmoid(-theta))))
    return total


def connected_by_wins(wins: np.ndarray) -> bool:
    """True when every run can reach every other along "won (or tied) against" edges.

    This is the condition under which the plain Bradley–Terry MLE exists (Hunter 2004).
    """
    k = wins.shape[0]
    if k <= 1:
        return True
    beats = wins > 0
    for graph in (beats, beats.T):  # reachable from run 0 both forwards and backwards
        seen = {0}
        frontier = [0]
        while frontier:
            i = frontier.pop()
            for j in np.flatnonzero(graph[i]):
                if int(j) not in seen:
                    seen.add(int(j))
                    frontier.append(int(j))
        if len(seen) < k:
            return False
    return True


def fit_bradley_terry(
    wins: np.ndarray, prior: float = DEFAULT_PRIOR, *, tol: float = 1e-10, max_iter: int = 100
) -> np.ndarray:
    """Maximum-likelihood log-strengths θ (mean 0) from ``wins[i, j]``, i's (half-)wins over j.

    Newton's method with a backtracking line search; see the module docstring for ``prior``.
    Raises `ValueError` when ``prior`` is 0 and the MLE does not exist.
    """
    wins = np.asarray(wins, dtype=float)
    k = wins.shape[0]
    if wins.shape != (k, k) or np.any(wins < 0) or np.any(np.diag(wins) != 0):
        raise ValueError("wins must be a square matrix of non-negative counts with a zero diagonal")
    if prior < 0:
        raise ValueError(f"prior must be >= 0, not {prior}")
    if k <= 1:
        return np.zeros(k)
    if prior == 0 and not connected_by_wins(wins):
        raise ValueError(
            "Bradley–Terry ratings need every group of runs to have won (or tied) at least once "
            "against the others; some run never won or never lost, so its rating would be infinite."
        )
    games = wins + wins.T
    scored = wins.sum(axis=1)
    theta = np.zeros(k)
    current = log_likelihood(theta, wins, prior)
    for _ in range(max_iter):
        p = _sigmoid(theta[:, None] - theta[None, :])
        grad = scored - np.sum(games * p, axis=1)
        curvature = games * p * (1.0 - p)
        neg_hessian = np.diag(curvature.sum(axis=1)) - curvature
        if prior > 0:
            q = _sigmoid(theta)
            grad += 0.5 * prior - prior * q
            neg_hessian += np.diag(prior * q * (1.0 - q))
        else:
            # θ is only defined up to a constant: fixing the mean removes the flat direction,
            # and the gradient sums to 0, so the step keeps the mean at 0.
            neg_hessian += np.ones((k, k)) / k
        step = np.linalg.solve(neg_hessian, grad)
        scale = 1.0
        while True:
            candidate = theta + scale * step
            value = log_likelihood(candidate, wins, prior)
            if value >= current - 1e-12 or scale < 1e-6:
                break
            scale *= 0.5
        theta, current = candidate, value
        if np.max(np.abs(scale * step)) < tol:
            break
    return theta - theta.mean()


def to_elo(theta: np.ndarray, base_index: int | None = None, base: float = BASE_RATING) -> np.ndarray:
    """Log-strengths as Elo ratings: mean ``base``, or the run at ``base_index`` at ``base``."""
    elo = ELO_PER_NAT * np.asarray(theta, dtype=float)
    if elo.size == 0:
        return elo
    anchor = elo[base_index] if base_index is not None else np.mean(elo)
    return elo - anchor + base


# -- tables -----------------------------------------------------------------------------


def wins_matrix(games: Sequence[Game], players: Sequence[str], weights: np.ndarray | None = None) -> np.ndarray:
    """``wins[i, j]``: run i's wins over run j (ties and "both bad" as half each); "unparsed" skipped.

    ``weights`` (one per game) counts a game that many times, as a bootstrap resample does.
    """
    i, j, score, keep = _game_arrays(games, players)
    w = np.ones(len(games)) if weights is None else np.asarray(weights, dtype=float)
    return _wins_from_arrays(i, j, score * keep, (1.0 - score) * keep, w, len(players))


def _game_arrays(games: Sequence[Game], players: Sequence[str]) -> tuple[np.ndarray, ...]:
    """Indices of each game's runs, run_a's score, and 1 for games that count (else 0)."""
    index = {p: n for n, p in enumerate(players)}
    i = np.array([index[g.run_a] for g in games], dtype=np.int64)
    j = np.array([index[g.run_b] for g in games], dtype=np.int64)
    score = np.array([SCORES.get(g.verdict, 0.0) for g in games], dtype=float)
    keep = np.array([g.verdict in SCORES for g in games], dtype=float)
    return i, j, score, keep


def _wins_from_arrays(
    i: np.ndarray, j: np.ndarray, won: np.ndarray, lost: np.ndarray, weights: np.ndarray, k: int
) -> np.ndarray:
    flat = np.bincount(i * k + j, weights=weights * won, minlength=k * k)
    flat += np.bincount(j * k + i, weights=weights * lost, minlength=k * k)
    return flat.reshape(k, k)


@dataclass
class Ratings:
    """Ratings of ``players`` from a set of votes, with everything the leaderboard shows."""

    players: list[str]
    elo: np.ndarray
    low: np.ndarray  # bootstrap interval (NaN when no bootstrap was run)
    high: np.ndarray
    wins: np.ndarray  # wins[i, j], ties as half
    games: np.ndarray  # games[i, j] between i and j
    record: dict[str, dict[str, int]]  # per run: votes, wins, losses, ties, both_bad
    n_votes: int  # votes used (unparsed left out)
    n_battles: int
    n_unparsed: int
    n_boot: int
    prior: float
    base_run: str | None
    notes: list[str] = field(default_factory=list)

    @property
    def win_rate(self) -> np.ndarray:
        """``win_rate[i, j]``: share of i's games against j that i won (ties half); NaN if none."""
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(self.games > 0, self.wins / np.where(self.games > 0, self.games, 1), np.nan)

    def rows(self) -> list[dict]:
        """One dict per run, best first: run, rating, low, high, votes, wins, losses, ties, both_bad, win_rate."""
        order = np.argsort(-self.elo, kind="stable")
        out = []
        for rank, i in enumerate(order, start=1):
            run = self.players[i]
            rec = self.record[run]
            played = self.games[i].sum()
            out.append({
                "rank": rank,
                "run": run,
                "rating": float(self.elo[i]),
                "low": _finite_or_none(self.low[i]),
                "high": _finite_or_none(self.high[i]),
                **rec,
                "win_rate": float(self.wins[i].sum() / played) if played else None,
            })  # fmt: skip
        return out


def _finite_or_none(x: float) -> float | None:
    return float(x) if np.isfinite(x) else None


def _record(games: Sequence[Game], players: Sequence[str]) -> dict[str, dict[str, int]]:
    rec = {p: {"votes": 0, "wins": 0, "losses": 0, "ties": 0, "both_bad": 0} for p in players}
    for g in games:
        if g.verdict not in SCORES:
            continue
        for run, won in ((g.run_a, "a"), (g.run_b, "b")):
            r = rec[run]
            r["votes"] += 1
            if g.verdict == "tie":
                r["ties"] += 1
            elif g.verdict == "both_bad":
                r["both_bad"] += 1
            elif g.verdict == won:
                r["wins"] += 1
            else:
                r["losses"] += 1
    return rec


def rate(
    games: Sequence[Game],
    *,
    n_boot: int = DEFAULT_BOOTSTRAP,
    seed: int = 0,
    prior: float = DEFAULT_PRIOR,
    base_run: str | None = None,
    confidence: float = 0.95,
) -> Ratings:
    """Bradley–Terry ratings (Elo scale) of every run in ``games``, with bootstrap intervals.

    Each resample draws battles with replacement (a battle's votes travel together), refits,
    and anchors the same way as the point estimate; the interval is the percentile interval
    of those fits. A run absent from a resample gets no value there. ``base_run`` (one of the
    runs) is put at 1000 instead of the mean.
    """
    used = [g for g in games if g.verdict in SCORES]
    players = sorted({g.run_a for g in used} | {g.run_b for g in used})
    if base_run is not None and base_run not in players:
        raise ValueError(f"the base run {base_run} has no votes here")
    base_index = players.index(base_run) if base_run is not None else None
    wins = wins_matrix(used, players)
    theta = fit_bradley_terry(wins, prior)
    elo = to_elo(theta, base_index)
    low = np.full(len(players), np.nan)
    high = np.full(len(players), np.nan)
    notes: list[str] = []
    battle_ids = sorted({g.battle_id for g in used})
    if n_boot > 0 and len(players) >= 2:
        draws, skipped = _bootstrap(used, players, battle_ids, n_boot, seed, prior, base_index)
        if skipped:
            notes.append(f"{skipped} of {n_boot} bootstrap resamples had no finite fit and were left out.")
        if np.isfinite(draws).any():
            tail = 100 * (1 - confidence) / 2
            with np.errstate(all="ignore"):
                low, high = np.nanpercentile(draws, [tail, 100 - tail], axis=0)
    if len(battle_ids) < 30:
        notes.append(f"Only {len(battle_ids)} battles: the ratings and their intervals mean little yet.")
    n_unparsed = sum(1 for g in games if g.verdict == "unparsed")
    return Ratings(
        players=players, elo=elo, low=np.asarray(low), high=np.asarray(high), wins=wins,
        games=wins + wins.T, record=_record(used, players), n_votes=len(used),
        n_battles=len(battle_ids), n_unparsed=n_unparsed, n_boot=n_boot, prior=prior,
        base_run=base_run, notes=notes,
    )  # fmt: skip


def _bootstrap(
    games: Sequence[Game],
    players: Sequence[str],
    battle_ids: Sequence[str],
    n_boot: int,
    seed: int,
    prior: float,
    base_index: int | None,
) -> tuple[np.ndarray, int]:
    """``(n_boot, k)`` anchored Elo ratings of the resamples (NaN where a run is absent)."""
    rng = np.random.default_rng(seed)
    where = {b: n for n, b in enumerate(battle_ids)}
    battle_of = np.array([where[g.battle_id] for g in games])
    i, j, score, keep = _game_arrays(games, players)
    won, lost, k = score * keep, (1.0 - score) * keep, len(players)
    draws = np.full((n_boot, len(players)), np.nan)
    skipped = 0
    for r in range(n_boot):
        counts = np.bincount(rng.integers(0, len(battle_ids), len(battle_ids)), minlength=len(battle_ids))
        wins = _wins_from_arrays(i, j, won, lost, counts[battle_of].astype(float), k)
        present = np.flatnonzero((wins + wins.T).sum(axis=1) > 0)
        if len(present) < 2 or (base_index is not None and base_index not in present):
            skipped += 1
            continue
        sub = wins[np.ix_(present, present)]
        try:
            theta = fit_bradley_terry(sub, prior)
        except (ValueError, np.linalg.LinAlgError):
            skipped += 1  # prior 0 and a resample where some run never lost: no finite MLE
            continue
        anchor = None if base_index is None else int(np.flatnonzero(present == base_index)[0])
        draws[r, present] = to_elo(theta, anchor)
    return draws, skipped


# -- agreement ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Agreement:
    """How often people and a judge agree on the same battles (a / b / neither)."""

    n_battles: int  # battles with at least one vote of each
    n_pairs: int  # (person vote, judge vote) pairs compared
    share: float | None  # share of pairs that agree
    kappa: float | None  # Cohen's kappa (None when undefined: one class only, or no pairs)

    def sentence(self, judge: str) -> str:
        """``People and judge-x agree on 71 % of 40 shared battles (Cohen's κ 0.52).``"""
        if not self.n_pairs:
            return f"People and {judge} have rated no battle in common yet."
        kappa = "undefined" if self.kappa is None else f"{self.kappa:.2f}"
        return (
            f"People and {judge} agree on {100 * self.share:.0f} % of {self.n_pairs} verdict pair(s) "
            f"over {self.n_battles} shared battle(s) (Cohen's κ {kappa})."
        )


def cohen_kappa(first: Sequence[str], second: Sequence[str]) -> float | None:
    """Cohen's kappa of two raters' labels of the same items; None when it is undefined."""
    if len(first) != len(second):
        raise ValueError("both raters must label the same items")
    n = len(first)
    if n == 0:
        return None
    observed = sum(a == b for a, b in zip(first, second, strict=True)) / n
    c1, c2 = Counter(first), Counter(second)
    expected = sum(c1[c] * c2[c] for c in set(c1) | set(c2)) / (n * n)
    if expected >= 1.0:
        return None
    return (observed - expected) / (1.0 - expected)


def agreement(people: Sequence[Game], judge: Sequence[Game]) -> Agreement:
    """Agreement of person votes with judge votes on the battles both rated.

    Verdicts are compared as a / b / neither (a tie and "both bad" both say neither won);
    every pair of one person vote and one judge vote on the same battle counts once.
    """
    by_battle: dict[str, list[str]] = defaultdict(list)
    for g in judge:
        if g.verdict in AGREEMENT_CLASSES:
            by_battle[g.battle_id].append(AGREEMENT_CLASSES[g.verdict])
    first: list[str] = []
    second: list[str] = []
    shared: set[str] = set()
    for g in people:
        if g.verdict not in AGREEMENT_CLASSES or g.battle_id not in by_battle:
            continue
        shared.add(g.battle_id)
        for verdict in by_battle[g.battle_id]:
            first.append(AGREEMENT_CLASSES[g.verdict])
            second.append(verdict)
    if not first:
        return Agreement(0, 0, None, None)
    share = sum(a == b for a, b in zip(first, second, strict=True)) / len(first)
    return Agreement(len(shared), len(first), share, cohen_kappa(first, second))
