"""Every page of the app in headless Chromium, on the shipped models.

Each test opens a page the way a visitor does, waits for the script to finish, saves a
full-page screenshot under test-artifacts/screenshots/ and checks that no exception, no
red error box and no browser console error is shown. A page whose file does not exist yet
is skipped with that reason.
"""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect

from sandbox.discovery import discover

from . import appdriver as drv

pytestmark = pytest.mark.browser

MODELS = drv.PROJECT_ROOT / "models"


def require_page(file: str) -> None:
    """Skip while a page file is still being written by someone else."""
    if not (drv.PROJECT_ROOT / file).is_file():
        pytest.skip(f"{file} does not exist yet")


def shipped_run_ids() -> list[str]:
    return [run.id for exp in discover(MODELS) for run in exp.runs]


def test_home_page_shows_the_zoo(server: drv.Server, page: Page, console: drv.ConsoleLog) -> None:
    drv.open_page(page, server.url())
    main = drv.main(page)
    expect(main.get_by_role("heading", name="micro-GPT sandbox")).to_be_visible()
    metrics = {
        m.get_by_test_id("stMetricLabel").inner_text().strip(): m.get_by_test_id("stMetricValue").inner_text().strip()
        for m in main.get_by_test_id("stMetric").all()
    }
    exps = discover(MODELS)
    assert metrics["Experiments"] == str(len(exps))
    assert metrics["Trained runs"] == str(sum(len(e.runs) for e in exps))
    # The overview table names every run; the sidebar links every page that exists.
    cells = drv.table_cells(main)
    assert cells and {r.split("/")[1] for r in shipped_run_ids()} <= set(cells[0])
    nav = page.get_by_test_id("stSidebarNavLink")
    expect(nav.filter(has_text="Models")).to_have_count(1)
    drv.screenshot(page, "0-home")
    drv.assert_clean(page, console)


def test_models_page_lists_every_run(server: drv.Server, page: Page, console: drv.ConsoleLog) -> None:
    drv.open_page(page, server.url("models"))
    main = drv.main(page)
    expect(main.get_by_role("heading", name="Models")).to_be_visible()
    cells = drv.table_cells(main)[0]
    for run_id in shipped_run_ids():
        assert run_id.split("/")[1] in cells, f"{run_id} not in the runs table"
    assert "ok" in cells
    drv.screenshot(page, "1-models")
    drv.assert_clean(page, console)
