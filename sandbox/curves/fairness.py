"""What makes two runs' losses comparable: tokenizers, training data, and bits per byte.

Per-token losses of runs with different tokenizers are not comparable (a tokenizer with
longer tokens makes each token harder to predict), nor are losses of runs trained on
different data; rankings say so. Bits per byte (logged loss × tokens per byte / ln 2)
makes per-token losses comparable across tokenizers.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from sandbox.curves.summary import goal
from sandbox.zoo import logs
from sandbox.zoo.accounting import training_data
from sandbox.zoo.discovery import Run

# ---------------------------------------------------------------------------------------
# Bits per byte: per-token losses of runs with different tokenizers, made comparable

PER_TOKEN_LOSSES = (logs.TRAIN_LOSS, logs.VAL_LOSS)  # logged in nats per token (cross-entropy)
PER_BYTE_SUFFIX = " (bits per byte, estimated)"


def metric_label(metric: str, per_byte: bool) -> str:
    """The metric's name as drawn: per-token losses get the bits-per-byte name in that view."""
    return metric + PER_BYTE_SUFFIX if per_byte and metric in PER_TOKEN_LOSSES else metric


def per_byte_factor(tokens_per_byte: float) -> float:
    """Nats per token × this = bits per byte: tokens per byte of the text, over ln 2."""
    return tokens_per_byte / np.log(2)


def is_per_token(metric: str) -> bool:
    """True for a metric measured per token (a loss or perplexity), which depends on the tokenizer."""
    name = metric.lower()
    if metric.endswith(PER_BYTE_SUFFIX) or any(w in name for w in ("bpb", "bpc", "byte", "accuracy")):
        return False
    return any(w in name for w in ("loss", "perplexity", "ppl"))


def tokenizer_of(run: Run) -> str | None:
    """``"<tokenizer> · vocab <n>"`` from the run's model_config.json (None when unreadable)."""
    try:
        cfg = run.model_config()
    except ValueError:
        return None
    name, vocab = cfg.get("tokenizer"), cfg.get("vocab_len")
    if name is None and vocab is None:
        return None
    return f"{name if name is not None else '?'} · vocab {vocab if vocab is not None else '?'}"


def training_data_of(run: Run) -> str | None:
    """The training data a run's train_config.json names (`sandbox.zoo.accounting.training_data`), if any."""
    try:
        return training_data(run.train_config())
    except ValueError:
        return None


def _groups(values: Mapping[str, str | None]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for rid, value in values.items():
        if value is not None:
            out.setdefault(value, []).append(rid)
    return out


def comparability_notes(runs: Mapping[str, Run], run_ids: list[str], metric: str) -> list[str]:
    """Sentences to show where runs are ranked by ``metric``: different tokenizers (for a
    per-token metric) or different training data (for a loss-like metric, lower is better)
    make their numbers not comparable."""
    chosen = [runs[rid] for rid in run_ids if rid in runs]
    notes = []
    if is_per_token(metric):
        tokenizers = _groups({r.id: tokenizer_of(r) for r in chosen})
        if len(tokenizers) > 1:
            listed = "; ".join(f"{tok} ({', '.join(ids)})" for tok, ids in tokenizers.items())
            notes.append(
                f"Per-token losses of runs with different tokenizers are not comparable: {listed}. "
                "Compare bits per byte (the switch above, or the Evaluation page)."
            )
    data = _groups({r.id: training_data_of(r) for r in chosen}) if goal(metric) == "min" else {}
    if len(data) > 1:
        listed = "; ".join(f"{d} ({', '.join(ids)})" for d, ids in data.items())
        notes.append(f"These runs were trained on different data (train_config.json): {listed}; their losses are not measured on the same text.")
    return notes
