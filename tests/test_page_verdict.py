"""AppTest of the verdicts: the Evaluation page's paired verdict and flags, the compare card on
equal terms (and its "evaluate both" button), suspect runs in the Models table and defaults."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import toyzoo

from sandbox.evaluation import results, run
from sandbox.evaluation.data import BUNDLED_LABEL, load_documents
from sandbox.zoo import sanity


@pytest.fixture(autouse=True)
def _own_cache(monkeypatch, tmp_path):
    monkeypatch.setenv("SANDBOX_CACHE_DIR", str(tmp_path / "cache"))


@pytest.fixture
def zoo(tmp_path) -> Path:
    """toy_a (a trained-like run and an untrained one), toy_b, toy_pieces (another tokenizer)."""
    models = tmp_path / "models"
    toyzoo.add_untrained_run(toyzoo.make_toy_a(models), "random_init")  # sorts before run1
    toyzoo.make_toy_b(models)
    toyzoo.make_toy_pieces(models)
    return models


def _plain(text: str) -> str:
    """Text as a person reads it: without the backslashes that keep Markdown from rendering it."""
    return re.sub(r"\\(.)", r"\1", str(text))


def _texts(at) -> str:
    parts = [m.value for m in at.markdown] + [e.value for e in at.error] + [w.value for w in at.warning]
    parts += [c.value for c in at.caption] + [s.value for s in at.success] + [i.value for i in at.info]
    return "\n".join(_plain(p) for p in parts)


def _open(app_at, models: Path, page: str, query: dict | None = None):
    at = app_at(models)
    for key, value in (query or {}).items():
        at.query_params[key] = value
    at.run()
    at.switch_page(page).run()
    assert not at.exception, at.exception
    return at


def _results(at):
    frame = next(df.value for df in at.dataframe if "bits_per_byte" in getattr(df.value, "columns", []))
    return getattr(frame, "data", frame)  # a Styler carries its frame in .data


def test_evaluation_verdict_bpb_first_and_paired(app_at, zoo):
    from pages import common

    query = {"runs": ["toy_a/run1", "toy_pieces/run1", "toy_a/random_init"], "docs": "30", "k": ["1"]}
    at = _open(app_at, zoo, "pages/evaluation.py", query)
    at.button(key="ev_go").click().run()
    assert not at.exception, at.exception
    table = _results(at)
    assert list(table.columns[:3]) == ["run", "check", "bits_per_byte"]  # bits per byte first
    rows = table.set_index("run")
    assert rows.loc["toy_a/random_init", "check"] == "suspect" and rows.loc["toy_a/run1", "check"] == ""
    # Per token, char-level toy_a wins; per byte, toy_pieces does. The verdict is per byte.
    assert rows.loc["toy_a/run1", "loss"] < rows.loc["toy_pieces/run1", "loss"]
    assert rows.loc["toy_pieces/run1", "bits_per_byte"] < rows.loc["toy_a/run1", "bits_per_byte"]
    verdicts = [_plain(s.value) for s in at.success]
    assert any(v.startswith("toy_pieces/run1 is better than toy_a/run1 by") and "bits/byte [" in v for v in verdicts), verdicts
    text = _texts(at)
    assert "not comparable across tokenizers" in text
    assert sanity.UNTRAINED in text and "toy_a/random_init: loss" in text
    assert "mean little" not in text  # 30 documents
    # Another reference run: the sentences are about it.
    at.selectbox(key="ev_ref").set_value("toy_pieces/run1").run()
    assert not at.exception
    sentences = [_plain(s.value) for s in at.success]
    assert "toy_pieces/run1 is better than toy_a/run1 by" in sentences[0]  # now "run − reference" flips sides
    assert any("toy_pieces/run1 is better than toy_a/random_init" in v for v in sentences), sentences
    paired = next(df.value for df in at.dataframe if "run − reference" in getattr(df.value, "columns", []))
    loss_rows = paired[paired["metric"] == "loss"]
    assert set(loss_rows["verdict"]) == {"not comparable across tokenizers"}
    common.worker_pool().close_all()


def test_small_sample_note(app_at, zoo):
    from pages import common

    at = _open(app_at, zoo, "pages/evaluation.py", {"runs": ["toy_a/run1", "toy_b/cached"], "docs": "5", "k": ["1"]})
    at.button(key="ev_go").click().run()
    assert not at.exception, at.exception
    assert "Intervals from 5 documents mean little" in _texts(at)
    common.worker_pool().close_all()


def test_flagged_runs_are_not_picked_by_default(app_at, zoo):
    from pages import common
    from sandbox.zoo.discovery import find_run

    # Before any check, the first run of toy_a (the untrained one) is a default pick.
    at = _open(app_at, zoo, "pages/evaluation.py")
    assert at.multiselect(key="ev_runs").value == ["toy_a/random_init", "toy_b/cached"]
    sanity.record(find_run(zoo, "toy_a/random_init"), ["weights look untrained"], 10.0, "doctor")
    at = _open(app_at, zoo, "pages/evaluation.py")
    assert at.multiselect(key="ev_runs").value == ["toy_a/run1", "toy_b/cached"]
    at = _open(app_at, zoo, "pages/playground.py")
    assert "toy_a/random_init" not in at.multiselect(key="pg_runs").value
    assert at.multiselect(key="pg_runs").value == ["toy_a/run1", "toy_b/cached"]
    # Named in a link, it is still shown.
    at = _open(app_at, zoo, "pages/evaluation.py", {"runs": ["toy_a/random_init"]})
    assert at.multiselect(key="ev_runs").value == ["toy_a/random_init"]
    common.worker_pool().close_all()


def test_models_table_status_and_card_on_equal_terms(app_at, zoo):
    from pages import common

    at = _open(app_at, zoo, "pages/models.py", {"a": "toy_a/run1", "b": "toy_b/cached"})
    next(b for b in at.button if b.label == "Load every run").click().run()  # the doctor's full check
    runs = at.dataframe[0].value
    status = dict(zip(runs["experiment"] + "/" + runs["run"], runs["status"], strict=True))
    assert status["toy_a/random_init"] == "suspect" and status["toy_a/run1"] == "ok"
    assert any(sanity.UNTRAINED in w.value for w in at.warning)  # the doctor's finding
    # Evaluations on two different texts: nothing compares them, and the card says so.
    from sandbox.worker.pool import WorkerPool

    own = WorkerPool(max_workers=2, device="cpu", timeout=120)
    try:
        docs = load_documents("bundled")
        run.evaluate(own, ["toy_a/run1"], docs[:3], results.EvalSettings(kmax=1), models_dir=zoo, data_label="notes.txt")
        run.evaluate(own, ["toy_b/cached"], docs[:4], results.EvalSettings(kmax=1), models_dir=zoo, data_label=BUNDLED_LABEL)
    finally:
        own.close_all()
    at.run()
    assert not at.exception, at.exception
    card = next(df.value for df in at.dataframe if "B − A" in getattr(df.value, "columns", [])).set_index("metric")
    assert card.loc["evaluated on", "toy_a/run1"] == "3 documents of notes.txt"
    assert card.loc["evaluated on", "toy_b/cached"] == f"4 documents of {BUNDLED_LABEL}"
    assert card.loc["evaluated on", "B − A"] == "not evaluated on the same text"
    assert card.loc["eval bits per byte", "toy_a/run1"] == "–"
    assert any("not evaluated on the same text" in w.value for w in at.warning)
    # One click evaluates both on the bundled corpus; the card then compares them, named.
    at.button(key="card_eval").click().run()
    assert not at.exception, at.exception
    card = next(df.value for df in at.dataframe if "B − A" in getattr(df.value, "columns", [])).set_index("metric")
    assert card.loc["evaluated on", "B − A"] == "same text and settings"
    assert card.loc["evaluated on", "toy_a/run1"] == f"100 documents of {BUNDLED_LABEL}"
    assert card.loc["eval bits per byte", "toy_a/run1"] != "–"
    assert any(m.value.startswith("**Verdict:**") for m in at.markdown)
    assert not any("not evaluated on the same text" in w.value for w in at.warning)
    assert all(b.key != "card_eval" for b in at.button)
    common.worker_pool().close_all()
