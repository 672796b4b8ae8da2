"""Curves that can be read and rankings that say when they are unfair: a y range that
ignores outliers (with a switch to the full range), runs with different tokenizers or data
flagged where they are ranked, and a bits-per-byte view from cached evaluations."""

from __future__ import annotations

import json
import math
import re
from dataclasses import replace
from pathlib import Path

import logzoo  # noqa: E402
import numpy as np
import pytest

from sandbox.curves import charts, fairness, yrange
from sandbox.curves import view as lossview
from sandbox.curves.prepare import CurveSettings  # noqa: E402
from sandbox.evaluation import tokenrate
from sandbox.figures import export
from sandbox.urlstate import loss_curves
from sandbox.zoo import discovery, logread

ROOT = Path(__file__).resolve().parent.parent
ZOO = ("big/bpe32k", "hot/start65", "small/bpe1k")


@pytest.fixture
def zoo(tmp_path, monkeypatch):
    """The vocabulary zoo (1,024 to 32,768, one run starting at loss 65), its own caches."""
    monkeypatch.setenv("SANDBOX_CACHE_DIR", str(tmp_path / "cache"))
    logread.clear_cache()
    lossview.clear_memo()
    logzoo.make_vocab_zoo(tmp_path / "models")
    yield {run.id: run for run in discovery.all_runs(tmp_path / "models")}
    logread.clear_cache()
    lossview.clear_memo()


def _view(runs, **settings) -> lossview.LossView:
    return lossview.build(list(runs.values()), CurveSettings(runs=ZOO, metrics=("validation loss",), **settings))


def _y_ticks(svg: str) -> list[float]:
    """The y axis' tick labels of a single-panel chart's SVG (the numbers after the x title)."""
    texts = re.findall(r"<text[^>]*>([^<]*)</text>", svg)
    after = texts[texts.index("Step") + 1 :]
    return [float(t) for t in after if re.fullmatch(r"-?[0-9.]+", t)]


# -- the y range ------------------------------------------------------------------------------


def test_robust_range_ignores_one_outlier_start_but_keeps_a_plain_curve_whole():
    plain = 1.5 + 3.0 * np.exp(-np.arange(50) / 12.5)  # logzoo's shape: 4.5 down to ~1.55
    lo, hi = yrange.robust_range([plain])
    assert lo < plain.min() and hi > plain.max()  # nothing of a plain curve is cut
    hot = logzoo.outlier_frame()["Validation Loss"].to_numpy()
    lo, hi = yrange.robust_range([plain, plain * 1.2, hot])
    assert hot.max() > 60 and hi < 10  # the start at 65 is left out...
    assert hi > (plain * 1.2).max() and lo < plain.min()  # ...every other run stays whole
    assert yrange.robust_range([np.array([np.nan, np.inf])]) is None
    lo, hi = yrange.robust_range([plain, hot], log=True)
    assert 0 < lo < plain.min() and hi < 20
    for log in (False, True):  # a flat series (a constant learning rate) still gets a range around it
        lo, hi = yrange.robust_range([np.full(10, 1.0)], log=log)
        assert lo < 0.99 and hi > 1.01


def test_default_range_excludes_the_outlier_and_full_range_shows_it(zoo):
    robust = _view(zoo)
    lo, hi = robust.curves.y_domains["validation loss"]
    others = [logread.read_log(zoo[r].log_path).columns["validation loss"] for r in ("big/bpe32k", "small/bpe1k")]
    assert hi < 65 and hi >= max(v.max() for v in others) and lo <= min(v.min() for v in others)
    assert robust.curves.clipped > 0 and any("outside the y range" in n for n in robust.curves.notes)
    ticks = _y_ticks(export.spec_to_svg(robust.spec))  # what vl-convert draws: the outlier is off it
    assert ticks and max(ticks) < 20
    full = _view(zoo, full_y=True)
    assert full.curves.y_domains == {} and full.curves.clipped == 0
    assert max(_y_ticks(export.spec_to_svg(full.spec))) >= 60


def test_the_range_is_given_per_panel_and_the_chart_clips(zoo):
    view = lossview.build(list(zoo.values()), CurveSettings(runs=ZOO, metrics=("validation loss", "learning rate")))
    spec = view.chart.to_dict()
    params = {p["name"]: p for p in spec["params"]}
    assert set(params["y_lo"]["value"]) == {"validation loss", "learning rate"}
    assert "picked_run" in params and "zoom" in params  # the selections are kept beside them
    text = json.dumps(spec)
    assert "y_lo[parent.metric]" in text and '"clip": true' in text
    export.spec_to_svg(view.spec)  # compiles and renders
    plain = charts.loss_chart(view.curves.draw, metrics=["validation loss", "learning rate"]).to_dict()
    assert "y_lo" not in json.dumps(plain)  # the full-range layout reads no range


def test_y_range_and_unit_live_in_the_url():
    settings = CurveSettings(runs=("a/1",), metrics=("train loss",), full_y=True, per_byte=True)
    query = loss_curves.to_query(settings)
    assert query["yrange"] == ["full"] and query["unit"] == ["byte"]
    back, warnings = loss_curves.from_query(query, ["a/1"], lambda runs: ["train loss"])
    assert back == settings and warnings == []
    bad, warnings = loss_curves.from_query({"yrange": ["wide"], "unit": ["parsec"]}, ["a/1"], lambda r: ["train loss"])
    assert (bad.full_y, bad.per_byte) == (False, False) and len(warnings) == 2


# -- comparable rankings ----------------------------------------------------------------------


def test_rankings_of_runs_with_different_tokenizers_or_data_are_flagged(zoo):
    view = lossview.build(list(zoo.values()), CurveSettings(runs=ZOO, metrics=("validation loss", "learning rate")))
    notes = view.rank_notes["validation loss"]
    assert any("Per-token losses of runs with different tokenizers are not comparable" in n for n in notes)
    assert any("bpe · vocab 1024 (small/bpe1k)" in n and "bpe · vocab 32768 (big/bpe32k)" in n for n in notes)
    assert any("trained on different data" in n and "tinystories" in n and "fineweb-edu" in n for n in notes)
    table = view.summary["validation loss"].set_index("run")
    assert table.loc["hot/start65", "tokenizer"] == "bpe_fineweb-edu · vocab 8192"
    # A learning rate is neither per token nor a loss: nothing to say where it is listed.
    assert "learning rate" not in view.rank_notes


def test_runs_with_one_tokenizer_and_no_data_difference_get_no_note(zoo):
    same = lossview.build([zoo["small/bpe1k"]], CurveSettings(runs=("small/bpe1k",), metrics=("validation loss",)))
    assert same.rank_notes == {} and "tokenizer" not in same.summary["validation loss"].columns
    assert fairness.is_per_token("validation loss") and fairness.is_per_token("Perplexity")
    assert not fairness.is_per_token("val_bpb") and not fairness.is_per_token("learning rate")


# -- bits per byte ----------------------------------------------------------------------------


def test_bits_per_byte_from_a_cached_evaluation(zoo):
    small, big = zoo["small/bpe1k"], zoo["big/bpe32k"]
    logzoo.cache_evaluation(small, tokens=300, n_bytes=1000)
    logzoo.cache_evaluation(big, tokens=200, n_bytes=1000)
    rates = tokenrate.token_rates(zoo.values())
    assert set(rates) == {"small/bpe1k", "big/bpe32k"} and rates["small/bpe1k"].tokens_per_byte == 0.3
    view = _view(zoo, per_byte=True)
    label = "validation loss" + fairness.PER_BYTE_SUFFIX
    full = view.curves.full
    for run, rate in ((small, 0.3), (big, 0.2)):
        logged = logread.read_log(run.log_path).columns["validation loss"]
        drawn = full[full["run"] == run.id]["value"].to_numpy()
        np.testing.assert_allclose(drawn, logged * rate / math.log(2))
    assert set(full["metric"]) == {label}
    assert "hot/start65" not in set(full["run"])  # no evaluation: not drawn per byte, and said so
    assert any("Not drawn in bits per byte" in n and "hot/start65" in n for n in view.curves.notes)
    notes = view.rank_notes[label]
    assert "estimated from an evaluation" in notes[0] and "small/bpe1k 0.300" in notes[0]
    assert not any("tokenizers are not comparable" in n for n in notes)  # per byte, they compare
    export.spec_to_svg(view.spec)


def test_only_an_evaluation_of_the_current_weights_counts(zoo):
    run = zoo["small/bpe1k"]
    logzoo.cache_evaluation(run, tokens=300, n_bytes=1000)
    assert "small/bpe1k" in tokenrate.token_rates([run])
    cfg = json.loads(run.model_config_path.read_text())
    run.model_config_path.write_text(json.dumps({**cfg, "vocab_len": 2048}))  # another model now
    assert tokenrate.token_rates([run]) == {}
    assert replace(CurveSettings(), per_byte=True).per_byte


# -- the page ---------------------------------------------------------------------------------


@pytest.fixture
def page(zoo, monkeypatch, tmp_path):
    import streamlit as st
    from streamlit.testing.v1 import AppTest

    monkeypatch.setenv("SANDBOX_MODELS_DIR", str(tmp_path / "models"))
    monkeypatch.setenv("SANDBOX_LOG_WATCH", "poll")
    monkeypatch.delenv("SANDBOX_TOKEN", raising=False)

    def make(query: dict | None = None):
        st.cache_resource.clear()
        st.cache_data.clear()
        at = AppTest.from_file(str(ROOT / "streamlit_app.py"), default_timeout=120).run()
        for key, value in (query or {}).items():
            at.query_params[key] = value
        at.switch_page("pages/loss_curves.py").run()
        assert not at.exception
        return at

    yield make
    from sandbox.curves import livewatch

    livewatch.stop_all()
    st.cache_resource.clear()


def _spec(at) -> dict:
    return json.loads(at.get("vega_lite_chart")[0].proto.spec)


def _param(at, key):
    value = at.query_params[key]
    return [value] if isinstance(value, str) else list(value)


def test_page_y_range_switch(page):
    at = page()
    assert at.toggle(key="lc_fully").value is False
    params = {p["name"]: p.get("value") for p in _spec(at).get("params", [])}
    assert params["y_hi"]["validation loss"] < 65  # two metrics: a range per panel
    captions = " ".join(c.value for c in at.caption)
    assert "outside the y range" in captions
    assert "Per-token losses of runs with different tokenizers are not comparable" in captions.replace("\\", "")
    at.toggle(key="lc_fully").set_value(True).run()
    assert not at.exception
    assert _param(at, "yrange") == ["full"]
    assert "y_hi" not in {p["name"] for p in _spec(at).get("params", [])}
    linked = page({"yrange": "full", "run": list(ZOO)})
    assert linked.toggle(key="lc_fully").value is True and not linked.warning


def test_page_bits_per_byte_switch(page, zoo):
    logzoo.cache_evaluation(zoo["small/bpe1k"], tokens=300, n_bytes=1000)
    at = page({"unit": "byte", "metric": "validation loss"})
    assert at.toggle(key="lc_perbyte").value is True
    text = " ".join([c.value for c in at.caption] + [m.value for m in at.markdown]).replace("\\", "")
    assert "validation loss (bits per byte, estimated)" in text
    assert "estimated from an evaluation" in text and "Not drawn in bits per byte" in text
    assert [str(r) for r in at.dataframe[0].value["run"]] == ["small/bpe1k"]
