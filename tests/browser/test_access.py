"""Access with ``SANDBOX_TOKEN`` set: the sign-in page comes first, whatever the URL."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from playwright.sync_api import Page, expect

from . import appdriver as drv
from .test_pages import APP_NAVIGATION

pytestmark = pytest.mark.browser


def _fresh_server(cache_dir, token: str | None, name: str) -> Iterator[drv.Server]:
    server = drv.start_server(
        app_args=["--models-dir", str(drv.PROJECT_ROOT / "models")],
        env={"SANDBOX_MODELS_DIR": None, "SANDBOX_TOKEN": token, "SANDBOX_CACHE_DIR": str(cache_dir)},
        log_name=name,
    )
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def fresh_token_server(cache_dir, token: str) -> Iterator[drv.Server]:
    """A token server nobody has visited yet (the first requests of a process are special)."""
    yield from _fresh_server(cache_dir, token, "fresh-token-server")


@pytest.fixture
def fresh_open_server(cache_dir) -> Iterator[drv.Server]:
    """An open server nobody has visited yet."""
    yield from _fresh_server(cache_dir, None, "fresh-open-server")


def test_first_visit_to_a_page_url_asks_for_the_token(
    fresh_token_server: drv.Server, page: Page, console: drv.ConsoleLog
) -> None:
    """The very first visitors of a fresh server must not reach a page by its URL.

    Streamlit runs in its legacy "pages/ directory" mode until some script calls
    st.navigation, running a requested pages/ file directly; a first request for /models
    must still get the sign-in page only.
    """
    main = drv.main(page)
    drv.open_page(page, fresh_token_server.url("models"))
    drv.screenshot(page, "token-first-visit-models")
    expect(main.get_by_role("heading", name="Models")).to_have_count(0)
    expect(main.get_by_test_id("stDataFrame")).to_have_count(0)
    expect(page.get_by_label("Access token")).to_be_attached()


def test_first_visit_to_a_page_url_gets_the_apps_navigation(fresh_open_server: drv.Server, page: Page) -> None:
    """The first visitors of a fresh server see the app's pages, not the files of pages/.

    In Streamlit's legacy mode (see above) the sidebar lists every file of pages/ under its
    file name ("streamlit app", "common", "loss curves", ...) and the entry script's own
    parts (screenshot mode) are missing, until someone opens the home page.
    """
    drv.open_page(page, fresh_open_server.url("models"))
    drv.screenshot(page, "first-visit-models")
    expect(drv.main(page).get_by_role("heading", name="Models")).to_be_visible()
    links = page.get_by_test_id("stSidebarNavLink")
    expect(links).to_have_count(len(APP_NAVIGATION))
    for link, title in zip(links.all(), APP_NAVIGATION, strict=True):
        expect(link).to_have_accessible_name(title)
    expect(page.get_by_test_id("stSidebar").get_by_text("Screenshot mode")).to_be_visible()


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
    drv.open_page(page, token_server.url())  # once the app has run (see the first-visit test)
    for name in ("models", "evaluation", "playground", "loss_curves", "common"):
        drv.open_page(page, token_server.url(name, {"runs": "template/gpt2_atto"}))
        expect(page.get_by_label("Access token")).to_be_attached()
        expect(main.get_by_test_id("stDataFrame")).to_have_count(0)
        expect(main.get_by_test_id("stMultiSelect")).to_have_count(0)
        expect(main.locator("h1")).to_have_text(["micro-GPT sandbox"])


@pytest.mark.parametrize(
    ("name", "query", "heading", "widget", "label"),
    [
        ("evaluation", {"runs": ["template/gpt2_atto", "kv_variant/gqa_atto"]}, "Evaluation", "stMultiSelect", "Runs (any experiments)"),
        ("playground", {"run": "template/llama_atto", "prompt": "Once upon a time"}, "Playground", "stMultiSelect", "Runs (1–4, from any experiments)"),
    ],
)
def test_a_shared_link_survives_the_token(
    token_server: drv.Server, token: str, page: Page, console: drv.ConsoleLog,
    name: str, query: dict, heading: str, widget: str, label: str,
) -> None:
    """A link to a page with its selection, opened on a protected server: the token box is
    usable (no "Page not found" over it) and the token leads to the linked page, as linked."""
    main = drv.main(page)
    drv.open_page(page, token_server.url(name, query))
    expect(page.get_by_text("Page not found")).to_have_count(0)
    expect(page.get_by_role("dialog")).to_have_count(0)
    drv.screenshot(page, f"token-link-{name}-sign-in")
    box = page.get_by_label("Access token")
    box.fill(token)  # would time out if a pop-up covered the box
    box.press("Enter")
    drv.settle(page)
    expect(main.get_by_role("heading", name=heading)).to_be_visible(timeout=drv.RUN_TIMEOUT_MS)
    wanted = query.get("runs") or [query["run"]]
    picker = drv.widget(page, widget, label)
    # The token's rerun may still be drawing the page: wait for the linked runs to show.
    expect(picker.locator("[data-tag]")).to_have_count(len(wanted), timeout=drv.RUN_TIMEOUT_MS)
    drv.settle(page)
    assert drv.multiselect_values(picker) == wanted
    assert f"/{name}?" in page.url and token not in page.url
    if "prompt" in query:
        expect(main.get_by_role("textbox", name="Prompt")).to_have_value(query["prompt"])
    drv.screenshot(page, f"token-link-{name}")
    drv.assert_clean(page, console)
