"""AppTest of the Loss curves page on a synthetic lab of 60 runs: find, filter, group, zoom."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from sandbox.zoo import synthetic

ROOT = Path(__file__).resolve().parent.parent
RUNS = 60


@pytest.fixture
def lab_page(monkeypatch, tmp_path):
    """Factory: an AppTest of the Loss curves page on a 60-run lab (caches cleared)."""
    import streamlit as st
    from streamlit.testing.v1 import AppTest

    from sandbox.curves import charts, livewatch, runtable, view
    from sandbox.zoo import logread

    def clear() -> None:
        st.cache_resource.clear()
        st.cache_data.clear()
        logread.clear_cache()
        runtable.clear_cache()
        view.clear_memo()
        charts.clear_cache()

    synthetic.write_lab(tmp_path, runs=RUNS, rows=200)

    def make(query: dict | None = None) -> AppTest:
        monkeypatch.setenv("SANDBOX_MODELS_DIR", str(tmp_path))
        monkeypatch.delenv("SANDBOX_TOKEN", raising=False)
        monkeypatch.setenv("SANDBOX_LOG_WATCH", "poll")
        clear()
        at = AppTest.from_file(str(ROOT / "streamlit_app.py"), default_timeout=120)
        at.run()
        for key, value in (query or {}).items():
            at.query_params[key] = value
        at.switch_page("pages/loss_curves.py").run()
        assert not at.exception
        return at

    yield make
    clear()
    livewatch.stop_all()


def param(at, key: str) -> list[str]:
    value = at.query_params[key]
    return [value] if isinstance(value, str) else list(value)


def runs_table(at):
    return next(df.value for df in at.dataframe if "smoothed val loss" in df.value.columns)


def texts(at) -> str:
    return "\n".join(str(x.value) for x in [*at.markdown, *at.caption, *at.warning, *at.info])


def test_the_lab_opens_with_every_run_a_table_and_a_bounded_chart(lab_page):
    at = lab_page()
    assert len(at.multiselect(key="lc_runs").value) == RUNS
    table = runs_table(at)
    assert len(table) == RUNS and {"dim", "n_layers", "learning_rate", "tokenizer"} <= set(table.columns)
    assert set(table["status"]) == {"ok", "diverged", "training"}
    (chart,) = at.get("vega_lite_chart")
    assert "60 runs overlap" in texts(at)
    assert "Per-token losses of runs with different tokenizers are not comparable" in texts(at)
    assert re.search(r"and \d+ more", texts(at))  # 60 run ids are not listed one by one
    legends = re.findall(r'"symbolLimit":\s*(\d+)', chart.proto.spec)
    assert legends and set(legends) == {"40"}  # 60 runs: the legend lists 40, then "… 20 entries"
    spec = json.loads(chart.proto.spec)
    (configs,) = [p["value"] for p in spec["params"] if p["name"] == "run_config"]  # the tooltip's
    assert configs["lab_a/r0004"].startswith("dim=128 · learning_rate=0.0003 · n_layers=4")
    assert "max_seq_len" not in configs["lab_a/r0004"]  # the same in every run: not named


def test_filter_then_plot_all_filtered(lab_page):
    at = lab_page()
    at.text_input(key="lc_search").set_value("dim=128").run()
    assert len(runs_table(at)) == 20
    at.multiselect(key="lc_f_n_layers").set_value(["4"]).run()
    table = runs_table(at)
    assert len(table) > 0 and set(table["dim"]) == {"128"} and set(table["n_layers"]) == {"4"}
    at.selectbox(key="lc_sort").set_value("final val loss").run()
    finals = runs_table(at)["final val loss"].dropna().to_list()
    assert finals == sorted(finals)
    next(b for b in at.button if b.label.startswith("Plot all")).click().run()
    assert not at.exception
    assert sorted(at.multiselect(key="lc_runs").value) == sorted(table["run"])
    assert sorted(param(at, "runs")) == sorted(table["run"])
    at.text_input(key="lc_search").set_value("r00(").run()
    assert "not a valid regular expression" in texts(at)


def test_group_by_a_config_key_draws_groups_with_counts_and_flags(lab_page):
    at = lab_page()
    at.multiselect(key="lc_group").set_value(["dim"]).run()
    assert not at.exception
    assert param(at, "group") == ["dim"] and param(at, "agg") == ["mean"]
    groups_table = next(df.value for df in at.dataframe if "group" in df.value.columns)
    assert sorted(groups_table["group"]) == ["dim=128", "dim=256", "dim=64"]
    assert groups_table["runs"].sum() == RUNS
    assert "mixes tokenizers" in texts(at)  # each dim group holds both tokenizers
    spec = json.loads(at.get("vega_lite_chart")[0].proto.spec)
    assert "area" in json.dumps(spec["spec"]["layer"][0]["mark"])  # the band behind each line
    at.multiselect(key="lc_group").set_value(["dim", "tokenizer"]).run()
    at.selectbox(key="lc_agg").set_value("median").run()
    at.selectbox(key="lc_band").set_value("ci95").run()
    at.selectbox(key="lc_color").set_value("dim").run()
    assert not at.exception
    assert "mixes tokenizers" not in texts(at) and "normal approximation" in texts(at)
    assert param(at, "band") == ["ci95"] and param(at, "color") == ["dim"]
    shared = lab_page({k: param(at, k) for k in ("group", "agg", "band", "color")})
    assert shared.multiselect(key="lc_group").value == ["dim", "tokenizer"]
    assert shared.selectbox(key="lc_agg").value == "median" and shared.selectbox(key="lc_color").value == "dim"


def test_the_x_range_zooms_and_travels_in_the_link(lab_page):
    at = lab_page({"metric": "validation loss"})
    at.slider(key="lc_xrange").set_value((500.0, 1000.0)).run()
    assert not at.exception
    assert param(at, "xmin") == ["500"] and param(at, "xmax") == ["1000"]
    again = lab_page({"metric": "validation loss", "xmin": "500", "xmax": "1000"})
    assert again.slider(key="lc_xrange").value == (500.0, 1000.0)
    bad = lab_page({"xmin": "nope", "group": "__class__"})
    assert "x range start" in texts(bad) and "__class__" in texts(bad)
