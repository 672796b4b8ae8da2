"""Turn parsed logs into curves: x axis, trimming, smoothing, downsampling, summary.

Work is done per (run, metric) series on whole numpy columns of the parsed logs (a loop
over series, never over rows), so that a view of 50 runs × 10,000 rows never builds a
million-row table: only what is drawn (a few thousand points) becomes a DataFrame. The
full-resolution rows behind the chart are assembled on demand (CSV download).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from sandbox.curves import budget
from sandbox.curves.axes import X_AXES, XAxis
from sandbox.curves.fairness import metric_label, per_byte_factor
from sandbox.curves.smoothing import smooth
from sandbox.curves.summary import summary_row, summary_tables
from sandbox.curves.yrange import robust_range
from sandbox.zoo import logs
from sandbox.zoo.discovery import Run

# The drawing budget (`sandbox.curves.budget`): about TOTAL_POINTS points in all, shared by the
# drawn series, each drawn at most MAX_POINTS points.
MAX_POINTS, MIN_POINTS, TOTAL_POINTS = budget.MAX_POINTS, budget.MIN_POINTS, budget.TOTAL_POINTS


@dataclass(frozen=True)
class CurveSettings:
    """What the person chose to see; every field is a plain value (hashable, URL-able)."""

    runs: tuple[str, ...] = ()
    metrics: tuple[str, ...] = (logs.VAL_LOSS, logs.TRAIN_LOSS)
    x: str = "step"
    log_x: bool = False
    log_y: bool = False
    smoothing: float = 0.0  # TensorBoard's weight, in [0, 1)
    trim: float = 0.0  # percent of each series dropped from its start
    full_y: bool = False  # False: the y range ignores outliers (see robust_range); True: every point
    per_byte: bool = False  # per-token losses drawn as bits per byte (estimated from an evaluation)
    x_range: tuple[float, float] | None = None  # a zoomed x range, drawn at full detail within it
    group_by: tuple[str, ...] = ()  # config keys (or "experiment") runs are grouped by; () draws each run
    aggregate: str = "mean"  # a group's line: "mean" or "median" (`sandbox.curves.groups`)
    band: str = "minmax"  # a group's band: "minmax", "std", "ci95" or "none"
    color_by: str = ""  # a config key that colours the lines ("" : each run or group its own colour)


@dataclass
class _Series:
    """One drawn series: row indices into its run's log, and the values computed on them."""

    run: str
    metric: str
    rows: np.ndarray  # indices into the run's parsed log columns
    log: logs.RunLog
    x: np.ndarray  # x of every row of the run's log
    tokens: np.ndarray | None  # tokens seen of every row (logged or computed), if known
    smoothed: np.ndarray  # one per entry of ``rows``
    factor: float = 1.0  # logged value × factor = drawn value (bits per byte view)
    label: str = ""  # the metric as drawn (its name, or its bits-per-byte name)


@dataclass
class Curves:
    """The prepared view: downsampled points to draw, summary tables and notes.

    ``draw`` has one row per drawn point: run, metric, x, step, value (NaN at a gap),
    smoothed, tokens, and ``onset``/``marker_y`` where a NaN/inf stretch starts and the
    last finite value before it. :attr:`full` is every row behind the chart.
    """

    draw: pd.DataFrame
    summary: dict[str, pd.DataFrame]
    x_title: str
    notes: list[str] = field(default_factory=list)  # e.g. points hidden on a log axis
    unavailable: dict[str, str] = field(default_factory=dict)  # run -> why it has no x
    computed: dict[str, str] = field(default_factory=dict)  # run -> how its x was computed
    series: list[_Series] = field(default_factory=list, repr=False)
    labels: dict[str, str] = field(default_factory=dict)  # metric -> as drawn (see metric_label)
    y_domains: dict[str, tuple[float, float]] = field(default_factory=dict)  # label -> robust y range
    clipped: int = 0  # drawn values outside their panel's robust y range

    @property
    def full(self) -> pd.DataFrame:
        """Every row behind the chart (after x, trim and log-axis filtering), unsampled."""
        parts = []
        for s in self.series:
            cols = s.log.columns
            value = cols[s.metric][s.rows] * s.factor
            flags = s.log.nonfinite.get(s.metric)
            time = cols[logs.TIME_ELAPSED][s.rows] if logs.TIME_ELAPSED in cols else np.nan
            parts.append(
                pd.DataFrame(
                    {
                        "run": s.run,
                        "metric": s.label or s.metric,
                        "step": cols[logs.STEP][s.rows],
                        "time": time,
                        "tokens": s.tokens[s.rows] if s.tokens is not None else np.nan,
                        "x": s.x[s.rows],
                        "value": value,
                        "smoothed": s.smoothed,
                        "diverged": flags[s.rows] if flags is not None else False,
                    }
                )
            )
        if not parts:
            return pd.DataFrame(columns=FULL_COLUMNS)
        return pd.concat(parts, ignore_index=True)


FULL_COLUMNS = ["run", "metric", "step", "time", "tokens", "x", "value", "smoothed", "diverged"]


# ---------------------------------------------------------------------------------------
# Series helpers


def downsample_mask(values: np.ndarray, cap: int, x: np.ndarray | None = None, log_x: bool = False) -> np.ndarray:
    """Which points of one series to draw: the min and max of each pixel column, the ends and
    the start of every NaN/inf stretch, at most about ``cap`` points (`budget.minmax_mask`).

    Columns cut the series' x extent (``x``; by default the row index) into equal widths.
    """
    values = np.asarray(values, dtype=float)
    return budget.minmax_mask(np.arange(values.size) if x is None else x, values, cap, log_x)


def points_per_series(n_series: int) -> int:
    """The drawing cap for one series when ``n_series`` share the chart (`budget.points_per_series`)."""
    return budget.points_per_series(n_series)


# ---------------------------------------------------------------------------------------
# Preparing a view


def run_x(log: logs.RunLog, run: Run | None, axis: XAxis) -> tuple[np.ndarray | None, str, str]:
    """x of every row of one run's log (None if unavailable), how it was computed, why not.

    Rows without a value (a log row with an empty tokens cell) are NaN.
    """
    column = log.columns.get(axis.column)
    if column is not None and not np.isnan(column).all():
        return column, "", ""
    if axis.base is not None and axis.per_base is not None and run is not None:
        base_x, base_how, base_why = run_x(log, run, X_AXES[axis.base])
        if base_x is None:
            return None, "", base_why
        factor, how = axis.per_base(run)
        if factor is None:
            return None, "", how
        source = base_how or "logged"
        return base_x * factor, f"{how} × {X_AXES[axis.base].title.lower()} ({source})", ""
    if axis.per_step is None or run is None:
        return None, "", f"its log has no {axis.title.lower()} column"
    per_step, how = axis.per_step(run)
    if per_step is None:
        return None, "", how
    return log.columns[logs.STEP] * per_step, how, ""


def _take(column: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """``column[rows]`` for sorted, distinct ``rows``; the column itself when they are every row
    (the usual log: no copy of 10,000 values per series)."""
    return column if rows.size == column.size else column[rows]


def _outside(values: np.ndarray, domain: tuple[float, float]) -> int:
    """How many finite ``values`` lie outside ``domain`` (NaN compares False; inf is left out)."""
    outside = (values < domain[0]) | (values > domain[1])
    return int(np.isfinite(values[outside]).sum())


def _finite_or_nan(values: np.ndarray) -> np.ndarray:
    """``values`` with inf (a diverged value as logged) drawn as NaN, a gap."""
    return np.where(np.isfinite(values), values, np.nan)


def _onsets(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Where NaN/inf stretches start, and the last finite value before each (NaN if none)."""
    finite = np.isfinite(values)
    onset = ~finite & np.r_[True, finite[:-1]]
    last_finite = np.maximum.accumulate(np.where(finite, np.arange(values.size), -1))
    before = np.r_[-1, last_finite[:-1]]
    marker = np.where(before >= 0, values[np.maximum(before, 0)], np.nan)
    return onset, np.where(onset, marker, np.nan)


def prepare(
    logs_by_run: Mapping[str, logs.RunLog],
    runs: Mapping[str, Run],
    settings: CurveSettings,
    max_points: int | None = None,
    tokens_per_byte: Mapping[str, float] | None = None,
) -> Curves:
    """Curves of ``settings.runs`` × ``settings.metrics`` from their parsed logs.

    The summary uses every logged value of each series (no trim, no downsampling); the
    drawing uses the chosen x axis, trim and log-axis filters, smoothing on the full
    series, then at most ``max_points`` points per series (default: a share of a total
    budget, see :func:`points_per_series`). With ``settings.per_byte``, per-token losses
    are multiplied by each run's ``tokens_per_byte[run] / ln 2`` (runs without one are left
    out of those metrics, and said so). Unless ``settings.full_y``, each panel gets a
    :func:`robust_range`.
    """
    axis = X_AXES.get(settings.x, X_AXES["step"])
    run_ids = [rid for rid in settings.runs if rid in logs_by_run]
    metrics = list(settings.metrics)
    labels = {m: metric_label(m, settings.per_byte) for m in metrics}
    rates = tokens_per_byte or {}
    no_rate: list[str] = []
    drawn_values: dict[str, list[np.ndarray]] = {}
    n_series = sum(m in logs_by_run[rid].columns for rid in run_ids for m in metrics)
    cap = max_points or points_per_series(n_series)
    tips = budget.tips_per_series(n_series)
    notes: list[str] = []
    unavailable: dict[str, str] = {}
    computed: dict[str, str] = {}
    hidden_x = hidden_y = 0
    summary_rows: list[dict] = []
    series: list[_Series] = []
    draw: dict[str, list[np.ndarray]] = {k: [] for k in DRAW_COLUMNS}

    for run_code, rid in enumerate(run_ids):
        log = logs_by_run[rid]
        names = [m for m in metrics if m in log.columns]
        if not names or not log.rows:
            continue
        step = log.columns[logs.STEP]
        x, how, why = run_x(log, runs.get(rid), axis)
        x_ok = None if x is None else np.isfinite(x)
        if x_ok is not None and not x_ok.any():
            x, x_ok, why = None, None, f"no row of its log has a {axis.needs or axis.title.lower()} value"
        x_finite = x_ok is not None and bool(x_ok.all())
        if how:
            computed[rid] = how
        if why:
            unavailable[rid] = why
        elif x is not None and not x_finite:  # e.g. a last row without tokens
            missing = int((~x_ok).sum())
            notes.append(
                f"{rid}: {missing} of {x.size} log rows have no {axis.needs or axis.title.lower()} "
                f"value; they are not drawn against {axis.title.lower()}."
            )
        tokens = x if axis.key == "tokens" else run_x(log, runs.get(rid), X_AXES["tokens"])[0]
        for metric in names:
            value = log.columns[metric]
            factor = 1.0
            if labels[metric] != metric:  # bits per byte: needs the run's tokens per byte
                if rates.get(rid) is None:
                    no_rate.append(rid)
                    continue
                factor = per_byte_factor(rates[rid])
                value = value * factor
            flags = log.nonfinite.get(metric)
            present = np.isfinite(value) if flags is None else np.isfinite(value) | flags
            every = bool(present.all())  # the usual log: no copies of whole columns below
            if not every and not present.any():
                continue
            summary_rows.append(summary_row(rid, labels[metric], *((step, value) if every else (step[present], value[present]))))
            if x is None:
                continue
            rows = np.arange(value.size) if every and x_finite else np.flatnonzero(present & x_ok)
            rows = rows[int(len(rows) * settings.trim / 100.0) :]
            if settings.log_x:
                visible = x[rows] > 0
                hidden_x += int((~visible).sum())
                rows = rows[visible]
            if settings.log_y:
                visible = ~(value[rows] <= 0)  # NaN compares False: a gap stays a gap
                hidden_y += int((~visible).sum())
                rows = rows[visible]
            if rows.size == 0:
                continue
            smoothed = smooth(_take(value, rows), settings.smoothing)  # on the whole series, zoomed or not
            if settings.x_range is not None:  # zoomed: only the range is drawn, at full detail
                inside = budget.in_range(x[rows], settings.x_range)
                rows, smoothed = rows[inside], smoothed[inside]
                if rows.size == 0:
                    continue
            v = _take(value, rows)
            series.append(_Series(rid, metric, rows, log, x, tokens, smoothed, factor, labels[metric]))
            drawn_values.setdefault(labels[metric], []).append(v)
            pick = np.flatnonzero(downsample_mask(v, cap, _take(x, rows), settings.log_x)) if v.size > cap else slice(None)
            kept = rows[pick]
            draw["run"].append(np.full(kept.size, run_code, dtype=np.int32))
            draw["metric"].append(np.full(kept.size, metrics.index(metric), dtype=np.int32))
            draw["x"].append(x[kept])
            draw["step"].append(step[kept])
            draw["tokens"].append(tokens[kept] if tokens is not None else np.full(kept.size, np.nan))
            draw["value"].append(_finite_or_nan(v[pick]))
            draw["smoothed"].append(_finite_or_nan(smoothed[pick]))
            draw["tip"].append(budget.tip_mask(kept.size, tips))
            if every and flags is None:  # the usual case: every value finite, nothing diverged
                draw["onset"].append(np.zeros(kept.size, dtype=bool))
                draw["marker_y"].append(np.full(kept.size, np.nan))
            else:
                onset, marker = _onsets(v)
                draw["onset"].append(onset[pick])
                draw["marker_y"].append(marker[pick])

    if hidden_x:
        notes.append(f"{hidden_x} point(s) at x ≤ 0 are hidden on the log x axis.")
    if hidden_y:
        notes.append(f"{hidden_y} value(s) ≤ 0 are hidden on the log y axis.")
    if no_rate:
        notes.append(
            "Not drawn in bits per byte, no evaluation of its current weights is cached (the "
            f"Evaluation page makes one): {', '.join(dict.fromkeys(no_rate))}."
        )
    y_domains: dict[str, tuple[float, float]] = {}
    clipped = 0
    if not settings.full_y:
        for label, parts in drawn_values.items():
            domain = robust_range(parts, log=settings.log_y)
            if domain is not None:
                y_domains[label] = domain
                clipped += sum(_outside(values, domain) for values in parts)
    if clipped:
        notes.append(
            f"{clipped} value(s) lie outside the y range, which ignores outliers; "
            "switch on “Full y range” to see every value."
        )
    label_list = [labels[m] for m in metrics]
    return Curves(
        draw=_draw_frame(draw, run_ids, label_list),
        summary=summary_tables(summary_rows, run_ids, label_list),
        x_title=axis.title + (" (computed)" if computed and not axis.estimate else ""),
        notes=notes,
        unavailable=unavailable,
        computed=computed,
        series=series,
        labels=labels,
        y_domains=y_domains,
        clipped=clipped,
    )


DRAW_COLUMNS = ["run", "metric", "x", "step", "tokens", "value", "smoothed", "onset", "marker_y", "tip"]


def _draw_frame(parts: dict[str, list[np.ndarray]], run_ids: list[str], metrics: list[str]) -> pd.DataFrame:
    def column(name: str, dtype) -> np.ndarray:
        return np.concatenate(parts[name]) if parts[name] else np.array([], dtype=dtype)

    return pd.DataFrame(
        {
            "run": pd.Categorical.from_codes(column("run", np.int32), categories=run_ids),
            "metric": pd.Categorical.from_codes(column("metric", np.int32), categories=metrics),
            **{name: column(name, float) for name in ("x", "step", "tokens", "value", "smoothed")},
            "onset": column("onset", bool),
            "marker_y": column("marker_y", float),
            "tip": column("tip", bool),
        }
    )
