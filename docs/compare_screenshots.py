"""Make the README's Compare screenshots: docs/compare-*.png, in screenshot mode.

    .venv/bin/python docs/compare_screenshots.py

Builds the zoo of the Compare tests (tests/comparezoo.py: two tokenizers, known scaling laws)
in a temporary folder, starts the app on it (tests/browser/appdriver.py), scores two runs on
a sample of the bundled corpus and saves one PNG per view. Needs /usr/bin/chromium.
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]  # a script, not a module: the checkout's helpers

from playwright.sync_api import sync_playwright  # noqa: E402

from tests.browser import appdriver as drv  # noqa: E402

RUNS = ["toy_a/r1", "toy_pieces/r1"]
VIEWS = {
    "text": {"view": "text", "doc": "2", "colour": "reference"},
    "corpus": {"view": "corpus"},
    "matched": {"view": "matched"},
    "scaling": {"view": "scaling"},
}


def main() -> None:
    """Build the zoo, start the app, save docs/compare-<view>.png for each view."""
    import comparezoo

    with tempfile.TemporaryDirectory() as tmp:
        models, cache = Path(tmp) / "models", Path(tmp) / "cache"
        os.environ["SANDBOX_CACHE_DIR"] = str(cache)
        comparezoo.make_compare_zoo(models)
        env = {"SANDBOX_MODELS_DIR": None, "SANDBOX_TOKEN": None, "SANDBOX_CACHE_DIR": str(cache), "SANDBOX_DEVICE": "cpu"}
        server = drv.start_server(app_args=["--models-dir", str(models)], env=env, log_name="compare-screenshots")
        try:
            with sync_playwright() as pw:
                browser = pw.chromium.launch(executable_path=str(drv.CHROMIUM), args=drv.CHROMIUM_ARGS)
                page = browser.new_page(viewport={"width": 1400, "height": 1000})
                page.set_default_timeout(120_000)
                base = {"runs": RUNS, "docs": "20"}
                drv.open_page(page, server.url("compare", {**base, "view": "text"}))
                page.locator(".st-key-cmp_score button").click()  # score both runs once
                drv.settle(page)
                comparezoo.record_sizes(models)  # the zoo's sizes, not the toys' real ones, for the fits
                for name, query in VIEWS.items():
                    drv.open_page(page, server.url("compare", {**base, **query, "screenshot": "1"}))
                    page.wait_for_timeout(1500)  # charts draw after the script has finished
                    shot = drv.screenshot(page, f"compare-{name}")
                    (ROOT / "docs" / f"compare-{name}.png").write_bytes(shot.read_bytes())
                    print(f"docs/compare-{name}.png")
                browser.close()
        finally:
            server.stop()


if __name__ == "__main__":
    main()
