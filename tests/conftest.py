"""Shared fixtures: toy experiments in a temp models folder, and worker pools that clean up."""

from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

import toyzoo  # noqa: E402

from sandbox.worker.pool import WorkerPool  # noqa: E402


@pytest.fixture(scope="session")
def toy_models(tmp_path_factory) -> Path:
    """A models folder with two healthy toy experiments whose module names collide."""
    models = tmp_path_factory.mktemp("toy_models")
    toyzoo.make_toy_a(models)
    toyzoo.make_toy_b(models)
    return models


@pytest.fixture(scope="module")
def module_pool():
    """One CPU pool for a whole test module: each experiment's worker starts once."""
    p = WorkerPool(max_workers=4, device="cpu", timeout=120)
    yield p
    p.close_all()


@pytest.fixture
def pool():
    """A CPU worker pool, closed after the test (no orphan processes)."""
    p = WorkerPool(max_workers=4, device="cpu", timeout=60)
    yield p
    p.close_all()


@pytest.fixture
def app_at(monkeypatch):
    """Factory for an AppTest of the app pointed at a models folder; caches cleared around it.

    `release_app` stops the app's workers and forgets its process-wide state (token
    throttle, arena store), so no worker outlives the test.
    """
    from streamlit.testing.v1 import AppTest

    def make(models: Path, timeout: float = 300) -> AppTest:
        monkeypatch.setenv("SANDBOX_MODELS_DIR", str(models))
        release_app()
        return AppTest.from_file(str(ROOT / "streamlit_app.py"), default_timeout=timeout)

    yield make
    release_app()


def release_app() -> None:
    """Empty the app's caches and stop its process-wide workers, limits and arena store
    (`pages.common.release_shared`: a "clear cache" from a browser no longer does that)."""
    import streamlit as st

    from pages import common

    st.cache_resource.clear()
    st.cache_data.clear()
    common.release_shared()
