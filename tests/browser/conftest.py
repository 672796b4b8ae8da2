"""Fixtures of the browser suite: app servers, one Chromium, a fresh browser context per test.

Servers and the browser live for the whole browser package (started once, stopped after
its last test, before the rest of the suite runs), so the suite pays for one app start and
one worker start per experiment. Without Debian's Chromium at /usr/bin/chromium every test
here is skipped with the reason (CI installs it; SANDBOX_CHROMIUM names another binary).
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest

from .appdriver import CHROMIUM, CHROMIUM_ARGS, PROJECT_ROOT, ConsoleLog, Server, start_server

VIEWPORT = {"width": 1400, "height": 1000}


def _require_chromium() -> None:
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} is missing: apt-get install chromium (CI installs it), or set SANDBOX_CHROMIUM")


@pytest.fixture(scope="package")
def cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An empty evaluation cache for the servers (results are computed, not read back)."""
    return tmp_path_factory.mktemp("browser_cache")


def _serve(name: str, cache_dir: Path, extra_env: dict[str, str | None]) -> Iterator[Server]:
    _require_chromium()
    env: dict[str, str | None] = {
        "SANDBOX_MODELS_DIR": None,  # the shipped models/ folder, whatever the caller's shell says
        "SANDBOX_TOKEN": None,
        "SANDBOX_CACHE_DIR": str(cache_dir),
        # The arena's votes in the cache folder above, and no LLM judge: only the test's settings.
        "SANDBOX_ARENA_DB": None,
        "SANDBOX_JUDGE_BASE_URL": None,
        "SANDBOX_JUDGE_MODEL": None,
        "SANDBOX_JUDGE_API_KEY": None,
        **extra_env,
    }
    server = start_server(app_args=["--models-dir", str(PROJECT_ROOT / "models")], env=env, log_name=name)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="package")
def server(cache_dir: Path) -> Iterator[Server]:
    """The app on the shipped models, open (no token)."""
    yield from _serve("server", cache_dir, {})


@pytest.fixture(scope="package")
def token() -> str:
    return "tok-" + secrets.token_hex(8)


@pytest.fixture(scope="package")
def token_server(cache_dir: Path, token: str) -> Iterator[Server]:
    """The app with ``SANDBOX_TOKEN`` set: visitors must give the token first."""
    yield from _serve("token-server", cache_dir, {"SANDBOX_TOKEN": token})


@pytest.fixture(scope="package")
def browser():
    """One headless Debian Chromium for the package (never a downloaded browser)."""
    _require_chromium()
    from playwright.sync_api import sync_playwright

    pw = sync_playwright().start()
    try:
        chromium = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()
    finally:
        pw.stop()


@pytest.fixture
def console() -> ConsoleLog:
    """Console errors of the test's page (favicon-like resource failures left out)."""
    return ConsoleLog()


@pytest.fixture
def page(browser, console: ConsoleLog):
    """A page in a fresh browser context (its own cookies and Streamlit session)."""
    context = browser.new_context(viewport=VIEWPORT)
    context.set_default_timeout(60_000)
    tab = context.new_page()
    console.attach(tab)
    try:
        yield tab
    finally:
        context.close()


@pytest.fixture
def new_page(browser):
    """Factory: a page in another fresh browser context (another visitor), with its console log."""
    contexts = []

    def make():
        context = browser.new_context(viewport=VIEWPORT)
        context.set_default_timeout(60_000)
        contexts.append(context)
        tab = context.new_page()
        log = ConsoleLog()
        log.attach(tab)
        return tab, log

    yield make
    for context in contexts:
        context.close()
