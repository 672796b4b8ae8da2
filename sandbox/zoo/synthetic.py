"""A synthetic lab: N runs of a sweep, written to disk like real runs, for tests and benchmarks.

Each run folder holds ``model_config.json``, ``train_config.json`` and ``log_data.csv`` (no
weights: enough for curves and tables; the doctor calls such runs broken). The runs sweep
``dim``, ``n_layers``, ``learning_rate`` and the tokenizer (name and vocabulary) and are
spread over experiments that alternate the two real log headers (EXPERIMENT_CONTRACT.md,
fact 8). Some runs diverge (NaN/inf from some step on), some log a single spike to 65, and
some are still growing (fewer rows and a half-written last line). Everything is derived
from the run's index and ``seed``: the same call writes the same bytes.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

V1 = ["Step", "Time Elapsed", "Tokens Per Second", "Train Loss", "Validation Loss",
      "Perplexity", "Learning Rate", "Norm"]  # fmt: skip
V2 = ["Step", "Learning Rate", "Train Loss", "Validation Loss", "Perplexity", "Time Elapsed"]

DIMS = (64, 128, 256)
LAYERS = (2, 4, 6)
LEARNING_RATES = (3e-4, 1e-3, 3e-3)
TOKENIZERS = (("bpe", 2048), ("char", 96))
RUNS_PER_EXPERIMENT = 100
EVERY = 10  # steps between two log rows

# Which runs misbehave (by index), so that any lab of more than ~30 runs has each kind.
DIVERGES = (17, 5)  # i % 17 == 5: NaN/inf from 60 % of the run on
SPIKES = (29, 7)  # i % 29 == 7: one row of train loss 65 half-way
GROWING = (23, 11)  # i % 23 == 11: 70 % of the rows, and a half-written last line


@dataclass(frozen=True)
class SyntheticRun:
    """What the generator made of one run index (for tests that check the data it wrote)."""

    id: str
    header: tuple[str, ...]
    model_config: dict
    train_config: dict
    diverges: bool
    spikes: bool
    growing: bool


def _is(i: int, rule: tuple[int, int]) -> bool:
    return i % rule[0] == rule[1]


def plan(runs: int) -> list[SyntheticRun]:
    """The runs a lab of ``runs`` runs holds: ids, headers, configs and misbehaviour."""
    out = []
    for i in range(runs):
        exp = i // RUNS_PER_EXPERIMENT
        dim = DIMS[i % len(DIMS)]
        layers = LAYERS[(i // len(DIMS)) % len(LAYERS)]
        lr = LEARNING_RATES[(i // (len(DIMS) * len(LAYERS))) % len(LEARNING_RATES)]
        tokenizer, vocab = TOKENIZERS[(i // (len(DIMS) * len(LAYERS) * len(LEARNING_RATES))) % len(TOKENIZERS)]
        model = {"dim": dim, "n_layers": layers, "n_heads": 4, "vocab_len": vocab, "tokenizer": tokenizer,
                 "max_seq_len": 256, "device": "mps"}  # fmt: skip
        train = {"learning_rate": lr, "batch_size": 16, "gradient_accumulation_steps": 1, "seed": i}
        out.append(
            SyntheticRun(
                id=f"lab_{chr(ord('a') + exp)}/r{i:04d}",
                header=tuple(V1 if exp % 2 == 0 else V2),
                model_config=model,
                train_config=train,
                diverges=_is(i, DIVERGES),
                spikes=_is(i, SPIKES),
                growing=_is(i, GROWING),
            )
        )
    return out


def _columns(run: SyntheticRun, index: int, rows: int, seed: int) -> dict[str, np.ndarray]:
    """Every column a log header may name, for one run (losses fall towards a floor that
    depends on width, depth and learning rate: the sweep has something to find)."""
    rng = np.random.default_rng([seed, index])
    m, t = run.model_config, run.train_config
    n = int(rows * 0.7) if run.growing else rows
    step = np.arange(n, dtype=float) * EVERY
    floor = 1.0 + 96.0 / m["dim"] + 0.8 / m["n_layers"] + 0.3 * abs(np.log10(t["learning_rate"] / 1e-3))
    start = np.log(m["vocab_len"])
    if m["tokenizer"] == "char":
        floor *= 0.45  # shorter tokens are easier to predict: per-token losses are not comparable
    decay = np.exp(-step / (rows * EVERY / (6.0 + 0.002 * m["dim"])))
    val = floor + (start - floor) * decay
    train = val - 0.05 + rng.normal(0.0, 0.04, n)
    val = val + rng.normal(0.0, 0.01, n)
    if run.spikes:
        train[n // 2] = 65.0
    if run.diverges:
        cut = int(n * 0.6)
        train[cut:], val[cut:] = np.nan, np.inf
    return {
        "Step": step,
        "Time Elapsed": step * 0.05 * (1 + m["dim"] / 128),
        "Tokens Per Second": rng.normal(5e4, 1e3, n),
        "Train Loss": train,
        "Validation Loss": val,
        "Perplexity": np.exp(np.minimum(val, 50.0)),
        "Learning Rate": np.full(n, t["learning_rate"]),
        "Norm": np.abs(rng.normal(1.0, 0.3, n)),
    }


def write_run(models: Path, run: SyntheticRun, index: int, rows: int, seed: int = 0) -> Path:
    """Write one run's folder under ``models``; returns it."""
    experiment, name = run.id.split("/")
    run_dir = models / experiment / "trained" / name
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "model_config.json").write_text(json.dumps(run.model_config))
    (run_dir / "train_config.json").write_text(json.dumps(run.train_config))
    cols = _columns(run, index, rows, seed)
    table = np.column_stack([cols[h] for h in run.header])
    with open(run_dir / "log_data.csv", "w", encoding="utf-8") as f:
        f.write(",".join(run.header) + "\n")
        # Step is an integer in real logs; the rest as a logger's repr would write it.
        np.savetxt(f, table, fmt=["%d", *["%.6g"] * (len(run.header) - 1)], delimiter=",")
        if run.growing:  # the row being written right now
            f.write(f"{len(cols['Step']) * EVERY},1.2")
    return run_dir


def write_lab(models: Path | str, runs: int, rows: int, seed: int = 0) -> list[SyntheticRun]:
    """Write a lab of ``runs`` runs with about ``rows`` log rows each under ``models``.

    Existing run folders of the same ids are overwritten; nothing else is touched.
    """
    models = Path(models)
    planned = plan(runs)
    for index, run in enumerate(planned):
        write_run(models, run, index, rows, seed)
    return planned
