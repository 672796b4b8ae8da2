"""Group runs and aggregate their curves (as Aim and W&B do): one line per group and a band.

Runs are grouped by their experiment or by config keys (model_config.json and
train_config.json together: ``dim``, ``n_layers``, ``tokenizer``, ``learning_rate`` ...).
A group's line at x is the mean or median of its runs' values at x, with a band (min–max,
± one standard deviation, or the 95 % interval of the mean: ± 1.96 · std / √n, a normal
approximation). Runs log at different x, so each run is interpolated onto a common grid
within its own range (first to last finite value): the statistics at x use only the runs
that reach x, and ``n`` says how many did.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from sandbox.curves import budget
from sandbox.zoo.discovery import Run

EXPERIMENT = "experiment"  # the group-by "key" that groups runs by their experiment folder
STATS = ("mean", "median")
BANDS = {
    "minmax": "min – max",
    "std": "± 1 std",
    "ci95": "95 % interval of the mean",
    "none": "no band",
}
IGNORED_KEYS = ("device",)  # where a run was trained says nothing about the run
GROUP_COLUMNS = ["group", "metric", "x", "center", "lo", "hi", "n"]


# ---------------------------------------------------------------------------------------
# Config keys


def run_config(run: Run) -> dict[str, object]:
    """The run's scalar config values: model_config.json, then train_config.json keys it
    does not already have; unreadable files give what could be read (the Models page and
    the doctor say why)."""
    out: dict[str, object] = {}
    for read in (run.model_config, run.train_config):
        try:
            cfg = read() or {}
        except ValueError:
            continue
        for key, value in cfg.items():
            if key not in out and key not in IGNORED_KEYS and isinstance(value, str | int | float | bool):
                out[str(key)] = value
    return out


def differing_keys(configs: Mapping[str, Mapping[str, object]]) -> list[str]:
    """Config keys whose values differ between the runs (missing from some counts), sorted."""
    if len(configs) < 2:
        return []
    keys = sorted(set().union(*configs.values()))
    return [k for k in keys if len({repr(cfg.get(k)) for cfg in configs.values()}) > 1]


def shown_value(value: object) -> str:
    """A config value as a legend shows it (``3e-04``, ``128``, ``bpe``; missing: ``–``)."""
    if value is None:
        return "–"
    if isinstance(value, float) and not value.is_integer():
        return f"{value:.3g}"
    return str(value)


def describe(config: Mapping[str, object], keys: Sequence[str]) -> str:
    """``"dim=128 · n_layers=4"``: only ``keys`` (those that differ), in their order."""
    return " · ".join(f"{k}={shown_value(config.get(k))}" for k in keys)


def group_labels(
    runs: Sequence[Run], configs: Mapping[str, Mapping[str, object]], keys: Sequence[str]
) -> dict[str, str]:
    """``{run id: group}`` for grouping by ``keys`` (config keys, or :data:`EXPERIMENT`)."""
    out = {}
    for run in runs:
        parts = [
            run.experiment if key == EXPERIMENT else f"{key}={shown_value(configs.get(run.id, {}).get(key))}"
            for key in keys
        ]
        out[run.id] = " · ".join(parts)
    return out


# ---------------------------------------------------------------------------------------
# Aggregation


def common_grid(xs: Sequence[np.ndarray], points: int, log: bool = False) -> np.ndarray:
    """The x grid a group is drawn on: the union of its runs' x when that has at most
    ``points`` values (no interpolation at all when runs log at the same steps), else
    ``points`` evenly spaced values over their whole extent (on a log axis, evenly in log)."""
    finite = [x[np.isfinite(x) & ((x > 0) if log else True)] for x in xs]
    finite = [x for x in finite if x.size]
    if not finite:
        return np.zeros(0)
    union = np.unique(np.concatenate(finite))
    if union.size <= points:
        return union
    lo, hi = union[0], union[-1]
    return np.geomspace(lo, hi, points) if log else np.linspace(lo, hi, points)


def on_grid(x: np.ndarray, y: np.ndarray, grid: np.ndarray) -> np.ndarray:
    """One run's finite values interpolated onto ``grid``; NaN outside the run's own range
    (before its first or after its last finite value: a diverged run stops there)."""
    keep = np.isfinite(x) & np.isfinite(y)
    x, y = x[keep], y[keep]
    out = np.full(grid.size, np.nan)
    if x.size == 0:
        return out
    order = np.argsort(x, kind="stable")
    x, y = x[order], y[order]
    inside = (grid >= x[0]) & (grid <= x[-1])
    out[inside] = np.interp(grid[inside], x, y)
    return out


def statistics(matrix: np.ndarray, stat: str = "mean", band: str = "minmax") -> dict[str, np.ndarray]:
    """Per column of ``matrix`` (runs × grid, NaN where a run does not reach): the center
    (mean or median), the band's low and high edge, and n (runs that reach it).

    Columns no run reaches are NaN with n = 0; a band needing a standard deviation is the
    center alone where n = 1 (a sample std needs two runs).
    """
    n = np.isfinite(matrix).sum(axis=0)
    reached = n > 0
    center = np.full(matrix.shape[1], np.nan)
    lo, hi = center.copy(), center.copy()
    if not reached.any():
        return {"center": center, "lo": lo, "hi": hi, "n": n}
    m = matrix[:, reached]
    center[reached] = np.nanmedian(m, axis=0) if stat == "median" else np.nanmean(m, axis=0)
    if band == "minmax":
        lo[reached], hi[reached] = np.nanmin(m, axis=0), np.nanmax(m, axis=0)
    elif band in ("std", "ci95"):
        k = n[reached]
        mean = np.nanmean(m, axis=0)
        sq = np.nansum((m - mean) ** 2, axis=0)
        std = np.sqrt(np.divide(sq, k - 1, out=np.zeros_like(sq), where=k > 1))
        half = std if band == "std" else 1.96 * std / np.sqrt(k)
        lo[reached], hi[reached] = center[reached] - half, center[reached] + half
    else:  # no band: the line alone
        lo[reached], hi[reached] = center[reached], center[reached]
    return {"center": center, "lo": lo, "hi": hi, "n": n}


def aggregate(
    series: Sequence[tuple[str, str, np.ndarray, np.ndarray]],
    groups: Mapping[str, str],
    stat: str = "mean",
    band: str = "minmax",
    log_x: bool = False,
) -> tuple[pd.DataFrame, dict[str, int]]:
    """Group lines of ``series`` = ``(run, metric, x, y)``: a frame of :data:`GROUP_COLUMNS`
    (one row per group, metric and grid x), and the run count of every group.

    Each metric gets one grid for all its groups (so groups compare point by point); its
    size is a share of the point budget (`budget.points_per_series` of the group lines).
    """
    by_metric: dict[str, dict[str, list[tuple[np.ndarray, np.ndarray]]]] = {}
    members: dict[str, set[str]] = {}
    for run, metric, x, y in series:
        group = groups.get(run)
        if group is None:
            continue
        by_metric.setdefault(metric, {}).setdefault(group, []).append((x, y))
        members.setdefault(group, set()).add(run)
    lines = sum(len(g) for g in by_metric.values())
    points = budget.points_per_series(lines)
    parts = []
    for metric, by_group in by_metric.items():
        grid = common_grid([x for runs in by_group.values() for x, _ in runs], points, log_x)
        for group, runs in by_group.items():
            matrix = np.vstack([on_grid(x, y, grid) for x, y in runs])
            s = statistics(matrix, stat, band)
            keep = s["n"] > 0
            parts.append(
                pd.DataFrame(
                    {"group": group, "metric": metric, "x": grid[keep], "center": s["center"][keep],
                     "lo": s["lo"][keep], "hi": s["hi"][keep], "n": s["n"][keep]}
                )  # fmt: skip
            )
    frame = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=GROUP_COLUMNS)
    return frame, {g: len(r) for g, r in members.items()}


def natural_order(values) -> list[str]:
    """Distinct values sorted as people read them: numbers by value ("64" before "128")."""

    def key(text: str) -> list:
        return [(0, float(t), "") if _NUMBER.fullmatch(t) else (1, 0.0, t) for t in _TOKEN.findall(text)]

    return sorted({str(v) for v in values}, key=key)


_NUMBER = re.compile(r"[-+]?\d+(?:\.\d*)?(?:e[-+]?\d+)?", re.IGNORECASE)
_TOKEN = re.compile(r"[-+]?\d+(?:\.\d*)?(?:e[-+]?\d+)?|[^\d]+", re.IGNORECASE)


def legend_label(group: str, count: int) -> str:
    """``"dim=128 (n=12)"``: the group and how many runs it holds."""
    return f"{group} (n={count})"
