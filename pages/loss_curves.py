"""Loss curves: the training logs of any runs overlaid, smoothed, live and exportable.

Widgets and layout only: reading logs, the URL, curves and charts live in `sandbox`.
"""

from __future__ import annotations

from dataclasses import replace

import pandas as pd
import streamlit as st

from pages import common
from sandbox.curves import fairness, groups, groupview, livewatch, runtable
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
MANY_RUNS = 30  # beyond this, the run picker folds away: the runs table finds and picks runs
STYLED_ROWS = 50  # summary tables colour run names up to this many rows (styling is slow)

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


def config_keys(run_ids) -> list[str]:
    """Config keys whose values differ between these runs: what they can be grouped or coloured by."""
    return groups.differing_keys(runtable.run_configs([runs[r] for r in run_ids if r in runs]))


# -- the URL -> the widgets: on the first visit, and whenever the link was changed ------------
current = {key: st.query_params.get_all(key) for key in st.query_params}
mine = {k: v for k, v in current.items() if k in url.QUERY_KEYS}
if mine != ss.get("lc_url"):
    if mine:
        linked, warnings = url.from_query(
            mine, with_logs, metric_options, all_run_ids=list(runs), config_keys=config_keys
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
        lc_group=list(linked.group_by),
        lc_agg=linked.aggregate,
        lc_band=linked.band,
        lc_color=linked.color_by,
        lc_xrange=linked.x_range,
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

# -- the runs table: find runs, pick the plotted ones -----------------------------------------
def _pick_from_table() -> None:
    """Rows selected in the table become the plotted runs (before the script runs, so the
    picker below shows them)."""
    ids = ss.get("lc_table_ids", [])
    chosen = {ids[i] for i in ss["lc_table"]["selection"]["rows"] if i < len(ids)}
    if chosen:
        ss["lc_runs"] = [r for r in ss.get("lc_all", []) if r in chosen]


def _plot_filtered() -> None:
    shown = set(ss.get("lc_table_ids", []))
    ss["lc_runs"] = [r for r in ss.get("lc_all", []) if r in shown]


def runs_table() -> None:
    """Search, filter and sort every run with a log; selecting rows plots them."""
    table = runtable.runs_table([runs[r] for r in with_logs])
    search = st.text_input(
        "Search runs", key="lc_search", placeholder="run id, experiment or key=value, e.g. dim=128|dim=256",
        help="A regular expression (case-insensitive) searched in the run id, experiment and config values.",
    )  # fmt: skip
    keys = [k for k in runtable.config_columns(table) if table[k].nunique() <= 30]
    chosen = {}
    for i, col in enumerate(st.columns(min(len(keys), 4)) * (len(keys) // 4 + 1) if keys else []):
        if i < len(keys):
            options = groups.natural_order(table[keys[i]])
            # A widget label is Markdown, and a config key is text from a file.
            chosen[keys[i]] = col.multiselect(md_escape(keys[i]), options, key=f"lc_f_{keys[i]}", placeholder="any")
    row = st.columns([2, 1, 2], vertical_alignment="bottom")
    by = row[0].selectbox("Sort by", runtable.SORTABLE, key="lc_sort")
    descending = row[1].toggle("Descending", key="lc_desc")
    shown, warning = runtable.filter_table(table, search, chosen)
    shown = runtable.sort_table(shown, by, descending)
    if warning:
        st.warning(md_escape(warning), icon=":material/search_off:")
    ss["lc_table_ids"] = list(shown["run"])
    row[2].button(
        f"Plot all {len(shown):,} filtered", key="lc_plot_filtered", on_click=_plot_filtered,
        disabled=shown.empty, icon=":material/stacked_line_chart:",
    )  # fmt: skip
    st.dataframe(
        shown, key="lc_table", on_select=_pick_from_table, selection_mode="multi-row", hide_index=True,
        width="stretch", height=min(38 + 35 * len(shown), 390),
        column_config={
            **{c: st.column_config.NumberColumn(c, format="%.4f") for c in ("best val loss", "final val loss", "smoothed val loss")},
            "smoothed val loss": st.column_config.NumberColumn(
                "smoothed val loss", format="%.4f", help=f"Last value of the EMA with weight {runtable.SMOOTHING}"
            ),
            "tokens seen": st.column_config.NumberColumn(format="%.3e"),
            "parameters": st.column_config.NumberColumn(format="%d", help="Counted when a worker loaded the run (Models page); blank until then."),
        },
    )  # fmt: skip
    st.caption(f"{len(shown):,} of {len(table):,} runs. Select rows to plot them.")
    for note in fairness.comparability_notes(runs, list(shown["run"]), "validation loss"):
        st.caption(f":material/warning: {md_escape(note)}")



# -- the widgets ------------------------------------------------------------------------------
top = st.columns([3, 2])
many = len(with_logs) > MANY_RUNS
with top[0].expander(f"Runs ({len(ss.get('lc_runs', [])):,} plotted)") if many else top[0]:
    picked = st.multiselect("Runs", with_logs, key="lc_runs", placeholder="Choose runs")
    if many:
        st.caption("Or find them in **Find runs**, the table at the bottom of the page.")
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

keys = config_keys(picked)
group_row = st.columns([3, 1, 2, 2])
ss["lc_group"] = [k for k in ss.get("lc_group", []) if k in [groups.EXPERIMENT, *keys]]
group_by = group_row[0].multiselect(
    "Group by", [groups.EXPERIMENT, *keys], key="lc_group", placeholder="No grouping: one line per run",
    help="One line per group (mean or median of its runs) with a band. Keys offered: those whose values differ between the chosen runs.",
)  # fmt: skip
aggregate = group_row[1].selectbox("Line", groups.STATS, key="lc_agg", disabled=not group_by)
band = group_row[2].selectbox("Band", list(groups.BANDS), format_func=groups.BANDS.get, key="lc_band", disabled=not group_by)
if ss.get("lc_color") not in ["", *keys]:
    ss["lc_color"] = ""
color_by = group_row[3].selectbox("Colour by", ["", *keys], format_func=lambda k: k or "each run / group", key="lc_color")

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
    group_by=tuple(group_by),
    aggregate=aggregate or "mean",
    band=band or "minmax",
    color_by=color_by or "",
)
if picked and metrics:  # the x range: zoom in and the curves are drawn in full detail there
    extent = lossview.x_extent([runs[r] for r in picked], settings)
    if extent is not None and extent[1] > extent[0]:
        lo, hi = extent
        old = ss.get("lc_xrange")
        if not (isinstance(old, tuple | list) and len(old) == 2 and lo <= old[0] < old[1] <= hi):
            ss["lc_xrange"] = (lo, hi)
        zoom = st.slider(
            "X range", lo, hi, key="lc_xrange", step=(hi - lo) / 500, format="%.4g",
            help="Zoom in: the curves are drawn again from every logged point inside the range.",
        )  # fmt: skip
        if zoom[0] > lo or zoom[1] < hi:
            settings = replace(settings, x_range=(float(zoom[0]), float(zoom[1])))
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
    for note in curves.notes + view.group_notes:
        st.caption(md_escape(note))
    if not view.grouped and len(view.runs) > MANY_RUNS:
        st.caption(f"{len(view.runs):,} runs overlap: **Group by** a config key draws one line and band per group.")
    log_notes = [note for notes in view.log_notes.values() for note in notes]
    if log_notes:
        with st.expander(f"{len(log_notes)} note(s) about these logs", icon=":material/warning:"):
            st.markdown("\n".join(f"- {md_escape(note)}" for note in log_notes))  # headers are data

    if view.grouped:
        for metric, table in groupview.summary(view).items():
            st.markdown(f"**{md_escape(metric)}** · groups, best line first · {md_escape(view.settings.aggregate)} of each group's runs")
            st.dataframe(table, hide_index=True, width="stretch")
            for note in view.rank_notes.get(metric, []):
                st.caption(f":material/warning: {md_escape(note)}")
    with st.expander("Every run, ranked") if view.grouped else st.container():
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
    if len(text) > STYLED_ROWS:  # a style per cell of hundreds of rows costs more than the chart
        return text
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

# Last on the page, so that the chart comes first; with many runs it is how runs are found.
with st.expander(f"Find runs: a table of {len(with_logs):,} runs to sort, filter and pick from", icon=":material/table_rows:"):
    runs_table()
