"""Worker processes: isolation of colliding experiments, crashes, hangs, streams, the pool."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import threading
import time

import numpy as np
import pytest
import toyzoo

from sandbox.errors import RequestFailed, WorkerCrashed, WorkerTimeout
from sandbox.settings import PACKAGE_PARENT
from sandbox.worker.client import WorkerClient
from sandbox.worker.pool import WorkerPool
from sandbox.zoo.discovery import discover, find_experiment

TEXT = "the cat sat on the mat. the dog ran far away!"


def _score(client: WorkerClient, run: str) -> tuple[np.ndarray, np.ndarray]:
    ids = client.request("encode", run=run, texts=[TEXT])[0]
    items = client.request("score", run=run, windows=[ids[:-1]], targets=[ids[1:]])
    return np.concatenate([i["nll"].ravel() for i in items]), np.concatenate([i["rank"].ravel() for i in items])


def test_colliding_experiments_give_the_same_outputs_together_as_alone(toy_models):
    alone = {}
    for exp in discover(toy_models):
        p = WorkerPool(device="cpu")
        try:
            alone[exp.name] = _score(p.client(exp), exp.runs[0].name)
        finally:
            p.close_all()
    together = WorkerPool(device="cpu")
    try:
        clients = {exp.name: (together.client(exp), exp.runs[0].name) for exp in discover(toy_models)}
        pids = {c.request("ping")["pid"] for c, _ in clients.values()}
        assert len(pids) == 2, "each experiment must get its own process"
        both = {name: _score(c, run) for name, (c, run) in clients.items()}
    finally:
        together.close_all()
    assert set(both) == {"toy_a", "toy_b"}
    for name in both:
        np.testing.assert_array_equal(both[name][0], alone[name][0])
        np.testing.assert_array_equal(both[name][1], alone[name][1])
    # And the two experiments really are different models (different vocab, different numbers).
    assert not np.array_equal(both["toy_a"][0], both["toy_b"][0])


def test_info_reports_contract_facts(toy_models, pool):
    a = pool.client(find_experiment(toy_models, "toy_a")).request("info", run="run1")
    b = pool.client(find_experiment(toy_models, "toy_b")).request("info", run="cached")
    assert (a["vocab_size"], a["bos_id"], a["pad_id"], a["takes_cache_len"]) == (36, 33, 35, False)
    assert a["device"] == "cpu" and a["config"]["device"] == "cpu"  # saved "mps" overridden
    assert a["config"]["dropout_rate"] == 0.1  # class attribute, absent from the JSON
    assert (b["vocab_size"], b["pad_id"], b["pad_outside_model"], b["max_batch_size"]) == (35, 35, True, 1)
    assert b["takes_cache_len"] is True


def test_worker_that_exits_mid_request_is_reported_and_replaced(tmp_path, pool):
    root = toyzoo.make_toy_a(tmp_path)
    client = pool.client(find_experiment(tmp_path, "toy_a"))
    first_pid = client.request("ping")["pid"]
    ids = client.request("encode", run="run1", texts=["abc"])[0]
    (root / "CRASH").write_text("")
    with pytest.raises(WorkerCrashed, match=r"toy_a exited with status 3"):
        client.request("score", run="run1", windows=[ids[:-1]], targets=[ids[1:]])
    (root / "CRASH").unlink()
    assert client.request("ping")["pid"] != first_pid
    assert client.request("score", run="run1", windows=[ids[:-1]], targets=[ids[1:]])


def test_worker_that_hangs_times_out_and_the_next_request_works(tmp_path, pool):
    root = toyzoo.make_toy_a(tmp_path)
    client = pool.client(find_experiment(tmp_path, "toy_a"))
    ids = client.request("encode", run="run1", texts=["abc"])[0]
    (root / "HANG").write_text("")
    with pytest.raises(WorkerTimeout, match=r"did not answer within 2 s"):
        client.request("score", run="run1", windows=[ids[:-1]], targets=[ids[1:]], timeout=2)
    (root / "HANG").unlink()
    assert client.request("score", run="run1", windows=[ids[:-1]], targets=[ids[1:]])


def test_error_inside_a_request_keeps_the_worker(toy_models, pool):
    client = pool.client(find_experiment(toy_models, "toy_a"))
    pid = client.request("ping")["pid"]
    with pytest.raises(RequestFailed, match="unknown request"):
        client.request("no_such_op")
    with pytest.raises(RequestFailed, match="does not fit max_seq_len"):
        client.request("score", run="run1", windows=[[1] * 100], targets=[[1] * 100])
    with pytest.raises(RequestFailed, match="no run folder trained/nope"):
        client.request("info", run="nope")
    assert client.request("ping")["pid"] == pid


def test_closing_a_stream_cancels_it_and_frees_the_worker(toy_models, pool):
    client = pool.client(find_experiment(toy_models, "toy_a"))
    settings = {"temperature": 1.0, "max_new_tokens": 1000, "seed": 1}
    stream = client.stream("generate", run="run1", prompt_ids=[33], settings=settings)
    first = [next(stream) for _ in range(3)]
    stream.close()
    assert all("id" in e for e in first)
    done = client.request("generate", run="run1", prompt_ids=[33], settings={**settings, "max_new_tokens": 5})
    assert done[-1]["done"] and done[-1]["n_tokens"] == 5


def test_requests_from_several_threads_are_serialized(toy_models, pool):
    client = pool.client(find_experiment(toy_models, "toy_b"))
    results, errors = [], []

    def work() -> None:
        try:
            results.append(_score(client, "cached")[0])
        except Exception as exc:  # noqa: BLE001 — collected and asserted below
            errors.append(exc)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors
    assert len(results) == 4 and all(np.array_equal(r, results[0]) for r in results)


def test_pool_keeps_at_most_n_workers(toy_models):
    pool = WorkerPool(max_workers=1, device="cpu")
    try:
        a, b = (pool.client(e) for e in discover(toy_models))
        a.request("ping")
        b_client = pool.client(find_experiment(toy_models, "toy_b"))
        assert b_client is b
        b.request("ping")
        assert not a.alive, "the least recently used worker is closed when another one starts"
        assert pool.live_workers() == 1
        assert a.request("ping")  # and it comes back on demand
    finally:
        pool.close_all()


def test_greedy_generation_with_kv_cache_equals_recompute(toy_models, pool):
    client = pool.client(find_experiment(toy_models, "toy_b"))
    settings = {"temperature": 0, "max_new_tokens": 120}  # > max_seq_len 48: the window slides
    prompt = client.request("encode", run="cached", texts=["once upon a time"])[0]
    with_cache = client.request("generate", run="cached", prompt_ids=prompt, settings=settings)
    without = client.request("generate", run="cached", prompt_ids=prompt, settings=settings, use_cache=False)
    assert with_cache[-1]["used_cache"] and not without[-1]["used_cache"]
    assert with_cache[-1]["ids"] == without[-1]["ids"]
    assert len(with_cache[-1]["ids"]) == 120


def test_worker_exits_when_its_parent_dies(toy_models):
    script = textwrap.dedent(
        f"""
        import os
        from sandbox.worker.client import WorkerClient
        c = WorkerClient({str(toy_models / 'toy_a')!r}, device="cpu")
        print(c.request("ping")["pid"], flush=True)
        os._exit(0)
        """
    )
    # cwd: the folder holding `sandbox`, so the script imports it installed or not
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120, cwd=PACKAGE_PARENT)
    pid = int(out.stdout.strip())
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.2)
    pytest.fail("the worker outlived its parent")
