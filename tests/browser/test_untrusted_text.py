"""Untrusted text in a real browser: names, log headers and READMEs never make it fetch a URL.

The issue's case: a ``log_data.csv`` column named ``![p](http://HOST/a)`` made every
visitor's browser request that URL from the Loss curves notes. Here a zoo full of such
names is served, the pages that show them are opened, and every request the browser makes
is recorded: none may go to HOST, and the names must be on screen as the text they are.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import toyzoo
from playwright.sync_api import Page, expect

from sandbox.text import WORD_JOINER

from . import appdriver as drv

pytestmark = pytest.mark.browser

HOST = "evil.example"
RUN = f"![r](http:{HOST})"
RUN_ID = f"toy_md/{RUN}"
IMAGE_COLUMN = f"![p](http://{HOST}/a)"
TEXT_COLUMN = f"[c](http://{HOST}/c)"


def _zoo(models: Path) -> None:
    toyzoo.make_toy_a(models)
    root = toyzoo.make_toy_a(models, name="toy_md", runs=(RUN,))
    run_dir = root / "trained" / RUN
    rows = "".join(f"{s},{3 - s / 100},{2 - s / 100},x{s}\n" for s in range(0, 100, 10))
    (run_dir / "log_data.csv").write_text(f"Step,Train Loss,{IMAGE_COLUMN},{TEXT_COLUMN}\n" + rows)
    (run_dir / "README.md").write_text(
        f"# Notes\n\n![plot](http://{HOST}/readme.png)\n\n<img src=\"http://{HOST}/i.png\" alt=\"loss\">\n"
        "Trained for **two** hours.\n"
    )


@pytest.fixture(scope="module")
def marked_server(tmp_path_factory: pytest.TempPathFactory, cache_dir: Path) -> Iterator[drv.Server]:
    if not drv.CHROMIUM.exists():
        pytest.skip(f"{drv.CHROMIUM} is missing")
    models = tmp_path_factory.mktemp("marked_browser") / "models"
    _zoo(models)
    server = drv.start_server(
        app_args=["--models-dir", str(models)],
        env={"SANDBOX_MODELS_DIR": None, "SANDBOX_TOKEN": None, "SANDBOX_CACHE_DIR": str(cache_dir)},
        log_name="marked-server",
    )
    try:
        yield server
    finally:
        server.stop()


def test_hostile_names_are_shown_as_text_and_nothing_is_fetched(marked_server: drv.Server, page: Page) -> None:
    requested: list[str] = []
    page.on("request", lambda request: requested.append(request.url))
    main = drv.main(page)

    drv.open_page(page, marked_server.url("loss_curves", {"run": [RUN_ID], "metric": ["train loss", IMAGE_COLUMN]}))
    notes = main.get_by_test_id("stExpander").filter(has_text="about these logs")
    notes.locator("summary").click()
    drv.settle(page)
    expect(notes).to_contain_text("is not numeric")
    shown = main.inner_text().replace(WORD_JOINER, "")  # invisible: it only keeps GFM from linking
    assert f"Column '{TEXT_COLUMN}' of toy_md/trained/{RUN}/log_data.csv" in shown  # the note, as written
    assert f"{IMAGE_COLUMN} · no best value" in shown  # the summary table's heading
    expect(main.locator(f"a[href*='{HOST}']")).to_have_count(0)
    drv.screenshot(page, "untrusted-loss-curves")

    drv.open_page(page, marked_server.url("models", {"run": RUN_ID}))
    readme = main.get_by_test_id("stExpander").filter(has_text="README.md")
    expect(readme).to_contain_text("(image: plot)")
    expect(readme.locator("strong")).to_have_text("two")  # the README is still Markdown
    drv.screenshot(page, "untrusted-models")

    # The app's own page URLs carry the names in their query; anything fetched from the host,
    # or from a path named after it ("http:evil.example" is relative to the app), is an image.
    fetched = [u for u in requested if HOST in (urlsplit(u).hostname or "") or HOST in urlsplit(u).path]
    assert not fetched, f"the browser fetched {fetched}"
    assert not page.locator(f"img[src*='{HOST}']").count()
