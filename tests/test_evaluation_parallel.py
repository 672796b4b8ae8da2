"""`evaluate_parallel` (experiments side by side) on the local pool: the same report as
`evaluate`, callbacks in the caller's thread, cancel and Stop honoured; `evaluate_runs`
chooses it only for a pool spread over a cluster."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pytest
import toyzoo

from sandbox.evaluation import run as ev
from sandbox.evaluation.parallel import evaluate_parallel, evaluate_runs
from sandbox.evaluation.results import EvalSettings, EvaluationCancelled
from sandbox.worker.pool import WorkerPool
from sandbox.zoo.discovery import find_experiment

DOCS = [
    "once upon a time a little fox ran to the river, and the river was cold! " * 3,
    "the cat sat on the mat. the dog ran far away, and nobody saw it again. " * 3,
]


@pytest.fixture
def zoo(tmp_path: Path) -> Path:
    return toyzoo.make_pair(tmp_path / "models")


def test_evaluate_parallel_equals_evaluate_and_calls_back_in_the_callers_thread(zoo: Path, monkeypatch, tmp_path) -> None:
    monkeypatch.setenv("SANDBOX_CACHE_DIR", str(tmp_path / "cache"))
    settings = EvalSettings(kmax=3, batch_size=1)
    run_ids = ["toy_b/cached", "toy_a/run1", "nope/none", "toy_a/run2"]
    threads: set[int] = set()
    pool = WorkerPool(max_workers=2, device="cpu", timeout=60)
    try:
        parallel = evaluate_parallel(
            pool, run_ids, DOCS, settings, models_dir=zoo, use_cache=False,
            progress=lambda *a: threads.add(threading.get_ident()),
        )  # fmt: skip
        serial = ev.evaluate(pool, run_ids, DOCS, settings, models_dir=zoo, use_cache=False)
    finally:
        pool.close_all()
    assert threads == {threading.get_ident()}
    assert [r.run_id for r in parallel.results] == run_ids
    assert parallel.results[2].error["message"] == serial.results[2].error["message"] == "no run called 'nope/none' in the models directory"
    for p, s in zip(parallel.results, serial.results, strict=True):
        if s.ok:
            np.testing.assert_array_equal(p.sums.nll, s.sums.nll)
            np.testing.assert_array_equal(p.sums.hits, s.sums.hits)
    assert parallel.data == serial.data
    assert [r.flags for r in parallel.results] == [r.flags for r in serial.results]


class Stop(Exception):
    """What Streamlit raises inside a callback when the visitor presses Stop."""


def test_evaluate_parallel_stops_on_cancel_and_on_a_callback_that_raises(zoo: Path, monkeypatch, tmp_path) -> None:
    monkeypatch.setenv("SANDBOX_CACHE_DIR", str(tmp_path / "cache"))
    settings = EvalSettings(kmax=3, batch_size=1)
    run_ids = ["toy_a/run1", "toy_b/cached"]
    pool = WorkerPool(max_workers=2, device="cpu", timeout=60)
    calls = []
    try:
        with pytest.raises(EvaluationCancelled):
            evaluate_parallel(pool, run_ids, DOCS, settings, models_dir=zoo, use_cache=False,
                              progress=lambda *a: calls.append(a), cancel=lambda: len(calls) >= 2)  # fmt: skip

        def stop(run_id: str, done: int, total: int) -> None:
            if done:
                raise Stop

        with pytest.raises(Stop):
            evaluate_parallel(pool, run_ids, DOCS, settings, models_dir=zoo, use_cache=False, progress=stop)
        # Both workers were told to stop and are free: the next requests are answered at once.
        for name in ("toy_a", "toy_b"):
            assert pool.client(find_experiment(zoo, name)).request("ping", timeout=10)
    finally:
        pool.close_all()


class NotingPool(WorkerPool):
    """A local pool that notes the threads that ask it for workers."""

    def __init__(self, *args, **kw) -> None:
        super().__init__(*args, **kw)
        self.asked_from: set[str] = set()

    def client(self, experiment):
        self.asked_from.add(threading.current_thread().name)
        return super().client(experiment)


class SpreadPool(NotingPool):
    """... and says its workers are spread over a cluster (as the Ray pool does)."""

    spread = True


def test_evaluate_runs_goes_parallel_only_for_a_spread_pool(zoo: Path, monkeypatch, tmp_path) -> None:
    monkeypatch.setenv("SANDBOX_CACHE_DIR", str(tmp_path / "cache"))
    settings = EvalSettings(kmax=2, batch_size=1)
    run_ids = ["toy_a/run1", "toy_b/cached"]
    spread, local = SpreadPool(max_workers=2, device="cpu", timeout=60), NotingPool(max_workers=2, device="cpu", timeout=60)
    try:
        a = evaluate_runs(spread, run_ids, DOCS, settings, models_dir=zoo, use_cache=False)
        b = evaluate_runs(local, run_ids, DOCS, settings, models_dir=zoo, use_cache=False)
    finally:
        spread.close_all()
        local.close_all()
    assert spread.asked_from and all(name.startswith("evaluate") for name in spread.asked_from)
    assert local.asked_from == {threading.current_thread().name}, "a local pool evaluates in the caller's thread"
    for x, y in zip(a.results, b.results, strict=True):
        np.testing.assert_array_equal(x.sums.nll, y.sums.nll)
