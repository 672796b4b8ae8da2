"""The Loss curves page on a synthetic lab of 60 runs, in Chromium: find runs in the table,
plot the filtered ones, group them by a config key."""

from __future__ import annotations

from collections.abc import Iterator
from urllib.parse import parse_qs, urlsplit

import pytest
from playwright.sync_api import Page, expect

from sandbox.zoo import synthetic

from . import appdriver as drv

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def lab_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[drv.Server]:
    if not drv.CHROMIUM.exists():
        pytest.skip(f"{drv.CHROMIUM} is missing")
    models = tmp_path_factory.mktemp("lab_models")
    synthetic.write_lab(models, runs=60, rows=300)
    env = {"SANDBOX_MODELS_DIR": None, "SANDBOX_TOKEN": None, "SANDBOX_CACHE_DIR": str(models.parent / "lab_cache")}
    server = drv.start_server(app_args=["--models-dir", str(models)], env=env, log_name="lab-server")
    try:
        yield server
    finally:
        server.stop()


def test_find_filter_and_plot_runs_from_the_table(lab_server, page: Page, console: drv.ConsoleLog) -> None:
    drv.open_page(page, lab_server.url("loss_curves", {"metric": "validation loss"}))
    main = drv.main(page)
    expect(main.get_by_test_id("stVegaLiteChart").first).to_be_visible(timeout=drv.RUN_TIMEOUT_MS)
    expect(main).to_contain_text("Runs (60 plotted)")
    expect(main).to_contain_text("60 runs overlap")
    main.get_by_text("Find runs: a table of 60 runs").click()
    search = drv.widget(page, "stTextInput", "Search runs").locator("input")
    search.fill("dim=256")
    search.press("Enter")
    drv.settle(page)
    expect(main).to_contain_text("20 of 60 runs.")
    main.get_by_role("button", name="Plot all 20 filtered").click()
    drv.settle(page)
    plotted: list[str] = []
    for _ in range(300):  # the URL is written at the end of the rerun the click started
        plotted = parse_qs(urlsplit(page.url).query).get("runs", [])
        if len(plotted) == 20:
            break
        page.wait_for_timeout(100)
    assert len(plotted) == 20
    expect(main).to_contain_text("Runs (20 plotted)")
    drv.screenshot(page, "lab-filtered")
    drv.assert_clean(page, console)


def test_grouped_by_a_config_key(lab_server, page: Page, console: drv.ConsoleLog) -> None:
    query = {"metric": "validation loss", "group": ["dim", "tokenizer"], "band": "std"}
    drv.open_page(page, lab_server.url("loss_curves", query))
    main = drv.main(page)
    expect(main.get_by_test_id("stVegaLiteChart").first).to_be_visible(timeout=drv.RUN_TIMEOUT_MS)
    expect(main).to_contain_text("One line per group: the mean of its runs, with a band of ± 1 std")
    cells = [c for table in drv.table_cells(main) for c in table]
    assert "dim=128 · tokenizer=bpe" in cells and "dim=64 · tokenizer=char" in cells
    page.wait_for_timeout(500)
    drv.screenshot(page, "lab-grouped")
    drv.assert_clean(page, console)
