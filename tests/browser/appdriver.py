"""Drive the app in a real browser: a `streamlit run` server in a subprocess, and page helpers.

The server is started the way Streamlit's own end-to-end suite does it (headless, a free
localhost port, no usage stats, no file watcher) in its own process group, so that stopping
it also stops the experiment workers it started. Page helpers wait for the app to finish a
run (``data-test-script-state='notRunning'``) after every action and collect what a person
would see as a failure: exception boxes, red error boxes and browser console errors.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import parse_qs, urlencode, urlsplit

from playwright.sync_api import Locator, Page, expect
from playwright.sync_api import TimeoutError as PlaywrightTimeout

PROJECT_ROOT = Path(__file__).resolve().parents[2]
# Debian's Chromium (never a browser downloaded by Playwright); SANDBOX_CHROMIUM names another.
CHROMIUM = Path(os.environ.get("SANDBOX_CHROMIUM") or "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ARTIFACTS = PROJECT_ROOT / "test-artifacts"
SCREENSHOTS = ARTIFACTS / "screenshots"

APP_DONE = "[data-testid='stApp'][data-test-script-state='notRunning']"
APP_CONNECTED = "[data-testid='stApp'][data-test-connection-state='CONNECTED']"
# What a visitor sees as "something broke": an exception box, or a red st.error box.
EXCEPTION = "[data-testid='stException']"
ERROR_BOX = "[data-testid='stAlertContentError'], [data-testid='stAlert'] [kind='error']"
WARNING_BOX = "[data-testid='stAlertContentWarning']"

RUN_TIMEOUT_MS = 180_000  # one page run on a busy 2-core machine: worker start + a forward


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Server:
    """A running `streamlit run` of the app; stop it with :meth:`stop`."""

    proc: subprocess.Popen
    base: str
    log_path: Path

    def url(self, page: str = "", query: dict[str, str | list[str]] | None = None) -> str:
        """The URL of ``page`` ("" for the home page) with ``query`` (lists repeat the key)."""
        url = f"{self.base}/{page}"
        if query:
            url += "?" + urlencode(query, doseq=True)
        return url

    def log_tail(self, chars: int = 4000) -> str:
        with contextlib.suppress(OSError):
            return self.log_path.read_text(encoding="utf-8", errors="replace")[-chars:]
        return ""

    def stop(self) -> None:
        """Stop the server and everything in its process group (its experiment workers)."""
        pgid = self.proc.pid  # started with start_new_session: its pid is the group id
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pgid, signal.SIGTERM)
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pgid, signal.SIGKILL)
            self.proc.wait(timeout=10)
        # Workers that outlived the server's SIGTERM handling: stop them too.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pgid, signal.SIGKILL)


def start_server(
    *,
    app_args: list[str] | None = None,
    env: dict[str, str | None] | None = None,
    log_name: str = "server",
    timeout: float = 120.0,
) -> Server:
    """Start the app on a free localhost port and wait until ``/_stcore/health`` says ``ok``.

    ``env`` overrides the environment; a None value removes the variable.
    """
    port = free_port()
    cmd = [
        sys.executable, "-m", "streamlit", "run", "streamlit_app.py",
        "--server.headless", "true",
        "--server.port", str(port),
        "--server.address", "127.0.0.1",
        "--browser.gatherUsageStats", "false",
        "--server.fileWatcherType", "none",
    ]  # fmt: skip
    if app_args:
        cmd += ["--", *app_args]
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    log_path = ARTIFACTS / f"{log_name}.log"
    full_env = dict(os.environ)
    for key, value in (env or {}).items():
        if value is None:
            full_env.pop(key, None)
        else:
            full_env[key] = value
    with open(log_path, "w", encoding="utf-8") as log:
        proc = subprocess.Popen(
            cmd, cwd=PROJECT_ROOT, env=full_env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
    server = Server(proc, f"http://127.0.0.1:{port}", log_path)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"streamlit exited with status {proc.returncode}:\n{server.log_tail()}")
        try:
            with urllib.request.urlopen(server.base + "/_stcore/health", timeout=2) as reply:
                if reply.read() == b"ok":
                    return server
        except (urllib.error.URLError, OSError):
            time.sleep(0.3)
    server.stop()
    raise RuntimeError(f"the app did not answer on {server.base} within {timeout:.0f} s:\n{server.log_tail()}")


# -- console errors ------------------------------------------------------------------------


def _favicon_like(url: str) -> bool:
    """Icons the browser fetches by itself: a favicon, or the page icon from the icon font CDN.

    (``page_icon=":material/..."`` points the favicon at fonts.gstatic.com, which a machine
    without internet cannot reach; the app itself does not depend on it.)
    """
    path = urlsplit(url).path.lower()
    return "favicon" in path or path.endswith(".ico") or "materialsymbols" in path


# Streamlit's frontend finds its server's base path by asking each prefix of the page URL
# for `_stcore/health` and `_stcore/host-config`; on a page URL (`/models`) the first guess
# (`/models/_stcore/...`) answers 404 by design before `/` answers.
_BASE_PATH_PROBE = re.compile(r"^/[^?#]+/_stcore/(health|host-config)$")


def _expected_failure(text: str, url: str) -> bool:
    if not text.startswith("Failed to load resource"):
        return False
    if _favicon_like(url):
        return True
    return "404" in text and bool(_BASE_PATH_PROBE.match(urlsplit(url).path))


@dataclass
class ConsoleLog:
    """Console errors and uncaught page errors of one browser page."""

    errors: list[str] = field(default_factory=list)

    def attach(self, page: Page) -> None:
        page.on("console", self._on_console)
        page.on("pageerror", lambda exc: self.errors.append(f"uncaught: {exc}"))

    def _on_console(self, msg) -> None:
        if msg.type != "error":
            return
        url = (msg.location or {}).get("url", "")
        if _expected_failure(msg.text, url):
            return
        self.errors.append(f"{msg.text} ({url})" if url else msg.text)

    def clear(self) -> None:
        self.errors.clear()


# -- page helpers ----------------------------------------------------------------------------


def settle(page: Page, timeout_ms: int = RUN_TIMEOUT_MS) -> None:
    """Wait until the app is connected and its script has finished running.

    A short pause first lets a just-triggered rerun start (widgets are debounced), as
    Streamlit's own end-to-end helpers do; then the state attribute is awaited.
    """
    page.wait_for_timeout(250)
    page.locator(APP_CONNECTED).wait_for(state="attached", timeout=timeout_ms)
    page.locator(APP_DONE).wait_for(state="attached", timeout=timeout_ms)
    expect(page.get_by_test_id("stSkeleton")).to_have_count(0, timeout=timeout_ms)


def open_page(page: Page, url: str) -> None:
    page.goto(url)
    settle(page)


def problems(page: Page) -> list[str]:
    """Texts of every exception box and red error box on the page."""
    boxes = page.locator(f"{EXCEPTION}, {ERROR_BOX}")
    return [boxes.nth(i).inner_text()[:400] for i in range(boxes.count())]


def assert_clean(page: Page, console: ConsoleLog) -> None:
    """No exception, no red error box, no console error on the page as it is now."""
    expect(page.locator(EXCEPTION)).to_have_count(0)
    assert not problems(page), f"error boxes on {page.url}: {problems(page)}"
    assert not console.errors, f"browser console errors on {page.url}: {console.errors}"


def warnings(page: Page) -> list[str]:
    boxes = page.locator(WARNING_BOX)
    return [boxes.nth(i).inner_text() for i in range(boxes.count())]


def screenshot(page: Page, name: str) -> Path:
    """A full-page PNG under test-artifacts/screenshots/ (git-ignored).

    Streamlit scrolls its main area (``stMain``) rather than the document, so a plain
    full-page screenshot stops at the window: the window is made as tall as the content for
    the shot, then given back its size.
    """
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{re.sub(r'[^A-Za-z0-9_.-]+', '-', name)}.png"
    size = page.viewport_size or {"width": 1400, "height": 1000}
    height = page.evaluate(
        "() => Math.max(document.documentElement.scrollHeight,"
        " ...[...document.querySelectorAll('[data-testid=stMain]')].map(e => e.scrollHeight))"
    )
    try:
        if height > size["height"]:
            page.set_viewport_size({"width": size["width"], "height": min(int(height) + 40, 16_000)})
            page.wait_for_timeout(300)  # let charts and the grid redraw at the new size
        page.screenshot(path=str(path), full_page=True)
    finally:
        page.set_viewport_size(size)
    return path


def main(page: Page) -> Locator:
    """The main area (not the sidebar)."""
    return page.get_by_test_id("stMain")


def widget(page: Page, testid: str, label: str) -> Locator:
    """The widget of kind ``testid`` (e.g. ``stMultiSelect``) whose label is exactly ``label``."""
    label_re = re.compile(rf"^\s*{re.escape(label)}\s*$")
    return page.get_by_test_id(testid).filter(has=page.get_by_test_id("stWidgetLabel").filter(has_text=label_re))


def multiselect_values(box: Locator) -> list[str]:
    """The chosen values of a multiselect, in order."""
    return [t.strip() for t in box.locator("[data-tag] span[title]").all_inner_texts()]


def multiselect_set(page: Page, box: Locator, values: list[str]) -> None:
    """Make ``values`` the chosen values of a multiselect (removing others first)."""
    for current in multiselect_values(box):
        if current not in values:
            box.get_by_role("button", name=f"Remove {current}").click()
            settle(page)
    for value in values:
        if value in multiselect_values(box):
            continue
        choose_option(page, box, value, chosen=lambda v=value: v in multiselect_values(box))
        page.keyboard.press("Escape")
        settle(page)
    assert multiselect_values(box) == values or set(multiselect_values(box)) == set(values)


def choose_option(page: Page, box: Locator, value: str, tries: int = 3, chosen=None) -> None:
    """Open ``box``'s dropdown and click the option ``value``.

    A rerun that lands while the dropdown opens (a live fragment, a slow previous rerun on a
    loaded machine) redraws the widget and closes the list: then the app is let settle and
    the dropdown opened again, up to ``tries`` times. ``chosen`` (a multiselect's check)
    says when a rerun that was still on its way has chosen the value already: a multiselect
    lists only the values not chosen, so the option would never appear.
    """
    option = page.get_by_role("option", name=value, exact=True)
    for attempt in range(tries):
        if chosen is not None and chosen():
            return
        box.locator("input").click()
        try:
            option.wait_for(state="visible", timeout=10_000)
        except PlaywrightTimeout:
            if attempt == tries - 1:
                raise
            page.keyboard.press("Escape")
            settle(page)
            continue
        option.click()
        return


def selectbox_value(box: Locator) -> str:
    return box.locator("input").input_value()


def selectbox_set(page: Page, box: Locator, value: str) -> None:
    choose_option(page, box, value)
    settle(page)


def wait_for_query(page: Page, wanted: dict[str, list[str]], timeout_ms: int = RUN_TIMEOUT_MS) -> dict[str, list[str]]:
    """The page URL's query once it holds every ``wanted`` key with that value.

    The app writes the URL at the end of the rerun a widget triggered; on a loaded machine
    that can come after `settle` saw the previous run finish, so the URL is polled.
    """
    deadline = time.monotonic() + timeout_ms / 1000
    while True:
        query = parse_qs(urlsplit(page.url).query)
        if all(query.get(k) == v for k, v in wanted.items()) or time.monotonic() > deadline:
            return query
        page.wait_for_timeout(100)


def table_cells(scope: Locator) -> list[list[str]]:
    """The rendered cells of every st.dataframe under ``scope``, one list per table.

    The grid is drawn on a canvas; its accessible table holds the visible cells' text. The
    grid fills it in after the element appears, so this waits for the first cell of each
    visible table (tables in hidden tabs stay empty until their tab is shown).
    """
    grids = scope.get_by_test_id("stDataFrame")
    for i in range(grids.count()):
        if grids.nth(i).is_visible():
            grids.nth(i).locator("td[role='gridcell']").first.wait_for(state="attached")
    return [
        [t.strip() for t in grids.nth(i).locator("td[role='gridcell']").all_text_contents()]
        for i in range(grids.count())
    ]


def table_headers(scope: Locator) -> list[list[str]]:
    grids = scope.get_by_test_id("stDataFrame")
    return [
        [t.strip() for t in grids.nth(i).locator("th[role='columnheader']").all_text_contents()]
        for i in range(grids.count())
    ]


def table_rows(grid: Locator) -> tuple[list[str], list[list[str]]]:
    """(column headers, rows of cell texts) of one st.dataframe, as far as it is drawn."""
    grid.locator("td[role='gridcell']").first.wait_for(state="attached")
    headers = [t.strip() for t in grid.locator("th[role='columnheader']").all_text_contents()]
    rows = []
    for row in grid.locator("tbody tr").all():
        rows.append([t.strip() for t in row.locator("td[role='gridcell']").all_text_contents()])
    return headers, rows
