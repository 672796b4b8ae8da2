"""Page bugs a person saw in the browser (issue 12, item 11), each kept fixed here."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect

from . import appdriver as drv
from .test_links import logged_run_ids, query_of
from .test_pages import require_page

pytestmark = pytest.mark.browser


def test_loss_curves_clear_all_then_one_run_shows_only_that_run(
    server: drv.Server, page: Page, console: drv.ConsoleLog
) -> None:
    require_page("pages/loss_curves.py")
    logged = logged_run_ids()
    if len(logged) < 2:
        pytest.skip(f"needs two shipped runs with logs; found {logged}")
    drv.open_page(page, server.url("loss_curves"))
    runs = drv.widget(page, "stMultiSelect", "Runs")
    assert drv.multiselect_values(runs) == logged
    runs.get_by_role("button", name="Clear all").click()  # the multiselect's own clear button
    drv.settle(page)
    assert drv.multiselect_values(runs) == []
    expect(drv.main(page)).to_contain_text("Choose at least one run.")
    runs.locator("input").click()
    page.get_by_role("option", name=logged[-1], exact=True).click()
    page.keyboard.press("Escape")
    drv.settle(page)
    assert drv.multiselect_values(runs) == [logged[-1]]
    assert query_of(page)["runs"] == [logged[-1]]
    headers, rows = drv.table_rows(drv.main(page).get_by_test_id("stDataFrame").first)
    assert [row[headers.index("run")] for row in rows] == [logged[-1]]
    drv.screenshot(page, "bug-loss-curves-clear-all")
    drv.assert_clean(page, console)


def test_evaluation_link_keeps_its_data_source(server: drv.Server, page: Page, new_page) -> None:
    """The data choice is in the link; an upload, which a link cannot carry, is asked for again."""
    require_page("pages/evaluation.py")
    drv.open_page(page, server.url("evaluation"))
    assert query_of(page)["data"] == ["bundled"]
    drv.main(page).get_by_test_id("stRadio").get_by_text("Upload a file").click()
    drv.settle(page)
    assert query_of(page)["data"] == ["upload"]
    expect(drv.main(page)).to_contain_text("An uploaded file cannot be part of a link")

    other, console = new_page()
    drv.open_page(other, page.url)
    expect(other.get_by_test_id("stRadio").get_by_role("radio", name="Upload a file")).to_be_checked()
    expect(drv.main(other)).to_contain_text("This link was made with an uploaded file")
    drv.screenshot(other, "bug-evaluation-link-upload")
    drv.assert_clean(other, console)


def test_models_tab_is_in_the_link(server: drv.Server, page: Page, new_page) -> None:
    require_page("pages/models.py")
    drv.open_page(page, server.url("models"))
    main = drv.main(page)
    main.get_by_role("tab", name="Doctor").click()
    drv.settle(page)
    assert query_of(page)["tab"] == ["doctor"]

    other, console = new_page()
    drv.open_page(other, page.url)
    expect(drv.main(other).get_by_role("tab", name="Doctor")).to_have_attribute("aria-selected", "true")
    expect(drv.main(other).get_by_role("tab", name="Run details")).to_have_attribute("aria-selected", "false")
    drv.screenshot(other, "bug-models-tab-link")
    drv.assert_clean(other, console)
