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
import pandas as pd

from sandbox.curves import charts, fairness, prepare
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
