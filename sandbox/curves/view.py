"""The Loss curves view: settings <-> URL, and logs -> curves -> chart, memoized.

The page is widgets and layout; this module decides what a link means and builds what
the page shows. A built view is kept for the same settings and the same log versions, so
a page that redraws every two seconds while nothing changed costs a dictionary lookup.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from functools import cached_property

import altair as alt
import pandas as pd

from sandbox import querystate, text
from sandbox.curves import charts, fairness, prepare
from sandbox.curves.axes import X_AXES
from sandbox.curves.prepare import CurveSettings
from sandbox.evaluation.tokenrate import TokenRate, token_rates
from sandbox.figures import export
from sandbox.zoo import logread, logs
from sandbox.zoo.discovery import Run

MAX_SMOOTHING = 0.99
MAX_TRIM = 90.0
DEFAULT_METRICS = (logs.VAL_LOSS, logs.TRAIN_LOSS)
# The page's own URL parameters; any other parameter belongs to the app (e.g. screenshot
# mode) and is left alone.
QUERY_KEYS = ("run", "metric", "x", "logx", "logy", "smooth", "trim", "yrange", "unit")
Y_RANGES = ("robust", "full")  # the y range ignores outliers, or shows every value
UNITS = ("token", "byte")  # losses as logged (nats per token), or in bits per byte (estimated)


class LossView:
    """Everything the page draws for one settings + log versions."""

    def __init__(self, settings: CurveSettings, runs: Sequence[Run], rates: Mapping[str, TokenRate] | None = None) -> None:
        self.settings = settings
        self.runs = {run.id: run for run in runs}
        self.logs = read_run_logs(runs)
        self.rates = dict(rates or {})  # tokens per byte by run (bits-per-byte view only)
        per_byte = {rid: r.tokens_per_byte for rid, r in self.rates.items()}
        self.curves = prepare.prepare(self.logs, self.runs, settings, tokens_per_byte=per_byte)

    @property
    def log_notes(self) -> dict[str, tuple[str, ...]]:
        """Problems found in each run's log, as sentences (runs without problems left out)."""
        return {rid: log.notes for rid, log in self.logs.items() if log.notes}

    def _chart_options(self) -> dict:
        s = self.settings
        return dict(
            metrics=[self.curves.labels.get(m, m) for m in s.metrics],
            x_key=s.x,
            x_title=self.curves.x_title,
            log_x=s.log_x,
            log_y=s.log_y,
            smoothed=s.smoothing > 0,
            run_ids=list(s.runs),
            robust_y=not s.full_y,
            y_domains=self.curves.y_domains,
        )

    @cached_property
    def chart(self) -> alt.TopLevelMixin:
        """The Altair chart of the drawn (downsampled) curves."""
        return charts.loss_chart(self.curves.draw, **self._chart_options())

    @cached_property
    def summary(self) -> dict[str, pd.DataFrame]:
        """Per metric (as drawn), one row per run (final, best, rank, ...) from the full logs.

        Where runs with different tokenizers are ranked by a per-token metric, a
        ``tokenizer`` column says which is which (see :attr:`rank_notes`).
        """
        out = {}
        for label, table in self.curves.summary.items():
            if fairness.is_per_token(label):
                tokenizers = table["run"].astype(str).map(lambda rid: fairness.tokenizer_of(self.runs[rid]) if rid in self.runs else None)
                if tokenizers.nunique(dropna=True) > 1:
                    table = table.assign(tokenizer=tokenizers.fillna("?"))
            out[label] = table
        return out

    @cached_property
    def rank_notes(self) -> dict[str, list[str]]:
        """Per metric (as drawn), sentences on what makes its ranking unfair or estimated.

        Plain text: run ids, tokenizer names and data paths come from files.
        """
        notes: dict[str, list[str]] = {}
        for label, table in self.curves.summary.items():
            ranked = [str(rid) for rid in table["run"]]
            said = fairness.comparability_notes(self.runs, ranked, label)
            if label.endswith(fairness.PER_BYTE_SUFFIX):
                rates = ", ".join(
                    f"{rid} {self.rates[rid].tokens_per_byte:.3f}" for rid in ranked if rid in self.rates
                )
                said.insert(
                    0,
                    "Bits per byte estimated from an evaluation: the logged loss (nats per token) × "
                    f"tokens per byte of the text each run was evaluated on / ln 2 (tokens per byte: {rates}).",
                )
            if said:
                notes[label] = said
        return notes

    @cached_property
    def spec(self) -> dict:
        """The chart's standalone Vega-Lite spec, data inline (what PNG/SVG are made from)."""
        return charts.loss_spec(self.curves.draw, **self._chart_options())

    # Downloads: called only when the person clicks (Streamlit's deferred download data).
    def png(self) -> bytes:
        """The chart as PNG (rendered offline by vl-convert)."""
        return export.spec_to_png(self.spec)

    def svg(self) -> str:
        """The chart as SVG (rendered offline by vl-convert)."""
        return export.spec_to_svg(self.spec)

    def csv(self) -> bytes:
        """Every row behind the chart, at full resolution, as CSV."""
        return export.to_csv(self.curves.full)


_MEMO: OrderedDict[tuple, LossView] = OrderedDict()
_MEMO_LOCK = threading.Lock()
_MEMO_SIZE = 16


def build(runs: Sequence[Run], settings: CurveSettings, versions: tuple | None = None) -> LossView:
    """The view of ``runs`` for ``settings``, rebuilt only when a log or a setting changed.

    ``versions`` identifies the logs' current contents (e.g. a file watcher's change
    counters); by default their (size, mtime) are used, which costs one stat per log.
    """
    if versions is None:
        versions = tuple(logread.file_stamp(run.log_path) for run in runs)
    # The bits-per-byte view also depends on the runs' cached evaluations.
    rates = token_rates(runs) if settings.per_byte else {}
    key = (settings, tuple(str(run.log_path) for run in runs), versions, tuple(sorted(rates.items())))
    with _MEMO_LOCK:
        view = _MEMO.get(key)
        if view is not None:
            _MEMO.move_to_end(key)
            return view
    view = LossView(settings, runs, rates)
    with _MEMO_LOCK:
        _MEMO[key] = view
        while len(_MEMO) > _MEMO_SIZE:
            _MEMO.popitem(last=False)
    return view


def clear_memo() -> None:
    """Forget every built view (tests, benchmarks)."""
    with _MEMO_LOCK:
        _MEMO.clear()


# ---------------------------------------------------------------------------------------
# Settings and the URL


def default_settings(run_ids: Sequence[str], metric_options: Sequence[str]) -> CurveSettings:
    """All runs that have logs, validation and train loss (or the first metric there is)."""
    metrics = tuple(m for m in DEFAULT_METRICS if m in metric_options) or tuple(metric_options[:1])
    return CurveSettings(runs=tuple(run_ids), metrics=metrics)


def settings_from_query(
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
    raw_runs = querystate.as_list(params.get("run"))
    no_log = [r for r in raw_runs if r in set(all_run_ids) and r not in set(run_ids)]
    runs, bad = querystate.parse_choices(
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
    metrics, bad = querystate.parse_choices(
        params.get("metric"), options, what="metric", why="the chosen runs do not log it"
    )
    warnings += bad
    x, warn_x = querystate.parse_choice(
        params.get("x"), X_AXES, "step", what="x axis", why=f"use one of {', '.join(X_AXES)}"
    )
    log_x, warn_lx = querystate.parse_bool(params.get("logx"), False, what="log x")
    log_y, warn_ly = querystate.parse_bool(params.get("logy"), False, what="log y")
    smoothing, warn_s = querystate.parse_number(
        params.get("smooth"), 0.0, MAX_SMOOTHING, 0.0, what="smoothing"
    )
    trim, warn_t = querystate.parse_number(params.get("trim"), 0.0, MAX_TRIM, 0.0, what="trim")
    yrange, warn_yr = querystate.parse_choice(
        params.get("yrange"), Y_RANGES, "robust", what="y range", why=f"use one of {', '.join(Y_RANGES)}"
    )
    unit, warn_u = querystate.parse_choice(
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


def settings_to_query(settings: CurveSettings) -> dict[str, list[str]]:
    """Query parameters that :func:`settings_from_query` turns back into ``settings``.

    Every value is a list (repeated parameters), the shape ``st.query_params.get_all``
    reads back, so that the page can compare what is in the URL with what it wrote.
    """
    return {
        "run": list(settings.runs),
        "metric": list(settings.metrics),
        "x": [settings.x],
        "logx": ["1" if settings.log_x else "0"],
        "logy": ["1" if settings.log_y else "0"],
        "smooth": [f"{settings.smoothing:g}"],
        "trim": [f"{settings.trim:g}"],
        "yrange": ["full" if settings.full_y else "robust"],
        "unit": ["byte" if settings.per_byte else "token"],
    }


def metric_options(run_ids: Sequence[str], runs: Mapping[str, Run]) -> list[str]:
    """Metrics logged by any of ``run_ids`` (canonical first); reads are cached per file."""
    chosen = [runs[rid] for rid in run_ids if rid in runs]
    return logs.metric_names(read_run_logs(chosen).values())


def read_run_logs(runs: Sequence[Run]) -> dict[str, logs.RunLog]:
    """``{run id: RunLog}``, each log confined to its run's models directory (parsed in
    parallel per directory; the app has one)."""
    out: dict[str, logs.RunLog] = {}
    for root in dict.fromkeys(run.models_root for run in runs):
        out.update(logread.read_logs({run.id: run.log_path for run in runs if run.models_root == root}, root))
    return {run.id: out[run.id] for run in runs}
