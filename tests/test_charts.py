"""sandbox.curves.charts, sandbox.figures.colors, sandbox.figures.export: chart structure, colours, offline export."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import vl_convert

from sandbox.curves import axes, charts, prepare
from sandbox.figures import colors, export


def draw_frame(runs=("e/a", "e/b"), metrics=("validation loss", "train loss"), n=30, diverge=False):
    rows = []
    for run in runs:
        for metric in metrics:
            value = np.linspace(4, 2, n)
            onset = np.zeros(n, dtype=bool)
            marker = np.full(n, np.nan)
            if diverge and run == runs[-1]:
                value[n // 2 :] = np.nan
                onset[n // 2] = True
                marker[n // 2] = value[n // 2 - 1]
            rows.append(
                pd.DataFrame(
                    {
                        "run": run, "metric": metric, "x": np.arange(n) * 10.0, "step": np.arange(n) * 10.0,
                        "tokens": np.arange(n) * 1e4, "value": value, "smoothed": prepare.smooth(value, 0.5),
                        "onset": onset, "marker_y": marker,
                    }  # fmt: skip
                )
            )
    return pd.concat(rows, ignore_index=True)


def layers_of(spec: dict) -> list[dict]:
    return spec["spec"]["layer"] if "spec" in spec else spec["layer"]


def compiles(spec: dict) -> None:
    """Vega-Lite itself accepts the spec (the compiler raises on an invalid one)."""
    assert vl_convert.vegalite_to_vega(spec)["marks"]


def test_run_colors_are_stable_and_never_the_divergence_red():
    assert colors.run_color("template/GPT2_1m_atto") == colors.run_color("template/GPT2_1m_atto")
    assert colors.run_color("template/GPT2_1m_atto") == "#bcbd22"  # pinned: pages must agree
    assert all(colors.run_color(f"e/r{i}") in colors.PALETTE for i in range(50))
    assert colors.DIVERGED_COLOR not in colors.PALETTE
    assert len({colors.run_color(f"e/r{i}") for i in range(200)}) == len(colors.PALETTE)


def test_color_scale_maps_each_run_to_its_color():
    scale = colors.color_scale(["b/y", "a/x", "b/y"]).to_dict()
    assert scale["domain"] == ["b/y", "a/x"]
    assert scale["range"] == [colors.run_color("b/y"), colors.run_color("a/x")]


def test_single_metric_chart_layers_tooltip_and_legend_selection():
    draw = draw_frame(metrics=("validation loss",))
    chart = charts.loss_chart(draw, metrics=["validation loss"], run_ids=["e/a", "e/b"])
    spec = chart.to_dict()  # validates against the Vega-Lite schema
    compiles(export.inline_spec(chart))
    assert spec["width"] == "container"
    layers = layers_of(spec)
    assert [layer["mark"]["type"] for layer in layers] == ["line", "point"]
    assert layers[0]["mark"]["invalid"] == "break-paths-filter-domains"  # NaN is a gap
    params = {p["name"]: p for p in spec.get("params", []) + [p for lay in layers for p in lay.get("params", [])]}
    assert params["picked_run"]["bind"] == "legend"
    assert params["hover"]["select"]["nearest"] is True
    tooltip = [t["title"] for t in layers[-1]["encoding"]["tooltip"]]
    assert tooltip == ["run", "metric", "step", "tokens", "value"]
    color = layers[0]["encoding"]["color"] if "color" in layers[0]["encoding"] else spec["encoding"]["color"]
    assert color["scale"]["range"] == [colors.run_color("e/a"), colors.run_color("e/b")]


def test_several_metrics_are_faceted_with_their_own_y_axes():
    chart = charts.loss_chart(draw_frame(), metrics=["validation loss", "train loss"], log_y=True)
    spec = chart.to_dict()
    compiles(export.inline_spec(chart))
    assert spec["facet"]["field"] == "metric" and spec["columns"] == 2
    assert spec["resolve"]["scale"]["y"] == "independent"
    assert layers_of(spec)[0]["encoding"]["y"]["scale"]["type"] == "log"


def test_smoothing_draws_the_raw_line_faded_behind():
    chart = charts.loss_chart(draw_frame(), metrics=["validation loss", "train loss"], smoothed=True)
    layers = layers_of(chart.to_dict())
    lines = [layer for layer in layers if layer["mark"]["type"] == "line"]
    assert [line["encoding"]["y"]["field"] for line in lines] == ["value", "smoothed"]
    assert lines[0]["encoding"]["opacity"]["condition"]["value"] == 0.25
    assert lines[1]["encoding"]["opacity"]["condition"]["value"] == 1.0


def test_divergence_is_marked_with_a_rule_and_a_cross():
    chart = charts.loss_chart(draw_frame(diverge=True), metrics=["validation loss", "train loss"])
    spec = export.inline_spec(chart)
    compiles(spec)
    marks = [layer["mark"] for layer in layers_of(spec)]
    assert {"type": "rule", "color": colors.DIVERGED_COLOR} .items() <= marks[-2].items()
    assert marks[-1]["shape"] == "cross"
    rows = json.loads(spec["data"]["values"])
    assert sum(row["onset"] for row in rows) == 2  # one per metric of the diverged run
    assert any(row["value"] is None for row in rows)  # NaN travels as null: a gap


def test_only_needed_columns_are_sent_and_data_is_not_shared_between_calls():
    a = charts.loss_chart(draw_frame(n=5), metrics=["validation loss", "train loss"])
    b = charts.loss_chart(draw_frame(n=7), metrics=["validation loss", "train loss"])
    assert list(a.data.columns) == ["run", "metric", "step", "value", "tokens"]  # x is the step here
    assert len(a.data) == 2 * 2 * 5 and len(b.data) == 2 * 2 * 7  # same layout, own data
    timed = charts.loss_chart(draw_frame(n=5), metrics=["train loss"], x_key="time", x_title="Time (s)")
    assert "x" in timed.data.columns


@pytest.mark.parametrize("x_key", ["step", "time", "tokens"])
def test_every_axis_and_scale_combination_compiles(x_key):
    for log_x in (False, True):
        chart = charts.loss_chart(
            draw_frame(diverge=True), metrics=["validation loss", "train loss"], x_key=x_key,
            x_title=axes.X_AXES[x_key].title, log_x=log_x, log_y=log_x, smoothed=log_x,
        )  # fmt: skip
        chart.to_dict()
        compiles(export.inline_spec(chart, validate=False))


def test_export_png_svg_csv_offline():
    chart = charts.loss_chart(draw_frame(diverge=True), metrics=["validation loss"], smoothed=True)
    svg = export.to_svg(chart)
    assert svg.startswith("<svg") and "<path" in svg
    assert "@import" not in svg and "fonts.googleapis" not in svg  # no web fonts
    png = export.to_png(chart, scale=1)
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    assert export.to_csv(pd.DataFrame({"a": [1, 2]})) == b"a\n1\n2\n"
    spec = export.inline_spec(chart)
    assert spec["width"] == export.EXPORT_WIDTH  # "container" has no container offline
    assert spec["data"]["format"] == {"type": "json"}


def test_loss_spec_is_the_chart_spec_with_its_data():
    draw = draw_frame(diverge=True)
    options = dict(metrics=["validation loss", "train loss"], smoothed=True, log_y=True)
    assert charts.loss_spec(draw, **options) == export.inline_spec(charts.loss_chart(draw, **options))
    single = dict(metrics=["train loss"], x_key="tokens", x_title="Tokens seen")
    spec = charts.loss_spec(draw, **single)
    assert spec == export.inline_spec(charts.loss_chart(draw, **single))
    assert spec["width"] == export.EXPORT_WIDTH
    other = charts.loss_spec(draw_frame(n=4), **single)
    assert json.loads(other["data"]["values"]) != json.loads(spec["data"]["values"])  # own rows


def test_runs_of_a_models_dir_get_distinct_colours():
    ids = [f"exp{i % 3}/run{i}" for i in range(len(colors.PALETTE))]
    try:
        colors.assign_colors(ids)
        assert len({colors.run_color(r) for r in ids}) == len(ids)
        before = {r: colors.run_color(r) for r in ids}
        colors.assign_colors(reversed(ids))  # order of discovery does not matter
        assert {r: colors.run_color(r) for r in ids} == before
        assert colors.run_color("other/x") in colors.PALETTE  # ids outside the set still get one
    finally:
        colors.assign_colors([])


def _axis_labels(svg: str) -> list[str]:
    """Texts of the chart's SVG (vl-convert writes text as <text> elements)."""
    import re
    from html import unescape

    return [unescape(t) for t in re.findall(r"<text[^>]*>([^<]*)</text>", svg)]


@pytest.mark.parametrize("log_x", [False, True])
def test_flops_axis_ticks_are_short_and_its_title_says_estimated_once(log_x):
    draw = draw_frame(runs=("e/a",), metrics=("train loss",), n=30)
    draw["x"] = np.linspace(1e9, 3e11, len(draw))  # real runs: 1e9 .. 1e18 FLOPs
    axis = axes.X_AXES["flops"]
    chart = charts.loss_chart(draw, metrics=["train loss"], x_key="flops", x_title=axis.title, log_x=log_x)
    texts = _axis_labels(export.to_svg(chart))
    ticks = [t for t in texts if any(c.isdigit() for c in t) and "e" in t]
    assert ticks, texts  # scientific labels such as 2e+11
    assert all(len(t) <= 8 for t in ticks), ticks
    assert not any("000,000" in t or "…" in t for t in texts), texts
    assert texts.count(axis.title) == 1 and "(computed)" not in " ".join(texts)
