"""Loss curves: the training logs of any runs overlaid, smoothed, live and exportable.

Widgets and layout only: reading logs, the URL, curves and charts live in `sandbox`.
"""

from __future__ import annotations

import pandas as pd
import streamlit as st

from pages import common
from sandbox.curves import livewatch
from sandbox.curves import view as lossview
from sandbox.curves.axes import X_AXES
from sandbox.curves.prepare import CurveSettings
from sandbox.curves.summary import goal
from sandbox.figures.colors import run_color
from sandbox.text import md_escape
from sandbox.urlstate import loss_curves as url
from sandbox.zoo.discovery import Run

common.require_access()

LIVE_SECONDS = 2.0  # how often the chart looks for new log rows while the tab is open

st.title("Loss curves")
st.caption(
    "Training logs of any runs from any experiments in one chart. Click a legend entry to "
    "highlight a run; scroll to zoom the x axis, drag to pan, double-click to reset."
)

ss = st.session_state
runs = {run.id: run for exp in common.experiments() for run in exp.runs}
with_logs = [rid for rid, run in runs.items() if run.log_path.is_file()]
watcher = livewatch.shared_watcher(common.models_dir())
ss["lc_tree"] = watcher.tree_version()  # the live part reruns the page when this moves

if not with_logs:
    st.info(
        "No run in the models directory has a training log (`log_data.csv`) yet. "
        "Runs appear here as soon as they log their first row."
    )
    st.stop()


def metric_options(run_ids) -> list[str]:
    return lossview.metric_options(run_ids, runs)


# -- the URL -> the widgets: on the first visit, and whenever the link was changed ------------
current = {key: st.query_params.get_all(key) for key in st.query_params}
mine = {k: v for k, v in current.items() if k in url.QUERY_KEYS}
if mine != ss.get("lc_url"):
    if mine:
        linked, warnings = url.from_query(
            mine, with_logs, metric_options, all_run_ids=list(runs)
        )
    else:
        linked, warnings = url.default_settings(with_logs, metric_options(with_logs)), []
    ss.update(
        lc_runs=list(linked.runs),
        lc_metrics=list(linked.metrics),
        lc_x=linked.x,
        lc_logx=linked.log_x,
        lc_logy=linked.log_y,
        lc_smooth=linked.smoothing,
        lc_trim=linked.trim,
        lc_fully=linked.full_y,
        lc_perbyte=linked.per_byte,
    )
    for warning in warnings:
        st.warning(warning, icon=":material/link_off:")
elif set(ss.get("lc_runs", [])) == set(ss.get("lc_all", [])):
    ss["lc_runs"] = with_logs  # "all runs" stays all runs when a new one starts logging
ss["lc_all"] = with_logs
# A run whose log went away cannot stay selected (the widget would refuse the value).
gone = [r for r in ss.get("lc_runs", []) if r not in with_logs]
ss["lc_runs"] = [r for r in ss.get("lc_runs", []) if r in with_logs]
if gone:
    st.info(f"No longer shown, its run folder or log went away: {md_escape(', '.join(gone))}.", icon=":material/info:")

# -- the widgets ------------------------------------------------------------------------------
top = st.columns([3, 2])
picked = top[0].multiselect("Runs", with_logs, key="lc_runs", placeholder="Choose runs")
options = metric_options(picked or with_logs)
ss["lc_metrics"] = [m for m in ss.get("lc_metrics", []) if m in options]
metrics = top[1].multiselect("Metrics", options, key="lc_metrics", placeholder="Choose metrics")
row = st.columns([3, 1, 1, 2, 2], vertical_alignment="bottom")
x_key = row[0].radio(
    "X axis", list(X_AXES), format_func=lambda k: X_AXES[k].title, horizontal=True, key="lc_x"
)
log_x = row[1].toggle("Log x", key="lc_logx")
log_y = row[2].toggle("Log y", key="lc_logy")
smoothing = row[3].slider(
    "Smoothing", 0.0, url.MAX_SMOOTHING, step=0.01, key="lc_smooth",
    help="TensorBoard's debiased exponential moving average; the raw curve stays faded behind.",
)  # fmt: skip
trim = row[4].slider(
    "Trim first %", 0.0, url.MAX_TRIM, step=1.0, key="lc_trim",
    help="Hide the first part of every curve (the steep start squashes the rest).",
)  # fmt: skip
scale_row = st.columns([1, 1, 3])
full_y = scale_row[0].toggle(
    "Full y range", key="lc_fully",
    help="Off: the y range ignores outliers (like TensorBoard), so one run starting far above "
    "the others does not squash them; values beyond it are cut off, and counted below the chart.",
)  # fmt: skip
per_byte = scale_row[1].toggle(
    "Bits per byte", key="lc_perbyte",
    help="Train and validation loss (nats per token) × tokens per byte / ln 2, comparable across "
    "tokenizers. Tokens per byte come from the run's cached evaluation (Evaluation page): an estimate.",
)  # fmt: skip

settings = CurveSettings(
    runs=tuple(picked),
    metrics=tuple(metrics),
    x=x_key,
    log_x=log_x,
    log_y=log_y,
    smoothing=float(smoothing),
    trim=float(trim),
    full_y=full_y,
    per_byte=per_byte,
)
wanted = url.to_query(settings)
common.sync_query_params(wanted, url.QUERY_KEYS)
# Remember the URL as it reads back: an emptied list ("Clear all") is no parameter at all,
# and must not look like a changed link on the next run (which would bring every run back).
ss["lc_url"] = {k: v for k, v in wanted.items() if v}


# -- the live part: redrawn every LIVE_SECONDS, reading only logs that changed -----------------
def show(view: lossview.LossView) -> None:
    """Chart, notes and summary tables of one built view."""
    curves = view.curves
    if curves.unavailable:
        listed = "; ".join(f"**{md_escape(rid)}**: {md_escape(why)}" for rid, why in curves.unavailable.items())
        title = X_AXES[view.settings.x].title.lower()
        st.info(f"Not drawn against {title}: {listed}.", icon=":material/info:")
    for rid, how in curves.computed.items():
        st.caption(f"{curves.x_title} of **{md_escape(rid)}** computed from its configs: {md_escape(how)}.")
    if curves.draw.empty:
        st.info("Nothing to draw for this choice (no logged values, or all trimmed away).")
    else:
        common.altair_chart(
            view.chart, key="lc_chart", width="stretch" if len(view.settings.metrics) == 1 else "content"
        )
    for note in curves.notes:
        st.caption(md_escape(note))
    log_notes = [note for notes in view.log_notes.values() for note in notes]
    if log_notes:
        with st.expander(f"{len(log_notes)} note(s) about these logs", icon=":material/warning:"):
            st.markdown("\n".join(f"- {md_escape(note)}" for note in log_notes))  # headers are data

    for metric, table in view.summary.items():
        best = {"min": "best = lowest", "max": "best = highest"}.get(goal(metric), "no best value")
        st.markdown(f"**{md_escape(metric)}** · {best} · from the full logs")
        st.dataframe(_styled(table), hide_index=True, width="stretch")
        for note in view.rank_notes.get(metric, []):
            st.caption(f":material/warning: {md_escape(note)}")


def _styled(table: pd.DataFrame):
    """Run names in their chart colour; a diverged final value reads "nan" or "inf".

    Streamlit shows a missing number as "None", so the two columns where a missing or
    non-finite value means something are shown as text.
    """
    text = table.assign(
        final=table["final"].map("{:.4g}".format),
        **{"diverged at step": table["diverged at step"].map(lambda v: "" if pd.isna(v) else f"{v:,.0f}")},
    )
    return text.style.map(lambda rid: f"color: {run_color(str(rid))}", subset=["run"]).format(
        {"best": "{:.4g}", "best step": "{:,.0f}", "final step": "{:,.0f}"}, na_rep=""
    )


@st.fragment(run_every=LIVE_SECONDS)
def live(settings: CurveSettings, chosen: list[Run]) -> None:
    """The chart and tables, redrawn from the logs that changed since the last tick."""
    if watcher.tree_version() != ss.get("lc_tree"):
        st.rerun()  # a run or a log appeared or went: the picker above must change too
    versions = watcher.versions(run.log_path for run in chosen)
    show(lossview.build(chosen, settings, versions))
    st.caption(
        f"Live: redrawn when a log changes (checked every {LIVE_SECONDS:g} s, "
        f"{'file watcher' if watcher.mode == 'watchdog' else 'polling'})."
        + (f" {md_escape(watcher.reason)}." if watcher.reason else "")
    )


def downloads(settings: CurveSettings, chosen: list[Run]) -> None:
    """Download buttons, outside the live part: a fragment rerun every two seconds would
    replace a button's file while a click is on its way. The files are made on click, from
    the logs as they are then."""

    def latest() -> lossview.LossView:
        return lossview.build(chosen, settings)

    with st.container(horizontal=True):
        st.download_button(
            "Chart as PNG", lambda: latest().png(), "loss_curves.png", "image/png",
            key="lc_png", on_click="ignore", icon=":material/image:",
        )  # fmt: skip
        st.download_button(
            "Chart as SVG", lambda: latest().svg(), "loss_curves.svg", "image/svg+xml",
            key="lc_svg", on_click="ignore", icon=":material/image:",
        )  # fmt: skip
        st.download_button(
            "Data as CSV", lambda: latest().csv(), "loss_curves.csv", "text/csv",
            key="lc_csv", on_click="ignore", icon=":material/table:",
        )  # fmt: skip


if not picked:
    st.info("Choose at least one run.")
elif not metrics:
    st.info("Choose at least one metric.")
else:
    chosen = [runs[rid] for rid in picked]
    if x_key == "flops":  # the estimate needs each run's non-embedding parameters
        with st.spinner("Counting parameters…"):
            common.cost_rows(chosen)
    live(settings, chosen)
    downloads(settings, chosen)
    if st.toggle("Loss against size and compute (one point per run)", key="lc_scaling"):
        from sandbox.zoo.accounting import FORMULA

        st.caption(f"Final validation loss of each run; compute estimated as {FORMULA}, times tokens seen.")
        common.scaling_charts(common.cost_rows([run for run in chosen if run.weights.is_file()]))
