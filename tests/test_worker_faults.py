"""Hardening of the workers (issue 12): every fault found by testing, reproduced and kept fixed.

Generation checks every forward's output like scoring does; visitors see one sentence per
error and the server log gets the traceback; one cap on live workers across all pools; a
configurable request timeout and a hung worker replaced for the requests queued behind it;
one clear sentence and the right hint per failure; a code change never closes a worker in
use. Toy experiments from tests/toyzoo.py, broken on purpose in a temp folder.
"""

from __future__ import annotations

import logging
import math
import os
import re
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import toyzoo

from sandbox.errors import RequestFailed, WorkerBusy, WorkerError, WorkerTimeout
from sandbox.evaluation.checkup import check_experiment
from sandbox.playground.columns import ColumnState, column_events
from sandbox.playground.multistream import MultiStream
from sandbox.playground.settings import SamplingSettings
from sandbox.settings import PROJECT_ROOT
from sandbox.worker.client import WorkerClient, WorkerLimiter
from sandbox.worker.pool import WorkerPool
from sandbox.zoo import discovery

SETTINGS = SamplingSettings(
    temperature=0.8, top_k=0, top_p=1.0, min_p=0.0, max_new_tokens=12, seed=3, stop_at_eos=False
)
DOCS = ["once upon a time a little fox ran to the river, and the river was cold! " * 3]


@pytest.fixture(autouse=True)
def _own_cache(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """A fresh result cache per test, so that every evaluation here really runs."""
    cache = tmp_path / "cache"
    monkeypatch.setenv("SANDBOX_CACHE_DIR", str(cache))
    monkeypatch.delenv("SANDBOX_REQUEST_TIMEOUT", raising=False)
    return cache


@pytest.fixture
def zoo(tmp_path: Path) -> Path:
    """toy_a (runs run1, run2) and toy_b (run cached), ours to break."""
    return toyzoo.make_pair(tmp_path / "models")


def edit(path: Path, old: str, new: str) -> None:
    source = path.read_text()
    assert old in source, f"{old!r} not in {path}"
    path.write_text(source.replace(old, new, 1))


def break_forward(root: Path, statement: str, *, longer_only: bool = True) -> None:
    """Put ``statement`` at the start of toy_a's forward (for inputs longer than the probe's)."""
    model = root / "modules/model.py"
    edit(model, "import torch.nn.functional as F\n", "import os\n\nimport torch\nimport torch.nn.functional as F\n")
    guard = "        if input_ids.shape[1] > 4:\n    " if longer_only else ""
    edit(model, "        faults()\n", f"        faults()\n{guard}        {statement}\n")


def cut_longer_logits(root: Path) -> None:
    """toy_a passes the 4-token probe but returns 4 positions for longer inputs."""
    edit(
        root / "modules/model.py",
        "        logits = self.head(x)\n",
        "        logits = self.head(x)\n        logits = logits[:, :4] if logits.shape[1] > 4 else logits\n",
    )


def generate_columns(pool: WorkerPool, models: Path, run_ids: list[str], prompt: str = "once upon a time"):
    """What the Playground does: every run's column streamed at once, folded into states."""
    columns, jobs = {}, {}
    for run_id in run_ids:
        run = discovery.find_run(models, run_id)
        client = pool.client(discovery.find_experiment(models, run.experiment))
        columns[run_id] = ColumnState(run_id, SETTINGS, started_at=0.0)
        jobs[run_id] = lambda c=client, r=run.name: column_events(c, r, prompt, SETTINGS)
    with MultiStream(jobs) as streams:
        for message in streams.drain(timeout=120):
            columns[message.key].apply(message)
        assert streams.finished, "a column never ended"
    return columns


def run_cli(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "sandbox", *args],
        capture_output=True,
        text=True,
        timeout=240,
        cwd=PROJECT_ROOT,
        env={**os.environ, **(env or {})},
    )


def worker_children() -> list[int]:
    """Pids of the experiment workers this test process started that are still alive."""
    me, found = os.getpid(), []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", encoding="utf-8") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                command = f.read()
        except (OSError, IndexError):
            continue
        if int(fields[1]) == me and fields[0] != "Z" and b"sandbox.worker" in command:
            found.append(int(entry))
    return found


class ChildCounter(threading.Thread):
    """Samples `worker_children` until stopped; ``most`` is the largest count seen."""

    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.stop_event = threading.Event()
        self.most = 0

    def run(self) -> None:
        while not self.stop_event.wait(0.05):
            self.most = max(self.most, len(worker_children()))

    def __enter__(self) -> ChildCounter:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop_event.set()
        self.join(5)


# -- 1. generation checks every forward's output -------------------------------------------------


def test_generation_checks_the_shape_of_every_forward(pool: WorkerPool, zoo: Path) -> None:
    """Right for the probe's 4 tokens, wrong from 5 on: the generation stops with the sentence."""
    cut_longer_logits(zoo / "toy_a")
    client = pool.client(discovery.find_experiment(zoo, "toy_a"))
    assert client.request("info", run="run1")["vocab_size"] == 36  # the probe passes
    events = []
    with pytest.raises(RequestFailed) as caught:
        for event in client.stream("generate", run="run1", prompt_ids=[33], settings={"max_new_tokens": 30, "seed": 1, "stop_at_eos": False}):
            events.append(event)
    assert str(caught.value) == "model(input_ids) returned logits of shape (1, 4, 36); expected (1, 5, 36)."
    assert caught.value.rule == "forward" and caught.value.file == "modules/model.py"
    assert len(events) == 4, "the tokens made from right-shaped logits, none after"
    # The same sentence as scoring gives for the same model.
    ids = client.request("encode", run="run1", texts=["once upon a time"])[0]
    with pytest.raises(RequestFailed, match=r"returned logits of shape \(1, 4, 36\); expected \(1, 16, 36\)\."):
        client.request("score", run="run1", windows=[ids[:-1]], targets=[ids[1:]])
    assert client.request("ping")  # the worker survived both


def test_generation_with_a_kv_cache_checks_every_forward(pool: WorkerPool, zoo: Path) -> None:
    """toy_b feeds the prompt once, then one token per call: the one-token calls are checked too."""
    edit(
        zoo / "toy_b/modules/model.py",
        "        logits = self.out(self.mix(x, prefix, cache_len))\n",
        "        logits = self.out(self.mix(x, prefix, cache_len))\n"
        "        logits = logits[:, :, :3] if cache_len > 8 else logits\n",
    )
    client = pool.client(discovery.find_experiment(zoo, "toy_b"))
    prompt = client.request("encode", run="cached", texts=["the cat"])[0]
    with pytest.raises(RequestFailed, match=re.escape("model(input_ids, cache_len) returned logits of shape (1, 1, 3); expected (1, 1, 35).")):
        client.request("generate", run="cached", prompt_ids=prompt, settings={"max_new_tokens": 20})


def test_wrong_shape_on_longer_inputs_fails_the_playground_column_and_the_cli(pool: WorkerPool, zoo: Path) -> None:
    cut_longer_logits(zoo / "toy_a")
    columns = generate_columns(pool, zoo, ["toy_a/run1", "toy_b/cached"])
    assert columns["toy_a/run1"].status == "error"
    assert columns["toy_a/run1"].error["message"] == (
        "model(input_ids) returned logits of shape (1, 4, 36); expected (1, 17, 36)."
    )
    assert columns["toy_b/cached"].status == "done" and columns["toy_b/cached"].n_tokens == 12
    out = run_cli("generate", "--run", "toy_a/run1", "--prompt", "once upon a time", "--models-dir", str(zoo))
    assert out.returncode == 1, out.stderr
    assert "error: model(input_ids) returned logits of shape (1, 4, 36); expected (1, 17, 36)." in out.stderr
    assert "reached max new tokens" not in out.stderr and "tokens in" not in out.stderr


# -- 2. visitors see one sentence; the traceback goes to the server log ---------------------------


def _visible_text(at) -> str:
    """Everything an AppTest page shows as text: boxes, captions, code, tables, expander labels."""
    parts = [e.value for e in at.error] + [w.value for w in at.warning] + [i.value for i in at.info]
    parts += [c.value for c in at.caption] + [m.value for m in at.markdown] + [c.value for c in at.code]
    parts += [x.label for x in at.expander] + [h.value for h in at.get("html")]
    for frame in at.dataframe:
        parts += [str(v) for v in frame.value.astype(str).to_numpy().ravel()]
    return "\n".join(str(p) for p in parts)


def _open(app_at, models: Path, page: str):
    at = app_at(models)
    at.run()
    at.switch_page(page).run()
    assert not at.exception, at.exception
    return at


def test_a_forward_that_raises_shows_one_sentence_and_logs_the_traceback(
    app_at, zoo: Path, caplog: pytest.LogCaptureFixture
) -> None:
    break_forward(zoo / "toy_a", 'raise ValueError("no window here: " + os.path.abspath("modules/model.py"))')
    caplog.set_level(logging.WARNING)
    at = _open(app_at, zoo, "pages/evaluation.py")
    at.multiselect(key="ev_runs").set_value(["toy_a/run1", "toy_b/cached"])
    at.number_input(key="ev_docs").set_value(2)
    at.run()
    at.button(key="ev_go").click().run()
    assert not at.exception, at.exception
    sentence = "ValueError: no window here: modules/model.py"
    table = next(df.value for df in at.dataframe if "error" in df.value.columns).set_index("run")
    assert table.loc["toy_a/run1", "error"] == sentence
    assert any("toy_a/run1" in e.value and sentence in e.value for e in at.error)

    at.switch_page("pages/playground.py").run()
    at.multiselect(key="pg_runs").set_value(["toy_a/run1", "toy_b/cached"]).run()
    at.text_area(key="pg_prompt").set_value("the cat sat")
    at.button(key="pg_go").click().run()
    assert not at.exception, at.exception
    assert any("toy_a/run1" in e.value and sentence in e.value for e in at.error)

    for page_text in [_visible_text(at)]:
        assert "Traceback" not in page_text and 'File "' not in page_text
        assert str(zoo) not in page_text and str(PROJECT_ROOT) not in page_text
    assert not [x for x in at.expander if x.label.startswith("Details")]
    # The server log has the full traceback, with the paths.
    logged = "\n".join(r.getMessage() for r in caplog.records if r.name.startswith("sandbox"))
    assert "Traceback" in logged and "ValueError: no window here: " + str(zoo / "toy_a") in logged
    assert any(r.levelno >= logging.WARNING for r in caplog.records if r.name.startswith("sandbox"))


def test_worker_sentences_name_no_absolute_server_path(tmp_path: Path, pool: WorkerPool) -> None:
    root = toyzoo.make_toy_a(tmp_path)
    break_forward(root, 'open(os.path.abspath("tokenizers/nothing.bin"))', longer_only=False)
    client = pool.client(discovery.find_experiment(tmp_path, "toy_a"))
    with pytest.raises(WorkerError) as caught:
        client.request("info", run="run1")
    assert "tokenizers/nothing.bin" in str(caught.value)
    assert str(tmp_path) not in str(caught.value) and str(tmp_path) not in caught.value.hint
    # A worker that dies with a path in its last words.
    break_forward(root, 'print("lost " + os.path.abspath("x.bin"), file=__import__("sys").stderr, flush=True); os._exit(5)', longer_only=False)
    pool.close_all()
    client = pool.client(discovery.find_experiment(tmp_path, "toy_a"))
    with pytest.raises(WorkerError) as caught:
        client.request("info", run="run1")
    assert "exited with status 5" in str(caught.value) and "x.bin" in str(caught.value)
    assert str(tmp_path) not in str(caught.value)


# -- 6. one cap on live workers across every pool --------------------------------------------------


def test_the_readme_cap_holds_across_the_playground_lanes(zoo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Four runs from four experiments, then four from others (two lanes each): never over the cap."""
    from conftest import release_app

    from pages import common

    readme = (PROJECT_ROOT / "README.md").read_text(encoding="utf-8")
    stated = int(re.search(r"at most (\d+) workers are alive at once", readme).group(1))
    assert common.MAX_WORKERS == stated

    for name in ("toy_c", "toy_d", "toy_e", "toy_f"):
        toyzoo.make_toy_a(zoo, name=name, runs=("run1", "run2"))
    monkeypatch.setenv("SANDBOX_MODELS_DIR", str(zoo))
    release_app()
    try:
        with ChildCounter() as counter:
            from sandbox.playground.columns import assign_lanes

            for runs in (
                ["toy_a/run1", "toy_b/cached", "toy_c/run1", "toy_d/run1"],
                ["toy_e/run1", "toy_e/run2", "toy_f/run1", "toy_f/run2"],  # lanes 0, 1, 0, 1
            ):
                columns, jobs = {}, {}
                for run_id, lane in zip(runs, assign_lanes(runs), strict=True):
                    client, run = common.client_in_lane(run_id, lane)
                    columns[run_id] = ColumnState(run_id, SETTINGS, started_at=0.0)
                    jobs[run_id] = lambda c=client, r=run.name: column_events(c, r, "the fox", SETTINGS)
                with MultiStream(jobs) as streams:
                    for message in streams.drain(timeout=240):
                        columns[message.key].apply(message)
                assert {r: c.status for r, c in columns.items()} == dict.fromkeys(runs, "done")
                assert len(worker_children()) <= stated
        assert 0 < counter.most <= stated, f"{counter.most} workers alive at once"
    finally:
        release_app()
    assert worker_children() == []


def test_a_busy_worker_is_never_evicted_and_a_full_pool_says_so(zoo: Path) -> None:
    limiter = WorkerLimiter(1)
    main, lane = WorkerPool(device="cpu", limiter=limiter), WorkerPool(device="cpu", limiter=limiter, timeout=3)
    try:
        a = main.client(discovery.find_experiment(zoo, "toy_a"))
        b = lane.client(discovery.find_experiment(zoo, "toy_b"))
        stream = a.stream("generate", run="run1", prompt_ids=[33], settings={"max_new_tokens": 500, "seed": 1, "stop_at_eos": False})
        first = next(stream)  # a's worker is busy streaming
        with pytest.raises(WorkerBusy, match=r"^All 1 workers are busy"):
            b.request("ping")
        assert a.alive and "id" in first
        rest = list(stream)  # a's stream goes on to the end, untouched
        assert rest[-1]["done"] and rest[-1]["n_tokens"] == 500
        assert b.request("ping")  # now a is idle: it is stopped to make room
        assert not a.alive and limiter.live() == 1 and len(worker_children()) == 1
    finally:
        main.close_all()
        lane.close_all()
    assert worker_children() == []


def test_a_request_waits_for_a_slot_to_free(zoo: Path) -> None:
    limiter = WorkerLimiter(1)
    main, lane = WorkerPool(device="cpu", limiter=limiter), WorkerPool(device="cpu", limiter=limiter)
    try:
        a = main.client(discovery.find_experiment(zoo, "toy_a"))
        b = lane.client(discovery.find_experiment(zoo, "toy_b"))
        got: dict = {}
        stream = a.stream("generate", run="run1", prompt_ids=[33], settings={"max_new_tokens": 200, "seed": 1, "stop_at_eos": False})
        next(stream)
        waiter = threading.Thread(target=lambda: got.update(ping=b.request("ping")))
        waiter.start()
        done = list(stream)
        waiter.join(120)
        assert done[-1]["n_tokens"] == 200 and got["ping"]["pid"] != a.pid
        assert len(worker_children()) == 1
    finally:
        main.close_all()
        lane.close_all()


# -- 7. a configurable timeout; a hung worker replaced for the requests queued behind it ----------


HANG_ONCE = 'if os.path.exists("HANG_ONCE"):\n            os.remove("HANG_ONCE")\n            __import__("time").sleep(3600)'


def test_request_timeout_from_the_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("SANDBOX_REQUEST_TIMEOUT", "7.5")
    assert WorkerClient(tmp_path).timeout == 7.5
    assert WorkerPool(device="cpu").client(discovery.Experiment("x", tmp_path, ())).timeout == 7.5
    monkeypatch.setenv("SANDBOX_REQUEST_TIMEOUT", "soon")
    assert WorkerClient(tmp_path).timeout == 120.0  # an unusable value: the default, with a log line


def test_a_hung_worker_is_replaced_for_the_requests_queued_behind_it(zoo: Path) -> None:
    break_forward(zoo / "toy_a", HANG_ONCE, longer_only=False)
    pool = WorkerPool(device="cpu", timeout=4)
    try:
        client = pool.client(discovery.find_experiment(zoo, "toy_a"))
        ids = client.request("encode", run="run1", texts=["the cat sat on the mat"])[0]
        hung_pid = client.pid
        (zoo / "toy_a/HANG_ONCE").write_text("")
        results: dict[str, object] = {}

        def hung() -> None:
            try:
                client.request("score", run="run1", windows=[ids[:-1]], targets=[ids[1:]])
            except WorkerError as exc:
                results["hung"] = exc

        def queued(name: str) -> None:
            try:
                items = client.request("score", run="run1", windows=[ids[:-1]], targets=[ids[1:]])
                results[name] = (client.pid, items)
            except WorkerError as exc:
                results[name] = exc

        first = threading.Thread(target=hung)
        first.start()
        while client.alive and not client.in_flight:
            time.sleep(0.01)
        others = [threading.Thread(target=queued, args=(f"session{i}",)) for i in range(2)]
        for thread in others:
            thread.start()
        for thread in [first, *others]:
            thread.join(120)
        assert isinstance(results["hung"], WorkerTimeout), results
        assert str(results["hung"]) == "The worker of toy_a did not answer within 4 s while answering 'score'; it was stopped."
        for name in ("session0", "session1"):
            pid, items = results[name]  # answered, by the new worker
            assert pid != hung_pid and len(items) == 1
    finally:
        pool.close_all()


def test_cli_timeout_flag(zoo: Path) -> None:
    (zoo / "toy_a/HANG").write_text("")
    out = run_cli("generate", "--run", "toy_a/run1", "--prompt", "abc", "--timeout", "3", "--models-dir", str(zoo))
    assert out.returncode == 1
    assert "The worker of toy_a did not answer within 3 s" in out.stderr
    out = run_cli("eval", "--runs", "toy_a/run1", "--timeout", "0", "--models-dir", str(zoo))
    assert out.returncode == 2 and "--timeout" in out.stderr


# -- 9. the right sentence and hint per failure ----------------------------------------------------


def _findings(pool: WorkerPool, models: Path, name: str):
    findings, _ = check_experiment(discovery.find_experiment(models, name), pool)
    return [f for f in findings if f.severity == "error"]


def one_finding(findings):
    """The finding every run of an experiment gets (one per run, all alike)."""
    assert findings and len({(f.rule, f.sentence, f.hint) for f in findings}) == 1, findings
    return findings[0]


def test_a_module_raising_at_import_gets_its_own_hint(pool: WorkerPool, zoo: Path, caplog) -> None:
    caplog.set_level(logging.WARNING)
    edit(zoo / "toy_a/modules/layers.py", "import torch\n", 'import torch\n\nraise RuntimeError("no GPU here")\n')
    finding = one_finding(_findings(pool, zoo, "toy_a"))
    assert finding.sentence == "modules/model.py raised RuntimeError: no GPU here when imported."
    assert "Model(cfg)" not in finding.hint and "server log" in finding.hint
    assert "modules/layers.py" in "\n".join(r.getMessage() for r in caplog.records)  # where it raised


def test_out_of_memory_gets_a_memory_hint(pool: WorkerPool, zoo: Path) -> None:
    toyzoo.copy_experiment(zoo / "toy_a", zoo, "toy_oom")
    edit(zoo / "toy_oom/modules/model.py", "        super().__init__()\n",
         '        super().__init__()\n        raise __import__("torch").OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 GiB")\n')
    finding = one_finding(_findings(pool, zoo, "toy_oom"))
    assert finding.sentence == "Model(cfg) raised OutOfMemoryError: CUDA out of memory. Tried to allocate 20.00 GiB."
    assert "memory" in finding.hint and "Model(cfg)" not in finding.hint
    # Out of memory in a forward: the evaluation's error has the memory hint too.
    break_forward(zoo / "toy_a", 'raise MemoryError("cannot allocate 80 GiB")')
    client = pool.client(discovery.find_experiment(zoo, "toy_a"))
    with pytest.raises(RequestFailed) as caught:
        client.request("score", run="run1", windows=[[33] * 10], targets=[[1] * 10])
    assert str(caught.value) == "MemoryError: cannot allocate 80 GiB"
    assert "memory" in caught.value.hint


@pytest.mark.parametrize(
    "opener",
    [
        # the experiment's own message, with the absolute path and no filename attribute
        'raise FileNotFoundError(f"The tokenizer data file tokenizers/char/models/{size - 3}.model not found (cwd is {__import__(\'os\').getcwd()})")',
        'open(__import__("os").path.abspath(f"tokenizers/char/models/{size - 3}.model"))',
        'open(f"tokenizers/char/models/{size - 3}.model")',
    ],
    ids=["own-message", "absolute", "relative"],
)
def test_a_missing_tokenizer_file_is_one_clean_sentence(pool: WorkerPool, zoo: Path, opener: str) -> None:
    (zoo / "toy_a/tokenizers/char/models/33.model").unlink()
    edit(zoo / "toy_a/tokenizers/char/tokenizer.py", "def get_tokenizer(size):\n", f"def get_tokenizer(size):\n    {opener}\n")
    assert {f.sentence for f in _findings(pool, zoo, "toy_a")} == {
        "The tokenizer data file tokenizers/char/models/33.model is missing "
        "(opened by tokenizers/char/tokenizer.py, relative to the experiment root)."
    }


def test_a_truncated_weights_file_is_found_by_the_quick_doctor_in_one_sentence(pool: WorkerPool, zoo: Path) -> None:
    weights = zoo / "toy_a/trained/run2/model.pth"
    data = weights.read_bytes()
    weights.write_bytes(data[: len(data) // 2])
    sentence = "trained/run2/model.pth is truncated or corrupt: it is not a complete torch.save file."
    quick, _ = check_experiment(discovery.find_experiment(zoo, "toy_a"), quick=True)
    assert [(f.run, f.rule, f.sentence) for f in quick] == [("run2", "weights", sentence)]
    out = run_cli("doctor", "--quick", "--models-dir", str(zoo))
    assert out.returncode == 1 and sentence in out.stdout
    # The full check (the worker loads it): the same one sentence, no torch text.
    client = pool.client(discovery.find_experiment(zoo, "toy_a"))
    with pytest.raises(RequestFailed) as caught:
        client.request("info", run="run2")
    assert str(caught.value) == sentence
    assert client.request("info", run="run1")["vocab_size"] == 36


# -- 10. found by reading the code ---------------------------------------------------------------


def test_evaluation_page_after_an_evaluated_run_is_removed(app_at, zoo: Path) -> None:
    at = _open(app_at, zoo, "pages/evaluation.py")
    at.multiselect(key="ev_runs").set_value(["toy_a/run1", "toy_a/run2"])
    at.number_input(key="ev_docs").set_value(2)
    at.run()
    at.button(key="ev_go").click().run()
    assert not at.exception, at.exception
    shutil.rmtree(zoo / "toy_a/trained/run2")
    for _ in range(2):  # every rerun, not only the first
        at.run()
        assert not at.exception, at.exception
        assert any("toy_a/run2" in e.value and "no run called 'toy_a/run2'" in e.value for e in at.error)


def test_a_code_change_retires_a_worker_only_after_its_requests(zoo: Path) -> None:
    pool = WorkerPool(device="cpu")
    try:
        old = pool.client(discovery.find_experiment(zoo, "toy_a"))
        stream = old.stream("generate", run="run1", prompt_ids=[33], settings={"max_new_tokens": 300, "seed": 1, "stop_at_eos": False})
        next(stream)  # one session is streaming from it
        time.sleep(0.05)
        model = zoo / "toy_a/modules/model.py"
        model.write_text(model.read_text() + "\n# edited\n")
        os.utime(model, ns=(time.time_ns(), time.time_ns() + 10**9))
        new = pool.client(discovery.find_experiment(zoo, "toy_a"))  # another session, new code
        assert new is not old
        rest = list(stream)  # the first session's stream is not cut
        assert rest[-1]["done"] and rest[-1]["n_tokens"] == 300
        deadline = time.monotonic() + 10
        while old.alive and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not old.alive, "the retired worker is stopped once its request is done"
        assert new.request("info", run="run1")["vocab_size"] == 36
    finally:
        pool.close_all()


def test_params_of_an_unknown_run_is_one_sentence(zoo: Path) -> None:
    out = run_cli("params", "--run", "toy_a/nope", "--models-dir", str(zoo))
    assert out.returncode == 2
    assert out.stderr.strip() == "error: no run called 'toy_a/nope' in the models directory"


@pytest.mark.parametrize("key", ["max_seq_len", "context_length", "context_len", "block_size", "seq_len", "sequence_length"])
def test_one_alias_table_for_the_context_length(tmp_path: Path, key: str) -> None:
    from sandbox.zoo import accounting

    models = tmp_path / "models"
    root = toyzoo.make_toy_a(models)
    run_dir = root / "trained/run1"
    cfg = {"vocab_len": 36, "dim": 16, "n_layers": 2, key: 64, "tokenizer": "char"}
    (run_dir / "model_config.json").write_text(__import__("json").dumps(cfg))
    run = discovery.find_run(models, "toy_a/run1")
    assert accounting.shape_of(cfg) == (2, 16, 64)
    per_step, how = accounting.tokens_per_step(run)
    assert per_step == 4 * 2 * 64 and key in how
    assert math.isfinite(accounting.training_flops_per_token(1000, cfg))
