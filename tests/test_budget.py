"""The training budget beside every comparison: steps, tokens and FLOPs trained in the runs
table and the Evaluation table, a verdict between runs whose budgets differ by more than
10 % says so, and Config diff covers the training config."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import toyzoo

from sandbox.evaluation import metrics, tables
from sandbox.evaluation.report import Report
from sandbox.evaluation.results import EvalSettings, RunResult
from sandbox.zoo import accounting, catalog
from sandbox.zoo.discovery import find_run


@pytest.fixture(autouse=True)
def _own_cache(tmp_path, monkeypatch) -> None:
    """Parameter counts and sanity records go to this test's own cache folder."""
    monkeypatch.setenv("SANDBOX_CACHE_DIR", str(tmp_path / "cache"))


def _zoo(tmp_path: Path) -> Path:
    """toy_a with runs `long` (log to step 190) and `short` (the same log cut at step 90)."""
    models = tmp_path / "models"
    root = toyzoo.make_toy_a(models, runs=("long", "short"))
    log = root / "trained/short/log_data.csv"
    lines = log.read_text().splitlines(keepends=True)
    log.write_text("".join(lines[:11]))  # header + steps 0..90
    return models


def test_the_runs_table_gives_steps_tokens_and_flops_trained(tmp_path) -> None:
    models = _zoo(tmp_path)
    rows = {r["run"]: r for r in catalog.runs_table(models)}
    assert {"steps", "tokens_trained", "train_flops"} <= set(catalog.COLUMNS)
    long, short = rows["long"], rows["short"]
    assert (long["steps"], short["steps"]) == (190, 90)
    # tokens = last step x batch x accumulation x context, from the run's own configs
    per_step, _ = accounting.tokens_per_step(find_run(models, "toy_a/long"))
    assert long["tokens_trained"] == 190 * per_step and short["tokens_trained"] == 90 * per_step
    assert long["train_flops"] is None  # no worker has counted the parameters: blank, never a guess


def test_flops_trained_once_the_parameters_are_known(tmp_path) -> None:
    models = _zoo(tmp_path)
    cfg_path = tmp_path / "models/toy_a/trained/long/model_config.json"
    cfg_path.write_text(json.dumps({**json.loads(cfg_path.read_text()), "n_layers": 2}))  # a shape to count FLOPs by
    run = find_run(models, "toy_a/long")
    accounting.store_breakdown(run, {"total": 1000, "non_embedding": 800, "embedding": 200})
    budget = accounting.training_budget(run)
    assert budget["train_flops"] == accounting.training_compute(800, run.model_config(), budget["tokens_trained"])
    assert budget["train_flops"] > 0


def test_budget_gap_says_more_than_ten_percent_apart() -> None:
    a = {"steps": 1200.0, "tokens_trained": 4.9e6, "train_flops": None}
    b = {"steps": 600.0, "tokens_trained": 2.46e6, "train_flops": None}
    said = accounting.budget_gap(a, b)
    assert said and "tokens 4.9M vs 2.46M" in said
    assert accounting.budget_gap(a, dict(a, tokens_trained=a["tokens_trained"] * 1.05)) is None
    assert accounting.budget_gap({"steps": 100.0}, {"steps": 200.0}).startswith("their training budgets differ: steps")
    assert accounting.budget_gap({}, b) is None  # nothing known: nothing said


def _sums(seed: int, n: int = 40) -> metrics.DocSums:
    rng = np.random.default_rng(seed)
    n_bytes = rng.integers(200, 800, n)
    tokens = n_bytes // 3
    return metrics.DocSums(tokens, n_bytes * rng.uniform(0.8, 1.2, n), n_bytes, (tokens // 2)[:, None])


def test_the_evaluation_verdict_and_table_carry_the_budget(tmp_path) -> None:
    models = _zoo(tmp_path)
    a = _sums(0)
    b = metrics.DocSums(a.tokens, a.nll * 0.8, a.bytes, a.hits)  # clearly better
    info = {"tokenizer": "char", "vocab_size": 36}
    report = Report([RunResult("toy_a/long", dict(info), a), RunResult("toy_a/short", dict(info), b)],
                    EvalSettings(kmax=1), {"documents": 40, "source": "text"})
    report.check_sanity(models)
    bpb = next(r for r in report.paired([1], n_resamples=300) if r["metric"] == "bits_per_byte")
    assert bpb["verdict"].startswith("toy_a/short is better than toy_a/long by")
    assert "training budgets differ" in bpb["verdict"] and "Matched compute" in bpb["verdict"]
    assert bpb["budget"].startswith("toy_a/short and toy_a/long:")
    table = tables.summary_table(report.results, [1], n_resamples=50).set_index("run")
    assert table.loc["toy_a/long", "steps"] == 190 and table.loc["toy_a/short", "steps"] == 90
    assert table.loc["toy_a/long", "tokens_trained"] > table.loc["toy_a/short", "tokens_trained"]
    # Equal budgets: the verdict says nothing of them.
    same = Report([RunResult("toy_a/long", dict(info), a), RunResult("toy_a/long", dict(info), b)],
                  EvalSettings(kmax=1), {"documents": 40, "source": "text"})
    same.check_sanity(models)
    row = next(r for r in same.paired([1], n_resamples=300) if r["metric"] == "bits_per_byte")
    assert "budget" not in row["verdict"] and row["budget"] is None


def test_config_diff_covers_the_training_config(tmp_path) -> None:
    models = _zoo(tmp_path)
    short = tmp_path / "models/toy_a/trained/short/train_config.json"
    short.write_text(json.dumps({"batch_size": 4, "gradient_accumulation_steps": 2, "learning_rate": 3e-4}))
    configs = {rid: catalog.run_configs(find_run(models, rid)) for rid in ("toy_a/long", "toy_a/short")}
    diff = {row["key"]: row for row in catalog.config_diff(configs)}
    # The model configs are identical; only the training config tells the runs apart.
    assert list(diff) == ["train.learning_rate"]
    assert diff["train.learning_rate"]["toy_a/short"] == 3e-4
