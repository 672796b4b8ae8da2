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
import re
import shutil
from pathlib import Path

import pytest
import toyzoo

from sandbox import text
from sandbox.errors import RequestFailed, UnknownRunError
from sandbox.evaluation import results
from sandbox.evaluation import run as evaluation_run
from sandbox.text import WORD_JOINER
from sandbox.urlstate import compare, evaluation, loss_curves, parse, playground
from sandbox.worker.pool import WorkerPool
from sandbox.zoo import discovery

LONG = "a/" + "x" * 12_000  # every key of a link carries one (33 keys): the link must stay under Streamlit's 512 KiB cap
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
        report = evaluation_run.evaluate(pool, run_ids, ["the cat"], results.EvalSettings(), models_dir=hostile["models"], use_cache=False)
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
    kept, warnings = parse.parse_choices([value, "toy_a/run1"], ["toy_a/run1", "toy_b/cached"], what="run")
    assert kept == ["toy_a/run1"] and len(warnings) == 1
    sentence = warnings[0]
    assert len(sentence) < 200, "long values are shortened"
    assert sentence.count("`") == 2, "the value stays inside one code span"
    assert all(ch.isprintable() for ch in sentence)
    choice, warning = parse.parse_choice(value, ["step", "time"], "step", what="x axis")
    assert choice == "step" and warning
    number, warning = parse.parse_number(value, 0, 10, 1.0)
    assert number == 1.0 and warning
    flag, warning = parse.parse_bool(value, False)
    assert flag is False and warning


@pytest.mark.parametrize("value", ["1e400", "-1e400", "nan", "inf", "0x10", "1_000", "2**8", "1/2", "9" * 50])
def test_querystate_numbers_are_plain_decimals_in_range(value: str) -> None:
    number, warning = parse.parse_number(value, 0, 10, 3.0)
    assert number == 3.0 and warning


def test_shown_cannot_break_out_of_its_code_span() -> None:
    assert text.shown("a`b\nc\x1b[31m") == "`abc[31m`"
    assert text.shown("[x](javascript:alert(1))`") == "`[x](javascript:alert(1))`"
    assert len(text.shown("y" * 10_000)) <= 42


def test_state_parsers_keep_only_known_runs_and_text_prompts() -> None:
    run_ids = ["toy_a/run1", "toy_b/cached"]
    params = {key: [*HOSTILE, "toy_a/run1"] for key in ("run", "runs", "metric", "x", "smooth", "k", "docs", "seed")}
    settings, warnings = loss_curves.from_query(params, run_ids, lambda runs: ["train loss"])
    assert settings.runs == ("toy_a/run1",) and settings.metrics == ("train loss",)
    assert len(warnings) >= len(HOSTILE)
    selection, warnings = evaluation.from_query(params, run_ids)
    assert selection.runs == ["toy_a/run1"] and selection.docs == 100 and selection.seed == 0
    assert len(warnings) >= len(HOSTILE)
    for prompt in HOSTILE[:9]:
        state, _ = playground.from_query({"run": [*HOSTILE, "toy_b/cached"], "prompt": [prompt]}, run_ids)
        assert state.runs == ["toy_b/cached"]
        assert state.prompt == prompt  # plain text, exactly as given
    state, warnings = playground.from_query({"prompt": [LONG], "ov": HOSTILE}, run_ids)
    assert len(state.prompt) == playground.MAX_PROMPT_CHARS and state.overrides == {}
    assert any("characters" in w for w in warnings)


# -- the pages (AppTest) -------------------------------------------------------------------------

PAGES = {
    "home": None,
    "models": "pages/models.py",
    "loss_curves": "pages/loss_curves.py",
    "evaluation": "pages/evaluation.py",
    "playground": "pages/playground.py",
    "compare": "pages/compare.py",
}
# Every key any page reads, plus Streamlit's own and a made-up one.
QUERY_KEYS = sorted(
    {*loss_curves.QUERY_KEYS, *evaluation.QUERY_KEYS, *playground.QUERY_KEYS, "screenshot", "embed", "page", "models_dir"}
)
# The Compare page's own keys (with every key above the query string would pass Streamlit's
# length limit, and Streamlit would drop all of it).
PAGE_QUERY_KEYS = {"compare": sorted({*compare.QUERY_KEYS, "screenshot", "embed", "page", "models_dir"})}


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
    for key in PAGE_QUERY_KEYS.get(page, QUERY_KEYS):
        at.query_params[key] = [*HOSTILE, *OUTSIDE_IDS]
    at.run()
    if PAGES[page]:
        at.switch_page(PAGES[page]).run()
    assert not at.exception, at.exception
    warnings = [w.value for w in at.warning]
    for sentence in warnings:
        assert len(sentence) < 400 and LONG[:200] not in sentence
    assert "root:x:0:0" not in _texts(at)
    for key in ("lc_runs", "ev_runs", "pg_runs", "cmp_runs"):
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


# -- one rule for files: links out of the models directory are refused, and said so ---------------

SECRET = "SECRET-OUTSIDE-7f3a"
LINKED_FILES = ("README.md", "train_config.json", "log_data.csv", "model_config.json", "model.pth")


@pytest.fixture(scope="module")
def linked(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """models/toy_a with run ``linked`` whose files are links to files outside models/.

    Also: a run folder ``toy_a/trained/away`` and an experiment folder ``evil_link`` that are
    links to folders outside, a code file of toy_b linked outside, and a data folder holding
    a link to a file outside it. Every outside file carries ``SECRET`` where it can.
    """
    base = tmp_path_factory.mktemp("linked")
    models, outside = base / "models", base / "outside"
    toyzoo.make_toy_a(models, runs=("run1", "linked"))
    toyzoo.make_toy_b(models)
    evil = toyzoo.make_toy_a(outside, name="evil")
    run_dir = models / "toy_a/trained/linked"
    stash = outside / "stash"
    stash.mkdir()
    for name in LINKED_FILES:
        shutil.move(run_dir / name, stash / name)
        (run_dir / name).symlink_to(stash / name)
    (stash / "README.md").write_text(f"# {SECRET}\n")
    (stash / "train_config.json").write_text(json.dumps({"batch_size": 77777, "note": SECRET}))
    (stash / "log_data.csv").write_text(f"Step,Train Loss,Validation Loss,{SECRET}\n0,0.111,0.222,1\n10,0.101,0.202,1\n")
    (models / "evil_link").symlink_to(evil, target_is_directory=True)
    (models / "toy_a/trained/away").symlink_to(evil / "trained/run1", target_is_directory=True)
    (outside / "layers.py").write_text(f"# {SECRET}\n")
    (models / "toy_b/modules/extra.py").symlink_to(outside / "layers.py")
    (models / "toy_b/README.md").symlink_to(outside / "layers.py")
    data_dir = base / "data"
    data_dir.mkdir()
    (data_dir / "ok.txt").write_text("the cat sat.\n\nthe dog ran.\n")
    (outside / "passwd.txt").write_text(f"{SECRET}\n")
    (data_dir / "passwd.txt").symlink_to(outside / "passwd.txt")
    return {"base": base, "models": models, "outside": outside, "data": data_dir}


def _linked_run(linked: dict[str, Path]) -> discovery.Run:
    return discovery.find_run(linked["models"], "toy_a/linked")


def test_run_files_linked_outside_are_refused_by_every_accessor(linked: dict[str, Path]) -> None:
    run = _linked_run(linked)
    for read in (run.readme, run.train_config, run.model_config):
        with pytest.raises(ValueError, match="is a link to a file outside the models directory") as info:
            read()
        assert SECRET not in str(info.value) and str(linked["base"]) not in str(info.value)
    log = run.log()
    assert log.rows == 0 and SECRET not in " ".join(log.metrics)
    assert any("trained/linked/log_data.csv is a link to a file outside" in n for n in log.notes)
    refused = run.refused_files()
    assert len(refused) == len(LINKED_FILES)
    assert all(s.startswith("trained/linked/") and s.endswith("; it is not read.") for s in refused)
    healthy = discovery.find_run(linked["models"], "toy_a/run1")
    assert healthy.refused_files() == [] and healthy.readme().startswith("# run1")


def test_links_out_of_the_models_dir_are_reported_not_skipped_silently(linked: dict[str, Path]) -> None:
    from sandbox.evaluation.checkup import check_experiment

    sentences = discovery.refused_links(linked["models"])
    assert any(s.startswith("evil_link is a link to a folder outside the models directory") for s in sentences)
    assert any(s.startswith("toy_a/trained/away is a link to a folder outside") for s in sentences)
    toy_a = discovery.find_experiment(linked["models"], "toy_a")
    findings, _ = check_experiment(toy_a, quick=True)
    said = [f.sentence for f in findings if f.rule == "files"]
    assert "trained/away is a link to a folder outside the models directory; it is not listed." in said
    for name in LINKED_FILES:
        assert f"trained/linked/{name} is a link to a file outside the models directory; it is not read." in said
    toy_b = discovery.find_experiment(linked["models"], "toy_b")
    findings, _ = check_experiment(toy_b, quick=True)
    assert [f.sentence for f in findings if f.rule == "files"] == [
        "modules/extra.py is a link to a file outside the models directory; it is not read.",
        "README.md is a link to a file outside the models directory; it is not read.",
    ]


def test_runs_table_uses_nothing_from_outside(linked: dict[str, Path]) -> None:
    from sandbox.evaluation.checkup import check_experiment
    from sandbox.zoo import catalog

    static = {exp.name: check_experiment(exp, quick=True)[0] for exp in discovery.discover(linked["models"])}
    known = {name: ([f.as_dict() for f in fs], {}) for name, fs in static.items()}
    rows = {row["run_id"]: row for row in catalog.runs_table(linked["models"], known)}
    row = rows["toy_a/linked"]
    assert row["status"] == "broken"
    assert row["final_train_loss"] is None and row["final_val_loss"] is None  # not 0.101 / 0.202
    assert row["parameters"] is None and row["vocab"] is None
    assert len(row["problems"]) == len(set(row["problems"])), "each problem once"
    assert "trained/linked/log_data.csv is a link to a file outside the models directory; it is not read." in row["problems"]
    assert rows["toy_a/run1"]["status"] == "ok"


def test_code_diff_reports_a_linked_code_file(linked: dict[str, Path]) -> None:
    from sandbox.zoo.codediff import diff_experiments

    a = discovery.find_experiment(linked["models"], "toy_a")
    b = discovery.find_experiment(linked["models"], "toy_b")
    diffs = {d.path: d for d in diff_experiments(a, b)}
    extra = diffs["modules/extra.py"]
    assert extra.status == "outside the models directory" and SECRET not in extra.diff


def test_the_worker_refuses_run_files_linked_outside(linked: dict[str, Path], pool: WorkerPool) -> None:
    client = pool.client(discovery.find_experiment(linked["models"], "toy_a"))
    with pytest.raises(RequestFailed, match="trained/linked/model_config.json is a link to a file outside"):
        client.request("info", run="linked")
    with pytest.raises(RequestFailed, match="trained/away is a link to a folder outside"):
        client.request("info", run="away")
    assert client.request("info", run="run1")["vocab_size"] == 36


def test_data_folder_links_out_are_not_offered_and_said(linked: dict[str, Path]) -> None:
    from sandbox.evaluation import data, formats

    files, refused = data.scan_data_folder(linked["data"])
    assert [p.name for p in files] == ["ok.txt"]
    assert refused == ["passwd.txt is a link to a file outside the data folder; it is not read."]
    with pytest.raises(formats.DataSourceError, match="outside the data folder"):
        data.load_documents(str(linked["data"] / "passwd.txt"), within=linked["data"])


def test_cli_reports_what_it_refused(linked: dict[str, Path], capsys: pytest.CaptureFixture) -> None:
    from sandbox import cli

    assert cli.main(["doctor", "--quick", "--models-dir", str(linked["models"])]) == 1
    out = capsys.readouterr().out
    assert "evil_link is a link to a folder outside the models directory" in out
    assert "trained/linked/README.md is a link to a file outside" in out
    assert SECRET not in out
    cli.main(["list", "--models-dir", str(linked["models"])])
    captured = capsys.readouterr()
    assert "evil_link is a link to a folder outside" in captured.out
    assert "trained/linked/log_data.csv is a link to a file outside" in captured.out
    assert SECRET not in captured.out and not captured.err


def test_pages_show_the_refusals_and_nothing_from_outside(app_at, linked: dict[str, Path], monkeypatch) -> None:
    monkeypatch.setenv("SANDBOX_DATA_DIR", str(linked["data"]))
    at = app_at(linked["models"]).run()
    assert any("evil_link is a link to a folder outside" in w.value for w in at.warning), "said on the Overview"
    at.switch_page("pages/models.py").run()
    at.selectbox(key="models_detail_run").set_value("toy_a/linked").run()
    assert not at.exception, at.exception
    shown = _texts(at) + "\n".join(str(e.value) for e in at.get("json")) + "\n".join(str(e.value) for e in at.markdown)
    assert SECRET not in shown and "77777" not in shown
    assert "trained/linked/README.md is a link to a file outside" in shown.replace("\\", "")
    assert "evil_link is a link to a folder outside" in shown.replace("\\", "")
    at.switch_page("pages/evaluation.py").run()
    at.radio(key="ev_source").set_value("Data folder").run()
    assert at.selectbox(key="ev_file").options == ["ok.txt"]
    assert any("passwd.txt is a link to a file outside the data folder" in w.value.replace("\\", "") for w in at.warning)
    at.switch_page("pages/loss_curves.py").run()
    assert not at.exception, at.exception
    assert SECRET not in _texts(at)


# -- one rule for untrusted text: file, log, upload and URL text is never Markdown or HTML ---------

HOST = "evil.example"
EVIL_RUN = f"![r](http:{HOST})"  # a folder name cannot hold "/", a URL without one still loads
EVIL_RUN_ID = f"toy_md/{EVIL_RUN}"
EVIL_COLUMNS = [f"![p](http://{HOST}/a)", f"<img src=http://{HOST}/b>", f"[c](http://{HOST}/c)"]
_CODE_SPAN = re.compile(r"`[^`\n]*`")
# An image, or raw HTML, that Markdown would render (escaped characters and code spans do not).
_RENDERED = re.compile(r"(?<!\\)!(?<!\\)\[|(?<!\\)<[A-Za-z!/]")


def markdown_bodies(at) -> list[str]:
    """Every text the page hands to Streamlit's Markdown renderer (elements, labels, help)."""
    bodies = []
    for kind in ("markdown", "caption", "info", "warning", "error", "success", "title", "header", "subheader", "toast"):
        bodies += [str(e.value) for e in getattr(at, kind)]
    bodies += [str(e.label) for e in at.expander] + [str(t.label) for t in at.tabs]
    for kind in ("multiselect", "selectbox", "radio", "toggle", "checkbox", "slider", "number_input",
                 "text_input", "text_area", "button"):  # fmt: skip
        for widget in getattr(at, kind):
            bodies += [str(widget.label), str(widget.help or "")]
    bodies += [str(m.label) for m in at.metric]
    return bodies


def assert_no_markup_from_data(at) -> None:
    """No image and no raw HTML reaches a visitor's browser through Markdown; HTML views escape."""
    for body in markdown_bodies(at):
        match = _RENDERED.search(_CODE_SPAN.sub("", body))
        assert match is None, f"rendered as Markdown: {body[:300]!r}"
    for element in at.get("html"):
        assert "<img" not in element.proto.body and "<script" not in element.proto.body, element.proto.body[:300]


def test_markdown_checker_catches_what_the_issue_found() -> None:
    from sandbox.text import md_escape

    for bad in (f"- ![p](http://{HOST}/a)", f"x <img src=http://{HOST}>", f"**{EVIL_RUN}**"):
        assert _RENDERED.search(bad)
        assert not _RENDERED.search(md_escape(bad)), md_escape(bad)
    assert not _RENDERED.search(_CODE_SPAN.sub("", f"see `{EVIL_COLUMNS[0]}`"))


@pytest.mark.parametrize(
    ("raw", "escaped"),
    [
        ("model_config.json is missing (line 3: bad).", "model_config.json is missing (line 3: bad)."),
        ("toy_a/run1 and final_val_loss", "toy_a/run1 and final_val_loss"),
        (f"![p](http://{HOST}/a)", f"!\\[p\\](http\u2060\\://{HOST}/a)"),
        (f"see https://{HOST}/x, www.{HOST} or a@{HOST}", f"see https\u2060\\://{HOST}/x, www\u2060.{HOST} or a\u2060@{HOST}"),
        ("<img src=x> &lt; `c` ~~s~~ a|b $x$", "\\<img src=x\\> \\&lt; \\`c\\` \\~\\~s\\~\\~ a\\|b \\$x\\$"),
        ("**b** _i_ :red[x] :material/home:", "\\*\\*b\\*\\* \\_i\\_ \\:red\\[x\\] \\:material/home:"),
        ("# h\n- item\n1. first\n  2) second", "\\# h\n\\- item\n1\\. first\n  2\\) second"),
        ("back\\slash", "back\\\\slash"),
    ],
)
def test_md_escape_is_one_escape_for_untrusted_text(raw: str, escaped: str) -> None:
    """Plain sentences pass unchanged; everything Markdown, HTML or Streamlit would render is escaped."""
    from sandbox.text import md_escape

    assert md_escape(raw) == escaped


@pytest.fixture(scope="module")
def marked(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A zoo whose names and files carry Markdown and HTML: a run folder named like an image,
    log columns named like images and tags, a README with remote images and scripts, a
    config key and a data file named like an image."""
    base = tmp_path_factory.mktemp("marked")
    models = base / "models"
    toyzoo.make_toy_a(models)
    root = toyzoo.make_toy_a(models, name="toy_md", runs=(EVIL_RUN,))
    run_dir = root / "trained" / EVIL_RUN
    rows = "".join(f"{s},{3 - s / 100},{2 - s / 100},x{s},{s}\n" for s in range(0, 100, 10))
    (run_dir / "log_data.csv").write_text(f"Step,Train Loss,{EVIL_COLUMNS[0]},{EVIL_COLUMNS[2]},{EVIL_COLUMNS[1]}\n" + rows)
    (run_dir / "README.md").write_text(
        f"# Notes\n\n![plot](http://{HOST}/readme.png)\n\n<img src=\"http://{HOST}/i.png\" alt=\"loss\">\n"
        f"<script>fetch('http://{HOST}/s')</script>\n\n![ref][r]\n\n[r]: http://{HOST}/ref.png\n\n"
        "Trained for **two** hours; see `train.py`.\n"
    )
    cfg = json.loads((run_dir / "model_config.json").read_text())
    (run_dir / "model_config.json").write_text(json.dumps({**cfg, f"![k](http://{HOST}/k)": 1}))
    data_dir = base / "data"
    data_dir.mkdir()
    (data_dir / "ok.txt").write_text("the cat sat.\n\nthe dog ran.\n")
    (data_dir / f"![d](http:{HOST}).txt").write_text("   \n")
    return {"base": base, "models": models, "data": data_dir}


@pytest.fixture
def marked_app(app_at, marked: dict[str, Path], monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    monkeypatch.setenv("SANDBOX_DATA_DIR", str(marked["data"]))
    monkeypatch.setenv("SANDBOX_CACHE_DIR", str(tmp_path / "cache"))
    return lambda: app_at(marked["models"])


def test_readme_renders_without_remote_images_or_html() -> None:
    from sandbox.text import safe_readme

    readme = (
        f"# T\n![p](http://{HOST}/a) ![q][r]\n\n[r]: http://{HOST}/b\n<img src='http://{HOST}/c' alt='plot'>"
        f"<script>alert(1)</script>\n![![i](u)](http://{HOST}/g) !![a](b)(http://{HOST}/x)\n"
        f"```\n![kept as code](http://{HOST}/e)\n```\n``` a`b\n![x](http://{HOST}/y)\n[site](https://example.org)\n"
    )
    safe = safe_readme(readme)
    fences = safe.split("```\n![kept as code]")
    assert len(fences) == 2, "a fenced code block is kept as written (Markdown shows it as text)"
    prose = fences[0] + fences[1].split("```", 1)[1]
    assert not _RENDERED.search(prose), prose
    assert "(image: p)" in safe and "(image: plot)" in safe and "<script>" not in safe
    assert "[site](https://example.org)" in safe and safe.startswith("# T\n")


def test_models_page_shows_names_logs_and_readmes_as_text(marked_app) -> None:
    at = marked_app().run()
    assert_no_markup_from_data(at)
    at.switch_page("pages/models.py").run()
    at.selectbox(key="models_detail_run").set_value(EVIL_RUN_ID).run()
    assert not at.exception, at.exception
    readme = [m.value for m in at.markdown if "Notes" in m.value]
    assert readme and "(image: plot)" in readme[0] and "**two**" in readme[0], "the README is still Markdown"
    assert any("![k](http" in e.value.replace("\\", "") for e in [*at.error, *at.warning]), "the doctor names the key"
    assert_no_markup_from_data(at)


def test_loss_curves_show_hostile_column_names_as_text(marked_app) -> None:
    at = marked_app().run()
    at.switch_page("pages/loss_curves.py").run()
    at.multiselect(key="lc_runs").set_value([EVIL_RUN_ID, "toy_a/run1"]).run()
    at.multiselect(key="lc_metrics").set_value(["train loss", EVIL_COLUMNS[0]]).run()
    assert not at.exception, at.exception
    notes = " ".join(markdown_bodies(at)).replace("\\", "").replace(WORD_JOINER, "")
    assert EVIL_COLUMNS[2] in notes, "the note about the text column names it"
    assert EVIL_COLUMNS[0] in notes, "the summary table's heading names the metric"
    assert_no_markup_from_data(at)


def test_evaluation_and_playground_show_hostile_names_as_text(marked_app) -> None:
    at = marked_app().run()
    at.switch_page("pages/evaluation.py").run()
    at.radio(key="ev_source").set_value("Data folder").run()
    at.selectbox(key="ev_file").set_value(f"![d](http:{HOST}).txt").run()
    assert any("is empty" in e.value for e in at.error)
    assert_no_markup_from_data(at)
    at.selectbox(key="ev_file").set_value("ok.txt").run()
    at.multiselect(key="ev_runs").set_value(["toy_a/run1", EVIL_RUN_ID]).run()
    at.button(key="ev_go").click().run()
    assert not at.exception, at.exception
    assert any("does not define" in e.value for e in at.error), "the broken run's error is shown"
    assert_no_markup_from_data(at)

    at.switch_page("pages/playground.py").run()
    at.multiselect(key="pg_runs").set_value(["toy_a/run1", EVIL_RUN_ID])
    at.number_input(key="pg_max_new_tokens").set_value(4)
    at.toggle(key="pg_split").set_value(True)
    at.run()
    at.button(key="pg_go").click().run()
    assert not at.exception, at.exception
    assert_no_markup_from_data(at)


@pytest.mark.parametrize("value", [f"![p](http://{HOST}/a)", f"<img src=http://{HOST}/b>", ":red[x] $x$ **b**"])
def test_link_warnings_quote_values_as_text(hostile_app, value: str) -> None:
    at = hostile_app()
    at.query_params["runs"] = [value]
    at.query_params["run"] = [value]
    at.run()
    for page in PAGES.values():
        if page:
            at.switch_page(page).run()
            assert not at.exception, at.exception
            assert_no_markup_from_data(at)


def test_one_run_lookup_gives_experiment_and_run_or_one_sentence(tmp_path: Path) -> None:
    """`lookup` is how a run id from a list or a link becomes a run: anything else is one sentence."""
    models = tmp_path / "models"
    toyzoo.make_toy_a(models)
    exp, run = discovery.lookup(models, "toy_a/run1")
    assert (exp.name, run.id) == ("toy_a", "toy_a/run1") and run in exp.runs
    for bad in ("toy_a/nope", "../../etc/passwd", "toy_a", "", "toy_a/run1/../run2"):
        with pytest.raises(UnknownRunError) as caught:
            discovery.lookup(models, bad)
        assert str(caught.value) == f"no run called {bad!r} in the models directory"
