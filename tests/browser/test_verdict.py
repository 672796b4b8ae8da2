"""Verdicts in a real browser, on toy experiments: the compare card only compares evaluations on
the same text (and evaluates both on one click), and the Evaluation page's verdict is per byte
when per-token and per-byte rankings disagree."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from playwright.sync_api import Page, expect

from . import appdriver as drv

pytestmark = pytest.mark.browser

import toyzoo  # noqa: E402


@pytest.fixture(scope="module")
def toy_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[drv.Server]:
    """The app on toy_a, toy_b and toy_pieces; toy_a/run1 and toy_b/cached already evaluated,
    each on another text (results in the server's cache, computed here)."""
    from sandbox.evaluation import results, run
    from sandbox.evaluation.data import BUNDLED_LABEL, load_documents
    from sandbox.worker.pool import WorkerPool

    if not drv.CHROMIUM.exists():
        pytest.skip(f"{drv.CHROMIUM} is missing: apt-get install chromium (CI installs it), or set SANDBOX_CHROMIUM")
    models = tmp_path_factory.mktemp("verdict_models")
    toyzoo.make_toy_a(models)
    toyzoo.make_toy_b(models)
    toyzoo.make_toy_pieces(models)
    cache = tmp_path_factory.mktemp("verdict_cache")
    docs = load_documents("bundled")
    pool = WorkerPool(max_workers=2, device="cpu", timeout=120)
    try:
        run.evaluate(pool, ["toy_a/run1"], docs[:3], results.EvalSettings(kmax=1), models_dir=models,
                    data_label="notes.txt", cache_root=cache / "eval")
        run.evaluate(pool, ["toy_b/cached"], docs[:5], results.EvalSettings(kmax=1), models_dir=models,
                    data_label=BUNDLED_LABEL, cache_root=cache / "eval")
    finally:
        pool.close_all()
    server = drv.start_server(
        app_args=["--models-dir", str(models)],
        env={"SANDBOX_MODELS_DIR": None, "SANDBOX_TOKEN": None, "SANDBOX_CACHE_DIR": str(cache)},
        log_name="verdict-server",
    )
    try:
        yield server
    finally:
        server.stop()


def _card(page: Page):
    return drv.main(page).locator(".st-key-compare_card")


def test_card_after_evaluations_on_different_texts(toy_server: drv.Server, page: Page, console: drv.ConsoleLog) -> None:
    drv.open_page(page, toy_server.url("models", {"a": "toy_a/run1", "b": "toy_b/cached"}))
    drv.main(page).get_by_role("tab", name="Compare two runs").click()
    drv.settle(page)
    card = _card(page)
    expect(card).to_contain_text("not evaluated on the same text")
    expect(card).to_contain_text("3 documents of notes.txt")
    expect(card).to_contain_text("5 documents of bundled corpus, validation split")
    headers, rows = drv.table_rows(card.get_by_test_id("stDataFrame"))
    bpb = next(r for r in rows if r[0] == "eval bits per byte")
    assert bpb[1:] == ["–", "–", "–"], bpb  # no figure compares results on different texts
    drv.screenshot(page, "verdict-card-different-texts")
    card.get_by_role("button", name="Evaluate both on the bundled corpus").click()
    drv.settle(page)
    card = _card(page)
    expect(card).to_contain_text("Verdict:")
    expect(card).not_to_contain_text("not evaluated on the same text")
    headers, rows = drv.table_rows(card.get_by_test_id("stDataFrame"))
    evaluated = next(r for r in rows if r[0] == "evaluated on")
    assert evaluated[1:] == ["100 documents of bundled corpus, validation split"] * 2 + ["same text and settings"]
    bpb = next(r for r in rows if r[0] == "eval bits per byte")
    assert float(bpb[1]) > 0 and float(bpb[2]) > 0 and bpb[3].count("[") == 1, bpb
    expect(card.get_by_role("button", name="Evaluate both on the bundled corpus")).to_have_count(0)
    drv.screenshot(page, "verdict-card-same-text")
    drv.assert_clean(page, console)


def test_evaluation_verdict_when_token_and_byte_rankings_disagree(
    toy_server: drv.Server, page: Page, console: drv.ConsoleLog
) -> None:
    runs = ["toy_a/run1", "toy_pieces/run1"]
    drv.open_page(page, toy_server.url("evaluation", {"runs": runs, "docs": "30", "k": ["1"]}))
    main = drv.main(page)
    main.get_by_role("button", name="Run", exact=True).click()
    drv.settle(page)
    headers, rows = drv.table_rows(main.get_by_test_id("stDataFrame").first)
    assert headers[:3] == ["run", "check", "bits per byte"], headers  # bits per byte first
    assert "loss ⚠" in headers and "top1 ⚠" in headers  # per token: not comparable here
    values = {row[0]: row for row in rows}
    bpb, loss = headers.index("bits per byte"), headers.index("loss ⚠")
    assert float(values["toy_a/run1"][loss]) < float(values["toy_pieces/run1"][loss])  # per token: toy_a
    assert float(values["toy_pieces/run1"][bpb]) < float(values["toy_a/run1"][bpb])  # per byte: toy_pieces
    verdict = main.get_by_test_id("stAlertContentSuccess")
    expect(verdict).to_contain_text("toy_pieces/run1 is better than toy_a/run1 by")
    expect(verdict).to_contain_text("bits/byte [")
    expect(main).to_contain_text("not comparable across tokenizers")
    drv.screenshot(page, "verdict-evaluation")
    drv.assert_clean(page, console)
