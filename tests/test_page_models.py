"""AppTest of the home page and the Models page, on toy experiments (healthy and broken)."""

from __future__ import annotations

import toyzoo


def _texts(at) -> str:
    parts = [m.value for m in at.markdown] + [e.value for e in at.error] + [w.value for w in at.warning]
    parts += [c.value for c in at.caption]
    return "\n".join(str(p) for p in parts)


def test_home_page_counts_the_zoo(app_at, toy_models):
    at = app_at(toy_models).run()
    assert not at.exception
    assert at.title[0].value == "micro-GPT sandbox"
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Experiments"] == "2" and metrics["Trained runs"] == "2"


def test_models_page_lists_runs_and_diffs_configs(app_at, toy_models):
    at = app_at(toy_models).run()
    at.switch_page("pages/models.py").run()
    assert not at.exception
    table = at.dataframe[0].value
    assert set(table["run"]) == {"run1", "cached"}
    assert set(table["status"]) == {"ok"}
    assert table.set_index("run").loc["run1", "parameters"] == 1424
    # The config diff shows only keys that differ (both runs picked by default).
    diff = at.dataframe[1].value
    assert "vocab_len" in set(diff["key"]) and "dim" in set(diff["key"])
    assert "max_batch_size" in set(diff["key"])  # present in one run only
    assert "pad id 35 lies outside the model's output" in _texts(at)


def test_broken_experiment_shows_its_problem_and_the_page_goes_on(app_at, tmp_path):
    toyzoo.make_toy_a(tmp_path)
    broken = toyzoo.make_toy_b(tmp_path, name="broken_b")
    (broken / "modules/model.py").write_text("def oops(:\n")
    at = app_at(tmp_path).run()
    at.switch_page("pages/models.py").run()
    assert not at.exception
    table = at.dataframe[0].value.set_index("experiment")
    assert table.loc["toy_a", "status"] == "ok"
    assert table.loc["broken_b", "status"] == "broken"
    assert "modules/model.py has a syntax error on line 1" in table.loc["broken_b", "problems"]
    assert "modules/model.py has a syntax error on line 1" in _texts(at)


def test_static_only_doctor_starts_no_worker(app_at, toy_models):
    from pages import common

    at = app_at(toy_models).run()
    at.switch_page("pages/models.py").run()
    at.toggle[0].set_value(False).run()
    assert not at.exception
    assert at.dataframe[0].value.shape[0] == 2
    assert common.worker_pool().live_workers() <= 2


def test_code_diff_scatter_and_summary_card(app_at, toy_models):
    at = app_at(toy_models).run()
    at.switch_page("pages/models.py").run()
    assert not at.exception
    # What changed: toy_b against toy_a; model.py and config.py differ, layers.py does not.
    diff_boxes = [e.label for e in at.expander]
    assert any("modules/model.py" in label and "changed" in label for label in diff_boxes)
    assert any("`modules/layers.py`" in c.value for c in at.caption if "Unchanged" in c.value)
    codes = [c.value for c in at.code]
    assert any("+++ toy_b/modules/model.py" in c for c in codes)
    # Parameters & compute: the breakdown from the workers and two scatter charts.
    frames = [d.value for d in at.dataframe]
    cost = next(f for f in frames if "non_embedding" in getattr(f, "columns", []))
    assert dict(zip(cost["run_id"], cost["parameters"], strict=True)) == {"toy_a/run1": 1424, "toy_b/cached": 2280}
    assert len(at.get("arrow_vega_lite_chart")) + len(at.get("vega_lite_chart")) >= 2
    # The comparison card: A vs B with the differing figures.
    card = next(f for f in frames if "B − A" in getattr(f, "columns", []))
    row = card.set_index("metric").loc["parameters"]
    assert (row["toy_a/run1"], row["toy_b/cached"]) == ("1,424", "2,280")
    assert any("model-code files differ" in m.value for m in at.markdown)


def test_models_page_selection_lives_in_the_url(app_at, toy_models):
    at = app_at(toy_models)
    at.query_params["run"] = "toy_b/cached"
    at.query_params["diff"] = ["toy_a/run1", "toy_b/cached"]
    at.query_params["a"] = "toy_b/cached"
    at.query_params["b"] = "../../etc/passwd"
    at.query_params["exp"] = ["toy_b", "__import__('os')"]
    at.run()
    at.switch_page("pages/models.py").run()
    assert not at.exception
    assert at.selectbox(key="models_detail_run").value == "toy_b/cached"
    assert at.selectbox(key="card_a").value == "toy_b/cached"
    assert at.multiselect(key="models_experiments").value == ["toy_b"]
    warnings = " ".join(w.value for w in at.warning)
    assert "../../etc/passwd" in warnings and "__import__" in warnings
    assert set(at.dataframe[0].value["experiment"]) == {"toy_b"}
    # The URL follows the widgets.
    at.multiselect(key="models_experiments").set_value(["toy_a", "toy_b"]).run()
    at.selectbox(key="models_detail_run").set_value("toy_a/run1").run()
    assert at.query_params["exp"] == ["toy_a", "toy_b"]
    assert at.query_params["run"] == ["toy_a/run1"] or at.query_params["run"] == "toy_a/run1"
    assert not at.exception


def test_the_open_tab_is_in_the_link(app_at, toy_models):
    at = app_at(toy_models)
    at.query_params["tab"] = "doctor"
    at.run()
    at.switch_page("pages/models.py").run()
    assert not at.exception
    assert at.session_state["models_tab"] == "Doctor"
    at.session_state["models_tab"] = "Config diff"  # what a click on that tab sends
    at.run()
    assert at.query_params["tab"] in ("diff", ["diff"])
    assert not [w for w in at.warning if "from the link" in w.value]
    # A tab that does not exist: one warning, the first tab.
    at = app_at(toy_models)
    at.query_params["tab"] = "<script>"
    at.run()
    at.switch_page("pages/models.py").run()
    assert any("<script>" in w.value and "tab" in w.value for w in at.warning)
    assert at.session_state["models_tab"] == "Run details"


def test_screenshot_mode_names_the_run_it_shows(app_at, toy_models):
    """The run picker is hidden in screenshot mode: the run's name is a heading instead."""
    at = app_at(toy_models)
    at.query_params["screenshot"] = "1"
    at.query_params["run"] = "toy_b/cached"
    at.run()
    at.switch_page("pages/models.py").run()
    assert not at.exception
    assert "toy_b/cached" in [s.value for s in at.subheader]
    at = app_at(toy_models)
    at.query_params["run"] = "toy_b/cached"
    at.run()
    at.switch_page("pages/models.py").run()
    assert "toy_b/cached" not in [s.value for s in at.subheader]  # the picker says it already
