"""sandbox.curves.livewatch: change counters from watchdog, and the os.stat polling fallback."""

from __future__ import annotations

import time

import pytest

from sandbox.curves import livewatch


@pytest.fixture
def run_dir(tmp_path):
    path = tmp_path / "exp" / "trained" / "run"
    path.mkdir(parents=True)
    return path


def wait_for(condition, limit: float = 15.0) -> bool:
    """Poll ``condition`` until it holds or ``limit`` seconds pass (events arrive on a thread)."""
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return condition()


def test_polling_counts_changes_of_a_log_and_of_the_run_folders(tmp_path, run_dir):
    watcher = livewatch.LogWatcher(tmp_path, poll=True)
    log = run_dir / "log_data.csv"
    log.write_text("Step,Loss\n0,3\n")
    first, tree = watcher.version(log), watcher.tree_version()
    assert watcher.version(log) == first  # nothing changed: same number
    with log.open("a") as f:
        f.write("10,2\n")
    assert watcher.version(log) == first + 1
    (run_dir.parent / "another").mkdir()
    assert watcher.tree_version() == tree + 1
    assert watcher.mode == "polling"


def test_watchdog_bumps_counters_from_its_thread(tmp_path, run_dir):
    watcher = livewatch.LogWatcher(tmp_path)
    try:
        if watcher.mode != "watchdog":
            pytest.skip(f"no file watcher here: {watcher.reason}")
        log = run_dir / "log_data.csv"
        tree = watcher.tree_version()
        log.write_text("Step,Loss\n0,3\n")
        assert wait_for(lambda: watcher.version(log) > 0)
        assert wait_for(lambda: watcher.tree_version() > tree)  # a log appeared
        seen = watcher.version(log)
        with log.open("a") as f:
            f.write("10,2\n")
        assert wait_for(lambda: watcher.version(log) > seen)
        before = watcher.version(run_dir / "model.pth")
        (run_dir / "model.pth").write_bytes(b"x")  # other files are not logs
        (run_dir / "other.csv").write_text("a\n")
        assert watcher.version(log) >= seen and watcher.version(run_dir / "model.pth") == before
    finally:
        watcher.stop()
    assert watcher.mode == "polling"


def test_missing_folder_falls_back_to_polling(tmp_path):
    watcher = livewatch.LogWatcher(tmp_path / "not-there")
    assert watcher.mode == "polling" and "could not start" in watcher.reason
    assert watcher.tree_version() == 0


def test_one_shared_watcher_per_folder(tmp_path, monkeypatch):
    monkeypatch.setenv("SANDBOX_LOG_WATCH", "poll")
    try:
        a = livewatch.shared_watcher(tmp_path)
        assert livewatch.shared_watcher(str(tmp_path)) is a
        assert livewatch.shared_watcher(tmp_path / "x") is not a
    finally:
        livewatch.stop_all()
