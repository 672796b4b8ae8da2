"""Compute accounting: FLOPs per token for training and inference, and total training compute.

The estimate is the standard one (Kaplan et al. 2020): a forward pass costs about 2 FLOPs per
non-embedding parameter per token, plus the attention scores' 2 * n_layers * context * d_model;
training (forward + backward) costs three times the forward:

    training FLOPs / token  = 6 * N + 12 * n_layers * context * d_model
    inference FLOPs / token = 2 * N +  2 * n_layers * context * d_model

with N the non-embedding parameters. It ignores the output head's matmul on purpose, as the
rule does, so runs with different vocabularies are compared on their bodies.
"""

from __future__ import annotations

from typing import Any

FORMULA = "training FLOPs/token = 6·N + 12·n_layers·context·d_model (N = non-embedding parameters)"

# Config key names used for the same thing by different experiments. CONTEXT_KEYS is the one
# alias table of the context length (also used for tokens per step in `sandbox.curves`).
_LAYERS = ("n_layers", "n_layer", "num_layers", "layers")
_DIM = ("dim", "d_model", "n_embd", "hidden_size")
CONTEXT_KEYS = ("max_seq_len", "context_length", "context_len", "block_size", "seq_len", "sequence_length")


def _first(cfg: dict, keys: tuple[str, ...]) -> int | None:
    for key in keys:
        value = cfg.get(key)
        if isinstance(value, (int, float)) and not isinstance(value, bool) and value > 0:
            return int(value)
    return None


def shape_of(cfg: dict) -> tuple[int, int, int] | None:
    """(n_layers, d_model, context) from a model config, or None when a value is missing."""
    layers, dim, context = _first(cfg, _LAYERS), _first(cfg, _DIM), _first(cfg, CONTEXT_KEYS)
    if layers is None or dim is None or context is None:
        return None
    return layers, dim, context


def training_flops_per_token(non_embedding: int, cfg: dict) -> float | None:
    """6·N + 12·n_layers·context·d_model, or None when the config lacks a shape value."""
    shape = shape_of(cfg)
    if shape is None:
        return None
    layers, dim, context = shape
    return 6.0 * non_embedding + 12.0 * layers * context * dim


def inference_flops_per_token(non_embedding: int, cfg: dict) -> float | None:
    """2·N + 2·n_layers·context·d_model (one forward pass per token, full context)."""
    shape = shape_of(cfg)
    if shape is None:
        return None
    layers, dim, context = shape
    return 2.0 * non_embedding + 2.0 * layers * context * dim


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
