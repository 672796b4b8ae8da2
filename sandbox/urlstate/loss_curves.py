"""The Loss curves page's settings and their URL form.

A link is a request from anyone: runs and metrics are matched against what is on disk and
logged, numbers against the widgets' ranges (`sandbox.urlstate.parse`); anything else is
ignored with a warning sentence.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace

from sandbox import text
from sandbox.curves.axes import X_AXES
from sandbox.curves.prepare import CurveSettings
from sandbox.urlstate import parse
from sandbox.zoo import logs

MAX_SMOOTHING = 0.99
MAX_TRIM = 90.0
DEFAULT_METRICS = (logs.VAL_LOSS, logs.TRAIN_LOSS)
# The page's own URL parameters; any other parameter belongs to the app (e.g. screenshot
# mode) and is left alone.
RUNS_KEYS = ("runs", "run")  # the list of runs; "run" is its older name, still read from links
QUERY_KEYS = (*RUNS_KEYS, "metric", "x", "logx", "logy", "smooth", "trim", "yrange", "unit")
Y_RANGES = ("robust", "full")  # the y range ignores outliers, or shows every value
UNITS = ("token", "byte")  # losses as logged (nats per token), or in bits per byte (estimated)


# ---------------------------------------------------------------------------------------
# Settings and the URL


def default_settings(run_ids: Sequence[str], metric_options: Sequence[str]) -> CurveSettings:
    """All runs that have logs, validation and train loss (or the first metric there is)."""
    metrics = tuple(m for m in DEFAULT_METRICS if m in metric_options) or tuple(metric_options[:1])
    return CurveSettings(runs=tuple(run_ids), metrics=metrics)


def from_query(
    params: Mapping[str, Sequence[str]],
    run_ids: Sequence[str],
    metric_options: Callable[[Sequence[str]], Sequence[str]],
    *,
    all_run_ids: Sequence[str] = (),
) -> tuple[CurveSettings, list[str]]:
    """Settings from a link's query parameters, and a warning per value that was ignored.

    ``run_ids`` are the runs that can be drawn (they have a log); ``all_run_ids`` every
    run found, so that a run without a log yet gets its own explanation.
    ``metric_options(runs)`` lists the metrics those runs log. Anything missing or invalid
    falls back to :func:`default_settings`.
    """
    warnings: list[str] = []
    raw_runs = parse.as_list(parse.first_present(params, *RUNS_KEYS)[1])
    no_log = [r for r in raw_runs if r in set(all_run_ids) and r not in set(run_ids)]
    runs, bad = parse.parse_choices(
        [r for r in raw_runs if r not in no_log],
        run_ids,
        what="run",
        why="it is not a run found in the models directory",
    )
    warnings += bad
    warnings += [f"Run {text.shown(r)} has no training log yet; it is not drawn." for r in no_log]
    if not runs:
        runs = list(run_ids)
    options = list(metric_options(runs))
    defaults = default_settings(runs, options)
    metrics, bad = parse.parse_choices(
        params.get("metric"), options, what="metric", why="the chosen runs do not log it"
    )
    warnings += bad
    x, warn_x = parse.parse_choice(
        params.get("x"), X_AXES, "step", what="x axis", why=f"use one of {', '.join(X_AXES)}"
    )
    log_x, warn_lx = parse.parse_bool(params.get("logx"), False, what="log x")
    log_y, warn_ly = parse.parse_bool(params.get("logy"), False, what="log y")
    smoothing, warn_s = parse.parse_number(
        params.get("smooth"), 0.0, MAX_SMOOTHING, 0.0, what="smoothing"
    )
    trim, warn_t = parse.parse_number(params.get("trim"), 0.0, MAX_TRIM, 0.0, what="trim")
    yrange, warn_yr = parse.parse_choice(
        params.get("yrange"), Y_RANGES, "robust", what="y range", why=f"use one of {', '.join(Y_RANGES)}"
    )
    unit, warn_u = parse.parse_choice(
        params.get("unit"), UNITS, "token", what="unit", why=f"use one of {', '.join(UNITS)}"
    )
    warnings += [w for w in (warn_x, warn_lx, warn_ly, warn_s, warn_t, warn_yr, warn_u) if w]
    settings = replace(
        defaults,
        metrics=tuple(metrics) or defaults.metrics,
        x=x,
        log_x=log_x,
        log_y=log_y,
        smoothing=smoothing,
        trim=trim,
        full_y=yrange == "full",
        per_byte=unit == "byte",
    )
    return settings, warnings


def to_query(settings: CurveSettings) -> dict[str, list[str]]:
    """Query parameters that :func:`from_query` turns back into ``settings``.

    Every value is a list (repeated parameters), the shape ``st.query_params.get_all``
    reads back, so that the page can compare what is in the URL with what it wrote.
    """
    return {
        "runs": list(settings.runs),
        "metric": list(settings.metrics),
        "x": [settings.x],
        "logx": ["1" if settings.log_x else "0"],
        "logy": ["1" if settings.log_y else "0"],
        "smooth": [f"{settings.smoothing:g}"],
        "trim": [f"{settings.trim:g}"],
        "yrange": ["full" if settings.full_y else "robust"],
        "unit": ["byte" if settings.per_byte else "token"],
    }
