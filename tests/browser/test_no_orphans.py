"""No worker is left behind: the real app server starts workers, stops, and none of them lives on.

Its own server (not the package's shared one), stopped by a signal sent to the server
process alone: stopping its whole process group, as `Server.stop` does, would end the
workers too and hide any that the server itself leaves behind.
"""

from __future__ import annotations

import os
import signal
import time

import pytest
from playwright.sync_api import expect

from .appdriver import PROJECT_ROOT, main, open_page, settle, start_server

pytestmark = pytest.mark.browser


def children(server_pid: int) -> list[int]:
    """Pids of the live (not zombie) processes whose parent is ``server_pid``."""
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit() and _state(int(entry)) not in (None, "Z") and _parent(int(entry)) == server_pid:
            found.append(int(entry))
    return found


def _fields(pid: int) -> list[str] | None:
    try:
        with open(f"/proc/{pid}/stat", encoding="utf-8") as f:
            return f.read().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None


def _state(pid: int) -> str | None:
    fields = _fields(pid)
    return fields[0] if fields else None


def _parent(pid: int) -> int | None:
    fields = _fields(pid)
    return int(fields[1]) if fields else None


def _command(pid: int) -> bytes:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read()
    except OSError:
        return b""


@pytest.mark.parametrize("stop", [signal.SIGTERM, signal.SIGKILL], ids=["sigterm", "sigkill"])
def test_no_worker_outlives_the_server(browser, cache_dir, stop: signal.Signals) -> None:
    server = start_server(
        app_args=["--models-dir", str(PROJECT_ROOT / "models")],
        env={"SANDBOX_MODELS_DIR": None, "SANDBOX_TOKEN": None, "SANDBOX_CACHE_DIR": str(cache_dir)},
        log_name=f"orphans-{stop.name.lower()}",
    )
    try:
        context = browser.new_context(viewport={"width": 1400, "height": 1000})
        context.set_default_timeout(120_000)
        page = context.new_page()
        runs = ["template/gpt2_atto", "kv_variant/gqa_atto"]
        open_page(page, server.url("playground", {"run": runs, "n": "8", "eos": "0"}))
        page.get_by_role("button", name="Generate").click()
        settle(page)
        expect(main(page)).to_contain_text("Done.")
        workers = [pid for pid in children(server.proc.pid) if b"sandbox.worker" in _command(pid)]
        assert len(workers) == 2, "the Playground started one worker per experiment"
        context.close()

        server.proc.send_signal(stop)  # the server process alone, not its group
        server.proc.wait(timeout=60)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and [p for p in workers if _state(p) not in (None, "Z")]:
            time.sleep(0.2)
        left = [p for p in workers if _state(p) not in (None, "Z")]
        assert left == [], f"{len(left)} worker(s) outlived the server: {left}"
    finally:
        server.stop()
