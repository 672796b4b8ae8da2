"""The Models page in Chromium: it opens without loading anything, "Load every run" loads
each run with one progress bar for all and fills in the parameter counts, and "What changed" diffs
the fork against the template it was forked from, naming that base."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

from sandbox.zoo.codediff import default_base, default_target
from sandbox.zoo.discovery import discover

from . import appdriver as drv
from .test_pages import MODELS, trained_run_ids

pytestmark = pytest.mark.browser


def _parameters(page: Page) -> dict[str, str]:
    headers, rows = drv.table_rows(drv.main(page).get_by_test_id("stDataFrame").first)
    return {f"{r[headers.index('experiment')]}/{r[headers.index('run')]}": r[headers.index("parameters")] for r in rows}


def discover_run_ids() -> list[str]:
    return [run.id for exp in discover(MODELS) for run in exp.runs]


def test_load_every_run_then_what_changed(server: drv.Server, page: Page, console: drv.ConsoleLog) -> None:
    runs = trained_run_ids()
    if not runs:
        pytest.skip("no trained shipped run")
    drv.open_page(page, server.url("models"))
    main = drv.main(page)
    expect(main.get_by_role("button", name="Load every run")).to_be_visible()
    main.get_by_role("button", name="Load every run").click()
    drv.settle(page)
    expect(main.get_by_test_id("stProgress")).to_have_count(1)  # one bar, whatever the number of runs
    every = len(discover_run_ids())
    expect(main).to_contain_text(f"{len(runs)} of {every} runs loaded")
    counted = _parameters(page)
    for run_id in runs:
        assert re.fullmatch(r"\d{1,3}(,\d{3})*", counted[run_id]), counted  # a count, never "None"
    drv.screenshot(page, "models-after-load")
    drv.assert_clean(page, console)

    exps = discover(MODELS)
    target = default_target(exps)
    base = default_base(target, exps)
    main.get_by_role("tab", name="What changed").click()
    drv.settle(page)
    expect(main).to_contain_text(f"Diff of {target.name} against its base {base.name}")
    assert drv.selectbox_value(drv.widget(page, "stSelectbox", "Compared with (base)")) == base.name
    drv.screenshot(page, "models-what-changed")
    # Switching the experiment: the box shows the base the diff is made against, never the target.
    # (A rerun that changes the page above the tabs may show the first tab again: reopen it.)
    def pick_target(name: str) -> str:
        drv.selectbox_set(page, drv.widget(page, "stSelectbox", "Experiment"), name)
        main.get_by_role("tab", name="What changed").click()
        drv.settle(page)
        return drv.selectbox_value(drv.widget(page, "stSelectbox", "Compared with (base)"))

    others = [e for e in exps if e.name != target.name]
    if others:
        other = others[0]
        shown = pick_target(other.name)
        assert shown != other.name and shown == default_base(other, exps).name
        expect(main).to_contain_text(f"Diff of {other.name} against its base {shown}")
        assert pick_target(target.name) == base.name
    drv.assert_clean(page, console)
