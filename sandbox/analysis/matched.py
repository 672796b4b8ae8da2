"""Each run's validation loss at a matched amount of training: tokens seen or training FLOPs.

Runs are logged at their own intervals and trained for their own lengths, so comparing
"final" losses compares different amounts of training. Here every run's loss is read off
its log **at the same x** (tokens seen, or estimated training FLOPs), interpolated between
the two logged points around it. The matched point is the caller's, or by default the
largest one every run reached: the smallest of the runs' last x. A run that does not
reach the point (or starts logging after it) is reported as such, never extrapolated.

Interpolation is **linear in log x** by default: loss falls roughly as a power of the
training amount, so between two logged points the curve is much closer to a straight line
against log x than against x (against x it is convex and a chord overestimates the loss
in between). ``scale="linear"`` interpolates linearly in x; with the dense evaluation
intervals of real logs the two differ little. Log x needs x > 0, so a step-0 row
(0 tokens) is left out there.

Input is plain arrays per run, ``{run: (x, loss)}``: the caller builds x from the log
(`sandbox.curves` knows how to get tokens and FLOPs per row). Bits per byte of a curve
need the run's tokens per byte of some text, known from an evaluation; the result is
an estimate (the validation text need not cut into tokens as the evaluated text did),
and it is labelled so.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

LN2 = math.log(2.0)
SCALES = ("log", "linear")
ESTIMATED = "estimated"
# Column names of the table, for pages and the CLI.
COLUMNS = ["run", "axis", "at", "loss", "bits_per_byte", "reached", "x_min", "x_max", "note"]

Series = Mapping[str, tuple[Sequence[float], Sequence[float]]]


def _points(x: Sequence[float], loss: Sequence[float], scale: str) -> tuple[np.ndarray, np.ndarray]:
    """Usable points sorted by x: finite, x > 0 on a log scale; one per x (the last logged)."""
    if scale not in SCALES:
        raise ValueError(f"scale must be one of {SCALES}, not {scale!r}")
    x = np.asarray(x, dtype=np.float64).ravel()
    y = np.asarray(loss, dtype=np.float64).ravel()
    if x.shape != y.shape:
        raise ValueError(f"x and loss differ in length ({x.size} and {y.size})")
    keep = np.isfinite(x) & np.isfinite(y)
    if scale == "log":
        keep &= x > 0
    x, y = x[keep], y[keep]
    # A resumed run logs some x twice: the later row is the one that stands.
    order = np.argsort(x, kind="stable")
    x, y = x[order], y[order]
    last = np.r_[x[1:] != x[:-1], True] if x.size else np.zeros(0, dtype=bool)
    return x[last], y[last]


def loss_at(x: Sequence[float], loss: Sequence[float], at: float, *, scale: str = "log") -> float | None:
    """The loss at ``at`` interpolated between the logged points around it, or None when
    ``at`` lies outside the logged range (nothing is extrapolated)."""
    xs, ys = _points(x, loss, scale)
    if not xs.size or not (xs[0] <= at <= xs[-1]):
        return None
    if scale == "log":
        return float(np.interp(math.log(at), np.log(xs), ys))
    return float(np.interp(at, xs, ys))


def matched_point(series: Series, *, scale: str = "log") -> float | None:
    """The largest x every run reached: the smallest of the runs' last logged x (None if a
    run has no usable point)."""
    maxima = []
    for x, y in series.values():
        xs, _ = _points(x, y, scale)
        if not xs.size:
            return None
        maxima.append(xs[-1])
    return float(min(maxima)) if maxima else None


def bits_per_byte(loss_nats: np.ndarray | float, tokens_per_byte: float) -> np.ndarray:
    """Per-token loss in nats as bits per byte: loss · tokens_per_byte / ln 2 (an estimate
    when the tokens per byte come from another text than the loss)."""
    return np.asarray(loss_nats, dtype=np.float64) * float(tokens_per_byte) / LN2


def matched_losses(
    series: Series,
    *,
    at: float | None = None,
    axis: str = "tokens",
    scale: str = "log",
    tokens_per_byte: Mapping[str, float] | None = None,
) -> pd.DataFrame:
    """One row per run: its loss at ``at`` (default :func:`matched_point`), and estimated bits
    per byte where the run's tokens per byte is known. Columns are :data:`COLUMNS`;
    ``reached`` is False (loss NaN) where the run's log does not cover the point, and
    ``note`` says why in a sentence."""
    rates = tokens_per_byte or {}
    point = matched_point(series, scale=scale) if at is None else float(at)
    rows = []
    for run, (x, y) in series.items():
        xs, ys = _points(x, y, scale)
        row = {"run": str(run), "axis": axis, "at": point, "loss": math.nan, "bits_per_byte": math.nan,
               "reached": False, "x_min": math.nan, "x_max": math.nan, "note": ""}  # fmt: skip
        if not xs.size:
            row["note"] = f"No usable {axis} values in its log."
        else:
            row["x_min"], row["x_max"] = float(xs[0]), float(xs[-1])
            value = None if point is None else loss_at(xs, ys, point, scale=scale)
            if point is None:
                row["note"] = "No matched point: a run has no usable values."
            elif value is None and point > xs[-1]:
                row["note"] = f"Stops at {xs[-1]:.4g} {axis}, before the matched point: not extrapolated."
            elif value is None:
                row["note"] = f"Its first logged point is at {xs[0]:.4g} {axis}, after the matched point."
            else:
                row["loss"], row["reached"] = value, True
                rate = rates.get(str(run))
                if rate is not None and math.isfinite(rate) and rate > 0:
                    row["bits_per_byte"] = float(bits_per_byte(value, rate))
                    row["note"] = f"Bits per byte {ESTIMATED} from tokens per byte {rate:.4g} of an evaluation."
        rows.append(row)
    return pd.DataFrame(rows, columns=COLUMNS)


def matched_table(
    axes: Mapping[str, Series],
    *,
    at: Mapping[str, float | None] | None = None,
    scale: str = "log",
    tokens_per_byte: Mapping[str, float] | None = None,
) -> pd.DataFrame:
    """:func:`matched_losses` for several x axes at once (e.g. ``{"tokens": ..., "FLOPs": ...}``),
    stacked into one long table; ``at`` gives a matched point per axis (missing: default)."""
    chosen = at or {}
    frames = [
        matched_losses(series, at=chosen.get(name), axis=name, scale=scale, tokens_per_byte=tokens_per_byte)
        for name, series in axes.items()
    ]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=COLUMNS)


def per_byte_curves(series: Series, tokens_per_byte: Mapping[str, float]) -> pd.DataFrame:
    """Curves in bits per byte (estimated) for the runs whose tokens per byte is known.

    Columns run, x, bits_per_byte, estimated (always True). Runs without a known rate are
    left out; :func:`missing_rates` names them.
    """
    frames = []
    for run, (x, y) in series.items():
        rate = tokens_per_byte.get(str(run))
        if rate is None or not math.isfinite(rate) or rate <= 0:
            continue
        xs, ys = _points(x, y, "linear")
        frames.append(pd.DataFrame({"run": str(run), "x": xs, "bits_per_byte": bits_per_byte(ys, rate), "estimated": True}))
    if not frames:
        return pd.DataFrame(columns=["run", "x", "bits_per_byte", "estimated"])
    return pd.concat(frames, ignore_index=True)


def missing_rates(series: Series, tokens_per_byte: Mapping[str, float]) -> list[str]:
    """Runs whose curve cannot be drawn in bits per byte (no evaluation gave their rate)."""
    return [str(run) for run in series if not (tokens_per_byte.get(str(run)) or 0) > 0]
