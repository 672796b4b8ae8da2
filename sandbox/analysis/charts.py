"""Altair charts of the analyses: scaling fits, matched losses, per-byte differences, wins.

Each chart keeps its rows in one top-level DataFrame (layers pick theirs with a filter), so
`sandbox.figures.export` inlines them without Altair's row limit and exports PNG/SVG offline. Rows
are few by construction: fitted curves are drawn at a fixed number of x values and the
per-byte histogram is binned here, not in the browser.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import altair as alt
import numpy as np
import pandas as pd

from sandbox.analysis.scaling import Multiplier, ScalingFit
from sandbox.analysis.wins import Wins
from sandbox.figures.colors import color_scale

# Levanter's log-prob diff view: blue where a run does better than the reference, orange worse.
BETTER_COLOR = "#1f77b4"
WORSE_COLOR = "#ff7f0e"
TIE_COLOR = "#bbbbbb"
CURVE_POINTS = 120  # x values per fitted curve


def _curve(fit: ScalingFit, lo: float, hi: float) -> pd.DataFrame:
    xs = np.geomspace(lo, hi, CURVE_POINTS)
    return pd.DataFrame({"group": fit.group, "x": xs, "loss": fit.law.loss(xs), "kind": "fit", "label": fit.law.formula()})


def scaling_frame(fits: Mapping[str, ScalingFit], multiplier: Multiplier | None = None) -> pd.DataFrame:
    """The rows of :func:`scaling_chart`: points, fitted curves and the multiplier's marks."""
    frames = []
    targets = []
    if multiplier is not None and multiplier.value is not None:
        for name in (multiplier.base, multiplier.variant):
            fit = fits.get(name)
            if fit is not None and fit.law is not None:
                targets.append((name, float(fit.law.compute(multiplier.loss))))
    reach = dict(targets)
    for fit in fits.values():
        if not fit.x.size:
            continue
        frames.append(pd.DataFrame({"group": fit.group, "x": fit.x, "loss": fit.y, "kind": "point", "label": ""}))
        if fit.law is not None:
            lo, hi = float(fit.x.min()), float(fit.x.max())
            # Draw the curve out to where it meets the target loss, when that is beyond the points.
            at = reach.get(fit.group)
            if at is not None and math.isfinite(at):
                lo, hi = min(lo, at), max(hi, at)
            frames.append(_curve(fit, lo, hi))
    if targets:
        text = multiplier.sentence
        frames.append(pd.DataFrame({"group": [n for n, _ in targets], "x": [c for _, c in targets],
                                    "loss": multiplier.loss, "kind": "target", "label": text}))  # fmt: skip
    columns = ["group", "x", "loss", "kind", "label"]
    return pd.concat(frames, ignore_index=True)[columns] if frames else pd.DataFrame(columns=columns)


def scaling_chart(
    fits: Mapping[str, ScalingFit],
    multiplier: Multiplier | None = None,
    *,
    x_title: str = "Training FLOPs (estimated)",
    y_title: str = "Validation loss",
    log_y: bool = True,
    width: int = 520,
    height: int = 340,
) -> alt.LayerChart:
    """Loss against compute (or parameters), log axes: each group's points and its fitted
    law L = E + A·C^(−α) in the group's colour; with a ``multiplier``, a dashed rule at L*
    and a mark where each law reaches it, titled with the multiplier's sentence."""
    data = scaling_frame(fits, multiplier)
    groups = list(dict.fromkeys(str(g) for g in data["group"]))
    color = alt.Color("group:N", title="group", scale=color_scale(groups))
    x = alt.X("x:Q", title=x_title, scale=alt.Scale(type="log"), axis=alt.Axis(format="~s"))
    y = alt.Y("loss:Q", title=y_title, scale=alt.Scale(type="log" if log_y else "linear", zero=False, nice=False))
    base = alt.Chart(data).encode(x=x, y=y, color=color)
    points = base.mark_point(size=70, filled=True).transform_filter("datum.kind == 'point'").encode(
        tooltip=["group:N", alt.Tooltip("x:Q", format=".3s"), alt.Tooltip("loss:Q", format=".4f")]
    )
    curves = base.mark_line(strokeWidth=2).transform_filter("datum.kind == 'fit'").encode(
        detail="group:N", tooltip=["group:N", "label:N"]
    )
    layers = [curves, points]
    title = alt.Undefined
    if multiplier is not None and multiplier.value is not None:
        rule = alt.Chart(data).mark_rule(strokeDash=[5, 4], color="#555555").transform_filter(
            "datum.kind == 'target'"
        ).encode(y="mean(loss):Q")
        marks = base.mark_point(shape="diamond", size=160, filled=True, stroke="black").transform_filter(
            "datum.kind == 'target'"
        ).encode(tooltip=["group:N", alt.Tooltip("x:Q", format=".3s"), alt.Tooltip("loss:Q", format=".4f")])
        layers = [rule, *layers, marks]
        title = alt.TitleParams(multiplier.sentence, fontSize=12, fontWeight="normal", limit=width + 150)
    chart = alt.layer(*layers, data=data).properties(width=width, height=height)
    return chart if title is alt.Undefined else chart.properties(title=title)


def matched_chart(table: pd.DataFrame, *, value: str = "loss", width: int = 360) -> alt.FacetChart:
    """One horizontal bar per run at each matched point (a panel per axis, e.g. tokens and
    FLOPs), from `sandbox.analysis.matched.matched_table`; runs that did not reach the
    point get the words "did not reach" instead of a bar. ``value``: "loss" or
    "bits_per_byte" (estimated)."""
    if value not in ("loss", "bits_per_byte"):
        raise ValueError(f"value must be 'loss' or 'bits_per_byte', not {value!r}")
    data = table[["run", "axis", "at", "reached", value, "note"]].copy()
    data["value"] = data[value].astype(float)
    data["missing"] = np.where(data["reached"], "", "did not reach")
    data.loc[data["reached"] & data["value"].isna(), "missing"] = "no tokens per byte known"
    data["panel"] = data["axis"].astype(str) + " = " + data["at"].map(lambda v: f"{v:.3g}" if pd.notna(v) else "?")
    data = data.drop(columns=[value])
    title = "validation loss (nats/token)" if value == "loss" else "bits per byte (estimated)"
    runs = list(dict.fromkeys(str(r) for r in data["run"]))
    y = alt.Y("run:N", title=None, sort=runs)
    bars = alt.Chart().mark_bar().encode(
        y=y, x=alt.X("value:Q", title=title),
        color=alt.Color("run:N", scale=color_scale(runs), legend=None),
        tooltip=["run:N", "panel:N", alt.Tooltip("value:Q", format=".4f"), "note:N"],
    ).transform_filter("isValid(datum.value)")  # fmt: skip
    words = alt.Chart().mark_text(align="left", dx=4, color="#666666").encode(
        y=y, x=alt.datum(0), text="missing:N", tooltip=["run:N", "note:N"]
    ).transform_filter("datum.missing != ''")
    layered = alt.layer(bars, words).properties(width=width, height=max(60, 26 * len(runs)))
    panels = list(dict.fromkeys(data["panel"]))
    return layered.facet(column=alt.Column("panel:N", title=None, sort=panels), data=data).resolve_scale(x="independent")


def difference_histogram(
    differences: Mapping[str, np.ndarray],
    reference: str,
    *,
    bins: int = 60,
    clip_quantile: float = 0.995,
    log_count: bool = False,
    width: int = 520,
) -> alt.FacetChart:
    """Histogram of per-byte differences to ``reference`` in bits (from
    `sandbox.analysis.byteloss.difference_to_reference`), one row of bars per run: blue
    where the run does better than the reference, orange where worse. The range is
    symmetric and ends at the ``clip_quantile`` of |difference|; values beyond it count in
    the end bins (the title says so). Binned here, so the chart holds ``bins`` rows per run."""
    finite = {r: np.asarray(v, dtype=np.float64)[np.isfinite(v)] for r, v in differences.items()}
    every = np.concatenate([v for v in finite.values()]) if finite else np.zeros(0)
    bound = float(np.quantile(np.abs(every), clip_quantile)) if every.size else 1.0
    bound = bound if bound > 0 else 1.0
    edges = np.linspace(-bound, bound, max(2, int(bins)) + 1)
    frames = []
    for run, values in finite.items():
        counts, _ = np.histogram(np.clip(values, -bound, bound), bins=edges)
        centre = (edges[:-1] + edges[1:]) / 2
        side = np.where(centre < 0, "better", np.where(centre > 0, "worse", "same"))
        frames.append(pd.DataFrame({"run": run, "lo": edges[:-1], "hi": edges[1:], "count": counts, "side": side}))
    data = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=["run", "lo", "hi", "count", "side"])
    clipped = int(np.count_nonzero(np.abs(every) > bound))
    title = f"Per-byte loss minus {reference}'s (bits): blue better, orange worse"
    if clipped:
        title += f"; {clipped:,} bytes beyond ±{bound:.3g} in the end bins"
    scale = alt.Scale(domain=["better", "same", "worse"], range=[BETTER_COLOR, TIE_COLOR, WORSE_COLOR])
    y_scale = alt.Scale(type="symlog") if log_count else alt.Scale()
    chart = alt.Chart(data).mark_bar(binSpacing=0).encode(
        x=alt.X("lo:Q", title=f"bits, relative to {reference}", bin="binned"),
        x2="hi:Q",
        y=alt.Y("count:Q", title="bytes", scale=y_scale),
        color=alt.Color("side:N", scale=scale, legend=None),
        tooltip=["run:N", alt.Tooltip("lo:Q", format=".3f"), alt.Tooltip("hi:Q", format=".3f"), "count:Q"],
    ).properties(width=width, height=140)  # fmt: skip
    return chart.facet(row=alt.Row("run:N", title=None), title=title)


def wins_chart(wins: Wins, *, width: int = 420) -> alt.Chart:
    """Share of bytes (or characters) each run predicts best, ties in grey."""
    data = pd.DataFrame({"run": [*wins.runs, "tie"], "share": [*wins.share.values(), wins.tie_share]})
    domain = list(wins.runs)
    palette = color_scale(domain)
    scale = alt.Scale(domain=[*domain, "tie"], range=[*palette.range, TIE_COLOR])
    chart = alt.Chart(data).mark_bar().encode(
        y=alt.Y("run:N", title=None, sort=[*domain, "tie"]),
        x=alt.X("share:Q", title="share of bytes predicted best", axis=alt.Axis(format="%")),
        color=alt.Color("run:N", scale=scale, legend=None),
        tooltip=["run:N", alt.Tooltip("share:Q", format=".1%")],
    )  # fmt: skip
    # A height per bar (Step): with a fixed total height Streamlit drew this chart collapsed.
    return chart.properties(width=width, height=alt.Step(26))


def bpb_curves_chart(curves: pd.DataFrame, x_title: str, *, width: int = 520) -> alt.Chart:
    """Validation curves in bits per byte, from `sandbox.analysis.matched.per_byte_curves`,
    titled as estimated (tokens per byte come from an evaluated text, not the validation set)."""
    runs = list(dict.fromkeys(str(r) for r in curves["run"]))
    return alt.Chart(curves).mark_line(point=alt.OverlayMarkDef(size=18)).encode(
        x=alt.X("x:Q", title=x_title, scale=alt.Scale(type="log")),
        y=alt.Y("bits_per_byte:Q", title="validation bits per byte (estimated)", scale=alt.Scale(zero=False)),
        color=alt.Color("run:N", scale=color_scale(runs)),
        tooltip=["run:N", alt.Tooltip("x:Q", format=".3~s"), alt.Tooltip("bits_per_byte:Q", format=".4f")],
    ).properties(width=width, height=300, title="Estimated: loss × tokens per byte of an evaluation / ln 2")  # fmt: skip
