"""Altair charts of training curves: pure functions from a prepared table to a chart.

The table is :attr:`sandbox.curves.prepare.Curves.draw`: one row per drawn point with columns
run, metric, x, step, value (NaN at a gap), smoothed, tokens, onset and marker_y (where a
NaN/inf stretch starts, and the last finite value before it).

Building an Altair chart costs tens of milliseconds of schema work, and a live page
redraws every two seconds with new data but the same layout, so the layout is built once
per distinct set of options and each call attaches its data to a shallow copy.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from functools import lru_cache
from typing import NamedTuple

import altair as alt
import pandas as pd

from sandbox.curves.axes import X_AXES
from sandbox.curves.groups import natural_order
from sandbox.figures import export
from sandbox.figures.colors import DIVERGED_COLOR, color_scale

# Path marks break at NaN/null instead of joining the points around a gap, and the
# scales ignore the gaps (a diverged run must not squash everyone else's curve).
_BREAK = "break-paths-filter-domains"
_VALUE_FORMAT = ".4~g"
_COUNT_FORMAT = ",.0f"
LEGEND_LIMIT = 40  # legend entries listed one by one
# Curves are tens of thousands of points: drawn on one canvas, not one SVG element each.
# Streamlit drew this chart as SVG (77,000 nodes for 10 runs, about five seconds to build
# in Chromium before anything showed); vega-embed takes the spec's own renderer option.
ON_CANVAS = {"embedOptions": {"renderer": "canvas"}}


class Layout(NamedTuple):
    """Everything a chart's structure depends on (its data aside): the layout cache key."""

    metrics: tuple[str, ...]
    x_key: str
    x_title: str
    log_x: bool
    log_y: bool
    smoothed: bool
    run_ids: tuple[str, ...]
    has_tokens: bool
    has_onsets: bool
    height: int
    panel_width: int
    robust_y: bool = False  # y ranges given per call (``y_domains``), points beyond them clipped
    color_by: str = ""  # a config key whose value ("color" column) colours the lines; "": the run
    has_config: bool = False  # the tooltip names each run's differing config keys (``run_config``)
    color_values: tuple[str, ...] = ()  # the colour-by key's values, in legend order
    has_tips: bool = False  # a "tip" column marks the points that carry the hover tooltip

    @property
    def columns(self) -> list[str]:
        """Only the columns the chart reads: everything else would be sent to the browser."""
        columns = ["run", "metric", "step", "value"]
        if self.x_key != "step":
            columns.append("x")
        if self.has_tokens:
            columns.append("tokens")
        if self.smoothed:
            columns.append("smoothed")
        if self.has_onsets:
            columns += ["onset", "marker_y"]
        if self.color_by:
            columns.append("color")
        if self.has_tips:
            columns.append("tip")
        return columns


def layout_of(
    draw: pd.DataFrame,
    *,
    metrics: Sequence[str],
    x_key: str = "step",
    x_title: str = "Step",
    log_x: bool = False,
    log_y: bool = False,
    smoothed: bool = False,
    run_ids: Sequence[str] | None = None,
    height: int = 320,
    panel_width: int = 430,
    robust_y: bool = False,
    color_by: str = "",
    has_config: bool = False,
) -> Layout:
    """The layout for these options and this data (tokens known? anything diverged?)."""
    has_tokens = x_key != "tokens" and "tokens" in draw and bool(draw["tokens"].notna().any())
    has_onsets = "onset" in draw and bool(draw["onset"].any())
    run_ids = tuple(run_ids) if run_ids is not None else tuple(pd.unique(draw["run"].astype(str)))
    return Layout(
        tuple(metrics), x_key, x_title, log_x, log_y, smoothed, run_ids,
        has_tokens, has_onsets, height, panel_width, robust_y,
        color_by if "color" in draw else "", has_config,
        tuple(natural_order(draw["color"])) if color_by and "color" in draw else (),
        "tip" in draw,
    )  # fmt: skip


def _domain_params(layout: Layout, y_domains: Mapping[str, tuple[float, float]] | None) -> list[dict]:
    """The values of the y-range parameters the layout's scales read (see ``_y_scale``):
    per panel's metric when faceted, one pair for a single panel; null: data-driven."""
    if not layout.robust_y:
        return []
    domains = dict(y_domains or {})
    if len(layout.metrics) > 1:
        lo = {m: d[0] for m, d in domains.items()}
        hi = {m: d[1] for m, d in domains.items()}
    else:
        lo, hi = domains.get(layout.metrics[0], (None, None)) if layout.metrics else (None, None)
    return [{"name": "y_lo", "value": lo}, {"name": "y_hi", "value": hi}]


def _call_params(layout: Layout, y_domains, run_config) -> list[dict]:
    """Parameters set per call: the robust y ranges, and each run's differing config keys
    (looked up by the tooltip, so that a long text is sent once per run, not once per point)."""
    params = _domain_params(layout, y_domains)
    if layout.has_config:
        params.append({"name": "run_config", "value": dict(run_config or {})})
    return params


def loss_chart(
    draw: pd.DataFrame,
    y_domains: Mapping[str, tuple[float, float]] | None = None,
    run_config: Mapping[str, str] | None = None,
    **options,
) -> alt.TopLevelMixin:
    """Curves of every run, one panel per metric (a single panel fills its container).

    Layers, bottom to top: the raw line (faded when ``smoothed``), the smoothed line, an
    invisible point per datum that lights up nearest the pointer and carries the tooltip
    (run, step, tokens, value), and a red rule plus cross where a run's values turn
    NaN/inf. Clicking a legend entry highlights that run; the mouse wheel zooms the x
    axis and dragging pans it. ``options`` are those of :func:`layout_of`; ``x_key`` is
    the x axis' key (see ``curves.X_AXES``). With ``robust_y``, each panel's y range is
    ``y_domains[metric]`` (`sandbox.curves.yrange.robust_range`) and what lies beyond is clipped.
    ``run_config`` maps runs to their config keys that differ, for the tooltip.
    """
    layout = layout_of(draw, has_config=bool(run_config), **options)
    chart = _chart(layout).copy(deep=False)
    chart.data = draw[layout.columns]
    extra = _call_params(layout, y_domains, run_config)
    if extra:  # beside the selections Altair lifted to the top level (a new list)
        lifted = [] if chart.params is alt.Undefined else list(chart.params)
        chart.params = lifted + [alt.VariableParameter(**p) for p in extra]
    return chart


def loss_spec(
    draw: pd.DataFrame,
    y_domains: Mapping[str, tuple[float, float]] | None = None,
    run_config: Mapping[str, str] | None = None,
    **options,
) -> dict:
    """The Vega-Lite spec of :func:`loss_chart` with the data inline (for vl-convert).

    Equal to ``export.inline_spec(loss_chart(draw, **options))``, but the layout's part
    of the spec is made once per layout and only the rows are serialized on each call.
    Nested parts of the returned dict are shared with that cache: do not mutate them.
    """
    layout = layout_of(draw, has_config=bool(run_config), **options)
    spec = dict(_spec(layout))
    spec["data"] = export.inline_data(draw[layout.columns])
    extra = _call_params(layout, y_domains, run_config)
    if extra:
        spec["params"] = [*spec.get("params", []), *extra]
    return spec


# Screenshot mode: the page's text is enlarged by CSS, but a chart draws its own text on a
# canvas, so its fonts are raised in the chart's config (merged into what it already sets).
SCREENSHOT_CONFIG = {
    "axis": {"labelFontSize": 16, "titleFontSize": 18},
    "legend": {"labelFontSize": 16, "titleFontSize": 17, "symbolSize": 160},
    "header": {"labelFontSize": 18, "titleFontSize": 18},
    "title": {"fontSize": 20},
}


def large_text(chart: alt.TopLevelMixin) -> alt.TopLevelMixin:
    """A copy of ``chart`` with the larger fonts of screenshot mode (its own config kept)."""
    out = chart.copy(deep=["config"])
    if out.config is alt.Undefined:
        out.config = alt.Config()
    for section, values in SCREENSHOT_CONFIG.items():
        current = out.config[section]
        own = {} if current is alt.Undefined else current.to_dict() if hasattr(current, "to_dict") else dict(current)
        out.config[section] = {**own, **values}
    return out


def clear_cache() -> None:
    """Forget the built layouts (benchmarks, tests)."""
    _chart.cache_clear()
    _spec.cache_clear()


@lru_cache(maxsize=64)
def _spec(layout: Layout) -> dict:
    return export.inline_spec(_chart(layout), validate=False)


@lru_cache(maxsize=64)
def _chart(layout: Layout) -> alt.TopLevelMixin:
    """The chart of ``layout`` with placeholder data (see :func:`loss_chart`); cached, so
    never mutate it.

    Built with Altair's validation-at-creation off: checking every property against the
    JSON schema while the layers are assembled was a third of a first render. The tests
    still validate the finished specs (``to_dict()``).
    """
    with alt.utils.schemapi.debug_mode(False):
        return _build_chart(layout)


def _y_scale(log_y: bool, robust_y: bool, faceted: bool) -> alt.Scale:
    """The y scale; with ``robust_y`` its range comes from the ``y_lo``/``y_hi`` parameters
    (set per call), looked up by the panel's metric when faceted (null: data-driven)."""
    kind = "log" if log_y else "linear"
    if not robust_y:
        return alt.Scale(type=kind, zero=False)
    if faceted:
        lo = "isValid(y_lo[parent.metric]) ? y_lo[parent.metric] : null"
        hi = "isValid(y_hi[parent.metric]) ? y_hi[parent.metric] : null"
    else:
        lo, hi = "y_lo", "y_hi"
    return alt.Scale(type=kind, zero=False, domainMin=alt.ExprRef(lo), domainMax=alt.ExprRef(hi))


def legend_of(limit: int = 0) -> alt.Legend:
    """The legend of curve charts: below the chart, line symbols, at most ``limit`` entries (0: all)."""
    return alt.Legend(
        orient="bottom", columns=3, labelLimit=320, symbolType="stroke", symbolOpacity=1, symbolLimit=limit
    )


def _build_chart(layout: Layout) -> alt.TopLevelMixin:
    (
        metrics, x_key, x_title, log_x, log_y, smoothed, run_ids,
        has_tokens, has_onsets, height, panel_width, robust_y, color_by, has_config, color_values, has_tips,
    ) = layout  # fmt: skip
    x_field = "step:Q" if x_key == "step" else "x:Q"
    x_scale = alt.Scale(type="log" if log_x else "linear", zero=False, nice=False)
    # Tokens and FLOPs run to 1e9..1e18: d3's default labels ("200,000,000,000") overlap
    # and get cut, so those axes label in SI or scientific notation.
    x_format = X_AXES[x_key].format if x_key in X_AXES else None
    x_axis = alt.Axis(format=x_format) if x_format else alt.Undefined
    y_scale = _y_scale(log_y, robust_y, faceted=len(metrics) > 1)
    clip = {"clip": True} if robust_y else {}  # what lies beyond a robust y range is cut off
    y_title = metrics[0] if len(metrics) == 1 else None

    picked = alt.selection_point(name="picked_run", fields=["color" if color_by else "run"], bind="legend")
    hover = alt.selection_point(
        name="hover", on="pointerover", clear="pointerout", nearest=True, empty=False
    )
    zoom = alt.selection_interval(name="zoom", bind="scales", encodings=["x"])

    if color_by:  # one colour per value of a config key; each run stays its own line
        color = alt.Color("color:N", title=color_by, legend=legend_of(0), sort=list(color_values))
    else:
        # Every run stays clickable up to LEGEND_LIMIT; beyond, the legend ends in "… n entries"
        # (500 entries would be taller than the chart: the runs table finds runs).
        limit = 0 if len(run_ids) <= LEGEND_LIMIT else LEGEND_LIMIT
        color = alt.Color("run:N", title="Run", scale=color_scale(run_ids), legend=legend_of(limit))
    base = alt.Chart().encode(
        x=alt.X(x_field, title=x_title, scale=x_scale, axis=x_axis), color=color, detail="run:N"
    )
    line_y = "smoothed:Q" if smoothed else "value:Q"
    layers = [
        base.mark_line(invalid=_BREAK, strokeWidth=1.2, **clip)
        .encode(
            y=alt.Y("value:Q", title=y_title, scale=y_scale),
            opacity=alt.condition(picked, alt.value(0.25 if smoothed else 1.0), alt.value(0.05)),
        )
        .add_params(picked, zoom)
    ]
    if smoothed:
        layers.append(
            base.mark_line(invalid=_BREAK, strokeWidth=1.8, **clip).encode(
                y=alt.Y(line_y, title=y_title, scale=y_scale),
                opacity=alt.condition(picked, alt.value(1.0), alt.value(0.08)),
            )
        )
    tooltip = [
        alt.Tooltip("run:N", title="run"),
        *([alt.Tooltip("config:N", title="config (keys that differ)")] if has_config else []),
        alt.Tooltip("metric:N", title="metric"),
        alt.Tooltip("step:Q", title="step", format=_COUNT_FORMAT),
    ]
    if x_key == "tokens":
        tooltip.append(alt.Tooltip("x:Q", title="tokens", format=_COUNT_FORMAT))
    elif has_tokens:
        tooltip.append(alt.Tooltip("tokens:Q", title="tokens", format=_COUNT_FORMAT))
    if x_key not in ("step", "tokens"):
        tooltip.append(alt.Tooltip("x:Q", title=x_title, format=".4~e" if x_format else ",.4~g"))
    tooltip.append(alt.Tooltip("value:Q", title="value", format=_VALUE_FORMAT))
    if smoothed:
        tooltip.append(alt.Tooltip("smoothed:Q", title="smoothed", format=_VALUE_FORMAT))
    # Every point of the hover layer evaluates its tooltip when drawn: only the points the
    # budget marks as tips carry one (`sandbox.curves.budget.tips_per_series`).
    pointer = base.transform_filter("datum.tip") if has_tips else base
    pointer = pointer.transform_calculate(config="run_config[datum.run]") if has_config else pointer
    layers.append(
        pointer.mark_point(filled=True, size=45, invalid=_BREAK, **clip)
        .encode(
            y=alt.Y(line_y, title=y_title, scale=y_scale),
            opacity=alt.condition(hover, alt.value(1.0), alt.value(0.0)),
            tooltip=tooltip,
        )
        .add_params(hover)
    )
    if has_onsets:
        diverged = alt.Chart().transform_filter("datum.onset")
        marker_tooltip = [
            alt.Tooltip("run:N", title="diverged run"),
            alt.Tooltip("metric:N", title="metric"),
            alt.Tooltip("step:Q", title="first NaN/inf at step", format=_COUNT_FORMAT),
        ]
        layers += [
            diverged.mark_rule(color=DIVERGED_COLOR, strokeDash=[4, 3], opacity=0.7).encode(
                x=alt.X(x_field), tooltip=marker_tooltip
            ),
            diverged.mark_point(shape="cross", color=DIVERGED_COLOR, filled=True, size=120, **clip).encode(
                x=alt.X(x_field), y=alt.Y("marker_y:Q", scale=y_scale), tooltip=marker_tooltip
            ),
        ]

    # A placeholder that loss_chart replaces with the rows (facets need data at the top).
    chart = alt.layer(*layers, data=alt.NamedData(name="curves"))
    if len(metrics) <= 1:
        return chart.properties(width="container", height=height + 60, usermeta=ON_CANVAS)
    return (
        chart.properties(width=panel_width, height=height)
        .facet(facet=alt.Facet("metric:N", sort=list(metrics), title=None), columns=2)
        .resolve_scale(y="independent")
        .configure_header(labelFontSize=13, labelFontWeight="bold")
        .properties(usermeta=ON_CANVAS)
    )
