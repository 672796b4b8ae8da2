"""AppTest of the Loss curves page on a synthetic models folder (both headers, a broken log)."""

from __future__ import annotations

from pathlib import Path

import logzoo  # noqa: E402
import pytest

ROOT = Path(__file__).resolve().parent.parent
DRAWABLE = ["alpha/v1", "beta/broken", "beta/v2"]  # beta/fresh has no log yet


@pytest.fixture
def page(monkeypatch, tmp_path):
    """Factory: an AppTest of the app on ``tmp_path`` (zoo built first), caches cleared."""
    import streamlit as st
    from streamlit.testing.v1 import AppTest

    from sandbox.curves import charts, livewatch, view
    from sandbox.zoo import logread

    def clear() -> None:
        st.cache_resource.clear()
        st.cache_data.clear()
        logread.clear_cache()
        view.clear_memo()
        charts.clear_cache()

    def make(query: dict | None = None, zoo: bool = True) -> AppTest:
        if zoo:
            logzoo.make_zoo(tmp_path)
        monkeypatch.setenv("SANDBOX_MODELS_DIR", str(tmp_path))
        monkeypatch.delenv("SANDBOX_TOKEN", raising=False)
        monkeypatch.setenv("SANDBOX_LOG_WATCH", "poll")  # deterministic: no watcher thread
        clear()
        at = AppTest.from_file(str(ROOT / "streamlit_app.py"), default_timeout=120)
        at.run()
        for key, value in (query or {}).items():
            at.query_params[key] = value
        at.switch_page("pages/loss_curves.py").run()
        return at

    yield make
    clear()
    livewatch.stop_all()


def param(at, key: str) -> list[str]:
    """A query parameter as a list (AppTest keeps a one-element list as a plain string)."""
    value = at.query_params[key]
    return [value] if isinstance(value, str) else list(value)


def charts_of(at):
    return at.get("vega_lite_chart")


def tables(at) -> list:
    return [df.value for df in at.dataframe]


def texts(at) -> str:
    parts = [m.value for m in at.markdown] + [c.value for c in at.caption]
    parts += [w.value for w in at.warning] + [i.value for i in at.info]
    return "\n".join(str(p) for p in parts)


def test_defaults_show_every_run_with_a_log(page):
    at = page()
    assert not at.exception
    assert at.title[0].value == "Loss curves"
    assert at.multiselect[0].value == DRAWABLE
    assert at.multiselect[0].options == DRAWABLE  # the run without a log is not offered
    assert at.multiselect[1].value == ["validation loss", "train loss"]
    assert at.radio[0].value == "step"
    assert len(charts_of(at)) == 1
    val, train = tables(at)
    assert sorted(val["run"].astype(str)) == DRAWABLE and len(train) == 3
    assert set(val.columns) >= {"final", "best", "best step", "rank"}
    assert param(at, "runs") == DRAWABLE
    assert len(at.get("download_button")) == 3  # PNG, SVG, CSV
    notes = at.expander[0]
    assert "note(s) about these logs" in notes.label
    assert "beta/trained/broken/log_data.csv" in notes.markdown[0].value
    assert "diverged" in notes.markdown[0].value


def test_selecting_runs_and_metrics_changes_tables_and_url(page):
    at = page()
    at.multiselect[0].set_value(["alpha/v1", "beta/v2"]).run()
    at.multiselect[1].set_value(["perplexity"]).run()
    assert not at.exception
    assert len(tables(at)) == 1
    assert sorted(tables(at)[0]["run"].astype(str)) == ["alpha/v1", "beta/v2"]
    assert param(at, "runs") == ["alpha/v1", "beta/v2"]
    assert param(at, "metric") == ["perplexity"]
    assert len(charts_of(at)) == 1


def test_axes_scales_smoothing_and_trim(page):
    at = page()
    at.radio[0].set_value("tokens").run()
    assert not at.exception
    assert "beta/broken" in texts(at) and "train_config.json" in texts(at)  # listed, not faked
    assert "computed from its configs" in texts(at)  # beta/v2: batch × accumulation × context
    at.radio[0].set_value("time").run()
    at.toggle[0].set_value(True).run()  # log x
    at.toggle[1].set_value(True).run()  # log y
    at.slider[0].set_value(0.9).run()  # smoothing
    at.slider[1].set_value(20.0).run()  # trim
    assert not at.exception
    assert len(charts_of(at)) == 1
    assert param(at, "x") == ["time"] and param(at, "smooth") == ["0.9"]
    assert param(at, "logx") == ["1"] and param(at, "trim") == ["20"]
    assert len(tables(at)[0]) == 3  # the tables keep every run and the full logs


def test_a_shared_link_opens_the_same_view(page):
    at = page({"run": ["beta/v2"], "metric": ["perplexity"], "x": "tokens", "logy": "1", "smooth": "0.5"})
    assert not at.exception
    assert not at.warning
    assert at.multiselect[0].value == ["beta/v2"]
    assert at.multiselect[1].value == ["perplexity"]
    assert at.radio[0].value == "tokens"
    assert at.toggle[1].value is True and at.slider[0].value == 0.5
    assert len(tables(at)) == 1 and list(tables(at)[0]["run"].astype(str)) == ["beta/v2"]


def test_invalid_query_parameters_are_ignored_with_warnings(page):
    at = page(
        {
            "run": ["../../etc/passwd", "alpha/v1", "beta/fresh"],
            "metric": ["__import__('os').system('id')"],
            "x": "/etc/passwd",
            "smooth": "NaN",
            "trim": "1e9",
        }
    )
    assert not at.exception
    warnings = "\n".join(w.value for w in at.warning)
    assert "../../etc/passwd" in warnings and "not a run found" in warnings
    assert "beta/fresh" in warnings and "no training log" in warnings
    assert "__import__" in warnings and "/etc/passwd" in warnings
    assert "smoothing" in warnings and "trim" in warnings
    assert at.multiselect[0].value == ["alpha/v1"]
    assert at.multiselect[1].value == ["validation loss", "train loss"]  # defaults instead
    assert at.radio[0].value == "step" and at.slider[0].value == 0.0
    assert len(charts_of(at)) == 1


def test_no_logs_is_an_info_not_an_error(page, tmp_path):
    logzoo.add_run(tmp_path, "empty", "r", None)
    at = page(zoo=False)
    assert not at.exception
    assert "No run in the models directory has a training log" in at.info[0].value
    assert not charts_of(at)


def test_new_rows_and_new_runs_show_up_on_the_next_run(page, tmp_path):
    at = page()
    before = tables(at)[1].set_index("run").loc["alpha/v1", "final step"]
    log = tmp_path / "alpha" / "trained" / "v1" / "log_data.csv"
    with log.open("a") as f:
        f.write("990,500,1990,1.01,1.11,3.03,0.001,0.4,1013760\n")
    logzoo.add_run(tmp_path, "gamma", "new", logzoo.curve_frame(logzoo.V2).to_csv(index=False))
    at.run()
    assert not at.exception
    assert tables(at)[1].set_index("run").loc["alpha/v1", "final step"] == 990 != before
    assert "gamma/new" in at.multiselect[0].options
    assert "gamma/new" in at.multiselect[0].value  # "all runs" stays all runs


def test_clear_all_then_one_run_shows_that_run_only(page):
    """The multiselect's "Clear all", then one run picked: that run alone, not every run again."""
    at = page()
    at.multiselect[0].set_value([]).run()  # what the clear-all button sends
    assert not at.exception
    assert at.multiselect[0].value == []
    assert any("Choose at least one run" in i.value for i in at.info)
    at.multiselect[0].set_value(["beta/v2"]).run()
    assert not at.exception
    assert at.multiselect[0].value == ["beta/v2"]
    assert param(at, "runs") == ["beta/v2"]
    assert [list(t["run"].astype(str)) for t in tables(at)] == [["beta/v2"], ["beta/v2"]]
    at.run()  # a later rerun (e.g. the live part's) keeps the choice too
    assert at.multiselect[0].value == ["beta/v2"]


def test_an_emptied_selection_stays_empty_across_reruns(page):
    at = page()
    at.multiselect[0].set_value([]).run()
    at.run()
    assert at.multiselect[0].value == []


def test_screenshot_mode_enlarges_chart_text(page):
    import json

    from sandbox.curves import charts

    plain = json.loads(charts_of(page())[0].proto.spec)
    shot = json.loads(charts_of(page({"screenshot": "1"}))[0].proto.spec)
    size = shot["config"]["axis"]["labelFontSize"]
    assert size >= 16 and size > plain.get("config", {}).get("axis", {}).get("labelFontSize", 10)
    assert shot["config"]["legend"]["labelFontSize"] >= 16
    assert shot["config"]["header"]["labelFontWeight"] == "bold"  # the chart's own config is kept
    assert shot["config"]["axis"] == charts.SCREENSHOT_CONFIG["axis"]
