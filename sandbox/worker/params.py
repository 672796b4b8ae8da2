"""Parameter accounting of a loaded model: total, embedding, non-embedding, per part.

Runs in the worker on the real module tree. Tied weights (one tensor shared by the token
embedding and the output head) are counted once, under the embedding.
"""

from __future__ import annotations

from typing import Any

import torch

# Part names by keyword in a parameter's dotted name, checked in this order.
_PARTS = (
    ("norms", ("norm", "ln_", ".ln", "ln1", "ln2", "ln_f")),
    ("attention", ("attn", "attention", "wq", "wk", "wv", "wo", "qkv")),
    ("mlp", ("mlp", "ffn", "feed_forward", "w1", "w2", "w3", "fc")),
    ("output head", ("lm_head", "head", "output", "unembed", "out")),
)


def _part(name: str, module: torch.nn.Module) -> str:
    if isinstance(module, torch.nn.Embedding):
        return "embedding"
    if isinstance(module, (torch.nn.LayerNorm, torch.nn.RMSNorm)):
        return "norms"
    lowered = name.lower()
    for part, keys in _PARTS:
        if any(k in lowered for k in keys):
            return part
    return "other"


def parameter_breakdown(model: torch.nn.Module, cfg: Any = None) -> dict:
    """Counts by part; ``sum(parts) == total == sum(p.numel())`` over unique tensors."""
    seen: set[int] = set()
    parts: dict[str, int] = {}
    # Embeddings first, so a tied head weight is attributed to the embedding.
    modules = sorted(model.named_modules(), key=lambda nm: not isinstance(nm[1], torch.nn.Embedding))
    for mod_name, module in modules:
        for p_name, param in module.named_parameters(recurse=False):
            if id(param) in seen:
                continue
            seen.add(id(param))
            part = _part(f"{mod_name}.{p_name}", module)
            parts[part] = parts.get(part, 0) + param.numel()
    total = sum(parts.values())
    embedding = parts.get("embedding", 0)
    return {
        "total": total,
        "embedding": embedding,
        "non_embedding": total - embedding,
        "parts": dict(sorted(parts.items(), key=lambda kv: -kv[1])),
        "tied_head": _head_is_tied(model),
    }


def _head_is_tied(model: torch.nn.Module) -> bool:
    """True when some Linear shares its weight tensor with an Embedding."""
    emb = {id(m.weight) for m in model.modules() if isinstance(m, torch.nn.Embedding)}
    return any(isinstance(m, torch.nn.Linear) and id(m.weight) in emb for m in model.modules())
