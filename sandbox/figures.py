"""Figures for sharing: a table drawn as a chart, comparison scatters, and stacked exports.

Everything returns an Altair chart, so it exports to PNG/SVG through `sandbox.export`
like any other chart, and a whole comparison (table + charts) becomes one picture.
"""

from __future__ import annotations

import altair as alt
import numpy as np
import pandas as pd

from sandbox.colors import color_scale

ROW_HEIGHT = 22


def table_chart(frame: pd.DataFrame, title: str = "", col_width: int = 150) -> alt.Chart:
    """``frame`` drawn as a text grid (for composite PNGs; the app shows real tables)."""
    frame = frame.reset_index(drop=True)
    cells = frame.astype(object).where(frame.notna(), "").astype(str)
    long = cells.reset_index(names="row").melt(id_vars="row", var_name="column", value_name="text")
    header = pd.DataFrame({"row": -1, "column": list(cells.columns), "text": list(cells.columns)})
    long = pd.concat([header, long], ignore_index=True)
    order = list(cells.columns)
    base = alt.Chart(long, title=title or alt.Undefined).encode(
        x=alt.X("column:N", sort=order, axis=None),
        y=alt.Y("row:O", axis=None),
        text="text:N",
    )
    text = dict(align="left", dx=-col_width / 2 + 6, fontSize=12)
    head = base.mark_text(fontWeight="bold", **text).transform_filter("datum.row < 0")
    body = base.mark_text(**text).transform_filter("datum.row >= 0")
    return (head + body).properties(width=col_width * len(order), height=ROW_HEIGHT * (len(cells) + 1))


def stack(*charts: alt.TopLevelMixin, title: str = "") -> alt.VConcatChart:
    """Charts one above the other, as one figure; scales stay independent."""
    combined = alt.vconcat(*charts, title=title or alt.Undefined).resolve_scale(color="independent")
    return combined.configure_view(stroke=None)


def scaling_scatter(points: pd.DataFrame, x: str, x_title: str, y: str = "final_val_loss", y_title: str = "final validation loss") -> alt.Chart:
    """One labelled point per run, log axes, coloured by experiment: a small scaling plot.

    ``points`` has columns run_id, experiment, ``x`` and ``y``; rows missing either are
    left out (the page lists them).
    """
    data = points.replace([np.inf, -np.inf], np.nan).dropna(subset=[x, y])
    data = data[(data[x] > 0) & (data[y] > 0)]
    base = alt.Chart(data).encode(
        x=alt.X(f"{x}:Q", title=x_title, scale=alt.Scale(type="log"), axis=alt.Axis(format="~s")),
        y=alt.Y(f"{y}:Q", title=y_title, scale=alt.Scale(type="log", zero=False)),
    )
    dots = base.mark_point(size=90, filled=True).encode(
        color=alt.Color("experiment:N", title="experiment"),
        tooltip=["run_id", "experiment", alt.Tooltip(f"{x}:Q", format=".3s"), alt.Tooltip(f"{y}:Q", format=".4f")],
    )
    labels = base.mark_text(align="left", dx=8, dy=-6, fontSize=11).encode(text="run_id:N")
    return (dots + labels).properties(width=420, height=300)


def runs_bar(frame: pd.DataFrame, value: str, title: str) -> alt.Chart:
    """A horizontal bar per run (run colours), e.g. bits per byte of several runs."""
    return (
        alt.Chart(frame)
        .mark_bar()
        .encode(
            y=alt.Y("run_id:N", title=None, sort="-x"),
            x=alt.X(f"{value}:Q", title=title),
            color=alt.Color("run_id:N", scale=color_scale(frame["run_id"]), legend=None),
            tooltip=["run_id", alt.Tooltip(f"{value}:Q", format=".4f")],
        )
        .properties(width=420)
    )
