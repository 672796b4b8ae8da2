"""Untrusted requests: path-like and code-like values are refused or kept as plain text.

A link (query parameters) and a widget value are requests from anyone on the LAN. Neither
may name a path, a module or code: runs are matched exactly against what discovery found
under the models directory, numbers must be plain numbers, a prompt is only ever text.
An experiment outside the models directory (reached by a symlink or a crafted id) is never
loaded: its code would write a sentinel file on import, and no test may find that file.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest
import toyzoo

from sandbox import discovery, evalstate, lossview, playstate
from sandbox import evaluation as ev
from sandbox import querystate as qs
from sandbox.discovery import UnknownRunError
from sandbox.loader import WorkerPool
from sandbox.protocol import RequestFailed

LONG = "a/" + "x" * 16_000  # every key of a link carries one: the link must stay under Streamlit's 512 KiB cap
HOSTILE = [
    "../../etc/passwd",
    "/etc/passwd",
    "..%2F..%2Fetc%2Fpasswd",
    "..%2F..",
    "__import__('os').system('id')",
    "{{7*7}}",
    "${7*7}",
    "<script>alert(1)</script>",
    "`rm -rf /`",
    "toy_a/../toy_b/cached",
    "toy_a/run1/../../toy_b/cached",
    "toy_a/trained/run1",
    "toy_a/run1\x00",
    " toy_a/run1",
    "TOY_A/RUN1",
    LONG,
]
# The experiment outside the models directory, and the ways a request could try to reach it.
OUTSIDE_IDS = ["evil/run1", "evil_link/run1", "toy_a/evil_run", "toy_a/run1/../../../outside/evil/run1"]


# -- a models directory with a way out ---------------------------------------------------------


@pytest.fixture(scope="module")
def hostile(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """models/ (toy_a, toy_b) beside outside/evil, linked into models/ twice by symlinks.

    outside/evil's config.py and model.py write ``SENTINEL`` when imported: finding that
    file means the app ran code from outside its models directory.
    """
    base = tmp_path_factory.mktemp("hostile")
    models, outside = base / "models", base / "outside"
    toyzoo.make_toy_a(models)
    toyzoo.make_toy_b(models)
    evil = toyzoo.make_toy_a(outside, name="evil")
    sentinel = base / "SENTINEL"
    touch = f"import pathlib\npathlib.Path({str(sentinel)!r}).write_text('imported')\n"
    for rel in ("config.py", "modules/model.py"):
        (evil / rel).write_text(touch + (evil / rel).read_text())
    (models / "evil_link").symlink_to(evil, target_is_directory=True)
    (models / "toy_a/trained/evil_run").symlink_to(evil / "trained/run1", target_is_directory=True)
    (outside / "passwd.txt").write_text("root:x:0:0:root:/root:/bin/bash\n")
    data = base / "data"
    data.mkdir()
    (data / "stories.txt").write_text("the cat sat on the mat.\n\nthe dog ran far away.\n")
    return {"base": base, "models": models, "outside": outside, "sentinel": sentinel, "data": data}


@pytest.fixture(autouse=True)
def _no_code_from_outside(hostile: dict[str, Path]):
    """After every test: nothing imported the outside experiment's code."""
    yield
    assert not hostile["sentinel"].exists(), "code from outside the models directory was run"


# -- discovery and lookups ------------------------------------------------------------------------


def test_discovery_ignores_symlinks_out_of_the_models_dir(hostile: dict[str, Path]) -> None:
    found = {exp.name: [run.name for run in exp.runs] for exp in discovery.discover(hostile["models"])}
    assert found == {"toy_a": ["run1"], "toy_b": ["cached"]}
    for exp in discovery.discover(hostile["models"]):
        assert exp.root.resolve().is_relative_to(hostile["models"].resolve())


@pytest.mark.parametrize("run_id", HOSTILE + OUTSIDE_IDS + ["", "/", ".", ".."], ids=lambda v: repr(v)[:40])
def test_find_run_refuses_ids_that_were_not_discovered(hostile: dict[str, Path], run_id: str) -> None:
    with pytest.raises(UnknownRunError, match="in the models directory"):
        discovery.find_run(hostile["models"], run_id)


@pytest.mark.parametrize(
    "name", ["evil_link", "evil", "..", ".", "", "/", "../outside/evil", "toy_a/..", "toy_a/../toy_b", str(Path("/etc"))]
)
def test_find_experiment_refuses_names_that_were_not_discovered(hostile: dict[str, Path], name: str) -> None:
    with pytest.raises(UnknownRunError, match="no experiment called"):
        discovery.find_experiment(hostile["models"], name)


def test_evaluate_refuses_hostile_ids_without_starting_a_worker(hostile: dict[str, Path]) -> None:
    pool = WorkerPool(device="cpu")
    try:
        run_ids = [v for v in HOSTILE + OUTSIDE_IDS if v != LONG]
        report = ev.evaluate(pool, run_ids, ["the cat"], ev.EvalSettings(), models_dir=hostile["models"], use_cache=False)
        for result in report.results:
            assert result.error is not None and "in the models directory" in result.error["message"]
        assert pool.live_workers() == 0
    finally:
        pool.close_all()


def test_worker_refuses_run_names_that_are_not_its_run_folders(hostile: dict[str, Path], pool: WorkerPool) -> None:
    client = pool.client(discovery.find_experiment(hostile["models"], "toy_a"))
    for name in ["../../toy_b/trained/cached", "../toy_a", "run1/../run1", "/etc", "..", "", "trained/run1"]:
        with pytest.raises(RequestFailed, match="There is no run folder"):
            client.request("info", run=name)
    assert client.request("info", run="run1")["vocab_size"] == 36


# -- query parameters: the library helpers ----------------------------------------------------


@pytest.mark.parametrize("value", HOSTILE, ids=lambda v: repr(v)[:40])
def test_querystate_refuses_hostile_choices_with_a_safe_sentence(value: str) -> None:
    kept, warnings = qs.parse_choices([value, "toy_a/run1"], ["toy_a/run1", "toy_b/cached"], what="run")
    assert kept == ["toy_a/run1"] and len(warnings) == 1
    sentence = warnings[0]
    assert len(sentence) < 200, "long values are shortened"
    assert sentence.count("`") == 2, "the value stays inside one code span"
    assert all(ch.isprintable() for ch in sentence)
    choice, warning = qs.parse_choice(value, ["step", "time"], "step", what="x axis")
    assert choice == "step" and warning
    number, warning = qs.parse_number(value, 0, 10, 1.0)
    assert number == 1.0 and warning
    flag, warning = qs.parse_bool(value, False)
    assert flag is False and warning


@pytest.mark.parametrize("value", ["1e400", "-1e400", "nan", "inf", "0x10", "1_000", "2**8", "1/2", "9" * 50])
def test_querystate_numbers_are_plain_decimals_in_range(value: str) -> None:
    number, warning = qs.parse_number(value, 0, 10, 3.0)
    assert number == 3.0 and warning


def test_shown_cannot_break_out_of_its_code_span() -> None:
    assert qs.shown("a`b\nc\x1b[31m") == "`abc[31m`"
    assert qs.shown("[x](javascript:alert(1))`") == "`[x](javascript:alert(1))`"
    assert len(qs.shown("y" * 10_000)) <= 42


def test_state_parsers_keep_only_known_runs_and_text_prompts() -> None:
    run_ids = ["toy_a/run1", "toy_b/cached"]
    params = {key: [*HOSTILE, "toy_a/run1"] for key in ("run", "runs", "metric", "x", "smooth", "k", "docs", "seed")}
    settings, warnings = lossview.settings_from_query(params, run_ids, lambda runs: ["train loss"])
    assert settings.runs == ("toy_a/run1",) and settings.metrics == ("train loss",)
    assert len(warnings) >= len(HOSTILE)
    selection, warnings = evalstate.from_query(params, run_ids)
    assert selection.runs == ["toy_a/run1"] and selection.docs == 100 and selection.seed == 0
    assert len(warnings) >= len(HOSTILE)
    for prompt in HOSTILE[:9]:
        state, _ = playstate.state_from_query({"run": [*HOSTILE, "toy_b/cached"], "prompt": [prompt]}, run_ids)
        assert state.runs == ["toy_b/cached"]
        assert state.prompt == prompt  # plain text, exactly as given
    state, warnings = playstate.state_from_query({"prompt": [LONG], "ov": HOSTILE}, run_ids)
    assert len(state.prompt) == playstate.MAX_PROMPT_CHARS and state.overrides == {}
    assert any("characters" in w for w in warnings)


# -- the pages (AppTest) -------------------------------------------------------------------------

PAGES = {
    "home": None,
    "models": "pages/models.py",
    "loss_curves": "pages/loss_curves.py",
    "evaluation": "pages/evaluation.py",
    "playground": "pages/playground.py",
}
# Every key any page reads, plus Streamlit's own and a made-up one.
QUERY_KEYS = sorted(
    {*lossview.QUERY_KEYS, *evalstate.QUERY_KEYS, *playstate.QUERY_KEYS, "screenshot", "embed", "page", "models_dir"}
)


@pytest.fixture
def hostile_app(app_at, hostile: dict[str, Path], monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    monkeypatch.setenv("SANDBOX_DATA_DIR", str(hostile["data"]))
    monkeypatch.setenv("SANDBOX_CACHE_DIR", str(tmp_path / "cache"))
    return lambda: app_at(hostile["models"])


def _texts(at) -> str:
    parts = [e.value for e in at.error] + [w.value for w in at.warning] + [i.value for i in at.info]
    parts += [c.value for c in at.caption] + [m.value for m in at.markdown]
    return "\n".join(str(p) for p in parts)


def _assert_nothing_outside_was_touched(hostile: dict[str, Path]) -> None:
    from pages import common

    assert common.models_dir() == hostile["models"].resolve()
    pool = common.worker_pool()
    assert pool.live_workers() <= pool.max_workers
    for client in pool._clients.values():
        assert client.root.is_relative_to(hostile["models"].resolve()), client.root
        assert client.root.name in ("toy_a", "toy_b")


@pytest.mark.parametrize("page", list(PAGES), ids=list(PAGES))
def test_hostile_query_parameters_on_every_page(hostile_app, hostile: dict[str, Path], page: str) -> None:
    if PAGES[page] and not (Path(__file__).parent.parent / PAGES[page]).is_file():
        pytest.fail(f"{PAGES[page]} is missing")
    at = hostile_app()
    for key in QUERY_KEYS:
        at.query_params[key] = [*HOSTILE, *OUTSIDE_IDS]
    at.run()
    if PAGES[page]:
        at.switch_page(PAGES[page]).run()
    assert not at.exception, at.exception
    warnings = [w.value for w in at.warning]
    for sentence in warnings:
        assert len(sentence) < 400 and LONG[:200] not in sentence
    assert "root:x:0:0" not in _texts(at)
    for key in ("lc_runs", "ev_runs", "pg_runs"):
        found = [w for w in at.multiselect if w.key == key]
        if found:
            assert set(found[0].value) <= {"toy_a/run1", "toy_b/cached"}, f"{key} took a value from the link"
            assert any("passwd" in w for w in warnings), "the ignored run is named in a warning"
            assert any("`{{7*7}}`" in w for w in warnings), "a template is shown as the text it is"
    if page == "playground":
        assert at.text_area(key="pg_prompt").value == OUTSIDE_IDS[-1]  # the last prompt given, as text
    _assert_nothing_outside_was_touched(hostile)


def test_an_oversized_link_is_ignored_as_a_whole(hostile_app) -> None:
    at = hostile_app()
    at.query_params["runs"] = ["toy_a/run1", "y" * 600_000]
    at.run()
    at.switch_page("pages/evaluation.py").run()
    assert not at.exception, at.exception
    fresh = hostile_app()  # the link is dropped whole: the page shows what a plain visit shows
    fresh.run()
    fresh.switch_page("pages/evaluation.py").run()
    assert at.multiselect(key="ev_runs").value == fresh.multiselect(key="ev_runs").value
    assert all(len(value) < 100 for value in at.multiselect(key="ev_runs").value)


def test_page_urls_cannot_pick_the_models_dir(hostile_app, hostile: dict[str, Path]) -> None:
    at = hostile_app()
    at.query_params["models_dir"] = str(hostile["outside"])
    at.query_params["models-dir"] = str(hostile["outside"])
    at.run()
    assert not at.exception
    assert {m.label: m.value for m in at.metric}["Experiments"] == "2"
    assert str(hostile["outside"]) not in _texts(at)


def test_forged_widget_values_are_dropped(hostile_app, hostile: dict[str, Path], monkeypatch) -> None:
    """A client that sends values the widgets never offered (as a crafted websocket message would)."""
    from streamlit.proto.WidgetStates_pb2 import WidgetState
    from streamlit.testing.v1.element_tree import Selectbox

    at = hostile_app().run()
    at.switch_page("pages/evaluation.py").run()
    at.multiselect(key="ev_runs").set_value([*HOSTILE[:12], *OUTSIDE_IDS, "toy_b/cached"]).run()
    assert not at.exception, at.exception
    assert at.multiselect(key="ev_runs").value == ["toy_b/cached"]
    at.radio(key="ev_source").set_value("Data folder").run()
    assert at.selectbox(key="ev_file").options == ["stories.txt"]

    forged_file = str(hostile["outside"] / "passwd.txt")
    real_state = Selectbox._widget_state

    def forged(self):
        if self.key != "ev_file":
            return real_state.fget(self)
        state = WidgetState()
        state.id = self.id
        state.string_value = forged_file
        return state

    monkeypatch.setattr(Selectbox, "_widget_state", property(forged))
    at.run()
    assert not at.exception, at.exception
    assert at.selectbox(key="ev_file").value == "stories.txt"
    assert "2 documents in the source" in _texts(at)
    assert "root:x:0:0" not in _texts(at)

    at.switch_page("pages/playground.py").run()
    at.multiselect(key="pg_runs").set_value(["../../etc/passwd", "evil_link/run1", "toy_a/run1"]).run()
    assert not at.exception, at.exception
    assert at.multiselect(key="pg_runs").value == ["toy_a/run1"]
    _assert_nothing_outside_was_touched(hostile)


def test_prompts_are_only_ever_text(hostile_app, hostile: dict[str, Path]) -> None:
    prompt = "<script>alert(1)</script> {{7*7}} __import__('os').system('touch " + str(hostile["sentinel"]) + "')"
    at = hostile_app().run()
    at.switch_page("pages/playground.py").run()
    at.multiselect(key="pg_runs").set_value(["toy_a/run1"])
    at.text_area(key="pg_prompt").set_value(prompt)
    at.number_input(key="pg_max_new_tokens").set_value(6)
    at.checkbox(key="pg_eos").set_value(False)  # exactly 6 tokens, whatever the toy samples
    at.toggle(key="pg_split").set_value(True)
    at.run()
    at.button(key="pg_go").click().run()
    assert not at.exception, at.exception
    assert "6 tokens" in _texts(at)
    bodies = [h.value for h in at.get("html")]
    assert bodies, "the columns and the prompt view are drawn as HTML"
    for body in bodies:
        assert "<script>" not in body, "untrusted text must be escaped"
    assert any("&lt;script&gt;" in body for body in bodies), "the prompt shows as text"
    # The link keeps the prompt as text too.
    assert at.query_params["prompt"] == [prompt] or at.query_params["prompt"] == prompt
    _assert_nothing_outside_was_touched(hostile)


def test_hostile_run_ids_given_to_the_library_from_a_page(hostile_app, hostile: dict[str, Path]) -> None:
    """Even if a value got past the widgets, the page's library call refuses it by id."""
    from pages import common

    at = hostile_app().run()
    assert not at.exception
    for run_id in [*HOSTILE[:12], *OUTSIDE_IDS]:
        with pytest.raises(UnknownRunError):
            common.client_for(run_id)
    _assert_nothing_outside_was_touched(hostile)


def test_symlinked_experiment_is_not_listed_by_any_page(hostile_app, hostile: dict[str, Path]) -> None:
    at = hostile_app().run()
    table = at.dataframe[0].value
    assert set(table["experiment"]) == {"toy_a", "toy_b"} and "evil_run" not in set(table["run"])
    at.switch_page("pages/evaluation.py").run()
    assert set(at.multiselect(key="ev_runs").options) == {"toy_a/run1", "toy_b/cached"}
    at.switch_page("pages/loss_curves.py").run()
    assert set(at.multiselect(key="lc_runs").options) == {"toy_a/run1", "toy_b/cached"}
    assert not at.exception


def test_outside_experiment_would_have_left_a_sentinel(hostile: dict[str, Path], tmp_path: Path) -> None:
    """The sentinel check is real: loading the outside experiment directly does write it."""
    copy = tmp_path / "models"
    shutil.copytree(hostile["outside"] / "evil", copy / "evil")
    sentinel = hostile["sentinel"]
    pool = WorkerPool(device="cpu")
    try:
        assert pool.client(discovery.find_experiment(copy, "evil")).request("info", run="run1")["vocab_size"] == 36
        assert sentinel.read_text() == "imported"
    finally:
        pool.close_all()
        sentinel.unlink(missing_ok=True)
    assert json.loads((copy / "evil/trained/run1/model_config.json").read_text())["vocab_len"] == 36
    assert os.path.exists(copy / "evil/config.py")
