"""The Loss curves view: settings <-> URL, and logs -> curves -> chart, memoized.

The page is widgets and layout; this module decides what a link means and builds what
the page shows. A built view is kept for the same settings and the same log versions, so
a page that redraws every two seconds while nothing changed costs a dictionary lookup.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from functools import cached_property

import altair as alt
import numpy as np
import pandas as pd

from sandbox.curves import charts, fairness, groupchart, groups, groupview, prepare, runtable
from sandbox.curves.axes import X_AXES
from sandbox.curves.prepare import CurveSettings
from sandbox.evaluation.tokenrate import TokenRate, token_rates
from sandbox.figures import export
from sandbox.zoo import logread, logs
from sandbox.zoo.discovery import Run


class LossView:
    """Everything the page draws for one settings + log versions."""

    def __init__(self, settings: CurveSettings, runs: Sequence[Run], rates: Mapping[str, TokenRate] | None = None) -> None:
        self.settings = settings
        self.runs = {run.id: run for run in runs}
        self.logs = read_run_logs(runs)
        self.rates = dict(rates or {})  # tokens per byte by run (bits-per-byte view only)
        per_byte = {rid: r.tokens_per_byte for rid, r in self.rates.items()}
        self.curves = prepare.prepare(self.logs, self.runs, settings, tokens_per_byte=per_byte)
        self.configs = runtable.run_configs(runs)  # scalar config values by run (kept per file stamps)
        self.config_keys = groups.differing_keys(self.configs)  # what tells the plotted runs apart
        self._label_runs()

    @cached_property
    def run_config(self) -> dict[str, str]:
        """Each run's config keys that differ between the plotted runs, as its tooltip names them."""
        if not self.config_keys:
            return {}
        return {rid: groups.describe(self.configs.get(rid, {}), self.config_keys) for rid in self.runs}

    def _label_runs(self) -> None:
        """``color_by`` colours the runs by one config key's value (a column of the drawing)."""
        draw = self.curves.draw
        if draw.empty:
            return
        key = self.settings.color_by
        if key and not self.grouped:
            draw["color"] = draw["run"].map({rid: groups.shown_value(self.configs.get(rid, {}).get(key)) for rid in self.runs}).astype(str)

    @property
    def grouped(self) -> bool:
        """Whether runs are drawn as groups (a line and a band per group)."""
        return bool(self.settings.group_by)

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
            color_by=s.color_by,
            run_config=self.run_config,
        )

    @cached_property
    def chart(self) -> alt.TopLevelMixin:
        """The Altair chart of the drawn (downsampled) curves, or of the groups' lines."""
        if self.grouped:
            return self._group_chart()
        return charts.loss_chart(self.curves.draw, **self._chart_options())

    @cached_property
    def group_data(self) -> tuple[pd.DataFrame, dict[str, int]]:
        """The groups' lines (`groups.aggregate`, with ``label`` and ``color``) and run counts."""
        return groupview.group_lines(self)

    def _group_chart(self) -> alt.TopLevelMixin:
        s = self.settings
        frame, _ = self.group_data
        labels = [self.curves.labels.get(m, m) for m in s.metrics]
        return groupchart.group_chart(
            frame, metrics=labels, x_key=s.x, x_title=self.curves.x_title, log_x=s.log_x, log_y=s.log_y,
            band=s.band != "none", color_title=s.color_by or " · ".join(s.group_by),
            band_title=groups.BANDS.get(s.band, s.band), y_domains=None if s.full_y else groupview.y_domains(frame),
        )  # fmt: skip

    @cached_property
    def group_notes(self) -> list[str]:
        """Sentences under a grouped chart: how lines are made, groups that mix tokenizers."""
        return groupview.notes(self) if self.grouped else []

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
        if self.grouped:
            return export.inline_spec(self.chart, validate=False)
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


def x_extent(runs: Sequence[Run], settings: CurveSettings) -> tuple[float, float] | None:
    """The smallest and largest x of these runs' logs on the settings' x axis (None when no
    run has one): the bounds of the page's x-range control. On a log axis only x > 0 count."""
    axis = X_AXES.get(settings.x, X_AXES["step"])
    lo, hi = np.inf, -np.inf
    by_id = {run.id: run for run in runs}
    for rid, log in read_run_logs(runs).items():
        x = prepare.run_x(log, by_id[rid], axis)[0] if log.rows else None
        if x is None:
            continue
        x = x[np.isfinite(x) & ((x > 0) if settings.log_x else True)]
        if x.size:
            lo, hi = min(lo, float(x.min())), max(hi, float(x.max()))
    return (lo, hi) if lo <= hi else None


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
