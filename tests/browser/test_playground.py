"""The Playground's Stop button in a real browser (AppTest runs a page to its end: it cannot
click anything while a generation streams)."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

from . import appdriver as drv

pytestmark = pytest.mark.browser

RUN = "template/gpt2_atto"  # no KV cache: 1024 tokens take long enough to stop midway


@pytest.fixture(autouse=True)
def _needs_the_run() -> None:
    if not (drv.PROJECT_ROOT / "models/template/trained/gpt2_atto/model.pth").is_file():
        pytest.skip(f"{RUN} is not trained yet")


def test_stop_ends_the_stream_and_keeps_what_was_written(server: drv.Server, page: Page, console: drv.ConsoleLog) -> None:
    query = {"run": RUN, "n": "1024", "eos": "0", "prompt": "Once upon a time"}
    drv.open_page(page, server.url("playground", query))
    main = drv.main(page)
    main.get_by_role("button", name="Generate").click()
    # Streaming: the column's numbers count tokens while the script is still running.
    stats = main.get_by_test_id("stCaptionContainer").filter(has_text=re.compile(r"[1-9]\d* tokens · generating"))  # a token written
    expect(stats).to_have_count(1, timeout=drv.RUN_TIMEOUT_MS)
    main.get_by_role("button", name="Stop").click()
    drv.settle(page)
    expect(main.get_by_text("Stopped.", exact=True)).to_be_visible()
    stopped = main.get_by_test_id("stCaptionContainer").filter(has_text=re.compile(r"first token .*\d+ tokens · stopped"))
    expect(stopped).to_have_count(1)
    n_tokens = int(re.search(r"(\d+) tokens · stopped", stopped.inner_text()).group(1))
    assert 0 < n_tokens < 1024
    # The partial generation is in the history, ready for export.
    expect(main.get_by_role("heading", name="History (1)")).to_be_visible()
    drv.screenshot(page, "playground-stopped")
    drv.assert_clean(page, console)


def test_the_toolbar_stop_does_not_leave_generating_on_screen(server: drv.Server, page: Page, console: drv.ConsoleLog) -> None:
    """Streamlit's own Stop (top right, while a script runs) ends the run with no rerun after
    it: the page must not keep saying "Generating… 1 column(s) still writing"."""
    query = {"run": RUN, "n": "1024", "eos": "0", "prompt": "Once upon a time"}
    drv.open_page(page, server.url("playground", query))
    main = drv.main(page)
    main.get_by_role("button", name="Generate").click()
    stats = main.get_by_test_id("stCaptionContainer").filter(has_text=re.compile(r"[1-9]\d* tokens · generating"))  # a token written
    expect(stats).to_have_count(1, timeout=drv.RUN_TIMEOUT_MS)
    page.get_by_test_id("stStatusWidget").get_by_role("button", name="Stop").click()
    drv.settle(page)
    page.wait_for_timeout(1000)  # nothing more arrives after a stop: what is shown now stays
    expect(main.get_by_text(re.compile("still writing"))).to_have_count(0)
    expect(main.get_by_text("Stopped.", exact=True)).to_be_visible()
    expect(main.get_by_test_id("stCaptionContainer").filter(has_text=re.compile(r"\d+ tokens · stopped"))).to_have_count(1)
    drv.screenshot(page, "playground-toolbar-stopped")
    drv.assert_clean(page, console)
