"""Studentized (bootstrap-t) intervals of paired differences of ratio-of-totals metrics.

Pure numpy. A metric here is ``f(scale * num / den)`` of a run's per-document totals (bits
per byte: nll / bytes; loss: nll / tokens; perplexity: exp of the loss; top-k: hits / tokens).
The percentile bootstrap of such a difference covers too little on a few skewed documents
(measured by `bench/coverage.py`: see the README), so each resample is *studentized*: its
difference is divided by its own standard error, from the linearisation (delta method) of
the ratios, which costs a few array products per resample instead of a nested bootstrap:

    se^2 = sum_d c_d (infl_b,d - infl_a,d)^2,  infl_d = f'(R) scale (num_d - R den_d) / DEN

(``c_d``: how often document d is drawn, R and DEN the resample's ratio and denominator).
The interval is ``theta - q(1 - a/2) se, theta - q(a/2) se`` with q the quantiles of the
resampled t = (theta* - theta) / se*. Alongside: a two-sided p-value of "no difference" from
the same t distribution (for a Holm correction), and the Monte Carlo noise of the interval's
ends (how much another seed would move them), which decides how many digits are printed.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class RatioMetric:
    """``f(scale * table[:, num].sum() / table[:, den].sum())``; f is exp when ``exp`` is set."""

    num: int
    den: int
    scale: float = 1.0
    exp: bool = False


@dataclass(frozen=True)
class PairedInterval:
    """A paired difference ``b - a`` with its studentized interval and what it rests on."""

    difference: float
    lo: float
    hi: float
    p_value: float  # two-sided, of "no difference", from the resampled t
    noise: float  # Monte Carlo standard error of the interval's ends (seed to seed)


def _values_and_influence(table: np.ndarray, counts: np.ndarray, m: RatioMetric) -> tuple[np.ndarray, np.ndarray]:
    """Metric value per resample (R,) and each document's influence on it (R, D)."""
    totals = counts @ table[:, [m.num, m.den]]
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        ratio = totals[:, 0] / totals[:, 1]
        value = m.scale * ratio
        slope = np.full_like(value, m.scale)
        if m.exp:
            value = np.exp(value)
            slope = slope * value
        infl = (table[None, :, m.num] - ratio[:, None] * table[None, :, m.den]) * (slope / totals[:, 1])[:, None]
    return value, infl


def _difference_and_se(a: np.ndarray, b: np.ndarray, counts: np.ndarray, m: RatioMetric) -> tuple[np.ndarray, np.ndarray]:
    """Paired difference ``b - a`` per resample and its delta-method standard error."""
    va, ia = _values_and_influence(a, counts, m)
    vb, ib = _values_and_influence(b, counts, m)
    with np.errstate(invalid="ignore", over="ignore"):
        se = np.sqrt(np.einsum("rd,rd->r", counts, (ib - ia) ** 2))
    return vb - va, se


def quantile_noise(values: np.ndarray, q: float) -> float:
    """Monte Carlo standard error of the ``q`` quantile of ``values`` (order statistics).

    The sample quantile of R draws is about as uncertain as the spread between the quantiles
    at ``q ± sqrt(q (1 - q) / R)`` (the binomial standard deviation of its rank), halved.
    """
    values = values[np.isfinite(values)]
    if values.size < 2:
        return math.nan
    step = math.sqrt(q * (1.0 - q) / values.size)
    lo, hi = np.quantile(values, [max(q - step, 0.0), min(q + step, 1.0)])
    return float(hi - lo) / 2.0


def studentized(
    a: np.ndarray, b: np.ndarray, m: RatioMetric, chunks: Iterable[np.ndarray], confidence: float = 0.95
) -> PairedInterval:
    """Bootstrap-t interval of ``metric(b) - metric(a)`` over paired documents (rows of the
    per-document tables ``a`` and ``b``), from resample count matrices ``chunks``."""
    ones = np.ones((1, a.shape[0]))
    theta, se = (float(x[0]) for x in _difference_and_se(a, b, ones, m))
    t = []
    for counts in chunks:
        diff, se_star = _difference_and_se(a, b, counts, m)
        with np.errstate(divide="ignore", invalid="ignore"):
            t.append((diff - theta) / se_star)
    t_all = np.concatenate(t) if t else np.empty(0)
    t_all = t_all[np.isfinite(t_all)]
    if not math.isfinite(theta):
        return PairedInterval(math.nan, math.nan, math.nan, math.nan, math.nan)
    if se == 0.0 or t_all.size == 0:  # every document differs by the same ratio: nothing varies
        return PairedInterval(theta, theta, theta, 1.0 if theta == 0.0 else 0.0, 0.0)
    tail = (1.0 - confidence) / 2.0
    q_lo, q_hi = np.quantile(t_all, [tail, 1.0 - tail])
    t0 = theta / se
    p = min(1.0, 2.0 * min(float(np.mean(t_all >= t0)), float(np.mean(t_all <= t0))))
    noise = se * max(quantile_noise(t_all, tail), quantile_noise(t_all, 1.0 - tail))
    return PairedInterval(theta, theta - float(q_hi) * se, theta - float(q_lo) * se, p, noise)


def decimals_for(noise: float, *, scale: float = 1.0, least: int = 1, most: int = 6) -> int:
    """Decimals to print a value whose Monte Carlo noise is ``noise``: the last digit's unit
    is at least the noise (±0.003 gives 2 decimals, ±0.0004 gives 3)."""
    if not math.isfinite(noise) or noise <= 0:
        return most
    return int(min(most, max(least, math.floor(-math.log10(noise * scale)))))


def holm(p_values: list[float]) -> list[float]:
    """Holm's step-down adjusted p-values (same order as given; NaN stays NaN)."""
    idx = [i for i, p in enumerate(p_values) if math.isfinite(p)]
    order = sorted(idx, key=lambda i: p_values[i])
    out = [math.nan] * len(p_values)
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (len(order) - rank) * p_values[i]))
        out[i] = running
    return out
