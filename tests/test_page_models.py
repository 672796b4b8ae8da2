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


def _load_every_run(at):
    next(b for b in at.button if b.label == "Load every run").click().run()
    assert not at.exception


def test_models_page_lists_runs_and_diffs_configs(app_at, toy_models):
    at = app_at(toy_models).run()
    at.switch_page("pages/models.py").run()
    assert not at.exception
    _load_every_run(at)
    table = at.dataframe[0].value
    assert set(table["run"]) == {"run1", "cached"}
    assert set(table["status"]) == {"ok"}
    assert table.set_index("run").loc["run1", "parameters"] == "1,424"
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


def test_opening_the_page_starts_no_worker_and_loading_is_a_button(app_at, tmp_path, monkeypatch):
    """The table and the static doctor show at once; parameters stay blank until the button
    loads every run (one progress bar for all, a status box listing only problems); then
    the one count shows everywhere, and stays."""
    from pages import common

    monkeypatch.setenv("SANDBOX_CACHE_DIR", str(tmp_path / "cache"))
    toyzoo.make_toy_buffers(tmp_path / "models")
    toyzoo.make_toy_b(tmp_path / "models")
    at = app_at(tmp_path / "models").run()
    at.switch_page("pages/models.py").run()
    assert not at.exception
    assert common.worker_pool().live_workers() == 0
    table = at.dataframe[0].value
    assert (table["parameters"] == "").all() and set(table["checked"]) == {"files only"}
    assert "2 run(s) not loaded yet" in _texts(at)
    assert "Not loaded yet" in _texts(at)
    _load_every_run(at)
    assert len(at.get("progress")) == 1  # one bar, whatever the number of runs
    assert [s.label for s in at.status] == ["2 of 2 runs loaded; no problems"]
    table = at.dataframe[0].value.set_index("run")
    assert table.loc["run1", "parameters"] == f"{toyzoo.TOY_C_PARAMETERS:,}"
    assert set(table["checked"]) == {"forward pass"}
    at.selectbox(key="models_detail_run").set_value("toy_c/run1").run()
    assert f"Loaded: {toyzoo.TOY_C_PARAMETERS:,} parameters" in _texts(at)
    # A later visit shows what was found without loading again (fresh app, same cache).
    at = app_at(tmp_path / "models").run()
    at.switch_page("pages/models.py").run()
    assert common.worker_pool().live_workers() == 0
    assert at.dataframe[0].value.set_index("run").loc["run1", "parameters"] == f"{toyzoo.TOY_C_PARAMETERS:,}"
    assert not at.get("progress")


def test_code_diff_scatter_and_summary_card(app_at, toy_models):
    at = app_at(toy_models).run()
    at.switch_page("pages/models.py").run()
    assert not at.exception
    _load_every_run(at)
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


def test_linked_pickers_are_drawn_with_their_value_as_default(app_at, toy_models):
    # A widget in a tab the browser has not opened yet starts there from the default it was
    # sent; when that default was index 0, the next click sent "Run B = Run A" back (seen in
    # Chromium after "Evaluate both"). So every run sends each picker's value as its default.
    at = app_at(toy_models)
    at.query_params["a"] = "toy_a/run1"
    at.query_params["b"] = "toy_b/cached"
    at.query_params["diff"] = ["toy_a/run1", "toy_b/cached"]
    at.run()
    at.switch_page("pages/models.py").run()
    for _ in range(2):  # as linked, then on a later run of the page
        assert not at.exception
        for key, value in (("card_a", "toy_a/run1"), ("card_b", "toy_b/cached")):
            box = at.selectbox(key=key)
            assert box.value == value and box.options[box.proto.default] == value, key
        runs = at.multiselect(key="models_diff_runs")
        assert runs.value == ["toy_a/run1", "toy_b/cached"]
        assert [runs.options[i] for i in runs.proto.default] == runs.value
        at.run()


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
def _fork_zoo(models):
    """template; kv_fork, forked from it; kv_fork2, forked from kv_fork (their READMEs say so);
    and an unrelated toy_b."""
    base = toyzoo.make_toy_a(models, name="template")
    fork = toyzoo.copy_experiment(base, models, "kv_fork")
    layers = fork / "modules/layers.py"
    layers.write_text(layers.read_text().replace("torch.tanh(", "torch.relu("))
    (fork / "README.md").write_text("# kv_fork\n\nForked from `template/` (copied, then changed).\n")
    fork2 = toyzoo.copy_experiment(fork, models, "kv_fork2")
    model = fork2 / "modules/model.py"
    model.write_text(model.read_text().replace("x = self.mix(self.emb(input_ids))", "x = self.mix(self.emb(input_ids) * 2)"))
    (fork2 / "README.md").write_text("# kv_fork2\n\nForked from kv_fork, with a doubled embedding.\n")
    toyzoo.make_toy_b(models)


def _code_tab(at) -> tuple[str, str, str]:
    """(target, base shown in its box, the caption naming what is diffed against what)."""
    target = at.selectbox(key="code_target").value
    base = at.selectbox(key="code_base").value
    said = next(c.value for c in at.caption if "against its base" in c.value)
    return target, base, said


def _diffed(at) -> set[tuple[str, str]]:
    """(base, target) of every diff shown, from the diffs' own file headers."""
    pairs = set()
    for code in at.code:
        lines = code.value.splitlines()
        if len(lines) > 1 and lines[0].startswith("--- ") and lines[1].startswith("+++ "):
            pairs.add((lines[0][4:].split("/")[0], lines[1][4:].split("/")[0]))
    return pairs


def test_what_changed_diffs_the_fork_against_its_template(app_at, tmp_path):
    _fork_zoo(tmp_path)
    at = app_at(tmp_path).run()
    at.switch_page("pages/models.py").run()
    assert not at.exception
    target, base, said = _code_tab(at)
    assert (target, base) == ("kv_fork", "template")
    assert "**kv_fork** against its base **template**" in said and "forked from" in said
    assert _diffed(at) == {("template", "kv_fork")}


def test_what_changed_base_resets_when_the_experiment_changes(app_at, tmp_path):
    _fork_zoo(tmp_path)
    at = app_at(tmp_path).run()
    at.switch_page("pages/models.py").run()
    # The target becomes the old base: the base is never the target itself, nor one of its forks.
    at.selectbox(key="code_target").set_value("template").run()
    assert not at.exception
    target, base, said = _code_tab(at)
    assert (target, base) == ("template", "toy_b")
    assert "**template** against its base **toy_b**" in said
    assert _diffed(at) == {("toy_b", "template")}
    # Then another fork: its own base (from its README), not the one kept from before.
    at.selectbox(key="code_target").set_value("kv_fork2").run()
    assert _code_tab(at)[:2] == ("kv_fork2", "kv_fork")
    assert _diffed(at) == {("kv_fork", "kv_fork2")}
    # A base picked by hand is kept while the target stays, and said to be picked.
    at.selectbox(key="code_base").set_value("template").run()
    at.selectbox(key="models_detail_run").set_value("toy_b/cached").run()  # another widget moves
    target, base, said = _code_tab(at)
    assert (target, base) == ("kv_fork2", "template") and "picked" in said
    assert _diffed(at) == {("template", "kv_fork2")}


def test_default_base_follows_the_forked_from_rule(tmp_path):
    from sandbox.zoo.codediff import base_reason, default_base, default_target
    from sandbox.zoo.discovery import discover

    _fork_zoo(tmp_path)
    exps = {e.name: e for e in discover(tmp_path)}
    every = list(exps.values())
    assert default_target(every).name == "kv_fork"
    assert default_base(exps["kv_fork"], every).name == "template"
    assert default_base(exps["kv_fork2"], every).name == "kv_fork"
    assert default_base(exps["template"], every).name == "toy_b"  # never one of its own forks
    assert "forked from" in base_reason(exps["kv_fork"], exps["template"], every)
    assert "was forked from" in base_reason(exps["template"], exps["kv_fork"], every)  # said reversed
    only_forks = [exps["template"], exps["kv_fork"]]
    assert default_base(exps["template"], only_forks).name == "kv_fork"  # nothing else to compare with
    # The shipped zoo: kv_variant's README says it was forked from template.
    shipped = discover(toyzoo.Path(toyzoo.__file__).resolve().parent.parent / "models")
    assert default_target(shipped).name == "kv_variant"
    assert default_base(default_target(shipped), shipped).name == "template"


def test_a_linked_base_is_kept(app_at, tmp_path):
    _fork_zoo(tmp_path)
    at = app_at(tmp_path)
    at.query_params["code"] = "kv_fork2"
    at.query_params["base"] = "template"
    at.run()
    at.switch_page("pages/models.py").run()
    assert not at.exception
    assert _code_tab(at)[:2] == ("kv_fork2", "template") and _diffed(at) == {("template", "kv_fork2")}


def test_a_lab_of_runs_loads_with_one_bar_and_lists_only_problems(app_at, tmp_path, monkeypatch):
    """A synthetic lab (configs and logs, no weights) beside a healthy experiment: one
    progress bar, and the status box names only the runs that did not load."""
    from sandbox.zoo import synthetic

    monkeypatch.setenv("SANDBOX_CACHE_DIR", str(tmp_path / "cache"))
    toyzoo.make_toy_a(tmp_path / "models")
    synthetic.write_lab(tmp_path / "models", runs=12, rows=5)
    at = app_at(tmp_path / "models").run()
    at.switch_page("pages/models.py").run()
    assert not at.exception
    assert len(at.dataframe[0].value) == 13
    _load_every_run(at)
    assert len(at.get("progress")) == 1
    (box,) = at.status
    assert box.label == "1 of 13 runs loaded; 12 with a problem (open to see which)"
    listed = box.markdown[0].value
    assert "lab_a/r0003: not loaded" in listed and "toy_a/run1" not in listed


def test_the_table_follows_runs_that_come_and_go(app_at, tmp_path):
    """Discovery and the table are kept between page runs, and refreshed when files change."""
    import shutil

    from sandbox.zoo import synthetic

    synthetic.write_lab(tmp_path, runs=3, rows=5)
    at = app_at(tmp_path).run()
    at.switch_page("pages/models.py").run()
    assert len(at.dataframe[0].value) == 3
    synthetic.write_lab(tmp_path, runs=4, rows=5)  # a fourth run appears
    at.run()
    assert sorted(at.dataframe[0].value["run"]) == ["r0000", "r0001", "r0002", "r0003"]
    shutil.rmtree(tmp_path / "lab_a" / "trained" / "r0001")
    (tmp_path / "lab_a" / "trained" / "r0000" / "model_config.json").write_text("{oops")
    at.run()
    table = at.dataframe[0].value.set_index("run")
    assert sorted(table.index) == ["r0000", "r0002", "r0003"]
    assert "not valid JSON" in table.loc["r0000", "problems"]
