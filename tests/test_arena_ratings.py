"""Bradley–Terry ratings: hand-computed cases, recovery of known strengths, agreement."""

from __future__ import annotations

import itertools
import math
import random

import numpy as np
import pytest

from sandbox.arena.ratings import (
    ELO_PER_NAT,
    Game,
    agreement,
    cohen_kappa,
    fit_bradley_terry,
    log_likelihood,
    rate,
    wins_matrix,
)


def games(pairs: list[tuple[str, str, str, int]]) -> list[Game]:
    """``(run_a, run_b, verdict, count)`` → that many games, each its own battle."""
    out = []
    for run_a, run_b, verdict, count in pairs:
        out += [Game(f"{run_a}-{run_b}-{verdict}-{n}", run_a, run_b, verdict) for n in range(count)]
    return out


def elo_of(ratings) -> dict[str, float]:
    return dict(zip(ratings.players, ratings.elo, strict=True))


def test_two_runs_have_the_closed_form():
    # The MLE of p_A / p_B is wins_A / wins_B: 3 to 1 gives 400·log10(3) ≈ 190.8 points.
    r = rate(games([("A", "B", "a", 3), ("A", "B", "b", 1)]), prior=0, n_boot=0)
    elo = elo_of(r)
    assert elo["A"] - elo["B"] == pytest.approx(400 * math.log10(3), abs=1e-6)
    assert (elo["A"] + elo["B"]) / 2 == pytest.approx(1000)


def test_ties_and_both_bad_count_half_a_win_each():
    # A: 2 wins, 1 loss, 1 tie, 1 both-bad → A scores 3, B scores 2: 400·log10(3/2).
    r = rate(games([("A", "B", "a", 2), ("B", "A", "a", 1), ("A", "B", "tie", 1), ("B", "A", "both_bad", 1)]), prior=0, n_boot=0)
    elo = elo_of(r)
    assert elo["A"] - elo["B"] == pytest.approx(400 * math.log10(1.5), abs=1e-6)
    assert r.record["A"] == {"votes": 5, "wins": 2, "losses": 1, "ties": 1, "both_bad": 1}


def test_a_chain_of_three_decouples_into_pairwise_ratios():
    # Only A–B and B–C games: the likelihood factorises, so p_A/p_B = 3/1 and p_B/p_C = 1/4.
    r = rate(games([("A", "B", "a", 3), ("A", "B", "b", 1), ("B", "C", "a", 1), ("B", "C", "b", 4)]),
             prior=0, n_boot=0, base_run="C")  # fmt: skip
    elo = elo_of(r)
    assert elo["C"] == pytest.approx(1000)
    assert elo["B"] == pytest.approx(1000 + 400 * math.log10(1 / 4), abs=1e-6)
    assert elo["A"] == pytest.approx(1000 + 400 * math.log10(3 / 4), abs=1e-6)


def test_a_symmetric_cycle_rates_everyone_equal():
    r = rate(games([("A", "B", "a", 2), ("A", "B", "b", 1), ("B", "C", "a", 2), ("B", "C", "b", 1),
                    ("C", "A", "a", 2), ("C", "A", "b", 1)]), prior=0, n_boot=0)  # fmt: skip
    assert np.allclose(r.elo, 1000, atol=1e-6)


def test_the_fit_solves_the_likelihood_equations():
    # At the MLE each run's expected score equals its observed score (the score equations).
    rng = np.random.default_rng(5)
    wins = rng.integers(1, 9, size=(4, 4)).astype(float)
    np.fill_diagonal(wins, 0)
    theta = fit_bradley_terry(wins, prior=0)
    p = 1 / (1 + np.exp(-(theta[:, None] - theta[None, :])))
    expected = ((wins + wins.T) * p).sum(axis=1)
    assert np.allclose(expected, wins.sum(axis=1), atol=1e-8)
    # And it is a maximum: any small move lowers the likelihood.
    best = log_likelihood(theta, wins)
    for d in np.eye(4) * 1e-3:
        assert log_likelihood(theta + d, wins) < best and log_likelihood(theta - d, wins) < best


def test_an_unbeaten_run_needs_the_prior():
    unbeaten = games([("A", "B", "a", 4), ("B", "C", "a", 2), ("B", "C", "b", 2)])
    with pytest.raises(ValueError, match="never won or never lost"):
        rate(unbeaten, prior=0, n_boot=0)
    r = rate(unbeaten, n_boot=0)  # the default prior keeps it finite, and first
    assert np.all(np.isfinite(r.elo)) and r.rows()[0]["run"] == "A"


def test_unparsed_votes_are_left_out_and_counted():
    r = rate(games([("A", "B", "a", 3), ("A", "B", "b", 1), ("A", "B", "unparsed", 5)]), prior=0, n_boot=0)
    assert r.n_votes == 4 and r.n_unparsed == 5
    assert elo_of(r)["A"] - elo_of(r)["B"] == pytest.approx(400 * math.log10(3), abs=1e-6)


def test_win_rate_matrix_and_counts():
    g = games([("A", "B", "a", 3), ("A", "B", "b", 1), ("B", "C", "tie", 2), ("C", "A", "a", 1)])
    r = rate(g, n_boot=0)
    wr = r.win_rate
    idx = {p: n for n, p in enumerate(r.players)}
    assert wr[idx["A"], idx["B"]] == pytest.approx(0.75) and wr[idx["B"], idx["A"]] == pytest.approx(0.25)
    assert wr[idx["B"], idx["C"]] == pytest.approx(0.5)
    assert np.isnan(wr[idx["A"], idx["A"]])
    assert r.games[idx["A"], idx["B"]] == 4 and r.games.sum() == 2 * len(g)
    assert sum(row["votes"] for row in r.rows()) == 2 * len(g)


def _fisher_se(true_theta: np.ndarray, n_games: np.ndarray) -> np.ndarray:
    """Standard errors (Elo) of every pairwise difference, from the Fisher information."""
    p = 1 / (1 + np.exp(-(true_theta[:, None] - true_theta[None, :])))
    c = n_games * p * (1 - p)
    info = np.diag(c.sum(axis=1)) - c
    cov = np.linalg.pinv(info)
    k = len(true_theta)
    se = np.zeros((k, k))
    for i, j in itertools.product(range(k), repeat=2):
        se[i, j] = math.sqrt(max(cov[i, i] + cov[j, j] - 2 * cov[i, j], 0.0))
    return ELO_PER_NAT * se


def test_known_strengths_are_recovered_from_simulated_votes():
    true_elo = {"r1": 1210.0, "r2": 1090.0, "r3": 1000.0, "r4": 940.0, "r5": 760.0}  # mean 1000
    players = sorted(true_elo)
    theta = np.array([(true_elo[p] - 1000) / ELO_PER_NAT for p in players])
    rng = random.Random(42)
    per_pair = 120
    sim = []
    for (i, a), (j, b) in itertools.combinations(enumerate(players), 2):
        p_a = 1 / (1 + math.exp(-(theta[i] - theta[j])))
        for n in range(per_pair):
            first, second = (a, b) if n % 2 else (b, a)  # both positions
            a_wins = rng.random() < p_a
            verdict = "a" if a_wins == (first == a) else "b"
            sim.append(Game(f"{a}-{b}-{n}", first, second, verdict))
    r = rate(sim, n_boot=300, seed=1, prior=0)
    fitted = elo_of(r)
    se = _fisher_se(theta, wins_matrix(sim, players) + wins_matrix(sim, players).T)
    for i, j in itertools.combinations(range(len(players)), 2):
        a, b = players[i], players[j]
        error = (fitted[a] - fitted[b]) - (true_elo[a] - true_elo[b])
        assert abs(error) < 4 * se[i, j], (a, b, error, se[i, j])
    inside = [r.low[n] <= true_elo[p] <= r.high[n] for n, p in enumerate(r.players)]
    assert sum(inside) >= len(players) - 1, list(zip(r.players, r.low, r.high, strict=True))
    # Intervals shrink with more votes: the width is about that of the Fisher standard error.
    widths = r.high - r.low
    assert np.all(widths > 0) and np.all(widths < 8 * se.max())


def test_bootstrap_resamples_battles_and_is_seeded():
    g = games([("A", "B", "a", 6), ("A", "B", "b", 3), ("B", "C", "a", 5), ("B", "C", "b", 4), ("A", "C", "tie", 3)])
    first, again = rate(g, n_boot=200, seed=7), rate(g, n_boot=200, seed=7)
    assert np.array_equal(first.low, again.low) and np.array_equal(first.high, again.high)
    assert np.all(first.low <= first.elo) and np.all(first.elo <= first.high)
    # A battle's votes travel together: a second vote on each battle adds no information
    # about the runs to the intervals, while as many new battles narrow them by about 1/√2.
    same = rate(g + [Game(x.battle_id, x.run_a, x.run_b, x.verdict) for x in g], n_boot=200, seed=7)
    new = rate(g + [Game(x.battle_id + "+", x.run_a, x.run_b, x.verdict) for x in g], n_boot=200, seed=7)
    width = first.high - first.low
    assert same.n_battles == first.n_battles and same.n_votes == 2 * first.n_votes
    assert np.all(same.high - same.low > 0.9 * width)
    assert np.all(new.high - new.low < 0.85 * width)
    assert any("mean little" in note for note in first.notes)


def test_no_votes_give_an_empty_table():
    r = rate([], n_boot=100)
    assert r.players == [] and r.rows() == []


def test_cohen_kappa_by_hand():
    person = ["a", "a", "a", "a", "a", "b", "b", "b", "n", "n"]
    judge_ = ["a", "a", "a", "a", "b", "b", "b", "n", "n", "a"]
    # 7 of 10 agree; both raters' marginals are a 5, b 3, n 2: chance agreement .25 + .09 + .04.
    assert cohen_kappa(person, judge_) == pytest.approx((0.7 - 0.38) / (1 - 0.38))
    assert cohen_kappa(["a", "a"], ["a", "a"]) is None  # one class only: undefined
    assert cohen_kappa([], []) is None


def test_agreement_pairs_votes_on_shared_battles():
    people = [Game("b1", "x", "y", "a"), Game("b1", "x", "y", "a"), Game("b2", "x", "y", "tie"),
              Game("b3", "x", "y", "b"), Game("only-people", "x", "y", "a")]  # fmt: skip
    judge = [Game("b1", "x", "y", "a"), Game("b2", "x", "y", "both_bad"), Game("b3", "x", "y", "a"),
             Game("b4", "x", "y", "b"), Game("b3", "x", "y", "unparsed")]  # fmt: skip
    agree = agreement(people, judge)
    # Pairs: b1 twice (a/a), b2 (neither/neither), b3 (b/a) → 3 of 4 agree.
    assert (agree.n_battles, agree.n_pairs) == (3, 4)
    assert agree.share == pytest.approx(0.75)
    assert agree.kappa == pytest.approx(cohen_kappa(["a", "a", "neither", "b"], ["a", "a", "neither", "a"]))
    assert "75 %" in agree.sentence("judge-x")
    assert "no battle in common" in agreement(people, []).sentence("judge-x")
