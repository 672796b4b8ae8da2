"""The Compare page in a real browser, each view in turn, on a zoo of runs with two tokenizers
and known scaling laws (tests/comparezoo.py): score the runs on a sample, the coloured text
with its hover, the ranked passages and their click-through, matched points, scaling fits."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from playwright.sync_api import Page, expect

from . import appdriver as drv
from .conftest import _require_chromium
from .test_pages import require_page

pytestmark = pytest.mark.browser
RUNS = ["toy_a/r1", "toy_pieces/r1"]


@pytest.fixture(scope="module")
def compare_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[drv.Server]:
    _require_chromium()
    require_page("pages/compare.py")
    root = tmp_path_factory.mktemp("compare_zoo")
    import comparezoo

    monkey = pytest.MonkeyPatch()
    monkey.setenv("SANDBOX_CACHE_DIR", str(root / "cache"))  # the size records go there
    try:
        comparezoo.make_compare_zoo(root / "models")
    finally:
        monkey.undo()
    env = {"SANDBOX_MODELS_DIR": None, "SANDBOX_TOKEN": None, "SANDBOX_CACHE_DIR": str(root / "cache"), "SANDBOX_DEVICE": "cpu"}
    server = drv.start_server(app_args=["--models-dir", str(root / "models")], env=env, log_name="compare-server")
    try:
        yield server
    finally:
        server.stop()


def pick_view(page: Page, title: str) -> None:
    page.get_by_test_id("stButtonGroup").get_by_text(title, exact=True).click()
    drv.settle(page)


def test_each_compare_view_in_turn(compare_server: drv.Server, page: Page, console: drv.ConsoleLog) -> None:
    drv.open_page(page, compare_server.url("compare", {"runs": RUNS, "docs": "6", "view": "text"}))
    main = drv.main(page)
    expect(main).to_contain_text("Not scored on these 6 documents yet")
    main.locator(".st-key-cmp_score button").click()
    drv.settle(page)

    # One text: every character coloured by its best run, a hover per run.
    expect(main).to_contain_text("no colour: a tie or no value")
    coloured = main.locator("span[title*='rank']").first
    expect(coloured).to_be_attached()
    title = coloured.get_attribute("title") or ""
    assert "toy_a/r1: " in title and "toy_pieces/r1: " in title
    expect(main.get_by_test_id("stVegaLiteChart").first).to_be_visible()
    drv.screenshot(page, "compare-text")
    drv.assert_clean(page, console)

    # Across the corpus: ranked passages, words, histogram; "Open" goes to the passage.
    pick_view(page, "Across the corpus")
    expect(main).to_contain_text("Against toy_a/r1, toy_pieces/r1 wins most often on")
    expect(main.get_by_test_id("stVegaLiteChart")).to_have_count(2)
    main.locator(".st-key-cmp_open_0 button").click()  # the first passage's button (by its key)
    drv.settle(page)
    query = drv.wait_for_query(page, {"view": ["text"]})
    assert query["view"] == ["text"] and "span" in query
    expect(main.locator("span[style*='outline']").first).to_be_attached()
    drv.assert_clean(page, console)

    # Matched compute: the table and its chart.
    pick_view(page, "Matched compute")
    expect(main.get_by_test_id("stDataFrame").first).to_be_visible()
    expect(main.get_by_test_id("stVegaLiteChart").first).to_be_visible()
    drv.screenshot(page, "compare-matched")
    drv.assert_clean(page, console)

    # Scaling fits: the multiplier of the two laws the zoo was made from.
    pick_view(page, "Scaling fits")
    # (Scoring loaded toy_a/r1 and toy_pieces/r1, whose real sizes replaced the zoo's records,
    # so the multiplier is near, not at, the zoo's 7.59.)
    expect(main).to_contain_text(re.compile(r"toy_a needs [0-9.]+× the compute of toy_pieces \[[0-9.]+×, [0-9.]+×\]"))
    expect(main.get_by_test_id("stVegaLiteChart").first).to_be_visible()
    assert drv.wait_for_query(page, {"view": ["scaling"]})["view"] == ["scaling"]
    drv.screenshot(page, "compare-scaling")
    drv.assert_clean(page, console)

