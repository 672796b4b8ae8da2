"""Experiments of other codebases in a real browser: a models folder holding a nanoGPT
checkout, an adapter, a Hugging Face Trainer folder and a contract toy (`kindzoo`), and a
broken nanoGPT checkout beside them."""

from __future__ import annotations

import importlib.util
from collections.abc import Iterator

import pytest
from playwright.sync_api import Page, expect

from . import appdriver as drv

pytestmark = pytest.mark.browser

import kindzoo  # noqa: E402
import toyzoo  # noqa: E402

HAS_TRANSFORMERS = importlib.util.find_spec("transformers") is not None
HF_RUN = "hf_gpt2/final" if HAS_TRANSFORMERS else "toy_a/run1"


@pytest.fixture(scope="module")
def kinds_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[drv.Server]:
    if not drv.CHROMIUM.exists():
        pytest.skip(f"{drv.CHROMIUM} is missing")
    models = tmp_path_factory.mktemp("kinds_models")
    toyzoo.make_toy_a(models)
    kindzoo.make_nanogpt(models)
    kindzoo.make_adapter(models)
    if HAS_TRANSFORMERS:
        kindzoo.make_huggingface(models)
    broken = kindzoo.make_nanogpt(models, name="nanogpt_broken", steps=2)
    (broken / "out-char" / "ckpt.pt").write_bytes(b"PK\x03\x04 not a checkpoint")
    env = {"SANDBOX_MODELS_DIR": None, "SANDBOX_TOKEN": None, "SANDBOX_CACHE_DIR": str(models.parent / "kinds_cache")}
    server = drv.start_server(app_args=["--models-dir", str(models)], env=env, log_name="kinds-server")
    try:
        yield server
    finally:
        server.stop()


def test_loss_curves_overlay_runs_of_three_kinds(kinds_server, page: Page, console: drv.ConsoleLog) -> None:
    runs = ["nanogpt/out-char", "own_code/bigram", HF_RUN]
    drv.open_page(page, kinds_server.url("loss_curves", {"runs": runs, "metric": "train loss"}))
    main = drv.main(page)
    expect(main.get_by_test_id("stVegaLiteChart").first).to_be_visible(timeout=drv.RUN_TIMEOUT_MS)
    assert drv.multiselect_values(drv.widget(page, "stMultiSelect", "Runs")) == runs
    headers, rows = drv.table_rows(main.get_by_test_id("stDataFrame").first)
    finals = {row[headers.index("run")]: row[headers.index("final")] for row in rows}
    assert set(finals) == set(runs), finals
    assert all(float(value) > 0 for value in finals.values()), finals
    drv.screenshot(page, "kinds-loss-curves")
    drv.assert_clean(page, console)


def test_evaluation_verdict_between_nanogpt_and_huggingface(kinds_server, page: Page, console: drv.ConsoleLog) -> None:
    runs = ["nanogpt/out-char", HF_RUN]
    drv.open_page(page, kinds_server.url("evaluation", {"runs": runs, "docs": "12", "k": ["1"]}))
    main = drv.main(page)
    main.get_by_role("button", name="Run").click()
    drv.settle(page)
    expect(main.get_by_role("heading", name="Verdict")).to_be_visible(timeout=drv.RUN_TIMEOUT_MS)
    verdict = main.get_by_test_id("stAlert").filter(has_text="bits/byte").first
    expect(verdict).to_contain_text("nanogpt/out-char")
    expect(verdict).to_contain_text(HF_RUN)
    drv.screenshot(page, "kinds-evaluation-verdict")
    drv.assert_clean(page, console)


def test_load_every_run_with_a_broken_checkout_beside_them(kinds_server, page: Page, console: drv.ConsoleLog) -> None:
    drv.open_page(page, kinds_server.url("models"))
    main = drv.main(page)
    main.get_by_role("button", name="Load every run").click()
    drv.settle(page)
    # One sentence for the broken checkpoint, naming its file; every other run loaded.
    expect(main).to_contain_text("out-char/ckpt.pt")
    headers, rows = drv.table_rows(main.get_by_test_id("stDataFrame").first)
    status = {f"{r[headers.index('experiment')]}/{r[headers.index('run')]}": r[headers.index("status")] for r in rows}
    assert status.pop("nanogpt_broken/out-char") == "broken", status
    assert set(status.values()) == {"ok"}, status
    kinds = {r[headers.index("kind")] for r in rows}
    assert {"nanoGPT", "your own adapter", "templateGPT"} <= kinds, kinds
    drv.screenshot(page, "kinds-models-loaded")
    assert not [p for p in drv.problems(page) if "Traceback" in p]
