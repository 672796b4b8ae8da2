"""The point budget: what reaches the browser is bounded, whatever the number of runs.

A chart is at most a thousand or so pixels wide, so a series needs at most its smallest and
largest value in each pixel column to be drawn exactly as it would be from every point (the
"MinMax" family of downsamplers, as in M4 and tsdownsample's MinMaxLTTB). The total budget
(:data:`TOTAL_POINTS`) is shared by the drawn series: 500 runs cost what 50 do, each drawn at
a coarser resolution, and no spike is lost at that resolution. Pure numpy, O(rows) per series.
"""

from __future__ import annotations

import numpy as np

TOTAL_POINTS = 40_000  # points sent to the browser for one chart, all series together
MAX_POINTS = 2_000  # one series: two points per pixel column of a wide chart
MIN_POINTS = 8  # below this a series is no longer a curve (only beyond 5,000 series)
TOTAL_TIPS = 10_000  # drawn points that carry a hover tooltip, all series together
MAX_TIPS = 400  # one series: a tip every two or three pixels of a wide chart


def points_per_series(n_series: int) -> int:
    """The share of the budget of one series when ``n_series`` are drawn."""
    return int(np.clip(TOTAL_POINTS // max(n_series, 1), MIN_POINTS, MAX_POINTS))


def tips_per_series(n_series: int) -> int:
    """How many of one series' drawn points carry the hover tooltip when ``n_series`` are drawn.

    A browser evaluates each tooltip when it draws the chart (about a second per 40,000
    points in Chromium); a pointer finds the nearest tip, which need not be denser than
    one every few pixels.
    """
    return int(np.clip(TOTAL_TIPS // max(n_series, 1), MIN_POINTS, MAX_TIPS))


def tip_mask(n: int, tips: int) -> np.ndarray:
    """``tips`` of ``n`` drawn points, evenly spread and both ends included (all when fewer)."""
    mask = np.zeros(n, dtype=bool)
    if n:
        mask[np.unique(np.linspace(0, n - 1, min(n, tips)).round().astype(np.int64))] = True
    return mask


def columns_for(cap: int) -> int:
    """Pixel columns a series of ``cap`` points is drawn at (min and max per column, plus its ends)."""
    return max((cap - 2) // 2, 1)


def column_of(x: np.ndarray, columns: int, lo: float, hi: float, log: bool = False) -> np.ndarray:
    """The pixel column (0..columns-1) of each x over [lo, hi] (on a log axis: over the logs)."""
    x = np.asarray(x, dtype=float)
    if log:
        x, lo, hi = np.log10(np.maximum(x, 1e-300)), np.log10(max(lo, 1e-300)), np.log10(max(hi, 1e-300))
    span = hi - lo
    if not np.isfinite(span) or span <= 0:
        return np.zeros(x.size, dtype=np.int64)
    return np.clip(((x - lo) * (columns / span)).astype(np.int64), 0, columns - 1)


def _first_hits(hit: np.ndarray, starts: np.ndarray, ends: np.ndarray) -> np.ndarray:
    """Index of the first True of ``hit`` in each segment ``[starts[i], ends[i])`` that has one."""
    idx = np.flatnonzero(hit)
    pos = np.searchsorted(idx, starts)
    found = pos < idx.size
    first = idx[pos[found]]
    return first[first < ends[found]]


def minmax_mask(x: np.ndarray, values: np.ndarray, cap: int, log_x: bool = False) -> np.ndarray:
    """Which points of one series to draw: the smallest and largest finite value of each pixel
    column (the series' x extent cut into :func:`columns_for` ``(cap)`` columns), its first and
    last point, and the first point of every NaN/inf stretch (a diverged stretch stays a gap).

    At most about ``cap`` points survive (plus one per NaN/inf stretch). Rows are in log
    order; x need not be sorted (a resumed run), it is sorted here when it is not.
    """
    x = np.asarray(x, dtype=float)
    values = np.asarray(values, dtype=float)
    n = values.size
    if n <= cap:
        return np.ones(n, dtype=bool)
    finite = np.isfinite(values)
    every = bool(finite.all())  # the usual series: no masking needed
    keep = np.zeros(n, dtype=bool) if every else ~finite & np.r_[True, finite[:-1]]
    keep[0] = keep[-1] = True
    order = None if bool(np.all(x[1:] >= x[:-1])) else np.argsort(x, kind="stable")
    xs, vs, fs = (x, values, finite) if order is None else (x[order], values[order], finite[order])
    lo, hi = float(np.nanmin(xs)), float(np.nanmax(xs))
    col = column_of(xs, columns_for(cap), lo, hi, log=log_x)
    starts = np.flatnonzero(np.r_[True, col[1:] != col[:-1]])
    lengths = np.diff(np.r_[starts, n])
    for fill, reduce in ((np.inf, np.minimum), (-np.inf, np.maximum)):
        masked = vs if every else np.where(fs, vs, fill)
        extreme = reduce.reduceat(masked, starts)
        hit = masked == np.repeat(extreme, lengths)
        picked = _first_hits(hit if every else hit & fs, starts, starts + lengths)
        keep[picked if order is None else order[picked]] = True
    return keep


def in_range(x: np.ndarray, x_range: tuple[float, float] | None) -> np.ndarray:
    """Rows to draw for a zoomed x range: those inside it, and the nearest one on each side
    (so the curve runs on to the edges of the chart instead of stopping short of them)."""
    x = np.asarray(x, dtype=float)
    if x_range is None:
        return np.ones(x.size, dtype=bool)
    lo, hi = x_range
    inside = (x >= lo) & (x <= hi)
    before = np.flatnonzero(x < lo)
    after = np.flatnonzero(x > hi)
    if before.size:
        inside[before[np.argmax(x[before])]] = True
    if after.size:
        inside[after[np.argmin(x[after])]] = True
    return inside
