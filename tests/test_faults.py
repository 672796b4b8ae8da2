"""Fault injection: every fault gives a message and the app goes on.

Library level (evaluation, Playground streams, doctor) and page level (AppTest: ``not
at.exception``), on toy experiments built in a temp folder (tests/toyzoo.py). The toys' own
fault switches are used where they fit: a file named CRASH or HANG in an experiment's root
makes its next forward call ``os._exit(3)`` or sleep for an hour.
"""

from __future__ import annotations

import math
import os
import shutil
import signal
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace

import pytest
import toyzoo

from sandbox.curves import view
from sandbox.evaluation import results as evaluation_results
from sandbox.evaluation import run as evaluation_run
from sandbox.evaluation import tables
from sandbox.evaluation.checkup import check_experiment
from sandbox.playground.columns import ColumnState, column_events
from sandbox.playground.multistream import MultiStream
from sandbox.playground.settings import SamplingSettings
from sandbox.urlstate import loss_curves
from sandbox.worker.pool import WorkerPool
from sandbox.zoo import discovery, records

# Long enough for several windows per document in both toys (contexts of 64 and 48 tokens).
DOCS = [
    "once upon a time a little fox ran to the river, and the river was cold! " * 4,
    "the cat sat on the mat. the dog ran far away, and nobody saw it again. " * 4,
    "what a day it was. a bee, a tree, a sea and a key? yes, all of them. " * 4,
]
SHORT_GENERATION = SamplingSettings(
    temperature=0.8, top_k=0, top_p=1.0, min_p=0.0, max_new_tokens=12, seed=3, stop_at_eos=False
)


# -- fixtures and helpers ---------------------------------------------------------------------


@pytest.fixture(autouse=True)
def _own_cache(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """A fresh result cache per test, so that every evaluation here really runs."""
    cache = tmp_path / "cache"
    monkeypatch.setenv("SANDBOX_CACHE_DIR", str(cache))
    return cache


@pytest.fixture
def zoo(tmp_path: Path) -> Path:
    """toy_a (runs run1, run2) and toy_b (run cached), ours to break."""
    return toyzoo.make_pair(tmp_path / "models")


@pytest.fixture
def fast_pool():
    """A CPU pool whose requests time out after 8 s (the hang tests wait that long)."""
    p = WorkerPool(max_workers=4, device="cpu", timeout=8)
    yield p
    p.close_all()


def evaluate(pool: WorkerPool, models: Path, run_ids: list[str], **kw) -> dict[str, evaluation_results.RunResult]:
    """Evaluate ``run_ids`` on DOCS, one window per forward (many progress calls)."""
    report = evaluation_run.evaluate(pool, run_ids, DOCS, evaluation_results.EvalSettings(kmax=5, batch_size=1), models_dir=models, **kw)
    assert [r.run_id for r in report.results] == run_ids
    return {r.run_id: r for r in report.results}


def assert_finite_numbers(result: evaluation_results.RunResult) -> None:
    assert result.ok, result.error
    table = tables.summary_table([result], [1, 5], n_resamples=50)
    for column in ("top1", "top5", "loss", "bits_per_byte"):
        assert math.isfinite(float(table.loc[0, column])), column


def generate_columns(pool: WorkerPool, models: Path, run_ids: list[str]) -> dict[str, ColumnState]:
    """What the Playground does: every run's column streamed at once, folded into states."""
    columns, jobs = {}, {}
    for run_id in run_ids:
        run = discovery.find_run(models, run_id)
        client = pool.client(discovery.find_experiment(models, run.experiment))
        columns[run_id] = ColumnState(run_id, SHORT_GENERATION, started_at=0.0)
        jobs[run_id] = (lambda c=client, r=run.name: column_events(c, r, "once upon a time", SHORT_GENERATION))
    with MultiStream(jobs) as streams:
        for message in streams.drain(timeout=120):
            columns[message.key].apply(message)
        assert streams.finished, "a column never ended"
    return columns


def break_shape(root: Path, when: str = "always") -> None:
    """Make toy_a's model return logits of the wrong shape (its last position only)."""
    path = root / "modules/model.py"
    cut = "logits = logits[:, -1]" if when == "always" else "logits = logits[:, :4] if logits.shape[1] > 4 else logits"
    source = path.read_text()
    assert "        logits = self.head(x)\n" in source
    path.write_text(source.replace("        logits = self.head(x)\n", f"        logits = self.head(x)\n        {cut}\n"))


# -- a worker killed mid-evaluation ----------------------------------------------------------------

# toy_a's fault switches, plus a gate: while a file GATE holding N exists, the forward of every
# window after the first N waits until GATE is removed. The worker computes ahead of what
# the app has received, so without the gate it could finish a small evaluation before the
# test kills it; with it, the app holds exactly N windows and the worker is at window N + 1.
GATED_FAULTS = """
import os
import time

_gated = 0


def _gate():
    # The test removes GATE at any moment, so "exists, then read" would race: read or None.
    try:
        with open("GATE") as f:
            return int(f.read())
    except FileNotFoundError:
        return None


def faults(input_ids=None):
    global _gated
    limit = _gate() if input_ids is not None and input_ids.shape[1] > 4 else None  # not the probe
    if limit is not None:
        _gated += 1
        if _gated > limit:
            while os.path.exists("GATE"):
                time.sleep(0.01)
    if os.path.exists("CRASH"):
        os._exit(3)
    if os.path.exists("HANG"):
        time.sleep(3600)
"""


def add_gate(root: Path, after: int) -> Path:
    """Install the gate in an experiment's code and close it after ``after`` windows."""
    layers, model = root / "modules/layers.py", root / "modules/model.py"
    source = layers.read_text()
    start, end = source.index("def faults():"), source.index("class Mixer")
    layers.write_text(source[:start].replace("import os\nimport time\n", "") + GATED_FAULTS.lstrip() + "\n\n" + source[end:])
    model.write_text(model.read_text().replace("faults()", "faults(input_ids)"))
    gate = root / "GATE"
    gate.write_text(str(after))
    return gate


def _kill_with_signal(pool: WorkerPool, models: Path) -> None:
    client = pool.client(discovery.find_experiment(models, "toy_a"))
    os.kill(client.pid, signal.SIGKILL)


def _crash_on_next_forward(pool: WorkerPool, models: Path) -> None:
    (models / "toy_a" / "CRASH").write_text("")


@pytest.mark.parametrize(
    ("fault", "expected"),
    [(_kill_with_signal, "was killed by signal SIGKILL"), (_crash_on_next_forward, "exited with status 3")],
    ids=["sigkill", "exit"],
)
def test_worker_killed_mid_evaluation_fails_its_run_only(
    pool: WorkerPool, zoo: Path, fault: Callable[[WorkerPool, Path], None], expected: str
) -> None:
    gate = add_gate(zoo / "toy_a", after=2)
    seen: list[tuple[str, int, int]] = []

    def progress(run_id: str, done: int, total: int) -> None:
        seen.append((run_id, done, total))
        if run_id == "toy_a/run1" and done == 2:  # two windows in: the worker dies
            fault(pool, zoo)
            gate.unlink()

    results = evaluate(pool, zoo, ["toy_a/run1", "toy_b/cached"], progress=progress)
    error = results["toy_a/run1"].error
    assert error is not None and expected in error["message"], error
    assert "The worker of toy_a" in error["message"]
    assert error["hint"] == "The next request starts a fresh worker."
    total = next(t for rid, _, t in seen if rid == "toy_a/run1")
    assert total > 3 and max(done for rid, done, _ in seen if rid == "toy_a/run1") == 2
    assert_finite_numbers(results["toy_b/cached"])  # the other run finished
    # Nothing half-done was cached, and the next request gets a fresh worker.
    (zoo / "toy_a" / "CRASH").unlink(missing_ok=True)
    again = evaluate(pool, zoo, ["toy_a/run1"])
    assert not again["toy_a/run1"].cached
    assert_finite_numbers(again["toy_a/run1"])


# -- a forward that hangs ---------------------------------------------------------------------------


def test_hanging_forward_times_out_and_the_next_request_works(fast_pool: WorkerPool, zoo: Path) -> None:
    assert_finite_numbers(evaluate(fast_pool, zoo, ["toy_a/run2"], use_cache=False)["toy_a/run2"])  # loaded
    (zoo / "toy_a" / "HANG").write_text("")
    results = evaluate(fast_pool, zoo, ["toy_a/run2", "toy_b/cached"], use_cache=False)
    error = results["toy_a/run2"].error
    assert error is not None
    assert "The worker of toy_a did not answer within 8 s while streaming 'score'; it was stopped." == error["message"]
    assert_finite_numbers(results["toy_b/cached"])
    # The Playground: the hanging run's column says so, the other column writes its text.
    columns = generate_columns(fast_pool, zoo, ["toy_a/run2", "toy_b/cached"])
    assert columns["toy_a/run2"].status == "error"
    assert "did not answer within 8 s" in columns["toy_a/run2"].error["message"]
    assert columns["toy_b/cached"].status == "done" and columns["toy_b/cached"].n_tokens == 12
    (zoo / "toy_a" / "HANG").unlink()
    assert_finite_numbers(evaluate(fast_pool, zoo, ["toy_a/run2"], use_cache=False)["toy_a/run2"])
    assert generate_columns(fast_pool, zoo, ["toy_a/run2"])["toy_a/run2"].status == "done"


# -- a model that returns the wrong shape ---------------------------------------------------------


def test_wrong_shape_gives_the_doctor_sentence_everywhere(pool: WorkerPool, zoo: Path) -> None:
    break_shape(zoo / "toy_a")
    sentence = "model(input_ids) returned logits of shape (1, 36); expected (1, 4, vocab)."
    findings, _ = check_experiment(discovery.find_experiment(zoo, "toy_a"), pool)
    assert ("forward", sentence) in {(f.rule, f.sentence) for f in findings}
    results = evaluate(pool, zoo, ["toy_a/run1", "toy_b/cached"])
    assert results["toy_a/run1"].error["message"] == sentence
    assert_finite_numbers(results["toy_b/cached"])
    columns = generate_columns(pool, zoo, ["toy_a/run1", "toy_b/cached"])
    assert columns["toy_a/run1"].status == "error" and columns["toy_a/run1"].error["message"] == sentence
    assert columns["toy_b/cached"].status == "done"


def test_wrong_shape_on_longer_inputs_only_fails_that_run(pool: WorkerPool, zoo: Path) -> None:
    """A forward that passes the 4-token probe but cuts longer inputs: an error row, no crash."""
    break_shape(zoo / "toy_a", when="longer")
    results = evaluate(pool, zoo, ["toy_a/run1", "toy_b/cached"])
    error = results["toy_a/run1"].error
    assert error is not None and "model(input_ids) returned logits of shape" in error["message"], error
    assert_finite_numbers(results["toy_b/cached"])
    # The worker survived the failed request: the same worker answers the next one.
    client = pool.client(discovery.find_experiment(zoo, "toy_a"))
    assert client.alive and client.starts == 1
    assert client.request("info", run="run1")["vocab_size"] == 36


# -- a cache write that fails ---------------------------------------------------------------------


class _DiskFull:
    """Stands in for the `os` module inside sandbox.zoo.records (every cache write): replacing a file fails."""

    def __getattr__(self, name: str):
        return getattr(os, name)

    @staticmethod
    def replace(src, dst) -> None:
        raise OSError(28, "No space left on device")


def test_failed_cache_write_still_returns_the_result(
    pool: WorkerPool, zoo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cache = tmp_path / "eval-cache"
    monkeypatch.setattr(records, "os", _DiskFull())
    results = evaluate(pool, zoo, ["toy_b/cached"], cache_root=cache)
    assert_finite_numbers(results["toy_b/cached"])
    assert results["toy_b/cached"].warnings == [
        "The result of toy_b/cached could not be cached (No space left on device); it is shown but not saved."
    ]
    assert list(cache.iterdir()) == [], "the temporary file must not be left behind"
    monkeypatch.undo()
    assert not evaluate(pool, zoo, ["toy_b/cached"], cache_root=cache)["toy_b/cached"].cached


# -- runs and logs that vanish ------------------------------------------------------------------


def test_evaluating_a_run_deleted_after_it_was_listed(pool: WorkerPool, zoo: Path) -> None:
    listed = discovery.find_run(zoo, "toy_a/run2")
    shutil.rmtree(listed.dir)
    results = evaluate(pool, zoo, ["toy_a/run2", "toy_b/cached"])
    assert results["toy_a/run2"].error["message"] == "no run called 'toy_a/run2' in the models directory"
    assert_finite_numbers(results["toy_b/cached"])


def test_stale_listing_of_a_deleted_run_gives_sentences(pool: WorkerPool, zoo: Path) -> None:
    """Discovered a moment ago, deleted since: the worker names the missing folder."""
    stale = discovery.find_experiment(zoo, "toy_a")
    shutil.rmtree(zoo / "toy_a/trained/run2")
    client = pool.client(stale)
    run = stale.runs[1]
    assert run.name == "run2"
    with pytest.raises(Exception, match=r"There is no run folder trained/run2\."):
        client.request("info", run="run2")
    with pytest.raises(ValueError, match="model_config.json is missing"):
        run.model_config()
    findings, _ = check_experiment(stale, pool)
    assert any(f.run == "run2" and "trained/run2" in f.sentence for f in findings), findings
    assert client.request("info", run="run1")["vocab_size"] == 36  # the rest still works


def test_loss_view_of_a_log_that_vanished(zoo: Path) -> None:
    runs = {r.id: r for r in discovery.all_runs(zoo)}
    chosen = [runs["toy_a/run1"], runs["toy_a/run2"]]
    settings = loss_curves.default_settings([r.id for r in chosen], view.metric_options(list(runs), runs))
    before = view.build(chosen, settings)
    assert set(before.curves.draw["run"]) == {"toy_a/run1", "toy_a/run2"}
    chosen[1].log_path.unlink()
    after = view.build(chosen, settings)
    assert set(after.curves.draw["run"]) == {"toy_a/run1"}
    assert after.log_notes["toy_a/run2"] == ("toy_a/trained/run2/log_data.csv does not exist.",)
    assert after.chart is not None


# -- the pages (AppTest) -----------------------------------------------------------------------


def _texts(at) -> str:
    parts = [e.value for e in at.error] + [w.value for w in at.warning] + [i.value for i in at.info]
    parts += [c.value for c in at.caption] + [m.value for m in at.markdown]
    return "\n".join(str(p) for p in parts)


def _open(app_at, models: Path, page: str, query: dict | None = None):
    at = app_at(models)
    for key, value in (query or {}).items():
        at.query_params[key] = value
    at.run()
    at.switch_page(page).run()
    assert not at.exception, at.exception
    return at


def _results_table(at):
    return next(df.value for df in at.dataframe if "bits_per_byte" in df.value.columns).set_index("run")


def _evaluate_on_page(at, runs: list[str], docs: int = 3):
    at.multiselect(key="ev_runs").set_value(runs)
    at.number_input(key="ev_docs").set_value(docs)
    at.number_input(key="ev_batch").set_value(1)
    at.run()
    at.button(key="ev_go").click().run()
    assert not at.exception, at.exception
    return _results_table(at)


def _generate_on_page(at, runs: list[str]):
    at.multiselect(key="pg_runs").set_value(runs)
    at.number_input(key="pg_max_new_tokens").set_value(8)
    at.checkbox(key="pg_eos").set_value(False)  # exactly 8 tokens, whatever the toy samples
    at.run()
    at.button(key="pg_go").click().run()
    assert not at.exception, at.exception
    return at


def _app_client(models: Path, experiment: str):
    """The app's own worker client for ``experiment`` (AppTest runs in this process)."""
    from pages import common

    return common.worker_pool().client(discovery.find_experiment(models, experiment))


def test_evaluation_page_worker_killed_mid_run(app_at, zoo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real_evaluate = evaluation_run.evaluate
    gate = add_gate(zoo / "toy_a", after=2)
    killed: list[int] = []

    def evaluate_and_kill(pool, run_ids, docs, settings, **kw):
        page_progress = kw.pop("progress")

        def progress(run_id: str, done: int, total: int) -> None:
            if run_id == "toy_a/run1" and done == 2 and not killed:
                killed.append(pool.client(discovery.find_experiment(zoo, "toy_a")).pid)
                os.kill(killed[0], signal.SIGKILL)
                gate.unlink()
            page_progress(run_id, done, total)

        return real_evaluate(pool, run_ids, docs, settings, progress=progress, **kw)

    monkeypatch.setattr(evaluation_run, "evaluate", evaluate_and_kill)
    at = _open(app_at, zoo, "pages/evaluation.py")
    table = _evaluate_on_page(at, ["toy_a/run1", "toy_b/cached"])
    assert killed, "the evaluation never reached its second window"
    assert "was killed by signal SIGKILL" in table.loc["toy_a/run1", "error"]
    assert math.isfinite(float(table.loc["toy_b/cached", "loss"])) and table.loc["toy_b/cached", "error"] == ""
    assert any("toy_a/run1" in e.value and "killed by signal SIGKILL" in e.value for e in at.error)
    # Run again: a fresh worker evaluates it (toy_b comes from the cache).
    monkeypatch.setattr(evaluation_run, "evaluate", real_evaluate)
    at.button(key="ev_go").click().run()
    assert not at.exception, at.exception
    table = _results_table(at)
    assert (table["error"] == "").all(), table["error"]
    assert bool(table.loc["toy_b/cached", "cached"])
    assert _app_client(zoo, "toy_a").pid != killed[0]


def test_evaluation_and_playground_pages_with_a_hanging_forward(app_at, zoo: Path) -> None:
    at = _open(app_at, zoo, "pages/evaluation.py")
    _app_client(zoo, "toy_a").timeout = 8  # the app's own worker, with a short request timeout
    (zoo / "toy_a" / "HANG").write_text("")
    table = _evaluate_on_page(at, ["toy_a/run1", "toy_b/cached"])
    assert "did not answer within 8 s" in table.loc["toy_a/run1", "error"]
    assert table.loc["toy_b/cached", "error"] == ""
    assert "did not answer within 8 s" in _texts(at)

    at.switch_page("pages/playground.py").run()
    assert not at.exception, at.exception
    at = _generate_on_page(at, ["toy_a/run1", "toy_b/cached"])
    assert any("toy_a/run1" in e.value and "did not answer within 8 s" in e.value for e in at.error)
    assert "8 tokens" in _texts(at)  # toy_b's column finished

    (zoo / "toy_a" / "HANG").unlink()
    at.switch_page("pages/evaluation.py").run()
    at.button(key="ev_go").click().run()
    assert not at.exception, at.exception
    assert (_results_table(at)["error"] == "").all()


def test_wrong_shape_shows_in_its_column_on_both_pages(app_at, zoo: Path) -> None:
    break_shape(zoo / "toy_a")
    sentence = "model(input_ids) returned logits of shape (1, 36); expected (1, 4, vocab)."
    at = _open(app_at, zoo, "pages/evaluation.py")
    table = _evaluate_on_page(at, ["toy_a/run1", "toy_b/cached"])
    assert table.loc["toy_a/run1", "error"] == sentence
    assert math.isfinite(float(table.loc["toy_b/cached", "top1"]))
    at.switch_page("pages/playground.py").run()
    at = _generate_on_page(at, ["toy_a/run1", "toy_b/cached"])
    assert any(sentence in e.value and "toy_a/run1" in e.value for e in at.error)
    assert "8 tokens" in _texts(at)
    at.switch_page("pages/models.py").run()
    assert not at.exception, at.exception
    next(b for b in at.button if b.label == "Load every run").click().run()  # the doctor's full check
    assert not at.exception, at.exception
    assert sentence in _texts(at)  # the doctor's sentence


def test_evaluation_page_with_an_unwritable_cache(app_at, zoo: Path, _own_cache: Path) -> None:
    _own_cache.mkdir(parents=True, exist_ok=True)
    (_own_cache / "eval").write_text("a file where the cache folder should be")
    at = _open(app_at, zoo, "pages/evaluation.py")
    table = _evaluate_on_page(at, ["toy_b/cached"], docs=2)
    assert math.isfinite(float(table.loc["toy_b/cached", "bits_per_byte"]))
    assert any("could not be cached" in w.value and "it is shown but not saved" in w.value for w in at.warning)


def test_models_page_after_a_run_folder_is_deleted(app_at, zoo: Path) -> None:
    at = _open(app_at, zoo, "pages/models.py")
    at.selectbox(key="models_detail_run").set_value("toy_a/run2").run()
    assert not at.exception, at.exception
    assert set(at.dataframe[0].value["run"]) == {"run1", "run2", "cached"}
    shutil.rmtree(zoo / "toy_a/trained/run2")
    at.run()
    assert not at.exception, at.exception
    assert set(at.dataframe[0].value["run"]) == {"run1", "cached"}
    assert at.selectbox(key="models_detail_run").value != "toy_a/run2"


def test_models_page_with_a_stale_listing(app_at, zoo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The folder goes between discovery and reading it: sentences, no exception."""
    from sandbox.zoo import catalog

    stale = discovery.discover(zoo)
    for module in (discovery, catalog):
        monkeypatch.setattr(module, "discover", lambda models_dir=None: list(stale))
    shutil.rmtree(zoo / "toy_a/trained/run2")
    at = _open(app_at, zoo, "pages/models.py")
    at.selectbox(key="models_detail_run").set_value("toy_a/run2").run()
    assert not at.exception, at.exception
    assert "model_config.json is missing" in _texts(at)


def test_loss_curves_page_after_a_run_folder_is_deleted(app_at, zoo: Path) -> None:
    at = _open(app_at, zoo, "pages/loss_curves.py", {"run": ["toy_a/run2"]})
    assert at.multiselect(key="lc_runs").value == ["toy_a/run2"]
    shutil.rmtree(zoo / "toy_a/trained/run2")
    at.run()
    assert not at.exception, at.exception
    assert "toy_a/run2" not in at.multiselect(key="lc_runs").options
    assert "Choose at least one run." in _texts(at)


def test_loss_curves_page_when_a_log_vanishes(app_at, zoo: Path) -> None:
    at = _open(app_at, zoo, "pages/loss_curves.py", {"run": ["toy_a/run1", "toy_a/run2"]})
    assert at.multiselect(key="lc_runs").value == ["toy_a/run1", "toy_a/run2"]
    (zoo / "toy_a/trained/run2/log_data.csv").unlink()
    at.run()
    assert not at.exception, at.exception
    assert at.multiselect(key="lc_runs").value == ["toy_a/run1"]
    assert any("went away: toy_a/run2" in i.value for i in at.info)
    assert at.get("vega_lite_chart") or at.get("arrow_vega_lite_chart")


def test_loss_curves_page_when_a_log_vanishes_while_read(
    app_at, zoo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The log is listed, then gone when the page reads it: the page notices and redraws."""
    from sandbox.zoo import logread

    monkeypatch.setenv("SANDBOX_LOG_WATCH", "poll")  # the page's watcher checks files when asked
    real_read = logread.read_log
    victim = zoo / "toy_a/trained/run2/log_data.csv"
    state = SimpleNamespace(armed=False, vanished=False)

    def read_then_vanish(path, *args, **kwargs):
        if state.armed and Path(path) == victim and victim.exists():
            victim.unlink()
            state.vanished = True
        return real_read(path, *args, **kwargs)

    at = _open(app_at, zoo, "pages/loss_curves.py", {"run": ["toy_a/run1", "toy_a/run2"]})
    monkeypatch.setattr(logread, "read_log", read_then_vanish)
    state.armed = True
    logread.clear_cache()
    view.clear_memo()
    at.run()
    assert state.vanished, "the page never read the log"
    assert not at.exception, at.exception
    assert at.multiselect(key="lc_runs").value == ["toy_a/run1"]
    assert at.get("vega_lite_chart") or at.get("arrow_vega_lite_chart")
