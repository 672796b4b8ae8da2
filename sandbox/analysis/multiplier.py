"""The compute multiplier of a variant against a base at a chosen loss, with its interval,
from two `sandbox.analysis.scaling` fits; and the lower envelope of many training curves
(the compute frontier a fit should see).

The multiplier at a loss L* is ``C_base(L*) / C_variant(L*)`` with
``C(L) = (A / (L − E))^(1/α)``: how many times the base's compute it takes to reach the
loss the variant reaches. Above 1 the variant saves compute.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from sandbox.analysis.scaling import Multiplier, ScalingFit, _clean, _percentile

_PAIRING_SEED = 20_240_518  # any fixed number: see _multiplier_interval


# -- the compute multiplier -------------------------------------------------------------------


def default_target_loss(base: ScalingFit, variant: ScalingFit) -> float:
    """The lowest loss both groups reached in their own points (no extrapolation needed)."""
    if not base.y.size or not variant.y.size:
        return math.nan
    return float(max(base.y.min(), variant.y.min()))


def _log_compute(e: np.ndarray, log_a: np.ndarray, alpha: np.ndarray, loss: float) -> np.ndarray:
    """log C(L) per law; +inf where L ≤ E (the law never reaches L)."""
    gap = loss - e
    with np.errstate(divide="ignore", invalid="ignore"):
        out = (log_a - np.log(np.where(gap > 0, gap, np.nan))) / alpha
    return np.where(gap > 0, out, np.inf)


def compute_multiplier(
    base: ScalingFit, variant: ScalingFit, loss: float | None = None, *, confidence: float | None = None
) -> Multiplier:
    """C_base(L*) / C_variant(L*): how many times the base's compute reaches the variant's loss.

    ``loss`` defaults to :func:`default_target_loss`. The interval pairs the two groups'
    bootstrap refits resample by resample. Where L* lies at or below a group's fitted floor
    E, that group never reaches it: no multiplier, and the sentence says which group. In
    resamples where only the base cannot reach L*, the multiplier is unbounded above (and
    zero where only the variant cannot), so an interval end can be inf or 0; a note says
    how often.
    """
    conf = confidence if confidence is not None else min(base.confidence, variant.confidence)
    target = default_target_loss(base, variant) if loss is None else float(loss)
    names = (base.group or "base", variant.group or "variant")
    out = Multiplier(names[0], names[1], target, None, None, None, "", confidence=conf)
    if base is variant or (base.group and base.group == variant.group):
        out.sentence = f"No multiplier: the base and the variant are the same group ({names[0]})."
        return out
    missing = [n for n, f in zip(names, (base, variant), strict=True) if f.law is None]
    if missing:
        out.sentence = f"No multiplier: {' and '.join(missing)} has no fitted law (see its notes)."
        return out
    if not math.isfinite(target) or target <= 0:
        out.sentence = "No multiplier: the target loss must be a positive number."
        return out
    below = [(n, f.law.E) for n, f in zip(names, (base, variant), strict=True) if target <= f.law.E]
    if below:
        said = "; ".join(f"{n}'s fitted floor is E = {e:.4g}" for n, e in below)
        out.sentence = (
            f"No multiplier at L* = {target:.4g}: it lies at or below the floor ({said}), "
            "so it is never reached at any compute. Choose a higher loss."
        )
        return out
    lb = _log_compute(np.array(base.law.E), np.array(base.law.log_A), np.array(base.law.alpha), target)
    lv = _log_compute(np.array(variant.law.E), np.array(variant.law.log_A), np.array(variant.law.alpha), target)
    out.value = float(np.exp(float(lb - lv)))
    out.lo, out.hi = _multiplier_interval(base, variant, target, conf, out.notes)
    out.sentence = multiplier_sentence(out)
    for n, f in zip(names, (base, variant), strict=True):
        if f.y.size and target < f.y.min():
            out.notes.append(f"L* = {target:.4g} is below every point of {n}: its compute is extrapolated.")
    return out


def _multiplier_interval(
    base: ScalingFit, variant: ScalingFit, target: float, confidence: float, notes: list[str]
) -> tuple[float | None, float | None]:
    if not base.boot.size or not variant.boot.size:
        notes.append("No interval: a group has no bootstrap (it has three points or fewer).")
        return None, None
    n = min(len(base.boot), len(variant.boot))
    # The groups are independent, so their resamples must be paired independently: two fits
    # made with the same seed and as many points drew the same indices, and pairing them row
    # by row would cancel their uncertainties. A fixed permutation keeps the result seeded.
    shuffle = np.random.default_rng(_PAIRING_SEED).permutation(n)
    b, v = base.boot[:n], variant.boot[:n][shuffle]
    ok = np.isfinite(b).all(axis=1) & np.isfinite(v).all(axis=1)
    if ok.sum() < 10:
        notes.append("No interval: too few bootstrap resamples of both groups could be fitted.")
        return None, None
    b, v = b[ok], v[ok]
    lb = _log_compute(b[:, 0], b[:, 1], b[:, 2], target)
    lv = _log_compute(v[:, 0], v[:, 1], v[:, 2], target)
    both = np.isinf(lb) & np.isinf(lv)
    # Only the base never reaches L*: the variant saves "infinitely" much (and the reverse).
    log_ratio = np.where(np.isinf(lb) & ~np.isinf(lv), np.inf, np.where(np.isinf(lv) & ~np.isinf(lb), -np.inf, lb - lv))
    log_ratio = log_ratio[~both]
    unreachable = int(np.isinf(lb).sum() + np.isinf(lv).sum() - both.sum())
    if both.any() or unreachable:
        notes.append(
            f"In {int(both.sum() + unreachable)} of {int(ok.sum())} resamples a law never reaches "
            f"L* = {target:.4g} (its resampled floor is above it): an interval end can be unbounded."
        )
    if log_ratio.size < 10:
        return None, None
    lo, hi = _percentile(log_ratio, confidence)
    return float(np.exp(lo)), float(np.exp(hi))


def multiplier_sentence(m: Multiplier) -> str:
    """E.g. "At L* = 3.2, base needs 2.41× the compute of variant [1.83×, 3.10×] (95 %)."."""
    if m.value is None:
        return m.sentence
    ci = ""
    if m.lo is not None and m.hi is not None:
        ci = f" [{_times(m.lo)}, {_times(m.hi)}] ({m.confidence:.0%} interval)"
    if m.value >= 1:
        gist = f"{m.variant} saves compute"
    else:
        gist = f"{m.variant} needs more compute"
    return f"At L* = {m.loss:.4g}, {m.base} needs {_times(m.value)} the compute of {m.variant}{ci}: {gist}."


def _times(value: float) -> str:
    if math.isinf(value):
        return "∞×"
    return f"{value:.3g}×"


# -- the frontier of many curves --------------------------------------------------------------


def lower_envelope(
    curves: Mapping[str, tuple[Sequence[float], Sequence[float]]],
    *,
    bins: int = 40,
    keep_flat: bool = False,
) -> pd.DataFrame:
    """The lower envelope (compute frontier) of many runs' loss-vs-compute curves.

    The x range of all curves is cut into ``bins`` log-spaced bins; in each, the logged
    point with the lowest loss across runs stands for the bin (a real point, nothing
    interpolated). Walking from small to large x, the envelope is the best loss reached
    with at most that much compute, so it never rises. By default only the points where it
    strictly falls are returned (the Pareto frontier, what a fit should see: flat stretches
    would add copies of one loss); ``keep_flat`` returns one row per non-empty bin with
    the running minimum instead. Columns: x, loss, run (the run whose point it is).

    Early points of a single run are not compute-optimal (its learning rate has not
    decayed yet); runs of several sizes make the envelope meaningful.
    """
    frames = []
    for run, (x, y) in curves.items():
        xs, ys, _ = _clean(x, y)
        frames.append(pd.DataFrame({"x": xs, "loss": ys, "run": str(run)}))
    columns = ["x", "loss", "run"]
    points = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=columns)
    if points.empty:
        return pd.DataFrame(columns=columns)
    lx = np.log(points["x"].to_numpy())
    lo, hi = lx.min(), lx.max()
    edges = np.linspace(lo, hi, max(int(bins), 1) + 1)
    points["bin"] = np.clip(np.searchsorted(edges, lx, side="right") - 1, 0, len(edges) - 2)
    best = points.sort_values(["bin", "loss", "x"], kind="stable").groupby("bin", sort=True).head(1)
    best = best.reset_index(drop=True)
    running = np.minimum.accumulate(best["loss"].to_numpy())
    if keep_flat:
        # A bin whose best point does not beat the envelope so far shows the envelope there,
        # and the run that set it.
        losses = best["loss"].to_numpy()
        setter = np.maximum.accumulate(np.where(losses <= running, np.arange(losses.size), 0))
        out = best[["x"]].copy()
        out["loss"] = running
        out["run"] = best["run"].to_numpy()[setter]
        return out[columns]
    previous = np.concatenate([[np.inf], running[:-1]])
    return best.loc[best["loss"].to_numpy() < previous, columns].reset_index(drop=True)
