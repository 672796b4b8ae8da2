"""Accounting of a run: parameters, tokens and FLOPs, from files and what a worker counted.

Parameters are counted once, by the worker on the loaded model (`sandbox.worker.params`:
tied weights once, buffers excluded), and remembered per run fingerprint
(`sandbox.zoo.records`): everything else reads that count (:func:`cached_breakdown`,
:func:`count_parameters`), or says it is unknown until a worker has loaded the run.

FLOPs follow the standard estimate (Kaplan et al. 2020): a forward pass costs about 2 FLOPs
per non-embedding parameter per token, plus the attention scores' 2 * n_layers * context *
d_model; training (forward + backward) costs three times the forward:

    training FLOPs / token  = 6 * N + 12 * n_layers * context * d_model
    inference FLOPs / token = 2 * N +  2 * n_layers * context * d_model

with N the non-embedding parameters. It ignores the output head's matmul on purpose, as the
rule does, so runs with different vocabularies are compared on their bodies.

Experiments name the same config value differently (``n_layers`` / ``n_layer``,
``max_seq_len`` / ``block_size``, ...): :data:`CONFIG_KEYS` is the one table of those
aliases, for every reader of a run's configs.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from sandbox.zoo import logs, records
from sandbox.zoo.discovery import Run

FORMULA = "training FLOPs/token = 6·N + 12·n_layers·context·d_model (N = non-embedding parameters)"

# The one table of config-key aliases: what different experiments call the same value, in
# the order they are looked for (the first key holding a usable value wins).
CONFIG_KEYS: dict[str, tuple[str, ...]] = {
    "layers": ("n_layers", "n_layer", "num_layers", "layers"),
    "dim": ("dim", "d_model", "n_embd", "hidden_size"),
    "context": ("max_seq_len", "context_length", "context_len", "block_size", "seq_len", "sequence_length", "sequence_len",
                "n_positions", "max_position_embeddings", "n_ctx"),
    "vocab": ("vocab_len", "vocab_size", "n_vocab"),
    "batch": ("batch_size", "micro_batch_size", "train_batch_size"),
    "accumulation": ("gradient_accumulation_steps", "grad_accum_steps", "accumulation_steps", "grad_accum"),
    # train_config.json keys naming the training data (text values, see `training_data`)
    "data": ("dataset", "dataset_name", "dataset_path", "data", "data_path", "data_dir", "train_data", "train_file", "corpus"),
}  # fmt: skip


def config_number(config: Mapping | None, what: str) -> tuple[str, float] | None:
    """The first key of ``CONFIG_KEYS[what]`` in ``config`` holding a positive number, as
    (key, value); None when none does."""
    for key in CONFIG_KEYS[what]:
        value = (config or {}).get(key)
        if isinstance(value, int | float) and not isinstance(value, bool) and value > 0:
            return key, float(value)
    return None


def training_data(train_config: Mapping | None) -> str | None:
    """The training data a train config names (the first ``CONFIG_KEYS["data"]`` key with a
    value), as text; None when it names none."""
    for key in CONFIG_KEYS["data"]:
        value = (train_config or {}).get(key)
        if value not in (None, ""):
            return str(value)
    return None


def shape_of(cfg: dict) -> tuple[int, int, int] | None:
    """(n_layers, d_model, context) from a model config, or None when a value is missing."""
    found = [config_number(cfg, what) for what in ("layers", "dim", "context")]
    if any(f is None for f in found):
        return None
    layers, dim, context = (int(value) for _, value in found)
    return layers, dim, context


def _flops_per_token(non_embedding: int, cfg: dict, per_parameter: float, per_attention: float) -> float | None:
    """per_parameter·N + per_attention·n_layers·context·d_model, or None when the config
    lacks a shape value."""
    shape = shape_of(cfg)
    if shape is None:
        return None
    layers, dim, context = shape
    return per_parameter * non_embedding + per_attention * layers * context * dim


def training_flops_per_token(non_embedding: int, cfg: dict) -> float | None:
    """6·N + 12·n_layers·context·d_model (forward and backward), None without a shape."""
    return _flops_per_token(non_embedding, cfg, 6.0, 12.0)


def inference_flops_per_token(non_embedding: int, cfg: dict) -> float | None:
    """2·N + 2·n_layers·context·d_model (one forward pass per token, full context)."""
    return _flops_per_token(non_embedding, cfg, 2.0, 2.0)


def training_compute(non_embedding: int, cfg: dict, tokens_seen: float | None) -> float | None:
    """Total training FLOPs: per-token cost times tokens seen (None when either is unknown)."""
    per_token = training_flops_per_token(non_embedding, cfg)
    if per_token is None or tokens_seen is None:
        return None
    return per_token * float(tokens_seen)


def summary(breakdown: dict[str, Any], cfg: dict, tokens_seen: float | None) -> dict:
    """The figures the pages and the CLI show for one run."""
    n = int(breakdown["non_embedding"])
    return {
        "train_flops_per_token": training_flops_per_token(n, cfg),
        "inference_flops_per_token": inference_flops_per_token(n, cfg),
        "train_compute": training_compute(n, cfg, tokens_seen),
        "tokens_seen": tokens_seen,
        "formula": FORMULA,
    }


# -- tokens ---------------------------------------------------------------------------------


def tokens_per_step(run: Run) -> tuple[float | None, str]:
    """Tokens one optimizer step consumes, from the run's saved configs, and how it was found.

    batch_size × gradient_accumulation_steps (1 if absent) × context length, where the
    context length is ``max_seq_len`` of model_config.json or a sequence-length field of
    train_config.json. Returns (None, reason) when the configs do not say.
    """
    try:
        train = run.train_config()
    except ValueError as exc:
        return None, f"its train_config.json cannot be used ({exc})"
    if train is None:
        return None, "it has no train_config.json to compute tokens from"
    try:
        model = run.model_config()
    except ValueError:
        model = {}
    batch = config_number(train, "batch")
    if batch is None:
        return None, "its train_config.json has no batch_size"
    seq = config_number(model, "context") or config_number(train, "context")
    if seq is None:
        return None, "neither config names a context length (max_seq_len)"
    accum = config_number(train, "accumulation") or ("gradient_accumulation_steps (absent, so 1)", 1.0)
    per_step = batch[1] * accum[1] * seq[1]
    how = f"step × {batch[0]} {batch[1]:g} × {accum[0]} {accum[1]:g} × {seq[0]} {seq[1]:g}"
    return per_step, how


def count_parameters(run: Run) -> int | None:
    """The model's parameters as its worker counted them (tied weights once, buffers
    excluded: `sandbox.worker.params.parameter_breakdown`), or None until a worker has loaded the
    run with its current code, config and weights."""
    breakdown = cached_breakdown(run)
    return int(breakdown["total"]) if breakdown else None


def tokens_seen(run: Run) -> tuple[float | None, str]:
    """Tokens the run trained on: the log's own column if any, else computed from its configs.

    Returns (value, how): how is "logged", "computed: <detail>" or a reason it is unknown.
    """
    if not run.log_path.is_file():
        return None, "no log"
    log = run.log()
    if log.rows == 0:
        return None, "empty log"
    logged = log.last_finite(logs.TOKENS_SEEN)
    if logged is not None:
        return logged, "logged"
    per_step, how = tokens_per_step(run)
    if per_step is None:
        return None, how
    return float(log.columns[logs.STEP][-1]) * per_step, f"computed: {how}"


def loss_outcome(run: Run) -> dict:
    """Final and best (lowest finite) validation loss of a run's log, with the best step."""
    out = {"final_val_loss": None, "best_val_loss": None, "best_step": None}
    if not run.log_path.is_file():
        return out
    log = run.log()
    values = log.columns.get(logs.VAL_LOSS)
    if values is None or not np.isfinite(values).any():
        return out
    best = int(np.nanargmin(np.where(np.isfinite(values), values, np.nan)))
    out["final_val_loss"] = log.last_finite(logs.VAL_LOSS)
    out["best_val_loss"] = float(values[best])
    out["best_step"] = float(log.columns[logs.STEP][best])
    return out


def run_figures(run: Run, breakdown: dict | None) -> dict:
    """Parameters, compute and loss outcome of one run (``breakdown`` from the worker; None
    while no worker has counted the run: its parameters and compute are then unknown)."""
    cfg = run.model_config()
    seen, how = tokens_seen(run)
    figures = summary(breakdown, cfg, seen) if breakdown is not None else {}
    known = breakdown or {}
    return {
        "run_id": run.id,
        "experiment": run.experiment,
        "parameters": known.get("total"),
        "non_embedding": known.get("non_embedding"),
        "embedding": known.get("embedding"),
        "train_flops_per_token": figures.get("train_flops_per_token"),
        "train_compute": figures.get("train_compute"),
        "tokens_seen": seen,
        "tokens_seen_source": how,
        **loss_outcome(run),
    }


def scaling_points(rows: list[dict]) -> pd.DataFrame:
    """One row per run for the scaling scatter (from :func:`run_figures` rows)."""
    cols = ["run_id", "experiment", "non_embedding", "train_compute", "final_val_loss", "best_val_loss"]
    return pd.DataFrame(rows, columns=cols)


# -- parameter breakdowns cached on disk ------------------------------------------------------
# Counting parameters needs the run loaded in its worker; pages that only read logs (the
# FLOPs axis of Loss curves) use the last count made for the same code and weights.

PARAMS = "params"  # the records' kind (`sandbox.zoo.records`)


def cached_breakdown(run: Run) -> dict | None:
    """The parameter breakdown stored for this run's current code and weights, if any."""
    breakdown = records.read_record(PARAMS, run)
    return breakdown if isinstance(breakdown, dict) else None


def store_breakdown(run: Run, breakdown: dict) -> bool:
    """Remember a breakdown; False (and nothing else) when the cache cannot be written."""
    return records.write_record(PARAMS, run, breakdown)


def remember_loaded(run: Run, info: dict) -> bool:
    """Store the breakdown a worker's ``info`` reply carries (any load of the run counts it).

    False when the reply has none (an older worker) or the cache cannot be written.
    """
    breakdown = info.get("params") if isinstance(info, dict) else None
    return isinstance(breakdown, dict) and store_breakdown(run, breakdown)


def flops_per_token(run: Run) -> tuple[float | None, str]:
    """Estimated training FLOPs per token of a run (None and why when it cannot be estimated)."""
    breakdown = cached_breakdown(run)
    if breakdown is None:
        return None, "its parameters have not been counted yet (load it once on the Models page)"
    try:
        per_token = training_flops_per_token(int(breakdown["non_embedding"]), run.model_config())
    except ValueError as exc:
        return None, str(exc)
    if per_token is None:
        return None, "its config names no n_layers / dim / max_seq_len"
    return per_token, f"({FORMULA})"


# -- the training budget beside a comparison -------------------------------------------------

BUDGET_TOLERANCE = 0.10  # budgets further apart than this (relative) are said beside a verdict


def training_budget(run: Run) -> dict:
    """What a run trained for: ``steps`` (the log's last step), ``tokens_trained`` (`tokens_seen`)
    and ``train_flops`` (`training_compute`, known once a worker has counted the parameters);
    None where unknown."""
    out: dict[str, float | None] = {"steps": None, "tokens_trained": None, "train_flops": None}
    if not run.log_path.is_file():
        return out
    log = run.log()
    if log.rows:
        out["steps"] = float(log.columns[logs.STEP][-1])
    out["tokens_trained"] = tokens_seen(run)[0]
    breakdown = cached_breakdown(run)
    if breakdown is not None and out["tokens_trained"] is not None:
        try:
            cfg = run.model_config()
        except ValueError:
            cfg = {}
        out["train_flops"] = training_compute(int(breakdown["non_embedding"]), cfg, out["tokens_trained"])
    return out


def budget_gap(a: Mapping, b: Mapping, tolerance: float = BUDGET_TOLERANCE) -> str | None:
    """A sentence when two training budgets (`training_budget`) differ by more than
    ``tolerance`` in training FLOPs, else tokens, else steps (the first both runs know)."""
    for key, what in (("train_flops", "training FLOPs"), ("tokens_trained", "tokens"), ("steps", "steps")):
        x, y = a.get(key), b.get(key)
        if x and y:
            if abs(x - y) / min(x, y) > tolerance:
                return f"their training budgets differ: {what} {_short(x)} vs {_short(y)} ({max(x, y) / min(x, y):.2g}×)"
            return None
    return None


def _short(value: float) -> str:
    """1200 -> '1,200'; 4.9e6 -> '4.9M'; 3.1e15 -> '3.1e+15'."""
    if value < 1e5:
        return f"{value:,.0f}"
    if value < 1e12:
        for unit, size in (("B", 1e9), ("M", 1e6), ("k", 1e3)):
            if value >= size:
                return f"{value / size:.3g}{unit}"
    return f"{value:.2g}"
