"""Links: a page's selection lives in its URL, and a link from anyone is checked.

A selection made with the widgets must come back, unchanged, for another visitor who opens
the copied URL in a fresh browser. A link naming an unknown run or a path shows a warning
that names the ignored value, and nothing else goes wrong.
"""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest
from playwright.sync_api import Page, expect

from . import appdriver as drv
from .test_pages import MODELS, require_page, two_runs

pytestmark = pytest.mark.browser


def query_of(page: Page) -> dict[str, list[str]]:
    return parse_qs(urlsplit(page.url).query)


def logged_run_ids() -> list[str]:
    from sandbox.zoo.discovery import discover

    return [run.id for exp in discover(MODELS) for run in exp.runs if run.log_path.is_file()]


def test_loss_curves_selection_is_shared_by_its_link(server: drv.Server, page: Page, new_page) -> None:
    require_page("pages/loss_curves.py")
    logged = logged_run_ids()
    if len(logged) < 2:
        pytest.skip(f"needs two shipped runs with logs; found {logged}")
    drv.open_page(page, server.url("loss_curves"))
    runs = drv.widget(page, "stMultiSelect", "Runs")
    drv.multiselect_set(page, runs, [logged[-1]])
    page.get_by_test_id("stCheckbox").filter(has_text="Log y").click()
    drv.settle(page)
    query = drv.wait_for_query(page, {"runs": [logged[-1]], "logy": ["1"]})
    assert query["runs"] == [logged[-1]] and query["logy"] == ["1"]

    other, console = new_page()
    drv.open_page(other, page.url)
    assert drv.multiselect_values(drv.widget(other, "stMultiSelect", "Runs")) == [logged[-1]]
    expect(other.get_by_test_id("stCheckbox").filter(has_text="Log y").get_by_role("switch")).to_be_checked()
    expect(drv.main(other).get_by_test_id("stVegaLiteChart").first).to_be_visible()
    drv.screenshot(other, "link-loss-curves")
    drv.assert_clean(other, console)


def test_evaluation_selection_is_shared_by_its_link(server: drv.Server, page: Page, new_page) -> None:
    require_page("pages/evaluation.py")
    runs = two_runs()
    drv.open_page(page, server.url("evaluation"))
    picker = drv.widget(page, "stMultiSelect", "Runs (any experiments)")
    drv.multiselect_set(page, picker, runs)
    docs = drv.widget(page, "stNumberInput", "Documents").locator("input")
    docs.fill("7")
    docs.press("Enter")
    drv.settle(page)
    query = drv.wait_for_query(page, {"runs": runs, "docs": ["7"]})
    assert query["runs"] == runs and query["docs"] == ["7"]

    other, console = new_page()
    drv.open_page(other, page.url)
    assert drv.multiselect_values(drv.widget(other, "stMultiSelect", "Runs (any experiments)")) == runs
    expect(drv.widget(other, "stNumberInput", "Documents").locator("input")).to_have_value("7")
    drv.screenshot(other, "link-evaluation")
    drv.assert_clean(other, console)


def test_playground_selection_is_shared_by_its_link(server: drv.Server, page: Page, new_page) -> None:
    require_page("pages/playground.py")
    runs = two_runs()
    prompt = "The dragon & the {{moon}}: a story"
    drv.open_page(page, server.url("playground"))
    drv.multiselect_set(page, drv.widget(page, "stMultiSelect", "Runs (1–4, from any experiments)"), runs)
    box = drv.widget(page, "stTextArea", "Prompt").locator("textarea")
    box.fill(prompt)
    box.press("Control+Enter")
    drv.settle(page)
    query = drv.wait_for_query(page, {"runs": runs, "prompt": [prompt]})
    assert query["runs"] == runs and query["prompt"] == [prompt]

    other, console = new_page()
    drv.open_page(other, page.url)
    assert drv.multiselect_values(drv.widget(other, "stMultiSelect", "Runs (1–4, from any experiments)")) == runs
    expect(drv.widget(other, "stTextArea", "Prompt").locator("textarea")).to_have_value(prompt)
    drv.screenshot(other, "link-playground")
    drv.assert_clean(other, console)


BAD_VALUES = ["../../etc/passwd", "template/no_such_run"]


@pytest.mark.parametrize(
    ("file", "path", "key"),
    [
        ("pages/loss_curves.py", "loss_curves", "run"),
        ("pages/evaluation.py", "evaluation", "runs"),
        ("pages/playground.py", "playground", "run"),
    ],
    ids=["loss_curves", "evaluation", "playground"],
)
def test_a_link_to_an_unknown_run_warns(
    server: drv.Server, page: Page, console: drv.ConsoleLog, file: str, path: str, key: str
) -> None:
    require_page(file)
    drv.open_page(page, server.url(path, {key: BAD_VALUES}))
    boxes = page.locator(drv.WARNING_BOX)
    expect(boxes.filter(has_text="../../etc/passwd")).to_have_count(1)
    expect(boxes.filter(has_text="template/no_such_run")).to_have_count(1)
    picker = drv.main(page).get_by_test_id("stMultiSelect").first
    for value in drv.multiselect_values(picker):
        assert value not in BAD_VALUES
    drv.screenshot(page, f"link-bad-{path}")
    drv.assert_clean(page, console)


@pytest.mark.parametrize("path", ["", "models"], ids=["home", "models"])
def test_pages_without_links_ignore_hostile_parameters(
    server: drv.Server, page: Page, console: drv.ConsoleLog, path: str
) -> None:
    drv.open_page(page, server.url(path, {"run": "../../etc/passwd", "x": "__import__('os').system('id')"}))
    expect(drv.main(page).locator("h1").first).to_be_visible()
    expect(drv.main(page)).not_to_contain_text("root:x:0:0")
    drv.assert_clean(page, console)
