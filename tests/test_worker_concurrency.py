"""Many sessions on one worker (issue 15): batched numbers equal unbatched ones, sessions take
turns, a cancel frees its place at once, queue places are told, memory per session is
bounded, and each worker's thread share follows the number of live workers.

The scheduler is driven in-process (a toy causal model, a recording pipe) where the order of
its turns matters; real worker processes check the same through the client.
"""

from __future__ import annotations

import threading
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from torch import nn

from sandbox.playground.settings import SamplingSettings
from sandbox.settings import PROJECT_ROOT
from sandbox.worker import scheduler as sched_mod
from sandbox.worker.generation import generate
from sandbox.worker.limiter import WorkerLimiter, thread_budget
from sandbox.worker.loaded import LoadedRun
from sandbox.worker.pool import WorkerPool
from sandbox.worker.scheduler import RoundRobin, Scheduler
from sandbox.worker.scoring import score_windows
from sandbox.zoo.discovery import discover, find_experiment

VOCAB, MAX_LEN = 12, 24


class Letters:
    bos_id, eos_id, pad_id = 10, 11, 12

    def encode(self, text: str, bos: bool = True, eos: bool = False, pad=None) -> list[int]:
        return ([10] if bos else []) + [ord(c) - ord("a") for c in text]

    def decode(self, ids: list[int]) -> str:
        return "".join(chr(ord("a") + i) for i in ids if 0 <= i < 10)


class CausalMix(nn.Module):
    """A small causal model that takes batches: each position sees itself and the ones before
    (a running mean of embeddings through a non-linear head). Records the batch of each call."""

    def __init__(self) -> None:
        super().__init__()
        g = torch.Generator().manual_seed(0)
        self.emb = nn.Parameter(torch.randn(VOCAB, 16, generator=g))
        self.head = nn.Parameter(torch.randn(16, VOCAB, generator=g) * 3)
        self.batches: list[int] = []

    def forward(self, input_ids: torch.Tensor):
        self.batches.append(int(input_ids.shape[0]))
        x = self.emb[input_ids]
        count = torch.arange(1, input_ids.shape[1] + 1).view(1, -1, 1)
        return torch.tanh(x.cumsum(1) / count) @ self.head, None


def toy_run(max_batch_size: int | None = None) -> LoadedRun:
    return LoadedRun(
        name="toy", model=CausalMix(), cfg=SimpleNamespace(max_seq_len=MAX_LEN, max_batch_size=max_batch_size),
        tokenizer=Letters(), device="cpu", stamp=(0, 0), takes_cache_len=False, embedding_rows=VOCAB,
    )  # fmt: skip


class Pipe:
    """The scheduler's side of the pipe to the app: records what it sends."""

    def __init__(self) -> None:
        self.sent: list[dict] = []

    def send(self, msg: dict) -> None:
        self.sent.append(msg)

    def for_id(self, rid: int) -> list[dict]:
        return [m for m in self.sent if m.get("id") == rid]


def make_scheduler(run: LoadedRun, calls: dict | None = None) -> tuple[Scheduler, Pipe]:
    pipe = Pipe()
    host = SimpleNamespace(root=Path("."), load=lambda name: run)
    return Scheduler(None, pipe, host, calls or {}), pipe


def drive(s: Scheduler) -> None:
    """Give turns until every request has ended."""
    with torch.inference_mode():
        while s.tasks:
            s._turn(s.rr.next())


def request(rid: int, op: str, session: str, **args) -> dict:
    return {"id": rid, "op": op, "session": session, "args": args}


def windows_of(seed: int, n: int, length: int) -> tuple[list[list[int]], list[list[int]]]:
    rng = np.random.default_rng(seed)
    ids = rng.integers(0, 10, size=(n, length + 1)).tolist()
    return [row[:-1] for row in ids], [row[1:] for row in ids]


def test_windows_of_different_requests_share_forwards_and_score_the_same() -> None:
    run = toy_run(max_batch_size=8)
    s, pipe = make_scheduler(run)
    long_a, targets_a = windows_of(1, 5, 20)
    short_a, short_targets_a = windows_of(2, 2, 7)
    wa, ta = long_a + short_a, targets_a + short_targets_a
    wb, tb = windows_of(3, 6, 20)
    s._handle(request(1, "score", "alice", run="toy", windows=wa, targets=ta))
    s._handle(request(2, "score", "bob", run="toy", windows=wb, targets=tb))
    drive(s)
    # 11 windows of length 20 from two requests: 8 in one forward, then 3, then the 2 short.
    assert run.model.batches == [8, 3, 2]
    for rid, windows, targets in ((1, wa, ta), (2, wb, tb)):
        got = {i: row for m in pipe.for_id(rid) if "items" in m for it in m["items"] for i, row in zip(it["index"], it["nll"], strict=True)}
        assert sorted(got) == list(range(len(windows)))
        # Alone, one window per forward: the reference numbers.
        for item in score_windows(toy_run(), windows, targets, batch_size=1):
            np.testing.assert_allclose(got[item["index"][0]], item["nll"][0], atol=1e-5, rtol=0)
        assert pipe.for_id(rid)[-1] == {"id": rid, "ok": True, "result": None}


def test_windows_of_similar_lengths_share_a_forward_right_aligned() -> None:
    """Lengths 20, 18, 16 (two requests) in one forward; 12 (< 3/4 of 20) in the next."""
    run = toy_run(max_batch_size=8)
    s, pipe = make_scheduler(run)
    w20, t20 = windows_of(4, 1, 20)
    w18, t18 = windows_of(5, 1, 18)
    w16, t16 = windows_of(6, 2, 16)
    w12, t12 = windows_of(7, 1, 12)
    s._handle(request(1, "score", "alice", run="toy", windows=w20 + w12 + w16[:1], targets=t20 + t12 + t16[:1], top_n_positions=30, top_n=3))
    s._handle(request(2, "score", "bob", run="toy", windows=w18 + w16[1:], targets=t18 + t16[1:], top_n_positions=30, top_n=3))
    drive(s)
    assert run.model.batches == [4, 1]
    for rid, windows, targets in ((1, w20 + w12 + w16[:1], t20 + t12 + t16[:1]), (2, w18 + w16[1:], t18 + t16[1:])):
        items = [it for m in pipe.for_id(rid) if "items" in m for it in m["items"]]
        got = {i: (it["nll"][r], it["rank"][r], it["top_ids"][r]) for it in items for r, i in enumerate(it["index"])}
        for ref in score_windows(toy_run(), windows, targets, batch_size=1, top_n_positions=30, top_n=3):
            nll, rank, top = got[ref["index"][0]]
            assert nll.shape == ref["nll"][0].shape and top.shape == ref["top_ids"][0].shape  # filler cut off
            np.testing.assert_allclose(nll, ref["nll"][0], atol=1e-5, rtol=0)
            np.testing.assert_array_equal(rank, ref["rank"][0])


def test_batches_respect_max_batch_size_one() -> None:
    run = toy_run(max_batch_size=1)
    s, _ = make_scheduler(run)
    for rid, session in ((1, "a"), (2, "b")):
        w, t = windows_of(rid, 3, 10)
        s._handle(request(rid, "score", session, run="toy", windows=w, targets=t))
    drive(s)
    assert set(run.model.batches) == {1}


def tokens_of(pipe: Pipe, rid: int) -> list[int]:
    return [e["id"] for m in pipe.for_id(rid) if "items" in m for e in m["items"] if "id" in e and not e.get("done")]


@pytest.mark.parametrize("kw", [{"temperature": 0}, {"temperature": 1.0, "top_k": 5}])
def test_streams_of_one_run_advance_together_and_pick_the_same_tokens(kw: dict) -> None:
    run = toy_run()
    prompts = {1: [10, 1, 2], 2: [10, 4, 4, 4, 4, 4, 5], 3: [10]}
    settings = {rid: SamplingSettings(max_new_tokens=30, seed=rid, stop_at_eos=False, **kw) for rid in prompts}
    s, pipe = make_scheduler(run)
    for rid, prompt in prompts.items():
        s._handle(request(rid, "generate", f"session{rid}", run="toy", prompt_ids=prompt, settings=settings[rid].as_dict()))
    drive(s)
    assert max(run.model.batches) == 3, "the three streams shared forwards"
    for rid, prompt in prompts.items():
        alone = [e["id"] for e in generate(toy_run(), prompt, settings[rid]) if not e.get("done")]
        assert tokens_of(pipe, rid) == alone  # each with its own settings and seed
        done = [e for m in pipe.for_id(rid) if "items" in m for e in m["items"] if e.get("done")]
        assert done[-1]["ids"] == alone and done[-1]["reason"] == "length"


def test_sessions_take_turns() -> None:
    order: list[str] = []
    s, _ = make_scheduler(toy_run(), calls={"note": lambda name: order.append(name)})
    for rid, (session, name) in enumerate([("A", "A1"), ("A", "A2"), ("A", "A3"), ("B", "B1"), ("C", "C1"), ("C", "C2")], 1):
        s._handle(request(rid, "note", session, name=name))
    drive(s)
    assert order == ["A1", "B1", "C1", "A2", "C2", "A3"]


def test_round_robin_gives_every_item_a_turn_each_round() -> None:
    rr = RoundRobin()
    for session, item in [("A", "a1"), ("A", "a2"), ("B", "b1")]:
        rr.add(session, item)
    assert [rr.next() for _ in range(4)] == ["a1", "b1", "a2", "b1"]
    rr.remove("B", "b1")
    assert [rr.next() for _ in range(2)] == ["a1", "a2"] and len(rr) == 2


def test_a_request_behind_others_is_told_its_place_and_its_first_turn() -> None:
    s, pipe = make_scheduler(toy_run(), calls={"ping": lambda: "pong"})
    for rid in (1, 2, 3):
        s._handle(request(rid, "ping", f"s{rid}"))
    assert pipe.for_id(1) == []
    assert pipe.for_id(3) == [{"id": 3, "queue": 2}]
    drive(s)
    assert pipe.for_id(3) == [{"id": 3, "queue": 2}, {"id": 3, "queue": 0}, {"id": 3, "ok": True, "result": "pong"}]


def test_cancel_frees_the_place_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sched_mod, "MAX_SESSION_REQUESTS", 2)
    run = toy_run()
    s, pipe = make_scheduler(run)
    settings = SamplingSettings(max_new_tokens=500, seed=1, stop_at_eos=False).as_dict()
    for rid in (1, 2, 3):
        s._handle(request(rid, "generate", "alice", run="toy", prompt_ids=[10], settings=settings))
    refused = pipe.for_id(3)[-1]
    assert refused["ok"] is False and "at most that many" in refused["error"]["sentence"]
    with torch.inference_mode():
        for _ in range(4):
            s._turn(s.rr.next())
    s._handle({"op": "cancel", "id": 1})
    assert pipe.for_id(1)[-1] == {"id": 1, "ok": True, "result": None}
    assert 1 not in s.tasks and len(s.rr) == 1 and s.rr.count("alice") == 1
    s._handle(request(4, "generate", "alice", run="toy", prompt_ids=[10], settings=settings))
    assert pipe.for_id(4)[-1] == {"id": 4, "queue": 1}  # admitted in the place freed
    s._handle({"op": "cancel", "id": 2})
    s._handle({"op": "cancel", "id": 4})
    assert not s.tasks and len(s.rr) == 0


def test_a_session_cannot_hold_more_windows_than_the_cap(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sched_mod, "MAX_SESSION_WINDOWS", 10)
    s, pipe = make_scheduler(toy_run())
    w, t = windows_of(0, 8, 5)
    s._handle(request(1, "score", "alice", run="toy", windows=w, targets=t))
    s._handle(request(2, "score", "alice", run="toy", windows=w, targets=t))
    s._handle(request(3, "score", "bob", run="toy", windows=w, targets=t))
    assert "at most 10 are held per session" in pipe.for_id(2)[-1]["error"]["sentence"]
    assert set(s.tasks) == {1, 3}


# -- real worker processes ---------------------------------------------------------------------


def test_thread_budget_is_the_cores_shared_by_live_workers() -> None:
    assert [thread_budget(n, cores=4) for n in (1, 2, 3, 4, 5)] == [4, 2, 1, 1, 1]


def test_thread_share_is_rebalanced_when_a_worker_stops(toy_models: Path) -> None:
    limiter = WorkerLimiter(4, cores=4)
    pool = WorkerPool(device="cpu", limiter=limiter)
    try:
        a, b = (pool.client(e) for e in discover(toy_models))
        assert a.request("ping")["threads"] == 4  # alone: every core
        assert b.request("ping")["threads"] == 2
        assert a.request("ping")["threads"] == 2  # told when b started
        b.close()
        assert a.request("ping")["threads"] == 4  # and when b stopped
    finally:
        pool.close_all()


def test_concurrent_sessions_on_one_worker_get_their_own_right_answers(toy_models: Path, pool: WorkerPool) -> None:
    client = pool.client(find_experiment(toy_models, "toy_a"))
    texts = ["the cat sat on the mat", "a dog ran far away and back again", "once upon a time"]
    ids = client.request("encode", run="run1", texts=texts)

    def score(i: int, session: str | None) -> np.ndarray:
        items = client.request("score", run="run1", windows=[ids[i][:-1]], targets=[ids[i][1:]], session=session)
        return np.concatenate([it["nll"].ravel() for it in items])

    alone = [score(i, None) for i in range(len(texts))]
    got: dict[int, np.ndarray] = {}
    threads = [threading.Thread(target=lambda i=i: got.update({i: score(i, f"s{i}")})) for i in range(3) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    for i in range(3):
        np.testing.assert_allclose(got[i], alone[i], atol=1e-5, rtol=0)
    assert client.in_flight == 0 and client.waiting == 0


def test_greedy_generation_of_a_shipped_run_is_the_same_batched_or_alone() -> None:
    """template/gpt2_atto has no KV cache: concurrent streams share forwards (right-aligned)."""
    models = PROJECT_ROOT / "models"
    pool = WorkerPool(device="cpu")
    try:
        client = pool.client(find_experiment(models, "template"))
        prompts = client.request("encode", run="gpt2_atto", texts=["Once upon a time", "The little fox ran to the river and"])
        settings = {"temperature": 0, "max_new_tokens": 40, "stop_at_eos": False}

        def run(prompt: list[int], session: str | None = None) -> list[int]:
            return client.request("generate", run="gpt2_atto", prompt_ids=prompt, settings=settings, session=session)[-1]["ids"]

        alone = [run(p) for p in prompts]
        together: dict[int, list[int]] = {}
        threads = [threading.Thread(target=lambda i=i: together.update({i: run(prompts[i], f"s{i}")})) for i in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(120)
        assert together == {0: alone[0], 1: alone[1]}
    finally:
        pool.close_all()


def test_a_busy_experiment_gets_a_replica_while_a_slot_is_free(toy_models: Path) -> None:
    """A KV-cache run serves one sequence at a time: a second session gets a second worker."""
    exp = find_experiment(toy_models, "toy_b")
    settings = {"max_new_tokens": 300, "seed": 1, "stop_at_eos": False}
    for cap, expect_replica in ((3, True), (1, False)):
        pool = WorkerPool(device="cpu", limiter=WorkerLimiter(cap), max_replicas=2)
        try:
            first = pool.client(exp, session="alice")
            stream = first.stream("generate", run="cached", prompt_ids=[1], settings=settings, session="alice")
            next(stream)  # alice's generation is in flight
            second = pool.client(exp, session="bob")
            assert (second is not first) == expect_replica
            assert second.request("ping", session="bob")["pid"] != first.pid or not expect_replica
            assert pool.busy(exp) == 0 if expect_replica else pool.busy(exp) == 1
            stream.close()
            assert pool.live_workers() <= cap
        finally:
            pool.close_all()
