"""The overview page says where the workers run: local processes, or a Ray cluster (an address,
never a path); a Ray cluster asked for without the ray package is one warning, and the app
goes on with local workers. No cluster is needed here (nothing connects before a worker is)."""

from __future__ import annotations

import sys

import pytest

from sandbox.worker.ray import INSTALL_SENTENCE


def _captions(at) -> str:
    return "\n".join(str(c.value) for c in at.caption)


def test_the_overview_says_the_workers_are_local_by_default(app_at, toy_models, monkeypatch):
    monkeypatch.delenv("SANDBOX_RAY_ADDRESS", raising=False)
    at = app_at(toy_models).run()
    assert not at.exception
    assert "workers: local processes on the app's machine" in _captions(at)
    assert not at.warning


def test_the_overview_names_the_ray_cluster_and_each_node_picks_its_device(app_at, toy_models, monkeypatch):
    pytest.importorskip("ray")
    monkeypatch.setenv("SANDBOX_RAY_ADDRESS", "10.9.9.9:6379")
    monkeypatch.delenv("SANDBOX_DEVICE", raising=False)
    at = app_at(toy_models).run()
    assert not at.exception
    assert "workers: Ray cluster at 10.9.9.9:6379" in _captions(at)
    assert {m.label: m.value for m in at.metric}["Device"] == "auto"
    assert not at.warning


def test_ray_asked_for_without_the_package_is_one_warning_and_local_workers(app_at, toy_models, monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # as if not installed: import ray raises ImportError
    monkeypatch.setenv("SANDBOX_RAY_ADDRESS", "auto")
    at = app_at(toy_models).run()
    assert not at.exception
    assert [w.value for w in at.warning] == [f"{INSTALL_SENTENCE} Until then the workers run as local processes."]
    assert "workers: local processes on the app's machine" in _captions(at)
    # The pages still work: a run loads in a local worker.
    at.switch_page("pages/models.py").run()
    next(b for b in at.button if b.label == "Load every run").click().run()
    assert not at.exception
    assert set(at.dataframe[0].value["status"]) == {"ok"}
