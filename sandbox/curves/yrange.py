"""The y range of a loss chart that ignores outliers, like TensorBoard's "ignore outliers in chart scaling"."""

from __future__ import annotations

import numpy as np

ROBUST_QUANTILES = (0.05, 0.95)
ROBUST_REACH = 0.5  # how far past the quantiles (× their spread) the range may still reach
ROBUST_PAD = 0.04  # room left above and below, × the range


def _weighted_quantiles(values: np.ndarray, weights: np.ndarray, qs: tuple[float, ...]) -> np.ndarray:
    order = np.argsort(values, kind="stable")
    v, w = values[order], weights[order]
    cum = (np.cumsum(w) - w / 2) / w.sum()  # each point at the middle of its weight
    return np.interp(qs, cum, v)


def robust_range(series: list[np.ndarray], log: bool = False) -> tuple[float, float] | None:
    """A y range for these series that ignores outliers (None when there is nothing finite).

    Every series weighs the same (a long log does not outvote a short one). The range
    spans the 5th to 95th weighted percentiles, reaches on towards the lowest and highest
    values by at most half that spread, and keeps a little room at both ends. So one run
    starting at loss 65 no longer squashes runs near 3 into the bottom of the chart, while
    a curve with no outliers keeps its whole range. On a log axis this is done on the logs.
    """
    parts, weights = [], []
    for values in series:
        values = np.asarray(values, dtype=float)
        keep = np.isfinite(values) & ((values > 0) if log else True)
        if keep.any():
            kept = np.log10(values[keep]) if log else values[keep]
            parts.append(kept)
            weights.append(np.full(kept.size, 1.0 / kept.size))
    if not parts:
        return None
    values, weight = np.concatenate(parts), np.concatenate(weights)
    q_lo, q_hi = _weighted_quantiles(values, weight, ROBUST_QUANTILES)
    spread = q_hi - q_lo
    lo = max(values.min(), q_lo - ROBUST_REACH * spread)
    hi = min(values.max(), q_hi + ROBUST_REACH * spread)
    # A flat series has no spread: leave it room of its own size (on a log axis, a fraction of a decade).
    pad = (hi - lo) * ROBUST_PAD or (0.05 if log else max(abs(hi) * 0.05, 1e-9))
    lo, hi = lo - pad, hi + pad
    return (float(10**lo), float(10**hi)) if log else (float(lo), float(hi))
