"""Figures for sharing: a table drawn as a chart, comparison scatters, and stacked exports.

Everything returns an Altair chart, so it exports to PNG/SVG through `sandbox.figures.export`
like any other chart, and a whole comparison (table + charts) becomes one picture.
"""

from __future__ import annotations

import altair as alt
import numpy as np
import pandas as pd

ROW_HEIGHT = 22
FONT_SIZE = 12
CELL_PADDING = 18  # px between one column's longest text and the next column
MAX_CELL_CHARS = 90
# Glyph advances of a sans-serif font, in em, rounded up (Helvetica/Arial metrics: digits
# and most lower case 0.556, punctuation ~0.28, capitals and m/w/% up to 0.94); bold adds
# about a tenth.
_NARROW = frozenset(" .,:;'|!()[]{}/\\-ijlftrI")
_WIDE = frozenset("mwMW%@")


def text_width(text: str, font_size: float = FONT_SIZE, bold: bool = False) -> float:
    """About how many px ``text`` takes in a sans-serif font (never less than it does)."""
    em = sum(0.34 if c in _NARROW else 0.94 if c in _WIDE else 0.72 if c.isupper() else 0.58 for c in text)
    return em * font_size * (1.1 if bold else 1.0)


def column_widths(cells: pd.DataFrame, min_width: int = 0) -> list[float]:
    """Width in px of each column of a text table: its longest text (bold header included)."""
    return [
        max(min_width, max([text_width(str(name), bold=True), *(text_width(v) for v in cells[name])]) + CELL_PADDING)
        for name in cells.columns
    ]


def table_chart(frame: pd.DataFrame, title: str = "", col_width: int = 0) -> alt.Chart:
    """``frame`` drawn as a text grid (for composite PNGs; the app shows real tables).

    Each column is as wide as its longest text (at least ``col_width`` px), so long
    cells such as "0.3141 [0.3012, 0.3267]" never overlap the next column. A cell longer
    than ``MAX_CELL_CHARS`` (an error sentence) is cut with "…": the picture stays
    readable, the CSV and JSON exports keep the whole text.
    """
    frame = frame.reset_index(drop=True)
    cells = frame.astype(object).where(frame.notna(), "").astype(str)
    cells = cells.map(lambda v: v if len(v) <= MAX_CELL_CHARS else v[: MAX_CELL_CHARS - 1] + "…")
    widths = column_widths(cells, col_width)
    lefts = dict(zip(cells.columns, np.cumsum([0.0, *widths[:-1]]), strict=True))
    long = cells.reset_index(names="row").melt(id_vars="row", var_name="column", value_name="text")
    header = pd.DataFrame({"row": -1, "column": list(cells.columns), "text": list(cells.columns)})
    long = pd.concat([header, long], ignore_index=True)
    long["left"] = long["column"].map(lefts)
    total = float(sum(widths))
    base = alt.Chart(long, title=title or alt.Undefined).encode(
        # x in pixels: the scale maps [0, total] onto the chart's width one to one.
        x=alt.X("left:Q", axis=None, scale=alt.Scale(domain=[0, total], range=[0, total], nice=False, zero=True)),
        y=alt.Y("row:O", axis=None),
        text="text:N",
    )
    text = dict(align="left", dx=6, fontSize=FONT_SIZE)
    head = base.mark_text(fontWeight="bold", **text).transform_filter("datum.row < 0")
    body = base.mark_text(**text).transform_filter("datum.row >= 0")
    return (head + body).properties(width=total, height=ROW_HEIGHT * (len(cells) + 1))


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
