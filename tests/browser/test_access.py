"""Access with ``SANDBOX_TOKEN`` set: the sign-in page comes first, whatever the URL."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from playwright.sync_api import Page, expect

from . import appdriver as drv

pytestmark = pytest.mark.browser


@pytest.fixture
def fresh_token_server(cache_dir, token: str) -> Iterator[drv.Server]:
    """A token server nobody has visited yet (the first request of a process is special)."""
    server = drv.start_server(
        app_args=["--models-dir", str(drv.PROJECT_ROOT / "models")],
        env={"SANDBOX_MODELS_DIR": None, "SANDBOX_TOKEN": token, "SANDBOX_CACHE_DIR": str(cache_dir)},
        log_name="fresh-token-server",
    )
    try:
        yield server
    finally:
        server.stop()


def test_first_visit_to_a_page_url_asks_for_the_token(
    fresh_token_server: drv.Server, page: Page, console: drv.ConsoleLog
) -> None:
    """The very first visitors of a fresh server must not reach a page by its URL.

    Streamlit runs in its legacy "pages/ directory" mode until some script calls
    st.navigation; a first request for /models must still get the sign-in page only.
    """
    main = drv.main(page)
    drv.open_page(page, fresh_token_server.url("models"))
    drv.screenshot(page, "token-first-visit-models")
    expect(main.get_by_role("heading", name="Models")).to_have_count(0)
    expect(main.get_by_test_id("stDataFrame")).to_have_count(0)
    expect(page.get_by_label("Access token")).to_be_attached()
    # Nor are the files of pages/ listed as pages of their own.
    expect(page.get_by_test_id("stSidebarNavLink").filter(has_text="common")).to_have_count(0)


def test_token_is_asked_first(token_server: drv.Server, token: str, page: Page, console: drv.ConsoleLog) -> None:
    main = drv.main(page)
    drv.open_page(page, token_server.url())
    box = page.get_by_label("Access token")
    expect(box).to_be_visible()
    # Nothing of the app before the token: no navigation, no runs, no metrics.
    expect(page.get_by_test_id("stSidebarNavLink")).to_have_count(0)
    expect(main.get_by_test_id("stMetric")).to_have_count(0)

    box.fill("wrong-" + token)
    box.press("Enter")
    drv.settle(page)
    expect(page.locator(drv.ERROR_BOX)).to_contain_text("does not match")
    expect(main.get_by_test_id("stMetric")).to_have_count(0)
    drv.screenshot(page, "token-wrong")

    box = page.get_by_label("Access token")
    box.fill(token)
    box.press("Enter")
    drv.settle(page)
    expect(page.get_by_label("Access token")).to_have_count(0)
    expect(main.get_by_role("heading", name="micro-GPT sandbox")).to_be_visible()
    expect(main.get_by_test_id("stMetric").filter(has_text="Trained runs")).to_be_visible()
    assert token not in page.url, "the token must never appear in the URL"
    drv.screenshot(page, "token-right")
    drv.assert_clean(page, console)


def test_a_page_url_without_the_token_shows_only_the_sign_in(
    token_server: drv.Server, page: Page, console: drv.ConsoleLog
) -> None:
    main = drv.main(page)
    for name in ("models", "evaluation", "playground", "loss_curves", "common"):
        drv.open_page(page, token_server.url(name, {"runs": "template/gpt2_atto"}))
        expect(page.get_by_label("Access token")).to_be_attached()
        expect(main.get_by_test_id("stDataFrame")).to_have_count(0)
        expect(main.get_by_test_id("stMultiSelect")).to_have_count(0)
        expect(main.locator("h1")).to_have_text(["micro-GPT sandbox"])
