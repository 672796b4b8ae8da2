"""sandbox.analysis.matched: losses at matched tokens / FLOPs, estimated bits per byte."""

from __future__ import annotations

import math

import numpy as np
import pytest

from sandbox.analysis import matched


def test_interpolation_is_linear_in_log_x_by_hand():
    x, loss = [100.0, 1000.0], [4.0, 2.0]
    # sqrt(100 * 1000) is halfway in log x: halfway in loss.
    assert matched.loss_at(x, loss, math.sqrt(1e5)) == pytest.approx(3.0)
    # 100 * 10**0.25 is a quarter of the way.
    assert matched.loss_at(x, loss, 100.0 * 10**0.25) == pytest.approx(3.5)
    # Linear in x: 550 is halfway, 325 a quarter.
    assert matched.loss_at(x, loss, 550.0, scale="linear") == pytest.approx(3.0)
    assert matched.loss_at(x, loss, 325.0, scale="linear") == pytest.approx(3.5)
    # Logged points are returned as logged.
    assert matched.loss_at(x, loss, 1000.0) == 2.0


def test_outside_the_logged_range_nothing_is_extrapolated():
    assert matched.loss_at([100, 1000], [4, 2], 1001) is None
    assert matched.loss_at([100, 1000], [4, 2], 99) is None
    with pytest.raises(ValueError, match="scale"):
        matched.loss_at([1, 2], [3, 2], 1.5, scale="cubic")


def test_unsorted_repeated_zero_and_missing_rows():
    # A resumed run logs x = 100 twice (the later row stands); step 0 has 0 tokens; a NaN row.
    x = [1000, 0, 100, 100, 500]
    loss = [2.0, 9.0, 4.5, 4.0, np.nan]
    assert matched.loss_at(x, loss, math.sqrt(1e5)) == pytest.approx(3.0)
    # On a linear scale the 0-token row counts: halfway between 0 and 100 of 9 → 4.
    assert matched.loss_at(x, loss, 50, scale="linear") == pytest.approx(6.5)
    assert matched.loss_at(x, loss, 50) is None  # log x has no 0


def test_default_matched_point_is_the_smallest_of_the_runs_maxima():
    series = {"a": ([10, 100, 1000], [5.0, 4.0, 3.0]), "b": ([10, 100, 400], [5.0, 3.5, 3.0])}
    assert matched.matched_point(series) == 400.0
    table = matched.matched_losses(series, axis="tokens")
    assert list(table.columns) == matched.COLUMNS
    assert table["at"].tolist() == [400.0, 400.0] and table["reached"].all()
    a, b = table.set_index("run")["loss"]
    assert a == pytest.approx(4.0 - math.log10(4.0))  # log10(400/100) of the way from 4 to 3
    assert b == 3.0


def test_a_run_that_stops_short_is_reported_not_extrapolated():
    series = {
        "a": ([10, 100, 1000], [5.0, 4.0, 3.0]),
        "b": ([10, 100, 400], [5.0, 3.5, 3.0]),
        "c": ([200, 1000], [4.0, 3.0]),
    }
    table = matched.matched_losses(series, at=500.0, axis="tokens").set_index("run")
    assert table.loc["a", "reached"] and table.loc["a", "loss"] == pytest.approx(4.0 - math.log10(5.0))
    assert not table.loc["b", "reached"] and math.isnan(table.loc["b", "loss"])
    assert table.loc["b", "note"].startswith("Stops at 400 tokens, before the matched point")
    assert table.loc["b", "x_max"] == 400.0
    late = matched.matched_losses(series, at=150.0).set_index("run")
    assert not late.loc["c", "reached"] and "after the matched point" in late.loc["c", "note"]


def test_a_run_without_usable_values():
    table = matched.matched_losses({"a": ([10, 100], [3, 2]), "b": ([0], [np.nan])}).set_index("run")
    assert matched.matched_point({"a": ([10, 100], [3, 2]), "b": ([0], [np.nan])}) is None
    assert not table["reached"].any()
    assert "No usable" in table.loc["b", "note"]


def test_bits_per_byte_where_tokens_per_byte_is_known_labelled_estimated():
    assert float(matched.bits_per_byte(2.0, 0.25)) == pytest.approx(2.0 * 0.25 / math.log(2.0))
    series = {"a": ([10, 100], [3.0, 2.0]), "b": ([10, 100], [3.0, 2.5])}
    table = matched.matched_losses(series, tokens_per_byte={"a": 0.3}).set_index("run")
    assert table.loc["a", "bits_per_byte"] == pytest.approx(2.0 * 0.3 / math.log(2.0))
    assert "estimated" in table.loc["a", "note"]
    assert math.isnan(table.loc["b", "bits_per_byte"])
    curves = matched.per_byte_curves(series, {"a": 0.3})
    assert set(curves["run"]) == {"a"} and curves["estimated"].all()
    np.testing.assert_allclose(curves["bits_per_byte"], np.array([3.0, 2.0]) * 0.3 / math.log(2.0))
    assert matched.missing_rates(series, {"a": 0.3}) == ["b"]


def test_matched_table_stacks_tokens_and_flops_with_their_own_points():
    axes = {
        "tokens": {"a": ([1e6, 1e7], [3.0, 2.0]), "b": ([1e6, 1e8], [3.0, 1.8])},
        "FLOPs": {"a": ([1e12, 1e13], [3.0, 2.0]), "b": ([2e12, 2e14], [3.0, 1.8])},
    }
    table = matched.matched_table(axes, at={"FLOPs": 5e12})
    assert table["axis"].tolist() == ["tokens", "tokens", "FLOPs", "FLOPs"]
    assert table.loc[table["axis"] == "tokens", "at"].tolist() == [1e7, 1e7]
    assert table.loc[table["axis"] == "FLOPs", "at"].tolist() == [5e12, 5e12]
    flops_a = table[(table["axis"] == "FLOPs") & (table["run"] == "a")]["loss"].item()
    assert flops_a == pytest.approx(3.0 - math.log10(5.0))
