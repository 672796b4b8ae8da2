"""Every page of the app in headless Chromium, on the shipped models.

Each test opens a page the way a visitor does, waits for the script to finish, saves a
full-page screenshot under test-artifacts/screenshots/ and checks that no exception, no
red error box and no browser console error is shown. A page whose file does not exist yet
is skipped with that reason.
"""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

from sandbox.zoo.discovery import discover

from . import appdriver as drv

pytestmark = pytest.mark.browser

MODELS = drv.PROJECT_ROOT / "models"
APP_NAVIGATION = ["Overview", "Models", "Loss curves", "Evaluation", "Playground"]


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
    expect(nav).to_have_count(len(APP_NAVIGATION))
    for link, title in zip(nav.all(), APP_NAVIGATION, strict=True):
        expect(link).to_have_accessible_name(title)
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


def trained_run_ids() -> list[str]:
    return [run.id for exp in discover(MODELS) for run in exp.runs if run.weights.is_file()]


def two_runs() -> list[str]:
    """Two trained shipped runs, from two experiments when there are two (skip while training)."""
    runs = trained_run_ids()
    firsts = list(dict.fromkeys(r.split("/")[0] for r in runs))
    picked = [next(r for r in runs if r.startswith(e + "/")) for e in firsts][:2]
    picked += [r for r in runs if r not in picked][: 2 - len(picked)]
    if len(picked) < 2:
        pytest.skip(f"needs two trained shipped runs; found {runs}")
    return picked


def column_of(page: Page, run_id: str):
    """The Playground's result column of ``run_id`` (its header names the run; stats say tokens).

    The history below holds columns like it; the live result comes first.
    """
    return (
        drv.main(page)
        .get_by_test_id("stColumn")
        .filter(has_text=run_id)
        .filter(has_text=re.compile(r"\d+ tokens"))
        .first
    )


def test_loss_curves_page_draws_the_logs(server: drv.Server, page: Page, console: drv.ConsoleLog) -> None:
    require_page("pages/loss_curves.py")
    logged = [run.id for exp in discover(MODELS) for run in exp.runs if run.log_path.is_file()]
    drv.open_page(page, server.url("loss_curves"))
    main = drv.main(page)
    expect(main.get_by_role("heading", name="Loss curves")).to_be_visible()
    runs = drv.widget(page, "stMultiSelect", "Runs")
    assert drv.multiselect_values(runs) == logged  # every run with a log, by default
    expect(main.get_by_test_id("stVegaLiteChart").first).to_be_visible()
    # The summary tables name every drawn run beside its final values.
    headers, rows = drv.table_rows(main.get_by_test_id("stDataFrame").first)
    assert "run" in headers and "final" in headers
    assert {row[headers.index("run")] for row in rows} == set(logged)
    for row in rows:
        assert float(row[headers.index("final")]) > 0
    drv.screenshot(page, "2-loss-curves")
    drv.assert_clean(page, console)


def test_evaluation_of_two_runs(server: drv.Server, page: Page, console: drv.ConsoleLog) -> None:
    require_page("pages/evaluation.py")
    runs = two_runs()
    drv.open_page(page, server.url("evaluation", {"runs": runs, "docs": "3", "k": ["1", "5"]}))
    main = drv.main(page)
    expect(main.get_by_role("heading", name="Evaluation")).to_be_visible()
    assert drv.multiselect_values(drv.widget(page, "stMultiSelect", "Runs (any experiments)")) == runs
    drv.screenshot(page, "3-evaluation")
    main.get_by_role("button", name="Run", exact=True).click()
    drv.settle(page)
    expect(main.get_by_role("heading", name="Results")).to_be_visible()
    headers, rows = drv.table_rows(main.get_by_test_id("stDataFrame").first)
    # Bits per byte first; the grid draws only the columns in view (top-k lie further right).
    assert headers[:3] == ["run", "check", "bits per byte"]
    assert [row[0] for row in rows] == runs
    column = {h.rstrip(" ⚠"): i for i, h in enumerate(headers)}  # ⚠: per token, tokenizers differ
    for row in rows:
        bpb, loss = (float(row[column[c]]) for c in ("bits per byte", "loss"))
        assert 0 < bpb < 10 and 0 < loss < 20, row
    expect(main).to_contain_text("3 documents of bundled corpus")
    expect(main.get_by_test_id("stVegaLiteChart").first).to_be_visible()
    drv.screenshot(page, "3-evaluation-results")
    drv.assert_clean(page, console)


def test_generation_with_two_runs(server: drv.Server, page: Page, console: drv.ConsoleLog) -> None:
    require_page("pages/playground.py")
    runs = two_runs()
    query = {"run": runs, "prompt": "Once upon a time, a little fox", "n": "24", "t": "0", "eos": "0"}
    drv.open_page(page, server.url("playground", query))
    main = drv.main(page)
    expect(main.get_by_role("heading", name="Playground")).to_be_visible()
    assert drv.multiselect_values(drv.widget(page, "stMultiSelect", "Runs (1–4, from any experiments)")) == runs
    drv.screenshot(page, "4-playground")
    main.get_by_role("button", name="Generate").click()
    drv.settle(page)
    for run_id in runs:
        column = column_of(page, run_id)
        expect(column).to_contain_text("24 tokens")
        text = column.inner_text().replace(run_id, "")
        assert len(re.sub(r"\d+ tokens.*", "", text, flags=re.S).strip()) > 10, f"{run_id} wrote nothing: {text!r}"
    drv.screenshot(page, "4-playground-generated")
    drv.assert_clean(page, console)
