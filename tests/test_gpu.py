"""GPU paths: the same numbers on cuda as on cpu, and autocast close to them (skip without a GPU)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from sandbox.worker.device import pick_device
from sandbox.worker.pool import WorkerPool
from sandbox.zoo.discovery import find_experiment

needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
TEXT = "the cat sat on the mat. the dog ran far away!"


def test_device_override_and_validation(monkeypatch):
    monkeypatch.setenv("SANDBOX_DEVICE", "cpu")
    assert pick_device() == "cpu"
    assert pick_device("cuda:1") == "cuda:1"
    with pytest.raises(ValueError, match="unknown device"):
        pick_device("tpu")


def _score(pool: WorkerPool, models, name: str, run: str, **kw) -> tuple[np.ndarray, np.ndarray]:
    client = pool.client(find_experiment(models, name))
    ids = client.request("encode", run=run, texts=[TEXT])[0]
    items = client.request("score", run=run, windows=[ids[:-1]], targets=[ids[1:]], **kw)
    return np.concatenate([i["nll"].ravel() for i in items]), np.concatenate([i["rank"].ravel() for i in items])


@needs_cuda
@pytest.mark.parametrize(("name", "run"), [("toy_a", "run1"), ("toy_b", "cached")])
def test_cuda_scores_match_cpu(toy_models, name, run):
    cpu, gpu = WorkerPool(device="cpu"), WorkerPool(device="cuda")
    try:
        assert gpu.client(find_experiment(toy_models, name)).request("info", run=run)["device"] == "cuda"
        nll_cpu, rank_cpu = _score(cpu, toy_models, name, run)
        nll_gpu, rank_gpu = _score(gpu, toy_models, name, run)
        np.testing.assert_allclose(nll_gpu, nll_cpu, rtol=1e-4, atol=1e-4)
        assert (rank_gpu == rank_cpu).mean() > 0.95  # near-ties may order differently
        nll_bf16, _ = _score(gpu, toy_models, name, run, autocast="bf16")
        np.testing.assert_allclose(nll_bf16.mean(), nll_cpu.mean(), rtol=0.05)
    finally:
        cpu.close_all()
        gpu.close_all()
