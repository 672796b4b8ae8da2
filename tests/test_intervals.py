"""Paired intervals that hold: coverage by simulation on skewed documents, the studentized
interval's parts (delta-method error, p-value, Monte Carlo noise), Holm, printed digits."""

from __future__ import annotations

import math

import numpy as np
import pytest

from sandbox.evaluation import coverage, intervals, metrics
from sandbox.evaluation.report import Report, multiple_note, verdict
from sandbox.evaluation.results import EvalSettings, RunResult

NOMINAL = 0.95


def _sample(pop: coverage.Population, n: int, seed: int) -> tuple[metrics.DocSums, metrics.DocSums]:
    idx = np.random.default_rng(seed).choice(len(pop.a.tokens), n, replace=False)
    return coverage._take(pop.a, idx), coverage._take(pop.b, idx)


def test_the_default_paired_interval_holds_on_30_skewed_documents() -> None:
    # A few hard documents on which the runs differ most: the percentile interval of the
    # resampled differences covers far less than 95 % at 30 documents (the issue measured
    # 0.72 at 20 and 0.89 at 80). The default interval must stay within 3 binomial standard
    # errors of nominal; the percentile one, measured on the same samples, must not.
    pop = coverage.skewed_population(hard_share=0.25)
    trials = 300
    floor = NOMINAL - 3 * math.sqrt(NOMINAL * (1 - NOMINAL) / trials)
    held, _ = coverage.coverage(pop, 30, trials, method="studentized", n_resamples=1000)
    percentile, _ = coverage.coverage(pop, 30, trials, method="percentile", n_resamples=1000)
    assert held >= floor, (held, floor)
    assert percentile < floor and percentile < held
    # ...and the default of paired_bootstrap (what the pages and the CLI use) is that interval.
    a, b = _sample(pop, 30, seed=1)
    iv = metrics.paired_intervals(a, b, [1], n_resamples=500, seed=3)["bits_per_byte"]
    assert metrics.paired_bootstrap(a, b, [1], n_resamples=500, seed=3)["bits_per_byte"] == (iv.difference, iv.lo, iv.hi)


def test_the_delta_method_error_matches_the_bootstrap_spread_on_many_documents() -> None:
    pop = coverage.skewed_population(hard_share=0.25, seed=2)
    a, b = _sample(pop, 400, seed=0)
    ta, tb = metrics._table(a), metrics._table(b)
    # Perplexity is left out: exp is too curved where the loss varies by whole nats for its
    # linearisation to match (its t is still a pivot: the same formula scales both sides).
    for name in ("bits_per_byte", "loss", "top1", "tokens_per_byte"):
        m = metrics.ratio_metric(name)
        _, se = intervals._difference_and_se(ta, tb, np.ones((1, 400)), m)
        counts = next(metrics.resample_counts(400, 4000, seed=0))
        spread = metrics.resampled_differences(a, b, [1], counts)[name].std()
        if spread == 0:
            assert se[0] == pytest.approx(0.0, abs=1e-12), name
        else:
            assert se[0] == pytest.approx(spread, rel=0.1), name


def test_every_metric_gets_an_interval_around_its_difference() -> None:
    pop = coverage.skewed_population(hard_share=0.25, seed=4)
    a, b = _sample(pop, 50, seed=2)
    got = metrics.paired_intervals(a, b, [1], n_resamples=800, seed=0)
    plain = metrics.paired_bootstrap(a, b, [1], n_resamples=800, seed=0, method="percentile")
    for name, iv in got.items():
        assert iv.difference == pytest.approx(plain[name][0], rel=1e-12, abs=1e-15), name
        assert iv.lo <= iv.difference <= iv.hi, name
        assert 0.0 <= iv.p_value <= 1.0
    # Clear difference: small p; the same run twice: nothing to tell apart.
    assert got["bits_per_byte"].lo > 0 and got["bits_per_byte"].p_value < 0.05
    same = metrics.paired_intervals(a, a, [1], n_resamples=200)["bits_per_byte"]
    assert (same.difference, same.lo, same.hi, same.p_value) == (0.0, 0.0, 0.0, 1.0)
    with pytest.raises(ValueError, match="studentized"):
        metrics.paired_bootstrap(a, b, [1], method="bca")


def test_the_stated_noise_is_how_far_another_seed_moves_the_ends() -> None:
    pop = coverage.skewed_population(hard_share=0.25, seed=5)
    a, b = _sample(pop, 40, seed=0)
    runs = [metrics.paired_intervals(a, b, [1], n_resamples=1000, seed=s)["bits_per_byte"] for s in range(40)]
    noise = float(np.median([r.noise for r in runs]))
    for end in ("lo", "hi"):
        spread = float(np.std([getattr(r, end) for r in runs]))
        assert noise / 3 < spread < noise * 3, (end, noise, spread)
    # More resamples, less noise (about 1/sqrt(R)).
    more = metrics.paired_intervals(a, b, [1], n_resamples=8000, seed=0)["bits_per_byte"]
    assert more.noise < noise


@pytest.mark.parametrize("noise", [3e-3, 4e-4, 0.02, 7e-6])
def test_printed_digits_match_the_noise(noise: float) -> None:
    d = intervals.decimals_for(noise)
    assert 10.0 ** -d >= noise > 10.0 ** -(d + 1)  # the last digit is not finer than the noise
    assert intervals.decimals_for(math.nan) == 6 and intervals.decimals_for(0.0) == 6


def test_holm_by_hand() -> None:
    # Sorted: 0.01*3 = 0.03, 0.03*2 = 0.06, max(0.06, 0.04*1) = 0.06.
    assert intervals.holm([0.01, 0.04, 0.03]) == pytest.approx([0.03, 0.06, 0.06])
    assert intervals.holm([0.5]) == [0.5]
    got = intervals.holm([math.nan, 0.2, 0.9])
    assert math.isnan(got[0]) and got[1:] == pytest.approx([0.4, 0.9])


def test_verdict_digits_and_the_holm_hold_back() -> None:
    assert verdict("B", "A", "bits_per_byte", -0.0361, -0.0502, -0.0213, digits=2) == "B is better than A by 0.04 bits/byte [0.02, 0.05]"
    held = verdict("B", "A", "bits_per_byte", -0.03, -0.05, -0.001, p_holm=0.08, compared=3)
    assert held.startswith("B vs A: no clear difference in bits per byte") and "Holm correction for 3 comparisons" in held
    assert verdict("B", "A", "bits_per_byte", -0.03, -0.05, -0.001, p_holm=0.01, compared=3).startswith("B is better")


def _result(run_id: str, sums: metrics.DocSums) -> RunResult:
    return RunResult(run_id, info={"tokenizer": "t", "vocab_size": 10}, sums=sums)


def test_several_verdicts_at_once_are_holm_corrected_and_noted() -> None:
    pop = coverage.skewed_population(hard_share=0.25, seed=6)
    idx = np.arange(60)
    a, b = coverage._take(pop.a, idx), coverage._take(pop.b, idx)
    # c: b's small edge diluted to the edge of significance, d: the same run as a.
    c = metrics.DocSums(a.tokens, (a.nll + b.nll) / 2, a.bytes, a.hits)
    report = Report([_result("a", a), _result("b", b), _result("c", c), _result("d", a)], EvalSettings(), {"documents": 60})
    rows = [r for r in report.paired([1], n_resamples=1000) if r["metric"] == "bits_per_byte"]
    assert [r["compared"] for r in rows] == [3, 3, 3]
    assert [r["p_holm"] for r in rows] == pytest.approx(intervals.holm([r["p"] for r in rows]))
    for r in rows:  # a difference is called clear exactly when its Holm-adjusted p is under 5 %
        clear = "no clear difference" not in r["verdict"]
        assert clear == (r["p_holm"] < 0.05 and not r["lo"] <= 0 <= r["hi"]), r
    note = multiple_note(rows)
    assert note and "3 runs are compared with a at once" in note and "Holm" in note
    assert multiple_note([dict(rows[0], compared=1)]) is None
