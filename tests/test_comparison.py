"""The comparison card and the scaling points, on toy runs."""

from __future__ import annotations

import math

import pytest

from sandbox.evaluation import card as comparison
from sandbox.figures import tables
from sandbox.zoo import accounting
from sandbox.zoo.discovery import find_experiment, find_run


def test_card_markdown_names_what_differs(toy_models, pool):
    ea, eb = find_experiment(toy_models, "toy_a"), find_experiment(toy_models, "toy_b")
    ra, rb = find_run(toy_models, "toy_a/run1"), find_run(toy_models, "toy_b/cached")
    fa = accounting.run_figures(ra, pool.client(ea).request("params", run="run1"))
    fb = accounting.run_figures(rb, pool.client(eb).request("params", run="cached"))
    # toy_a logs no tokens column: computed from train_config (4 x 2 x 64 per step).
    assert fa["tokens_seen"] == 190 * 4 * 2 * 64 and fa["tokens_seen_source"].startswith("computed")
    assert fb["tokens_seen"] is None  # toy_b has no train_config.json: unknown, not faked
    assert fa["best_val_loss"] == min(3.6 - s / 120 for s in range(0, 200, 10))
    card = comparison.summary_card(ra, rb, ea, eb, fa, fb, None, {"toy_a/run1": ["3 documents of notes.txt"]})
    md = comparison.card_markdown(card)
    assert "### toy_a/run1 vs toy_b/cached" in md
    assert "| parameters | 1,424 | 2,280 | +60.1% |" in md
    assert "`vocab_len`: 36 → 33" in md
    assert "modules/model.py (changed" in md
    # Evaluations on different texts (here: one run never evaluated) are never compared.
    assert "| evaluated on | 3 documents of notes.txt | never evaluated | not evaluated on the same text |" in md
    assert "| eval bits per byte | – | – | – |" in md
    assert "**Evaluation:** not evaluated on the same text" in md
    points = accounting.scaling_points([fa, fb])
    chart = tables.scaling_scatter(points, "non_embedding", "non-embedding parameters")
    assert len(chart.to_dict()["layer"]) == 2


def test_table_chart_renders_every_cell():
    import pandas as pd

    frame = pd.DataFrame({"run": ["a/x", "b/y"], "loss": [1.5, None]})
    spec = tables.table_chart(frame, "t").to_dict()
    values = next(iter(spec["datasets"].values()))
    texts = {v["text"] for v in values}
    assert {"run", "loss", "a/x", "b/y", "1.5", ""} <= texts


def _ink_gaps(png: bytes, min_gap: int = 8) -> int:
    """How many blank vertical bands at least ``min_gap`` px wide separate the ink of a
    rendered table (the gutters between its columns)."""
    import io

    import numpy as np
    from PIL import Image

    image = Image.open(io.BytesIO(png)).convert("RGBA")
    gray = np.asarray(Image.alpha_composite(Image.new("RGBA", image.size, "white"), image).convert("L"))
    ink = (gray < 160).any(axis=0)
    columns = np.flatnonzero(ink)
    gaps = np.diff(columns) - 1
    return int((gaps >= min_gap).sum())


def test_table_chart_columns_never_overlap():
    """The "whole comparison as PNG" table: long interval cells and long headers each get
    the room their text needs, so every column is separated from the next by blank space."""
    import pandas as pd

    from sandbox.figures import export

    frame = pd.DataFrame(
        {
            "run": ["template/gpt2_atto_with_a_long_name", "kv_variant/gqa_atto"],
            "top1": ["0.3141 [0.3012, 0.3267]", "0.2718 [0.2601, 0.2833]"],
            "perplexity": ["5.5406e+34 [5.5406e+34, 5.5406e+34]", "4.7568 [4.5012, 4.9911]"],
            "roundtrip_changed": ["0.00%", "12.50%"],
            "tokens_per_s": ["12,345", "987"],
        }
    )
    png = export.to_png(tables.table_chart(frame), scale=1)
    assert _ink_gaps(png) >= len(frame.columns) - 1


def test_flops_axis_uses_the_stored_breakdown(tmp_path, monkeypatch, pool):
    import json

    import toyzoo

    from sandbox.curves import prepare
    from sandbox.zoo import logread

    monkeypatch.setenv("SANDBOX_CACHE_DIR", str(tmp_path / "cache"))
    root = toyzoo.make_toy_a(tmp_path / "models")
    run = find_run(tmp_path / "models", "toy_a/run1")
    client = pool.client(find_experiment(tmp_path / "models", "toy_a"))
    assert accounting.flops_per_token(run)[0] is None  # not counted yet: unavailable, not guessed
    assert accounting.store_breakdown(run, client.request("params", run="run1"))
    per_token, how = accounting.flops_per_token(run)
    assert per_token is None and "n_layers" in how  # toy_a's config has no layer count
    # Give the toy a layer count: the code changed, so the stored count no longer applies.
    config = root / "config.py"
    config.write_text(config.read_text().replace("    dim: int = 16\n", "    dim: int = 16\n    n_layers: int = 1\n"))
    run.model_config_path.write_text(json.dumps(run.model_config() | {"n_layers": 1}))
    assert accounting.cached_breakdown(run) is None
    client = pool.client(find_experiment(tmp_path / "models", "toy_a"))  # a worker for the new code
    breakdown = client.request("params", run="run1")
    assert accounting.store_breakdown(run, breakdown)
    per_token, how = accounting.flops_per_token(run)
    assert per_token == 6 * breakdown["non_embedding"] + 12 * 1 * 64 * 16 and "6·N" in how
    tokens_per_step, _ = accounting.tokens_per_step(run)
    expected = per_token * tokens_per_step
    assert tokens_per_step == 4 * 2 * 64
    parsed = logread.read_logs({run.id: run.log_path})
    view = prepare.prepare(parsed, {run.id: run}, prepare.CurveSettings(runs=(run.id,), metrics=("train loss",), x="flops"))
    assert (view.draw["x"] == view.draw["step"] * expected).all()


def test_card_on_the_same_text_names_it_and_gives_the_paired_verdict(toy_models, pool, tmp_path, monkeypatch):
    from sandbox.evaluation import cache, results
    from sandbox.evaluation import run as evaluation_run
    from sandbox.evaluation.data import BUNDLED_LABEL, load_documents
    from sandbox.figures import export

    monkeypatch.setenv("SANDBOX_CACHE_DIR", str(tmp_path))
    ids = ["toy_a/run1", "toy_b/cached"]
    docs = load_documents("bundled")[:6]
    evaluation_run.evaluate(pool, ids[:1], docs[:3], results.EvalSettings(kmax=1), models_dir=toy_models, data_label="notes.txt")
    evaluation_run.evaluate(pool, ids, docs, results.EvalSettings(kmax=1), models_dir=toy_models, data_label=BUNDLED_LABEL)
    shared = cache.common_evaluation(toy_models, ids)
    assert shared is not None and shared.data["source"] == BUNDLED_LABEL  # not the notes.txt result
    ea, eb = find_experiment(toy_models, "toy_a"), find_experiment(toy_models, "toy_b")
    ra, rb = find_run(toy_models, ids[0]), find_run(toy_models, ids[1])
    fa = accounting.run_figures(ra, pool.client(ea).request("params", run="run1"))
    fb = accounting.run_figures(rb, pool.client(eb).request("params", run="cached"))
    card = comparison.summary_card(ra, rb, ea, eb, fa, fb, shared, cache.evaluated_texts(toy_models, ids))
    table = comparison.card_table(card).set_index("metric")
    label = f"6 documents of {BUNDLED_LABEL}"
    assert table.loc["evaluated on", ids[0]] == table.loc["evaluated on", ids[1]] == label
    bpb = {r.run_id: r.sums.nll.sum() / math.log(2) / r.sums.bytes.sum() for r in shared.results}
    assert table.loc["eval bits per byte", ids[0]] == f"{bpb[ids[0]]:.4f}"
    diff = card["evaluation"]["paired"][0]
    assert diff == pytest.approx(bpb[ids[1]] - bpb[ids[0]])
    d = card["evaluation"]["digits"]  # as many decimals as the interval's Monte Carlo noise allows
    assert table.loc["eval bits per byte", "B − A"].startswith(f"{diff:+.{d}f} [")
    md = comparison.card_markdown(card)
    assert f"**Evaluation:** {label}, the same settings for both." in md
    assert card["evaluation"]["verdict"] in md and "Intervals from 6 documents mean little" in md
    # The PNG export draws the same table: the text's name is one of its cells.
    chart = tables.table_chart(comparison.card_table(card), "t")
    texts = {v["text"] for v in next(iter(chart.to_dict()["datasets"].values()))}
    assert label in texts
    assert export.to_png(chart).startswith(b"\x89PNG")


def test_card_names_a_suspect_run(tmp_path, pool, monkeypatch):
    import toyzoo

    from sandbox.evaluation import cache, results
    from sandbox.evaluation import run as evaluation_run
    from sandbox.evaluation.data import BUNDLED_LABEL, load_documents
    from sandbox.zoo import sanity

    monkeypatch.setenv("SANDBOX_CACHE_DIR", str(tmp_path / "cache"))
    models = tmp_path / "models"
    toyzoo.add_untrained_run(toyzoo.make_toy_a(models), "random_init")
    ids = ["toy_a/run1", "toy_a/random_init"]
    evaluation_run.evaluate(pool, ids, load_documents("bundled")[:3], results.EvalSettings(kmax=1), models_dir=models,
                data_label=BUNDLED_LABEL)
    exp = find_experiment(models, "toy_a")
    ra, rb = find_run(models, ids[0]), find_run(models, ids[1])
    params = pool.client(exp).request("params", run="run1")
    card = comparison.summary_card(ra, rb, exp, exp, accounting.run_figures(ra, params),
                                   accounting.run_figures(rb, params), cache.common_evaluation(models, ids))
    assert len(card["flags"]) == 1 and sanity.UNTRAINED in card["flags"][0]
    assert card["evaluation"]["verdict"].startswith("toy_a/run1 is better than toy_a/random_init by")
    assert f"**Check:** {card['flags'][0]}" in comparison.card_markdown(card)
