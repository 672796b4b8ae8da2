"""The point budget: bounded whatever the number of runs, spikes kept at the drawn resolution."""

from __future__ import annotations

import numpy as np
import pytest

from sandbox.curves import budget, prepare
from sandbox.curves.prepare import CurveSettings
from sandbox.zoo import discovery, logread, synthetic


def spiky(n: int = 50_000, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = np.cumsum(rng.uniform(0.5, 1.5, n))  # uneven spacing, like a time axis
    y = 3 + np.exp(-x / x[-1] * 5) + rng.normal(0, 0.05, n)
    spikes = rng.choice(n, 40, replace=False)
    y[spikes] += rng.choice([-1, 1], 40) * rng.uniform(2, 60, 40)
    return x, y


@pytest.mark.parametrize("cap", [24, 200, 2000])
@pytest.mark.parametrize("log_x", [False, True])
def test_every_columns_min_and_max_is_kept(cap, log_x):
    x, y = spiky()
    keep = budget.minmax_mask(x, y, cap, log_x=log_x)
    assert keep.sum() <= cap
    col = budget.column_of(x, budget.columns_for(cap), x.min(), x.max(), log=log_x)
    for c in np.unique(col):
        inside = col == c
        assert y[keep & inside].max() == y[inside].max(), c
        assert y[keep & inside].min() == y[inside].min(), c
    assert keep[0] and keep[-1]


def test_unsorted_x_and_gaps():
    x, y = spiky(5000, seed=1)
    order = np.random.default_rng(2).permutation(x.size)
    y[100:200] = np.nan  # a diverged stretch stays a gap: its start is kept
    keep = budget.minmax_mask(x[order], y[order], 100)
    kept_y = y[order][keep]
    assert np.nanmax(kept_y) == np.nanmax(y) and np.nanmin(kept_y) == np.nanmin(y)
    assert np.isnan(kept_y).sum() >= 1


def test_the_budget_does_not_grow_with_runs():
    assert budget.points_per_series(1) == budget.MAX_POINTS
    assert budget.points_per_series(100) * 100 <= budget.TOTAL_POINTS
    assert budget.points_per_series(1000) * 1000 <= budget.TOTAL_POINTS


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    root = tmp_path_factory.mktemp("lab")
    synthetic.write_lab(root, runs=200, rows=400)
    logread.clear_cache()
    runs = discovery.all_runs(root)
    return {r.id: r for r in runs}, {r.id: r.log() for r in runs}


def test_drawn_points_stay_within_the_budget_for_many_runs(lab):
    runs, logs = lab
    for n in (20, 200):
        ids = tuple(list(runs)[:n])
        curves = prepare.prepare(logs, runs, CurveSettings(runs=ids))
        assert len(curves.draw) <= budget.TOTAL_POINTS * 1.05  # plus the odd NaN onset
    assert len(curves.full) > 3 * budget.TOTAL_POINTS  # 200 runs: most rows are not sent


def test_a_zoomed_range_is_drawn_at_full_detail(lab):
    runs, logs = lab
    ids = tuple(list(runs)[:200])
    whole = prepare.prepare(logs, runs, CurveSettings(runs=ids)).draw
    zoomed = prepare.prepare(logs, runs, CurveSettings(runs=ids, x_range=(1000.0, 1500.0))).draw
    one = zoomed[zoomed["run"] == ids[0]]
    inside = one["step"].between(1000, 1500)
    assert inside.all() or (~inside).sum() <= 4  # at most one neighbour each side, per metric
    assert inside.sum() > (whole[whole["run"] == ids[0]]["step"].between(1000, 1500)).sum()
    assert one["step"].min() >= 990 and one["step"].max() <= 1510


def test_the_robust_y_domain_of_many_long_series_matches_the_exact_one(monkeypatch):
    """Quantiles from evenly spaced samples (so 500 runs do not sort 5 million values) give
    the range that every value gives, and the extremes still bound it."""
    from sandbox.curves import yrange

    rng = np.random.default_rng(3)
    series = [3 + np.exp(-np.arange(10_000) / 800) * rng.uniform(1, 60) + rng.normal(0, 0.05, 10_000) for _ in range(300)]
    sampled = yrange.robust_range(series)
    monkeypatch.setattr(yrange, "QUANTILE_BUDGET", 10**9)
    exact = yrange.robust_range(series)
    spread = exact[1] - exact[0]
    assert abs(sampled[0] - exact[0]) < 0.01 * spread and abs(sampled[1] - exact[1]) < 0.01 * spread
    assert exact[1] < max(s.max() for s in series) / 2  # the outlier starts are left out
