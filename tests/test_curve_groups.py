"""Grouping and aggregation of runs: statistics against pandas, the common grid, config keys."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from sandbox.curves import groups
from sandbox.zoo import discovery, synthetic


def long_frame(seed: int = 0) -> pd.DataFrame:
    """Runs of two groups logging at the same steps, some stopping early (still training)."""
    rng = np.random.default_rng(seed)
    rows = []
    for r in range(9):
        n = 50 if r % 3 else 30  # every third run is shorter
        steps = np.arange(n) * 10.0
        values = 3 + np.exp(-steps / 200) + rng.normal(0, 0.1, n)
        rows.append(pd.DataFrame({"run": f"r{r}", "group": "g0" if r < 5 else "g1", "x": steps, "y": values}))
    return pd.concat(rows, ignore_index=True)


@pytest.mark.parametrize("stat", ["mean", "median"])
@pytest.mark.parametrize("band", ["minmax", "std", "ci95"])
def test_group_lines_match_pandas(stat, band):
    frame = long_frame()
    series = [(run, "loss", sub["x"].to_numpy(), sub["y"].to_numpy()) for run, sub in frame.groupby("run")]
    labels = dict(zip(frame["run"], frame["group"], strict=False))
    got, counts = groups.aggregate(series, labels, stat=stat, band=band)
    assert counts == {"g0": 5, "g1": 4}
    expected = frame.groupby(["group", "x"])["y"].agg(["mean", "median", "min", "max", "std", "count"]).reset_index()
    merged = got.merge(expected, on=["group", "x"], how="outer", validate="one_to_one")
    assert len(merged) == len(got) == len(expected)  # the grid is exactly the logged steps
    np.testing.assert_allclose(merged["center"], merged[stat])
    np.testing.assert_array_equal(merged["n"], merged["count"])
    if band == "minmax":
        lo, hi = merged["min"], merged["max"]
    else:
        half = merged["std"] * (1.0 if band == "std" else 1.96 / np.sqrt(merged["count"]))
        lo, hi = merged[stat] - half, merged[stat] + half
    np.testing.assert_allclose(merged["lo"], lo)
    np.testing.assert_allclose(merged["hi"], hi)
    # Past step 290 only the longer runs count: n says so.
    assert (merged.loc[merged["x"] > 290, "n"] == 3).all()  # each group has 3 long runs


def test_runs_at_different_steps_are_interpolated_within_their_own_range():
    a = ("a", "loss", np.array([0.0, 10.0, 20.0]), np.array([4.0, 3.0, 2.0]))
    b = ("b", "loss", np.array([5.0, 15.0]), np.array([10.0, 20.0]))
    got, _ = groups.aggregate([a, b], {"a": "g", "b": "g"}, "mean", "minmax")
    at = dict(zip(got["x"], zip(got["center"], got["n"], strict=True), strict=True))
    assert at[0.0] == (4.0, 1)  # b starts at 5: only a
    assert at[10.0] == ((3.0 + 15.0) / 2, 2)  # b interpolated halfway
    assert at[20.0] == (2.0, 1)  # b stopped at 15
    nan_run = ("c", "loss", np.array([0.0, 10.0, 20.0]), np.array([1.0, np.nan, np.inf]))
    grid = np.array([0.0, 10.0, 20.0])
    assert np.isnan(groups.on_grid(nan_run[2], nan_run[3], grid)[1:]).all()  # diverged: stops


def test_the_grid_is_bounded_by_the_budget():
    xs = [np.linspace(0, 1000, 10_000), np.linspace(500, 2000, 7_000)]
    grid = groups.common_grid(xs, 300)
    assert grid.size == 300 and grid[0] == 0 and grid[-1] == 2000
    assert groups.common_grid([np.array([1.0, 2.0]), np.array([2.0, 3.0])], 300).tolist() == [1.0, 2.0, 3.0]


def test_config_keys_that_differ_and_group_labels(tmp_path):
    synthetic.write_lab(tmp_path, runs=12, rows=5)
    runs = discovery.all_runs(tmp_path)
    configs = {r.id: groups.run_config(r) for r in runs}
    assert "device" not in configs[runs[0].id]  # where it trained says nothing of the run
    keys = groups.differing_keys(configs)
    assert "dim" in keys and "n_layers" in keys and "seed" in keys
    assert "max_seq_len" not in keys and "batch_size" not in keys  # the same everywhere
    labels = groups.group_labels(runs, configs, ["dim"])
    assert sorted(set(labels.values())) == ["dim=128", "dim=256", "dim=64"]
    assert set(groups.group_labels(runs, configs, [groups.EXPERIMENT]).values()) == {"lab_a"}
    assert groups.describe({"learning_rate": 0.0003, "dim": 128}, ["dim", "learning_rate"]) == "dim=128 · learning_rate=0.0003"
    assert groups.legend_label("dim=128", 12) == "dim=128 (n=12)"
