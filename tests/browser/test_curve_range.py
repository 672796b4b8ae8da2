"""Loss curves with one outlier run, in Chromium: the default y range leaves the outlier's
start (loss 65) off the chart so the other runs fill it; "Full y range" shows everything.

The chart is drawn on a canvas, so the check reads pixels: a run's curve is a connected
line, so the rows its colour covers (above the legend) span its drawn height. With the
outlier ignored, the other runs' curves span much of the plot; with the full range they are
squashed into its bottom.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path

import logzoo  # noqa: E402
import numpy as np
import pytest
from playwright.sync_api import Page, expect

from . import appdriver as drv

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def outlier_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[drv.Server, Path]]:
    if not drv.CHROMIUM.exists():
        pytest.skip(f"{drv.CHROMIUM} is missing")
    models = tmp_path_factory.mktemp("outlier_models")
    logzoo.make_vocab_zoo(models)
    env = {"SANDBOX_MODELS_DIR": None, "SANDBOX_TOKEN": None, "SANDBOX_CACHE_DIR": str(models.parent / "cache")}
    server = drv.start_server(app_args=["--models-dir", str(models)], env=env, log_name="outlier-server")
    try:
        yield server, models
    finally:
        server.stop()


def _curve_height(png: bytes, hex_color: str, tolerance: int = 24) -> int:
    """Rows covered by the topmost connected stretch of ``hex_color`` pixels (the curve; the
    legend's symbol, below the axis, is a separate stretch)."""
    from PIL import Image

    rgb = np.asarray(Image.open(io.BytesIO(png)).convert("RGB")).astype(int)
    target = np.array([int(hex_color[i : i + 2], 16) for i in (1, 3, 5)])
    rows = np.flatnonzero((np.abs(rgb - target).max(axis=2) <= tolerance).any(axis=1))
    if rows.size == 0:
        return 0
    gaps = np.flatnonzero(np.diff(rows) > 6)
    first = rows[: gaps[0] + 1] if gaps.size else rows
    return int(first[-1] - first[0] + 1)


def test_default_y_range_leaves_the_outlier_start_out(outlier_server, page: Page, console: drv.ConsoleLog) -> None:
    from sandbox.figures.colors import assign_colors, run_color
    from sandbox.zoo.discovery import all_runs

    server, models = outlier_server
    assign_colors(run.id for run in all_runs(models))  # the app's colours: they depend on the set only
    drv.open_page(page, server.url("loss_curves", {"metric": "validation loss"}))
    main = drv.main(page)
    chart = main.get_by_test_id("stVegaLiteChart").first
    # The chart lives in a fragment that redraws every 2 s: on a busy machine, give it time.
    expect(chart).to_be_visible(timeout=drv.RUN_TIMEOUT_MS)
    page.wait_for_timeout(500)  # let the canvas finish drawing
    robust = {rid: _curve_height(chart.screenshot(), run_color(rid)) for rid in ("big/bpe32k", "small/bpe1k")}
    expect(main).to_contain_text("lie outside the y range")
    expect(main).to_contain_text("Per-token losses of runs with different tokenizers are not comparable")
    drv.screenshot(page, "curves-outlier-default-range")
    drv.assert_clean(page, console)

    page.get_by_test_id("stCheckbox").filter(has_text="Full y range").click()
    drv.settle(page)
    assert "yrange=full" in page.url
    expect(chart).to_be_visible(timeout=drv.RUN_TIMEOUT_MS)
    page.wait_for_timeout(500)
    full = {rid: _curve_height(chart.screenshot(), run_color(rid)) for rid in robust}
    drv.screenshot(page, "curves-outlier-full-range")
    drv.assert_clean(page, console)
    # big/bpe32k falls from 7.2 to 2.4: most of a range of about 1.4..9.3, a sliver of 0..70.
    assert robust["big/bpe32k"] > 100, robust
    for rid in robust:
        assert robust[rid] > 3 * max(full[rid], 1), (robust, full)


def test_two_panels_each_get_their_range(outlier_server, page: Page, console: drv.ConsoleLog) -> None:
    """Faceted by metric, each panel reads its own range (by the panel's metric): it draws cleanly."""
    server, _ = outlier_server
    drv.open_page(page, server.url("loss_curves", {"metric": ["validation loss", "learning rate"]}))
    main = drv.main(page)
    expect(main.get_by_test_id("stVegaLiteChart").first).to_be_visible(timeout=drv.RUN_TIMEOUT_MS)
    expect(main).to_contain_text("lie outside the y range")
    page.wait_for_timeout(500)
    drv.screenshot(page, "curves-outlier-two-panels")
    drv.assert_clean(page, console)
