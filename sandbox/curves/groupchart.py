"""The Altair chart of grouped curves: one line per group (mean or median) and its band.

The table is `sandbox.curves.groups.aggregate`'s, with a ``label`` column (the group and its
run count, as the legend shows it) and a ``color`` column (the label, or the value of the
config key chosen to colour by). Like the run chart: one panel per metric, the legend
highlights, the wheel zooms the x axis, and with ``y_domains`` each panel's y range ignores
outliers (what lies beyond is clipped).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import altair as alt
import pandas as pd

from sandbox.curves.axes import X_AXES
from sandbox.curves.charts import (
    _BREAK,
    _VALUE_FORMAT,
    ON_CANVAS,
    _domain_params,
    _y_scale,
    layout_of,
    legend_of,
)
from sandbox.curves.groups import natural_order

COLUMNS = ["label", "color", "metric", "x", "center", "lo", "hi", "n"]


def group_chart(
    frame: pd.DataFrame,
    *,
    metrics: Sequence[str],
    x_key: str = "step",
    x_title: str = "Step",
    log_x: bool = False,
    log_y: bool = False,
    band: bool = True,
    color_title: str = "Group",
    band_title: str = "band",
    y_domains: Mapping[str, tuple[float, float]] | None = None,
    height: int = 320,
    panel_width: int = 430,
) -> alt.TopLevelMixin:
    """Group lines of ``frame`` (:data:`COLUMNS`), a band behind each, one panel per metric."""
    robust = y_domains is not None
    faceted = len(metrics) > 1
    y_scale = _y_scale(log_y, robust, faceted)
    clip = {"clip": True} if robust else {}
    y_title = metrics[0] if len(metrics) == 1 else None
    x_format = X_AXES[x_key].format if x_key in X_AXES else None
    x = alt.X("x:Q", title=x_title, scale=alt.Scale(type="log" if log_x else "linear", zero=False, nice=False),
              axis=alt.Axis(format=x_format) if x_format else alt.Undefined)  # fmt: skip
    picked = alt.selection_point(name="picked_group", fields=["color"], bind="legend")
    hover = alt.selection_point(name="hover", on="pointerover", clear="pointerout", nearest=True, empty=False)
    zoom = alt.selection_interval(name="zoom", bind="scales", encodings=["x"])
    base = alt.Chart().encode(x=x, color=alt.Color("color:N", title=color_title, legend=legend_of(0), sort=natural_order(frame["color"])), detail="label:N")
    layers = []
    if band:
        layers.append(
            base.mark_area(opacity=0.18, invalid=_BREAK, **clip).encode(
                y=alt.Y("lo:Q", title=y_title, scale=y_scale), y2="hi:Q",
                opacity=alt.condition(picked, alt.value(0.18), alt.value(0.03)),
            )  # fmt: skip
        )
    layers.append(
        base.mark_line(strokeWidth=2.0, invalid=_BREAK, **clip)
        .encode(
            y=alt.Y("center:Q", title=y_title, scale=y_scale),
            opacity=alt.condition(picked, alt.value(1.0), alt.value(0.1)),
        )
        .add_params(picked, zoom)
    )
    tooltip = [
        alt.Tooltip("label:N", title="group"),
        alt.Tooltip("metric:N", title="metric"),
        alt.Tooltip("x:Q", title=x_title, format=".4~e" if x_format else ",.4~g"),
        alt.Tooltip("center:Q", title="line", format=_VALUE_FORMAT),
        alt.Tooltip("lo:Q", title=f"{band_title} low", format=_VALUE_FORMAT),
        alt.Tooltip("hi:Q", title=f"{band_title} high", format=_VALUE_FORMAT),
        alt.Tooltip("n:Q", title="runs at this x"),
    ]
    layers.append(
        base.mark_point(filled=True, size=45, **clip)
        .encode(
            y=alt.Y("center:Q", scale=y_scale),
            opacity=alt.condition(hover, alt.value(1.0), alt.value(0.0)),
            tooltip=tooltip,
        )
        .add_params(hover)
    )
    chart = alt.layer(*layers, data=frame[COLUMNS])
    if not faceted:
        chart = chart.properties(width="container", height=height + 60, usermeta=ON_CANVAS)
    else:
        chart = (
            chart.properties(width=panel_width, height=height)
            .facet(facet=alt.Facet("metric:N", sort=list(metrics), title=None), columns=2)
            .resolve_scale(y="independent")
            .configure_header(labelFontSize=13, labelFontWeight="bold")
            .properties(usermeta=ON_CANVAS)
        )
    if robust:  # the y-range parameters the scales read, at the top level (as the run chart's)
        layout = layout_of(pd.DataFrame({"run": []}), metrics=metrics, robust_y=True)
        lifted = [] if chart.params is alt.Undefined else list(chart.params)
        chart.params = lifted + [alt.VariableParameter(**p) for p in _domain_params(layout, y_domains)]
    return chart
