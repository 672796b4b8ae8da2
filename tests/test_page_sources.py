"""AppTest: logs-only runs on the Loss curves page, and left out in one sentence where a model is needed."""

from __future__ import annotations

from pathlib import Path

import pytest
import sourcezoo
import toyzoo

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def models(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("page_sources")
    toyzoo.make_toy_a(folder)
    sourcezoo.make_tensorboard(folder)
    sourcezoo.make_lightning(folder)
    return folder


@pytest.fixture
def page(monkeypatch, models):
    import streamlit as st
    from streamlit.testing.v1 import AppTest

    from sandbox.zoo import logread

    def make(path: str):
        monkeypatch.setenv("SANDBOX_MODELS_DIR", str(models))
        monkeypatch.delenv("SANDBOX_TOKEN", raising=False)
        monkeypatch.setenv("SANDBOX_LOG_WATCH", "poll")
        st.cache_resource.clear()
        st.cache_data.clear()
        logread.clear_cache()
        at = AppTest.from_file(str(ROOT / "streamlit_app.py"), default_timeout=120)
        at.run()
        at.switch_page(path).run()
        return at

    yield make
    st.cache_resource.clear()
    st.cache_data.clear()


LOGS_ONLY = ["pl_lab/version_0", "tb_lab/runA", "tb_lab/runB"]


def test_loss_curves_offer_logs_only_runs(page) -> None:
    at = page("pages/loss_curves.py")
    assert not at.exception
    offered = at.multiselect[0].options
    assert set(LOGS_ONLY) <= set(offered)
    assert len(at.get("vega_lite_chart")) == 1


@pytest.mark.parametrize("path", ["pages/evaluation.py", "pages/playground.py"])
def test_pages_that_need_a_model_leave_logs_only_runs_out_in_one_sentence(page, path) -> None:
    at = page(path)
    assert not at.exception
    captions = [c.value for c in at.caption]
    said = [c for c in captions if "training logs only" in c]
    assert len(said) == 1 and said[0].startswith(f"{len(LOGS_ONLY)} runs with training logs only")
    offered = {o for m in at.multiselect for o in m.options}
    assert offered and not offered & set(LOGS_ONLY)


@pytest.mark.parametrize("path", ["pages/arena.py", "pages/compare.py"])
def test_arena_and_compare_say_so_too(page, path) -> None:
    at = page(path)
    assert not at.exception
    said = [c.value for c in at.caption if "training logs only" in c.value]
    assert len(said) == 1
    # one run with a model is left: fewer than the two these pages need
    assert any("at least two" in i.value for i in at.info)


def test_models_page_lists_logs_only_runs_and_counts_or_compares_only_loadable_ones(page) -> None:
    at = page("pages/models.py")
    assert not at.exception
    table = at.dataframe[0].value
    listed = {f"{e}/{r}" for e, r in zip(table["experiment"], table["run"], strict=True)}
    assert set(LOGS_ONLY) <= listed
    uncounted = [c.value for c in at.caption if c.value.startswith("Not counted yet")]
    assert uncounted and not any(rid in text for text in uncounted for rid in LOGS_ONLY)  # nothing to count
    assert any("Two loadable runs are needed" in i.value for i in at.info)  # toy_a/run1 is the only one
