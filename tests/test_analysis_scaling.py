"""sandbox.analysis.scaling: power-law fits, the compute multiplier, the lower envelope."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from sandbox.analysis import multiplier, scaling
from sandbox.analysis.scaling import PowerLaw


def law_points(e: float, a: float, alpha: float, lo: float, hi: float, n: int) -> tuple[np.ndarray, np.ndarray]:
    x = np.geomspace(lo, hi, n)
    return x, e + a * x ** (-alpha)


@pytest.mark.parametrize(
    ("e", "a", "alpha", "lo", "hi"),
    [
        (1.7, 300.0, 0.2, 1e12, 1e16),  # loss against training FLOPs
        (2.1, 40.0, 0.35, 1e5, 1e8),  # loss against parameters
        (0.5, 8.0, 0.6, 1.0, 1e3),
    ],
)
def test_noise_free_points_give_back_the_law(e, a, alpha, lo, hi):
    x, y = law_points(e, a, alpha, lo, hi, 9)
    fit = scaling.fit_power_law(x, y, n_boot=50)
    assert fit.law is not None
    assert fit.law.E == pytest.approx(e, rel=1e-6)
    assert fit.law.A == pytest.approx(a, rel=1e-5)
    assert fit.law.alpha == pytest.approx(alpha, rel=1e-6)
    assert fit.rmse_log < 1e-8
    # With nothing to resample but exact points, the intervals shrink onto the values.
    assert fit.intervals["alpha"][0] == pytest.approx(alpha, rel=1e-4)
    assert fit.intervals["alpha"][1] == pytest.approx(alpha, rel=1e-4)


def test_a_pure_power_law_fits_with_its_floor_at_zero_and_says_so():
    x, y = law_points(0.0, 12.0, 0.3, 1e3, 1e7, 8)
    fit = scaling.fit_power_law(x, y, n_boot=50)
    assert fit.law.E == pytest.approx(0.0, abs=1e-6)
    assert fit.law.alpha == pytest.approx(0.3, rel=1e-5)
    assert any("no floor" in n for n in fit.notes)


def test_noisy_points_give_the_law_back_within_tolerance_and_intervals_cover_it():
    e, a, alpha = 1.8, 500.0, 0.25
    x, y = law_points(e, a, alpha, 1e11, 1e17, 14)
    noisy = y * np.exp(np.random.default_rng(7).normal(0.0, 0.005, x.size))
    fit = scaling.fit_power_law(x, noisy, n_boot=400, seed=3)
    assert fit.law.E == pytest.approx(e, abs=0.1)
    assert fit.law.alpha == pytest.approx(alpha, rel=0.25)
    lo, hi = fit.intervals["alpha"]
    assert lo < alpha < hi
    lo, hi = fit.intervals["E"]
    assert lo < e < hi
    # The law still predicts the points to about the noise level.
    assert fit.rmse_log < 0.01


def test_the_bootstrap_is_seeded():
    x, y = law_points(1.5, 20.0, 0.3, 1e4, 1e8, 8)
    y = y * np.exp(np.random.default_rng(1).normal(0.0, 0.01, x.size))
    one = scaling.fit_power_law(x, y, n_boot=60, seed=5)
    two = scaling.fit_power_law(x, y, n_boot=60, seed=5)
    other = scaling.fit_power_law(x, y, n_boot=60, seed=6)
    assert one.intervals == two.intervals
    assert one.intervals != other.intervals


def test_under_three_points_no_fit_and_a_sentence_says_why():
    fit = scaling.fit_power_law([1e3, 1e4], [3.0, 2.5], group="gqa")
    assert fit.law is None
    assert any("at least three" in n and "gqa" in n for n in fit.notes)
    # Two runs at the same compute are one x: still too few.
    fit = scaling.fit_power_law([1e3, 1e4, 1e4], [3.0, 2.5, 2.4])
    assert fit.law is None and any("at least three" in n for n in fit.notes)


def test_exactly_three_points_fit_through_them_without_an_interval():
    x, y = law_points(1.2, 30.0, 0.4, 1e3, 1e6, 3)
    fit = scaling.fit_power_law(x, y)
    assert fit.law is not None
    np.testing.assert_allclose(fit.law.loss(x), y, rtol=1e-7)
    assert all(math.isnan(lo) and math.isnan(hi) for lo, hi in fit.intervals.values())
    assert any("exactly three" in n.lower() and "no interval" in n for n in fit.notes)
    assert fit.to_dict()["intervals"]["alpha"] == [None, None]


def test_rising_loss_has_no_decreasing_law():
    fit = scaling.fit_power_law([1, 10, 100, 1000], [2.0, 2.2, 2.5, 2.9])
    assert fit.law is None
    assert any("does not fall" in n for n in fit.notes)


def test_bad_points_are_left_out_and_counted():
    x, y = law_points(1.0, 10.0, 0.5, 1.0, 1e4, 6)
    fit = scaling.fit_power_law(np.r_[x, 0.0, 5.0], np.r_[y, 3.0, np.nan], n_boot=20)
    assert fit.n_points == 6
    assert any(n.startswith("2 point(s) left out") for n in fit.notes)


def test_compute_is_the_inverse_of_the_law_and_infinite_below_the_floor():
    law = PowerLaw(E=1.5, log_A=math.log(200.0), alpha=0.3)
    c = np.array([1e3, 1e6, 1e9])
    np.testing.assert_allclose(law.compute(law.loss(c)), c, rtol=1e-9)
    assert np.isinf(law.compute(1.5)) and np.isinf(law.compute(1.0))


def test_multiplier_of_two_laws_differing_in_a_is_the_closed_form():
    e, alpha, a_base, a_var = 1.7, 0.2, 300.0, 200.0
    base = scaling.fit_power_law(*law_points(e, a_base, alpha, 1e12, 1e16, 8), group="base", n_boot=100)
    var = scaling.fit_power_law(*law_points(e, a_var, alpha, 1e12, 1e16, 8), group="gqa", n_boot=100)
    m = multiplier.compute_multiplier(base, var, 2.0)
    expected = (a_base / a_var) ** (1.0 / alpha)  # 7.59: the same loss for 1/7.59 of the compute
    assert m.value == pytest.approx(expected, rel=1e-6)
    assert m.lo == pytest.approx(expected, rel=1e-3) and m.hi == pytest.approx(expected, rel=1e-3)
    assert "gqa saves compute" in m.sentence and "base needs 7.59×" in m.sentence
    # It does not depend on the loss chosen when E and alpha agree.
    assert multiplier.compute_multiplier(base, var, 2.5).value == pytest.approx(expected, rel=1e-6)
    # Swapping the roles inverts it.
    assert multiplier.compute_multiplier(var, base, 2.0).value == pytest.approx(1.0 / expected, rel=1e-6)


def test_multiplier_of_laws_with_different_floors_matches_c_base_over_c_variant():
    base_law, var_law = PowerLaw(2.0, math.log(50.0), 0.3), PowerLaw(1.8, math.log(80.0), 0.35)
    x = np.geomspace(1e4, 1e9, 10)
    base = scaling.fit_power_law(x, base_law.loss(x), group="base", n_boot=30)
    var = scaling.fit_power_law(x, var_law.loss(x), group="variant", n_boot=30)
    target = 2.3
    expected = ((50.0 / (target - 2.0)) ** (1 / 0.3)) / ((80.0 / (target - 1.8)) ** (1 / 0.35))
    assert multiplier.compute_multiplier(base, var, target).value == pytest.approx(expected, rel=1e-5)


def test_a_target_below_a_fitted_floor_is_unreachable_and_said_so():
    base = scaling.fit_power_law(*law_points(2.0, 50.0, 0.3, 1e4, 1e9, 8), group="base", n_boot=30)
    var = scaling.fit_power_law(*law_points(1.5, 50.0, 0.3, 1e4, 1e9, 8), group="variant", n_boot=30)
    m = multiplier.compute_multiplier(base, var, 1.9)
    assert m.value is None and m.lo is None
    assert "never reached" in m.sentence and "base's fitted floor is E = 2" in m.sentence
    assert "variant's" not in m.sentence  # the variant does reach 1.9
    assert m.to_dict()["multiplier"] is None


def test_no_multiplier_without_a_fit():
    base = scaling.fit_power_law([1, 10], [3, 2], group="base")
    var = scaling.fit_power_law(*law_points(1.5, 5.0, 0.3, 1, 1e4, 6), group="variant", n_boot=20)
    m = multiplier.compute_multiplier(base, var, 2.0)
    assert m.value is None and "base has no fitted law" in m.sentence


def test_default_target_is_the_lowest_loss_both_groups_reached():
    base = scaling.fit_power_law(*law_points(1.7, 300.0, 0.2, 1e12, 1e16, 6), group="b", n_boot=20)
    var = scaling.fit_power_law(*law_points(1.7, 200.0, 0.2, 1e12, 1e15, 6), group="v", n_boot=20)
    assert multiplier.default_target_loss(base, var) == pytest.approx(max(base.y.min(), var.y.min()))
    assert multiplier.compute_multiplier(base, var).loss == pytest.approx(var.y.min())


def test_fit_groups_fits_each_group_of_a_table():
    x, y1 = law_points(1.7, 300.0, 0.2, 1e12, 1e16, 6)
    _, y2 = law_points(1.7, 200.0, 0.2, 1e12, 1e16, 6)
    table = pd.DataFrame({"flops": np.r_[x, x], "loss": np.r_[y1, y2], "exp": ["a"] * 6 + ["b"] * 6})
    fits = scaling.fit_groups(table, x="flops", y="loss", group="exp", n_boot=20)
    assert list(fits) == ["a", "b"]
    assert fits["b"].law.A == pytest.approx(200.0, rel=1e-5)
    frame = scaling.fits_frame(fits)
    assert list(frame["group"]) == ["a", "b"] and frame.loc[0, "alpha"] == pytest.approx(0.2, rel=1e-6)


def test_lower_envelope_keeps_the_best_point_per_bin_and_never_rises():
    curves = {
        "a": ([1, 2, 4, 8], [5.0, 4.0, 3.5, 3.4]),
        "b": ([2, 4, 8, 16], [4.5, 3.2, 3.0, 2.9]),
        "d": ([1], [3.1]),  # a small run that already reaches 3.1
    }
    # Five log bins over 1..16: each power of two falls in its own bin.
    frontier = multiplier.lower_envelope(curves, bins=5)
    assert frontier.to_dict("list") == {"x": [1.0, 8.0, 16.0], "loss": [3.1, 3.0, 2.9], "run": ["d", "b", "b"]}
    flat = multiplier.lower_envelope(curves, bins=5, keep_flat=True)
    assert list(flat["loss"]) == [3.1, 3.1, 3.1, 3.0, 2.9]
    assert list(flat["run"]) == ["d", "d", "d", "b", "b"]
    assert list(flat["x"]) == [1.0, 2.0, 4.0, 8.0, 16.0]
    # Without the small run, the bins' minima fall all the way.
    frontier = multiplier.lower_envelope({k: v for k, v in curves.items() if k != "d"}, bins=5)
    assert list(frontier["loss"]) == [5.0, 4.0, 3.2, 3.0, 2.9]
    assert list(frontier["run"]) == ["a", "a", "b", "b", "b"]


def test_the_envelope_of_runs_on_one_law_feeds_a_fit_that_finds_it():
    law = PowerLaw(1.6, math.log(40.0), 0.3)
    curves = {}
    for i, start in enumerate(np.geomspace(1e3, 1e7, 6)):
        x = start * np.geomspace(1.0, 30.0, 12)
        # Each run is on the law only at its end; earlier it is above it (not yet decayed).
        penalty = 0.5 * (1.0 - np.linspace(0.0, 1.0, x.size))
        curves[f"r{i}"] = (x, law.loss(x) + penalty)
    frontier = multiplier.lower_envelope(curves, bins=30)
    assert np.all(np.diff(frontier["loss"]) < 0) and np.all(np.diff(frontier["x"]) > 0)
    ends = {f"r{i}": curves[f"r{i}"][0][-1] for i in range(6)}
    on_law = frontier[np.isclose(frontier["x"], frontier["run"].map(ends))]
    fit = scaling.fit_power_law(on_law["x"], on_law["loss"], n_boot=20)
    assert fit.law.alpha == pytest.approx(0.3, rel=1e-5)


def test_empty_envelope():
    assert multiplier.lower_envelope({}).empty
    assert multiplier.lower_envelope({"a": ([0, -1], [2, 3])}).empty


def test_the_multiplier_interval_pairs_independent_resamples_of_the_two_groups():
    # Two groups with the very same noisy points: the multiplier is 1, but each group's law
    # is uncertain, so the interval must have width. Fitted with the same seed, their
    # bootstrap resamples draw the same indices; pairing them row by row would make every
    # resampled ratio exactly 1.
    x = np.geomspace(1e4, 1e9, 10)
    y = (1.5 + 20.0 * x**-0.3) * np.exp(np.random.default_rng(2).normal(0.0, 0.01, x.size))
    base = scaling.fit_power_law(x, y, group="base", n_boot=200, seed=0)
    twin = scaling.fit_power_law(x, y, group="twin", n_boot=200, seed=0)
    m = multiplier.compute_multiplier(base, twin, float(np.median(y)))
    assert m.value == pytest.approx(1.0)
    assert m.lo < 0.9 and m.hi > 1.1


def test_a_group_is_not_its_own_variant():
    """Reliability II, 8: ``--base X --variant X`` said "X saves compute" (a multiplier of 1)."""
    fit = scaling.fit_power_law(*law_points(1.5, 5.0, 0.3, 1, 1e4, 6), group="gqa", n_boot=20)
    m = multiplier.compute_multiplier(fit, fit, 2.0)
    assert m.value is None and "saves compute" not in m.sentence
    assert m.sentence == "No multiplier: the base and the variant are the same group (gqa)."


def test_the_fit_command_names_a_missing_interval_instead_of_printing_nan():
    import pandas as pd

    from sandbox.analysis.sources import ScalingResult
    from sandbox.cli.analysis_cmds import fit_text

    x, y = law_points(1.5, 5.0, 0.3, 1, 1e4, 6)
    points = pd.DataFrame({"x": [*x, 1e3, 1e4], "loss": [*y, 3.0, 2.5], "group": ["law"] * len(x) + ["two"] * 2})
    result = ScalingResult(points, scaling.fit_groups(points, x="x", y="loss", group="group", n_boot=20))
    text = "\n".join(fit_text(result))
    assert "two: 2 points, no fit" in text and "law: 6 points" in text
    assert "nan" not in text.lower()
