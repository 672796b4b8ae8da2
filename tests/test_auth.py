"""The LAN access token: off by default, on with SANDBOX_TOKEN, checked before any page."""

from __future__ import annotations

from sandbox.app.auth import expected_token, token_matches


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
    from conftest import ROOT, release_app
    from streamlit.testing.v1 import AppTest

    monkeypatch.setenv("SANDBOX_TOKEN", "s3cret")
    monkeypatch.setenv("SANDBOX_MODELS_DIR", str(toy_models))
    for page in ("models", "loss_curves", "evaluation", "playground"):
        st.cache_resource.clear()
        at = AppTest.from_file(str(ROOT / "pages" / f"{page}.py"), default_timeout=120).run()
        assert not at.exception, page
        assert [t.label for t in at.text_input] == ["Access token"], page
        assert not at.dataframe and not at.multiselect, f"{page} showed content before the token"
    release_app()


# -- wrong tokens are rate-limited per client ------------------------------------------------------


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_throttle_lets_a_few_tries_through_then_makes_each_wait_longer():
    from sandbox.app.auth import Throttle

    clock = FakeClock()
    throttle = Throttle(free_tries=5, first_wait=2.0, max_wait=60.0, clock=clock)
    me = ("session:a", "ip:10.0.0.7")
    for _ in range(5):
        assert throttle.wait_left(me) == 0
        throttle.failed(me)
    assert throttle.wait_left(me) == 2.0  # the 6th try waits 2 s
    clock.now += 1.5
    assert throttle.wait_left(me) == 0.5
    clock.now += 0.5
    assert throttle.wait_left(me) == 0
    waits = []
    for _ in range(6):
        throttle.failed(me)
        waits.append(throttle.wait_left(me))
        clock.now += waits[-1]
    assert waits == [4.0, 8.0, 16.0, 32.0, 60.0, 60.0], "doubling, capped"


def test_throttle_is_per_client_and_an_address_is_shared_by_its_sessions():
    from sandbox.app.auth import Throttle

    throttle = Throttle(free_tries=2, first_wait=5.0, clock=FakeClock())
    for _ in range(3):
        throttle.failed(("session:a", "ip:10.0.0.7"))
    assert throttle.wait_left(("session:a", "ip:10.0.0.7")) > 0
    assert throttle.wait_left(("session:b", "ip:10.0.0.7")) > 0, "a new browser session from the same address"
    assert throttle.wait_left(("session:c", "ip:10.0.0.8")) == 0, "another client is not slowed down"
    assert throttle.wait_left(("session:a",)) > 0, "the session, even without an address"
    throttle.succeeded(("session:a", "ip:10.0.0.7"))
    assert throttle.wait_left(("session:b", "ip:10.0.0.7")) == 0


def test_throttle_memory_is_bounded():
    from sandbox.app.auth import Throttle

    throttle = Throttle(max_clients=100, clock=FakeClock())
    for i in range(1000):
        throttle.failed((f"session:{i}",))
    assert len(throttle) <= 100


def test_wrong_tokens_in_the_app_are_rate_limited(app_at, toy_models, monkeypatch):
    from pages import common

    monkeypatch.setenv("SANDBOX_TOKEN", "s3cret")
    at = app_at(toy_models).run()
    clock = FakeClock()
    common.token_throttle().clock = clock
    free = common.token_throttle().free_tries
    for i in range(free - 1):
        at.text_input(key="access_token").input(f"wrong{i}").run()
        assert [e.value for e in at.error] == ["That token does not match the one this sandbox was started with."]
        assert at.text_input(key="access_token").value == "", "the box is emptied for the next try"
    at.text_input(key="access_token").input("wrong-last").run()
    (message,) = [e.value for e in at.error]
    assert message.startswith("That token does not match") and "wait 2 s before the next one" in message
    at.text_input(key="access_token").input("wrong-again").run()
    (message,) = [e.value for e in at.error]
    assert message.startswith("Too many wrong tokens") and "wait 2 s" in message, message
    at.text_input(key="access_token").input("s3cret").run()  # right, but too soon: not even compared
    assert not at.metric and "Too many wrong tokens" in at.error[0].value
    clock.now += 60
    at.text_input(key="access_token").input("s3cret").run()
    assert not at.exception and {m.label for m in at.metric} >= {"Experiments", "Trained runs"}


def test_a_quiet_key_starts_afresh():
    from sandbox.app.auth import Throttle

    clock = FakeClock()
    throttle = Throttle(free_tries=2, first_wait=2.0, max_wait=8.0, forget_after=100.0, clock=clock)
    for _ in range(3):
        throttle.failed(("server",))
    assert throttle.wait_left(("server",)) > 0
    clock.now += throttle.max_wait + throttle.forget_after + 1
    throttle.failed(("server",))  # the first wrong try after a quiet spell: free again
    assert throttle.wait_left(("server",)) == 0
