"""sandbox.analysis.charts: every chart builds, holds bounded rows and exports offline."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import vl_convert

from sandbox.analysis import charts, matched, multiplier, scaling, wins
from sandbox.figures import export

PNG = b"\x89PNG\r\n\x1a\n"
ROOT = Path(__file__).resolve().parents[1]


def fits_and_multiplier():
    x = np.geomspace(1e12, 1e16, 6)
    base = scaling.fit_power_law(x, 1.7 + 300.0 * x**-0.2, group="base", n_boot=40)
    var = scaling.fit_power_law(x * 2, 1.7 + 200.0 * (x * 2) ** -0.2, group="gqa", n_boot=40)
    few = scaling.fit_power_law([1e13, 1e14], [2.5, 2.3], group="two runs")
    return {"base": base, "gqa": var, "two runs": few}, multiplier.compute_multiplier(base, var)


def matched_table():
    return matched.matched_table(
        {
            "tokens": {"e/a": ([1e6, 1e7, 1e8], [4.0, 3.0, 2.5]), "e/b": ([1e6, 5e7], [4.0, 2.8])},
            "FLOPs": {"e/a": ([1e12, 1e14], [4.0, 2.5]), "e/b": ([1e12, 1e13], [4.0, 3.0])},
        },
        at={"tokens": 8e7},
        tokens_per_byte={"e/a": 0.3},
    )


def differences():
    rng = np.random.default_rng(0)
    return {"e/b": rng.normal(0.1, 0.5, 20_000), "e/c": np.r_[rng.normal(-0.1, 0.3, 20_000), np.nan]}


def all_charts():
    fits, mult = fits_and_multiplier()
    won = wins.who_wins({"e/a": np.array([1.0, 2.0, 3.0]), "e/b": np.array([2.0, 1.0, 3.0])})
    return {
        "scaling": charts.scaling_chart(fits, mult),
        "scaling without multiplier": charts.scaling_chart(fits, log_y=False),
        "matched loss": charts.matched_chart(matched_table()),
        "matched bits per byte": charts.matched_chart(matched_table(), value="bits_per_byte"),
        "histogram": charts.difference_histogram(differences(), "e/a", bins=40),
        "wins": charts.wins_chart(won),
    }


@pytest.mark.parametrize("name", list(all_charts()))
def test_each_chart_exports_to_png_and_svg_offline(name):
    chart = all_charts()[name]
    assert export.to_png(chart, scale=1.0).startswith(PNG)
    assert "<svg" in export.to_svg(chart)


def test_scaling_chart_draws_points_curves_and_the_multiplier():
    fits, multiplier = fits_and_multiplier()
    data = charts.scaling_frame(fits, multiplier)
    kinds = data.groupby("kind").size().to_dict()
    assert kinds["point"] == 6 + 6 + 2  # every group's points, fitted or not
    assert kinds["fit"] == 2 * charts.CURVE_POINTS  # a curve only where a law was fitted
    targets = data[data["kind"] == "target"].set_index("group")
    assert set(targets.index) == {"base", "gqa"}
    assert targets["loss"].eq(multiplier.loss).all()
    # The marks sit where each law reaches L*: their ratio is the multiplier.
    assert targets.loc["base", "x"] / targets.loc["gqa", "x"] == pytest.approx(multiplier.value, rel=1e-9)
    spec = export.inline_spec(charts.scaling_chart(fits, multiplier))
    assert spec["title"]["text"] == multiplier.sentence
    assert vl_convert.vegalite_to_vega(spec)["marks"]


def test_matched_chart_says_which_runs_did_not_reach_the_point():
    spec = export.inline_spec(charts.matched_chart(matched_table()))
    rows = spec["data"]["values"]
    assert '"missing":"did not reach"' in rows  # e/b stops at 5e7 tokens, before 8e7
    assert "tokens = 8e+07" in rows
    with pytest.raises(ValueError, match="value"):
        charts.matched_chart(matched_table(), value="perplexity")


def test_histogram_is_binned_here_and_colours_by_side():
    chart = charts.difference_histogram(differences(), "e/a", bins=40)
    assert len(chart.data) == 2 * 40  # bins per run, not one row per byte
    assert chart.data.groupby("run")["count"].sum().to_dict() == {"e/b": 20_000, "e/c": 20_000}
    assert set(chart.data["side"]) == {"better", "worse"}
    assert (chart.data.loc[chart.data["side"] == "better", "hi"] <= 0).all()


def test_the_analysis_package_needs_neither_torch_nor_streamlit():
    code = (
        "import sys; import sandbox.analysis.scaling, sandbox.analysis.matched, "
        "sandbox.analysis.wins, sandbox.analysis.corpusdiff, sandbox.analysis.multiplier, sandbox.analysis.charts; "
        "print(sorted(m for m in ('torch', 'streamlit') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    assert out.stdout.strip() == "[]"
