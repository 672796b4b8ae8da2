"""Hostile browser sessions: what a websocket client can send before (and after) the token.

Streamlit acts on a "clear cache" message from any connected session, and its upload
endpoint stores files for any session that asks. Nothing one visitor sends may touch
another visitor's work or the server's limits (README: "Reliability"). These tests start
the real app and speak its websocket protocol directly (`rawclient`).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import pytest
from rawclient import RawSession

from sandbox.arena.store import StoreError
from sandbox.zoo import discovery

TOKEN = "tok-hostile-clients"
WRONG = "That token does not match"


@pytest.fixture(scope="module")
def token_server(toy_models: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator:
    """The app on the toy models with ``SANDBOX_TOKEN`` set, on a free localhost port."""
    from browser.appdriver import start_server

    cache = tmp_path_factory.mktemp("hostile_cache")
    server = start_server(
        app_args=["--models-dir", str(toy_models)],
        env={"SANDBOX_MODELS_DIR": None, "SANDBOX_TOKEN": TOKEN, "SANDBOX_CACHE_DIR": str(cache),
             "SANDBOX_ARENA_DB": None, "SANDBOX_JUDGE_BASE_URL": None},
        log_name="hostile-token-server",
    )  # fmt: skip
    try:
        yield server
    finally:
        server.stop()


# -- 1. "clear cache" from a session that never gave the token --------------------------------------


def test_clear_cache_from_a_stranger_keeps_the_wrong_token_limit(token_server) -> None:
    """A guesser runs into the limit; a second connection's "clear cache" must not lift it."""
    with RawSession(token_server.base) as guesser, RawSession(token_server.base) as stranger:
        guesser.rerun()
        stranger.rerun()
        for tries in range(1, 100):  # wrong tokens until the page asks the guesser to wait
            alerts = guesser.rerun({"Access token": f"wrong-{tries}"}).alerts()
            assert alerts and (WRONG in alerts[0] or "Too many" in alerts[0]), alerts
            if "wait" in alerts[0]:
                break
        else:
            pytest.fail("99 wrong tokens and never a wait")
        stranger.clear_cache()
        stranger.rerun()
        alerts = guesser.rerun({"Access token": "wrong-after-clear"}).alerts()
        assert alerts and "wait" in alerts[0], f"after {tries} wrong tries and a clear cache: {alerts}"


def test_clear_cache_keeps_workers_limits_and_pending_votes(toy_models: Path, tmp_path: Path, monkeypatch) -> None:
    """Streamlit's own handler of the message, run in-process: the process-wide state stays."""
    from conftest import release_app
    from streamlit.runtime.app_session import AppSession
    from streamlit.runtime.state import SessionState

    from pages import common
    from sandbox.arena.store import BattleRecord

    monkeypatch.setenv("SANDBOX_ARENA_DB", str(tmp_path / "arena.sqlite3"))
    release_app()
    try:
        throttle, limiter, pool, store = common.token_throttle(), common.worker_limiter(), common.worker_pool(), common.arena_store()
        throttle.clock = lambda: 1000.0  # frozen: the wait never runs out during the test
        for _ in range(throttle.free_tries):
            throttle.failed(["session:guesser"])
        assert throttle.wait_left(["session:guesser"]) > 0
        client = pool.client(discovery.find_experiment(toy_models, "toy_a"))
        client.request("ping")
        store.busy_timeout = 0.2
        lock = sqlite3.connect(store.path, isolation_level=None)
        lock.execute("BEGIN EXCLUSIVE")
        battle = BattleRecord(id="b1", prompt="p", settings={}, seed=1, draw_seed=1, shown_order="ab", run_a="toy_a/run1",
                              fingerprint_a="fa", text_a="x", run_b="toy_b/cached", fingerprint_b="fb", text_b="y")  # fmt: skip
        with pytest.raises(StoreError):
            store.add_battle(battle)
        lock.execute("ROLLBACK")
        lock.close()

        AppSession._handle_clear_cache_request(SimpleNamespace(_session_state=SessionState()))

        assert common.token_throttle() is throttle and throttle.wait_left(["session:guesser"]) > 0
        assert common.worker_limiter() is limiter and common.worker_pool() is pool
        assert client.alive and client.request("ping")
        assert common.arena_store() is store and [p.record for p in store.pending()] == [battle]
    finally:
        release_app()


# -- 3. uploads before the token ---------------------------------------------------------------------


def test_a_session_without_the_token_keeps_no_upload(token_server) -> None:
    """The upload endpoint takes files for any session; before the token it must keep none
    (the same uploads with the token get 204: the next test)."""
    with RawSession(token_server.base) as stranger:
        assert stranger.rerun().of_kind("text_input"), "the sign-in page"
        statuses = [stranger.upload(b"the cat sat.\n" * 10_000, f"s{i}.txt") for i in range(3)]
        assert statuses == [403] * 3, statuses
        assert not stranger.rerun().of_kind("file_uploader")
    assert token_server.log_tail(100_000).count("has not given the access token") == 3


def test_a_session_with_the_token_holds_its_newest_uploads_only(token_server) -> None:
    from rawclient import uploaded_bytes_become

    from pages import common

    bounds_files = common.MAX_UPLOADS_PER_SESSION
    body = b"the dog ran far away.\n" * 20_000
    with RawSession(token_server.base) as visitor:
        visitor.rerun()
        signed_in = visitor.rerun({"Access token": TOKEN})
        assert not signed_in.of_kind("text_input") and signed_in.of_kind("metric"), signed_in.alerts()
        statuses = [visitor.upload(body, f"v{i}.txt") for i in range(bounds_files + 3)]
        assert statuses == [204] * len(statuses)
        assert uploaded_bytes_become(token_server.base, bounds_files * len(body)) == bounds_files * len(body)
    # The session has ended: Streamlit drops its files.


def test_an_upload_with_the_token_reaches_the_evaluation_page(token_server) -> None:
    """The guard keeps a signed-in visitor's upload: the file uploader reads it as before."""
    stories = b"the cat sat on the mat.\n\nthe dog ran far away.\n\nthe fox hid.\n"
    with RawSession(token_server.base) as visitor:
        visitor.rerun()
        visitor.rerun({"Access token": TOKEN})
        visitor.rerun(page="evaluation")
        run = visitor.rerun(page="evaluation", strings={"Data": "Upload a file"}, query="data=upload")
        (uploader,) = run.of_kind("file_uploader")
        assert visitor.upload(stories, "three.txt") == 204
        run = visitor.rerun(page="evaluation", strings={"Data": "Upload a file"}, query="data=upload",
                            files={uploader.label: [(visitor.last_file_id, "three.txt", len(stories))]})  # fmt: skip
        assert not run.of_kind("exception"), run.of_kind("exception")
        shown = " ".join(run.alerts() + [m.body for m in run.of_kind("markdown")])
        assert f"{stories.count(b'.')} documents in the source" in shown, shown


def test_uploads_made_before_the_first_page_run_are_dropped_by_it(toy_models: Path, tmp_path: Path) -> None:
    """A fresh server has run no page yet; a stranger's files are dropped at the first run."""
    from browser.appdriver import start_server
    from rawclient import uploaded_bytes_become

    server = start_server(app_args=["--models-dir", str(toy_models)],
                          env={"SANDBOX_MODELS_DIR": None, "SANDBOX_TOKEN": TOKEN, "SANDBOX_CACHE_DIR": str(tmp_path)},
                          log_name="hostile-fresh-server")  # fmt: skip
    try:
        with RawSession(server.base) as stranger:
            body = b"early bytes\n" * 1000
            assert stranger.upload(body) == 204  # nothing of the app has run yet
            assert uploaded_bytes_become(server.base, len(body)) == len(body)
            stranger.rerun()
            assert uploaded_bytes_become(server.base, 0) == 0
    finally:
        server.stop()


def test_upload_bounds_drop_the_oldest_and_keep_the_newest() -> None:
    from sandbox.app.uploads import SessionSet, UploadBounds

    bounds = UploadBounds(max_files=2, max_bytes=10)
    assert bounds.to_drop([("a", 3), ("b", 3)]) == []
    assert bounds.to_drop([("a", 3), ("b", 3), ("c", 3)]) == ["a"]
    assert bounds.to_drop([("a", 6), ("b", 6)]) == ["a"]
    assert bounds.to_drop([("a", 3), ("huge", 50)]) == ["a"], "the newest stays, whatever its size"
    granted = SessionSet(max_sessions=2)
    for session in ("s1", "s2", "s3"):
        granted.add(session)
    assert "s1" not in granted and "s3" in granted and len(granted) == 2


# -- 8. token guessing from new sessions (127.0.0.1: Streamlit reports no address) -------------------


def test_a_guesser_gains_nothing_by_opening_a_new_session_for_every_try(toy_models: Path, tmp_path: Path) -> None:
    from browser.appdriver import start_server

    from pages import common

    server = start_server(app_args=["--models-dir", str(toy_models)],
                          env={"SANDBOX_MODELS_DIR": None, "SANDBOX_TOKEN": TOKEN, "SANDBOX_CACHE_DIR": str(tmp_path)},
                          log_name="hostile-guess-server")  # fmt: skip
    try:
        for tries in range(1, 2 * common.SERVER_FREE_TRIES):
            with RawSession(server.base) as guesser:  # a fresh session: its own count starts at 0
                guesser.rerun()
                alerts = guesser.rerun({"Access token": f"guess-{tries}"}).alerts()
            if "wait" in alerts[0]:
                break
        else:
            pytest.fail(f"{tries} sessions, one wrong token each, and never a wait")
        assert tries <= common.SERVER_FREE_TRIES
    finally:
        server.stop()
