"""The Ray backend against a real single-node Ray cluster on 127.0.0.1 (tests/raycluster.py).

One cluster for the module (2 CPUs, no GPU, token authentication on), this process its
driver; stopped at the end, and no process of it may be left. Each actor asks for half a CPU,
so four experiments' actors fit at once. Compared with the local pool on the same toys
(tests/toyzoo.py): the same numbers, generations, errors and sentences.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import raycluster

# Before Ray is imported: it reads its authentication mode once, at import.
os.environ.update(raycluster.DRIVER_ENV)
os.environ.setdefault("RAY_AUTH_TOKEN", raycluster.TOKEN)
ray = pytest.importorskip("ray")
# One worker runs this module's tests in a row under `pytest -n`: the cluster starts once.
pytestmark = pytest.mark.xdist_group("ray_cluster")

import toyzoo  # noqa: E402

from sandbox.errors import WorkerCrashed, WorkerTimeout  # noqa: E402
from sandbox.evaluation import run as ev  # noqa: E402
from sandbox.evaluation.parallel import evaluate_runs  # noqa: E402
from sandbox.evaluation.results import EvalSettings  # noqa: E402
from sandbox.worker.backends import make_pool  # noqa: E402
from sandbox.worker.pool import WorkerPool  # noqa: E402
from sandbox.worker.ray import RayUnavailable  # noqa: E402
from sandbox.worker.ray.client import RayWorkerClient  # noqa: E402
from sandbox.worker.ray.pool import RayWorkerPool  # noqa: E402
from sandbox.zoo.discovery import find_experiment  # noqa: E402

DOCS = [
    "once upon a time a little fox ran to the river, and the river was cold! " * 3,
    "the cat sat on the mat. the dog ran far away, and nobody saw it again. " * 3,
    "what a day it was. a bee, a tree, a sea and a key? yes, all of them. " * 3,
]
SETTINGS = EvalSettings(kmax=5, batch_size=2)
GREEDY = {"temperature": 0, "max_new_tokens": 40, "stop_at_eos": False}


@pytest.fixture(scope="module")
def head():
    """The head node; this process joins it as a driver (on first use) while the module runs."""
    head = raycluster.start_head(num_cpus=2, token=os.environ["RAY_AUTH_TOKEN"])
    undo = raycluster.loopback_driver()
    cpus = os.environ.get("SANDBOX_RAY_CPUS_PER_ACTOR")
    os.environ["SANDBOX_RAY_CPUS_PER_ACTOR"] = "0.5"
    try:
        yield head
    finally:
        ray.shutdown()
        undo()
        if cpus is None:
            os.environ.pop("SANDBOX_RAY_CPUS_PER_ACTOR")
        else:
            os.environ["SANDBOX_RAY_CPUS_PER_ACTOR"] = cpus
        left = raycluster.stop_head(head)
        assert not left, f"Ray processes left after the cluster stopped: {left}"


@pytest.fixture
def cluster(head: raycluster.Head) -> str:
    return head.address


@pytest.fixture(autouse=True)
def _own_cache(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("SANDBOX_CACHE_DIR", str(tmp_path / "cache"))


@pytest.fixture
def zoo(tmp_path: Path) -> Path:
    """toy_a (run1, run2) and toy_b (cached): the same module names, different everything else."""
    return toyzoo.make_pair(tmp_path / "models")


def ray_pool(cluster: str, **kw) -> RayWorkerPool:
    pool = make_pool(cluster, **{"max_workers": 4, "device": "cpu", "timeout": 60, **kw})
    assert isinstance(pool, RayWorkerPool)
    return pool


@pytest.fixture
def rpool(cluster: str):
    pool = ray_pool(cluster)
    yield pool
    pool.close_all()


@pytest.fixture
def lpool():
    pool = WorkerPool(max_workers=4, device="cpu", timeout=60)
    yield pool
    pool.close_all()


def client_of(pool, models: Path, name: str):
    return pool.client(find_experiment(models, name))


def score(client, run: str = "run1", **kw) -> np.ndarray:
    ids = client.request("encode", run=run, texts=[DOCS[0][:40]])[0]
    items = list(client.stream("score", run=run, windows=[ids[:-1]], targets=[ids[1:]], **kw))
    return np.concatenate([item["nll"].ravel() for item in items])


# -- the same answers ------------------------------------------------------------------------------


def test_same_numbers_generations_and_module_isolation_as_the_local_pool(zoo: Path, rpool, lpool) -> None:
    run_ids = ["toy_a/run1", "toy_b/cached", "toy_a/run2"]
    seen: list[tuple[str, int, int]] = []
    # The pages' and the CLI's path: a pool spread over a cluster evaluates its experiments
    # side by side (`evaluate_parallel`), in threads that call back only in the caller's thread.
    assert rpool.spread and not getattr(lpool, "spread", False)
    remote = evaluate_runs(rpool, run_ids, DOCS, SETTINGS, models_dir=zoo, use_cache=False,
                           progress=lambda rid, done, total: seen.append((rid, done, total, threading.get_ident())))  # fmt: skip
    local = ev.evaluate(lpool, run_ids, DOCS, SETTINGS, models_dir=zoo, use_cache=False)
    assert [r.run_id for r in remote.results] == run_ids
    for r, here in zip(remote.results, local.results, strict=True):
        assert r.ok and here.ok, (r.error, here.error)
        np.testing.assert_allclose(r.sums.nll, here.sums.nll, rtol=0, atol=1e-6)
        for field in ("tokens", "bytes"):
            np.testing.assert_array_equal(getattr(r.sums, field), getattr(here.sums, field))
        np.testing.assert_array_equal(r.sums.hits, here.sums.hits)
        np.testing.assert_allclose(r.positions["nll"], here.positions["nll"], rtol=0, atol=1e-6)
        assert (r.windows, r.changed_chars, r.info) == (here.windows, here.changed_chars, here.info)
    # Progress reached the caller for every run, up to its last window.
    assert {(rid, total) for rid, done, total, _ in seen if done == total} == {(r.run_id, r.windows) for r in remote.results}
    assert {thread for *_, thread in seen} == {threading.get_ident()}

    # Two experiments with colliding module names: two actors, each with its own worker and modules.
    a, b = client_of(rpool, zoo, "toy_a"), client_of(rpool, zoo, "toy_b")
    assert isinstance(a, RayWorkerClient) and a.actor._actor_id != b.actor._actor_id
    assert a.pid != b.pid and a.actor_pid != b.actor_pid and a.node == "127.0.0.1"
    assert a.request("info", run="run1")["vocab_size"] == 36 and b.request("info", run="cached")["vocab_size"] == 35
    for name, run in (("toy_a", "run1"), ("toy_b", "cached")):
        here, there = client_of(lpool, zoo, name), client_of(rpool, zoo, name)
        prompt = here.request("encode", run=run, texts=["once upon a time"])[0]
        expected = here.request("generate", run=run, prompt_ids=prompt, settings=GREEDY)
        streamed = list(there.stream("generate", run=run, prompt_ids=prompt, settings=GREEDY))
        assert streamed[-1]["ids"] == expected[-1]["ids"] and len(expected[-1]["ids"]) == 40
        assert [e["text"] for e in streamed[:-1]] == [e["text"] for e in expected[:-1]]


def test_the_cli_and_the_evaluation_page_on_the_cluster_give_the_local_numbers(zoo: Path, cluster: str, capsys, app_at, monkeypatch) -> None:
    import json

    from sandbox import cli

    # `sandbox --ray ADDRESS eval`: the CLI's pool is on the cluster (it says so on stderr), and
    # its numbers are those of the local workers (the same evaluation, run here through the
    # local pool: `evaluate_runs` is what the CLI and the page call).
    argv = ["eval", "--models-dir", str(zoo), "--runs", "toy_a/run1", "toy_b/cached", "--docs", "3",
            "--k", "1", "5", "--device", "cpu", "--json", "--no-cache"]  # fmt: skip
    assert cli.main(["--ray", cluster, *argv]) == 0
    out = capsys.readouterr()
    assert f"workers: Ray cluster at {cluster}" in out.err
    remote = {row["run"]: row for row in json.loads(out.out)["summary"]}
    assert cli.main(argv) == 0
    local = {row["run"]: row for row in json.loads(capsys.readouterr().out)["summary"]}
    assert set(remote) == set(local) == {"toy_a/run1", "toy_b/cached"}
    for run, row in local.items():
        for column in ("top1", "top5", "loss", "bits_per_byte"):
            assert remote[run][column] == pytest.approx(row[column], rel=1e-6, abs=1e-9), (run, column)

    # The Evaluation page with the app started on the cluster: the same numbers, every bar full.
    monkeypatch.setenv("SANDBOX_RAY_ADDRESS", cluster)
    at = app_at(zoo)
    at.run()
    assert f"workers: Ray cluster at {cluster}" in " ".join(str(c.value) for c in at.caption)
    at.switch_page("pages/evaluation.py").run()
    at.multiselect(key="ev_runs").set_value(["toy_a/run1", "toy_b/cached"])
    at.number_input(key="ev_docs").set_value(3)
    at.run()
    at.button(key="ev_go").click().run()
    assert not at.exception, at.exception
    table = next(df.value for df in at.dataframe if "bits_per_byte" in df.value.columns).set_index("run")
    for run, row in local.items():
        assert float(table.loc[run, "loss"]) == pytest.approx(row["loss"], rel=1e-6), run
    bars = [p for p in at.get("progress")]
    assert bars and all(p.proto.value == 100 for p in bars), "every progress bar reached the end"


# -- the same errors -------------------------------------------------------------------------------


def wait_until_dead(actor, within: float = 60.0) -> None:
    """``ray.kill`` takes effect a little later: until then the actor still answers."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        try:
            ray.get(actor.ping.remote(), timeout=within)
        except ray.exceptions.RayActorError:
            return
        time.sleep(0.1)
    raise AssertionError("the killed actor still answers")


def fault_sentences(pool, models: Path, fault: str, **kw) -> tuple[type, str]:
    """With run1 loaded, switch the fault on and load run2: the error class and sentence.

    (The Ray client replaces its actor when the files change, the local worker lives on: a
    run neither has loaded meets the fault at the same request in both.)
    """
    client = client_of(pool, models, "toy_a")
    client.request("info", run="run1")
    (models / "toy_a" / fault).write_text("")
    try:
        with pytest.raises((WorkerCrashed, WorkerTimeout)) as caught:
            client.request("info", run="run2", **kw)
    finally:
        (models / "toy_a" / fault).unlink()
    return type(caught.value), str(caught.value)


@pytest.mark.slow  # several actor starts each; `-m 'not slow'` leaves it out
def test_crash_and_hang_give_the_local_sentences_and_a_fresh_actor(zoo: Path, rpool, lpool) -> None:
    client = client_of(rpool, zoo, "toy_a")
    for fault, kw in (("CRASH", {}), ("HANG", {"timeout": 3})):
        client.request("ping")
        starts = client.starts
        remote = fault_sentences(rpool, zoo, fault, **kw)
        assert remote == fault_sentences(lpool, zoo, fault, **kw)
        assert not client.alive, "a crashed or timed-out worker's actor is stopped"
        # Two more actors: the one started for the changed files (the fault), then a fresh one.
        assert score(client).size and client.starts == starts + 2
    assert remote[0] is WorkerTimeout and "did not answer within 3 s while answering 'info'" in remote[1]


def test_a_killed_actor_is_reported_and_replaced(zoo: Path, rpool) -> None:
    client = client_of(rpool, zoo, "toy_a")
    (zoo / "toy_a/HANG").write_text("")  # the request below waits in the worker until the kill

    def kill_when_loading() -> None:
        deadline = time.monotonic() + 120
        while client.pid is None and time.monotonic() < deadline:
            time.sleep(0.1)
        time.sleep(1.0)
        ray.kill(client.actor)

    killer = threading.Thread(target=kill_when_loading)
    killer.start()
    with pytest.raises(WorkerCrashed, match=r"^The worker of toy_a stopped while answering 'info': its Ray actor was killed\.$") as caught:
        client.request("info", run="run1")
    killer.join()
    assert caught.value.hint == "The next request starts a fresh worker." and not client.alive
    (zoo / "toy_a/HANG").unlink()
    assert client.request("info", run="run1")["vocab_size"] == 36 and client.starts == 2
    # Killed between requests: replaced before the next one, which never sees it (the check is
    # made before a request that follows a pause; here, before every request).
    client.ping_after_idle = 0.0
    ray.kill(client.actor)
    wait_until_dead(client.actor)
    assert client.request("info", run="run1")["vocab_size"] == 36 and client.starts == 3


@pytest.mark.slow  # several actor starts each; `-m 'not slow'` leaves it out
def test_a_hung_actor_is_killed_and_replaced(zoo: Path, rpool) -> None:
    client = client_of(rpool, zoo, "toy_a")
    client.grace, client.ping_timeout, client.ping_after_idle = 2.0, 2.0, 1e9  # no check before requests
    client.request("info", run="run1")
    os.kill(client.actor_pid, signal.SIGSTOP)  # the actor stops answering (a node lost, a process stuck)
    t0 = time.monotonic()
    with pytest.raises(WorkerTimeout, match=r"^The worker of toy_a did not answer within 4 s while answering 'info'; it was stopped\.$"):
        client.request("info", run="run2", timeout=2)
    assert time.monotonic() - t0 < 30 and not client.alive
    assert client.request("info", run="run1")["vocab_size"] == 36 and client.starts == 2
    client.ping_after_idle = 0.0  # the check before every request
    os.kill(client.actor_pid, signal.SIGSTOP)  # stopped between requests: the check finds out
    assert client.request("info", run="run1")["vocab_size"] == 36 and client.starts == 3


# -- files -----------------------------------------------------------------------------------------


def test_changed_weights_are_sent_again_and_used(zoo: Path, rpool, lpool) -> None:
    client = client_of(rpool, zoo, "toy_a")
    before = score(client)
    shutil.copy(zoo / "toy_a/trained/run2/model.pth", zoo / "toy_a/trained/run1/model.pth")
    after = score(client)
    assert client.starts == 2, "new weights: a new actor with the new files"
    assert not np.allclose(before, after)
    np.testing.assert_allclose(after, score(client_of(lpool, zoo, "toy_a")), rtol=0, atol=1e-6)
    np.testing.assert_allclose(after, score(client, run="run2"), rtol=0, atol=1e-6)


def test_a_copy_that_differs_from_the_models_directory_is_refused(zoo: Path, rpool, monkeypatch) -> None:
    from sandbox.worker.ray import client as rc

    client = client_of(rpool, zoo, "toy_a")
    monkeypatch.setattr(rc, "content_fingerprint", lambda m: "0" * 64)  # what the app expects
    with pytest.raises(RayUnavailable, match=r"The copy of toy_a on the Ray cluster differs from the models directory"):
        client.request("info", run="run1")
    assert not client.alive and client.starts == 1
    monkeypatch.undo()
    assert client.request("info", run="run1")["vocab_size"] == 36


def test_too_large_an_experiment_is_not_sent(zoo: Path, cluster: str, monkeypatch) -> None:
    monkeypatch.setenv("SANDBOX_RAY_MAX_UPLOAD_MB", "0.001")
    pool = ray_pool(cluster)
    try:
        with pytest.raises(RayUnavailable, match=r"toy_a is .* MB \(trained/ .* MB.*\); at most 0\.001 MB are sent") as caught:
            client_of(pool, zoo, "toy_a").request("ping")
        assert "SANDBOX_RAY_SHARED_FS=1" in caught.value.hint
    finally:
        pool.close_all()


def test_a_shared_filesystem_is_used_by_path(zoo: Path, cluster: str, monkeypatch, rpool) -> None:
    monkeypatch.setenv("SANDBOX_RAY_SHARED_FS", "1")
    pool = ray_pool(cluster)
    try:
        client = client_of(pool, zoo, "toy_a")
        assert client.request("ping")["root"] == str((zoo / "toy_a").resolve())
        np.testing.assert_allclose(score(client), score(client_of(rpool, zoo, "toy_a")), rtol=0, atol=1e-6)
    finally:
        pool.close_all()


# -- streams and the pool --------------------------------------------------------------------------


def test_closing_a_stream_cancels_it_in_the_actor(toy_models: Path, rpool) -> None:
    client = client_of(rpool, toy_models, "toy_a")
    settings = {"temperature": 1.0, "max_new_tokens": 1000, "seed": 1}
    stream = client.stream("generate", run="run1", prompt_ids=[33], settings=settings)
    first = [next(stream) for _ in range(3)]
    stream.close()
    assert all("id" in e for e in first)
    assert ray.get(client.actor.streams.remote()) == 0, "the actor's worker is no longer generating"
    done = client.request("generate", run="run1", prompt_ids=[33], settings={**settings, "max_new_tokens": 5})
    assert done[-1]["done"] and done[-1]["n_tokens"] == 5 and client.starts == 1


@pytest.mark.slow  # several actor starts each; `-m 'not slow'` leaves it out
def test_the_pool_keeps_at_most_n_actors(toy_models: Path, cluster: str) -> None:
    pool = ray_pool(cluster, max_workers=1)
    try:
        a, b = client_of(pool, toy_models, "toy_a"), client_of(pool, toy_models, "toy_b")
        a.request("ping")
        b.request("ping")
        assert not a.alive, "the least recently used actor is stopped when another one starts"
        assert pool.live_workers() == 1
        assert a.request("ping") and a.starts == 2
    finally:
        pool.close_all()


def test_a_wrong_token_is_refused_in_one_sentence_that_says_where_the_token_goes(cluster: str) -> None:
    tests = Path(__file__).parent
    script = (
        f"import sys; sys.path[:0] = [{str(tests.parent)!r}, {str(tests)!r}]\n"
        "import ray, raycluster\n"
        "raycluster.loopback_driver()\n"
        "from sandbox.worker.ray import RayUnavailable\n"
        "from sandbox.worker.ray.connect import connect\n"
        "try:\n"
        f"    connect({cluster!r})\n"
        "except RayUnavailable as exc:\n"
        "    print('SENTENCE', exc)\n"
        "    print('HINT', exc.hint)\n"
    )
    # Another token than the cluster's; Ray's own retries kept short (they are not what is tested).
    env = {**os.environ, "RAY_AUTH_TOKEN": "0" * 32, "RAY_gcs_server_port_wait_time_s": "2"}
    out = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=240)
    lines = dict(line.split(" ", 1) for line in out.stdout.splitlines() if line.startswith(("SENTENCE", "HINT")))
    assert lines.get("SENTENCE", "").startswith(f"The app could not join the Ray cluster at {cluster} ("), out.stdout + out.stderr[-2000:]
    assert "RAY_AUTH_TOKEN" in lines["HINT"] and "ray get-auth-token" in lines["HINT"]


def test_an_actor_no_node_can_take_times_out_with_a_sentence(toy_models: Path, cluster: str, monkeypatch) -> None:
    monkeypatch.setenv("SANDBOX_RAY_CPUS_PER_ACTOR", "64")  # the cluster has 2
    pool = ray_pool(cluster, start_timeout=2)
    try:
        client = client_of(pool, toy_models, "toy_a")
        client.grace = 1.0
        with pytest.raises(WorkerTimeout, match=r"^The worker of toy_a did not answer within 3 s while starting the worker; it was stopped\.$") as caught:
            client.request("ping")
        assert caught.value.hint.startswith("No node of the Ray cluster may have had 64 CPU free for it")
        assert not client.alive and pool.live_workers() == 0
    finally:
        pool.close_all()


def test_nothing_listens_or_connects_beyond_loopback(head: raycluster.Head, toy_models: Path, rpool) -> None:
    assert client_of(rpool, toy_models, "toy_b").request("info", run="cached")
    pids = {int(line.split(":", 1)[0]) for line in raycluster.processes_of(str(head.temp))} | {os.getpid()}
    sockets = subprocess.run(["ss", "-tuanpH"], capture_output=True, text=True, check=True).stdout.splitlines()
    ours = [line for line in sockets if any(f"pid={pid}," in line for pid in pids)]
    assert ours, "the cluster's sockets were found"
    for line in ours:
        state, local, peer = line.split()[1], *line.split()[4:6]
        # A listening socket's peer column is a wildcard ("0.0.0.0:*"): only its own address counts.
        for address in (local,) if state == "LISTEN" else (local, peer):
            host = address.rsplit(":", 1)[0].strip("[]")
            assert host.startswith(("127.", "::ffff:127.")) or host in ("::1", "*", "0.0.0.0%lo"), line
