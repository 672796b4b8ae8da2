"""The LAN access token: off by default, on with SANDBOX_TOKEN, checked before any page."""

from __future__ import annotations

from sandbox.auth import expected_token, token_matches


def test_token_is_off_unless_set(monkeypatch):
    monkeypatch.delenv("SANDBOX_TOKEN", raising=False)
    assert expected_token() is None
    monkeypatch.setenv("SANDBOX_TOKEN", "")
    assert expected_token() is None
    monkeypatch.setenv("SANDBOX_TOKEN", "s3cret")
    assert expected_token() == "s3cret"


def test_token_comparison():
    assert token_matches("s3cret", "s3cret")
    assert not token_matches("s3cre", "s3cret")
    assert not token_matches("", "s3cret")
    assert token_matches("héllo", "héllo")


def test_app_asks_for_the_token_before_any_page(app_at, toy_models, monkeypatch):
    monkeypatch.setenv("SANDBOX_TOKEN", "s3cret")
    at = app_at(toy_models).run()
    assert not at.exception
    assert not at.metric, "no page content before the token is given"
    at.text_input(key="access_token").input("wrong").run()
    assert any("does not match" in e.value for e in at.error)
    assert not at.metric
    at.text_input(key="access_token").input("s3cret").run()
    assert not at.exception
    assert {m.label for m in at.metric} >= {"Experiments", "Trained runs"}


def test_app_is_open_without_a_token(app_at, toy_models, monkeypatch):
    monkeypatch.delenv("SANDBOX_TOKEN", raising=False)
    at = app_at(toy_models).run()
    assert not at.exception and at.metric


def test_a_page_run_on_its_own_still_asks_for_the_token(toy_models, monkeypatch):
    """Right after a server start Streamlit may run a pages/ file without the entry script."""
    import streamlit as st
    from conftest import ROOT
    from streamlit.testing.v1 import AppTest

    monkeypatch.setenv("SANDBOX_TOKEN", "s3cret")
    monkeypatch.setenv("SANDBOX_MODELS_DIR", str(toy_models))
    for page in ("models", "loss_curves", "evaluation", "playground"):
        st.cache_resource.clear()
        at = AppTest.from_file(str(ROOT / "pages" / f"{page}.py"), default_timeout=120).run()
        assert not at.exception, page
        assert [t.label for t in at.text_input] == ["Access token"], page
        assert not at.dataframe and not at.multiselect, f"{page} showed content before the token"
    st.cache_resource.clear()
