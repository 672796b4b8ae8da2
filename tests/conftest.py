"""Shared fixtures: toy experiments in a temp models folder, and worker pools that clean up."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).parent))

import toyzoo  # noqa: E402

from sandbox.loader import WorkerPool  # noqa: E402


@pytest.fixture(scope="session")
def toy_models(tmp_path_factory) -> Path:
    """A models folder with two healthy toy experiments whose module names collide."""
    models = tmp_path_factory.mktemp("toy_models")
    toyzoo.make_toy_a(models)
    toyzoo.make_toy_b(models)
    return models


@pytest.fixture
def pool():
    """A CPU worker pool, closed after the test (no orphan processes)."""
    p = WorkerPool(max_workers=4, device="cpu", timeout=60)
    yield p
    p.close_all()
