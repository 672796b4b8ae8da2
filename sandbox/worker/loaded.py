"""A run loaded in its worker: model, config, tokenizer, and the one check of every forward."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch

from sandbox.errors import ContractViolation


@dataclass
class LoadedRun:
    """A run ready to use: model on the device in eval mode, its config and tokenizer."""

    name: str
    model: torch.nn.Module
    cfg: Any
    tokenizer: Any
    device: str
    stamp: tuple[int, int]
    takes_cache_len: bool
    embedding_rows: int | None
    info: dict = field(default_factory=dict)
    # The generation stream whose tokens the model's KV cache holds (None: nobody's). A
    # worker interleaves streams, and any forward writes the cache, so a stream refills it
    # when it is not the owner (`sandbox.worker.generation.GenStream.own_cache`).
    cache_owner: Any = field(default=None, repr=False, compare=False)

    @property
    def max_seq_len(self) -> int:
        return int(getattr(self.cfg, "max_seq_len", 0) or 0) or 1024

    @property
    def max_batch_size(self) -> int | None:
        value = getattr(self.cfg, "max_batch_size", None)
        return int(value) if value else None

    def forward(self, input_ids: torch.Tensor, cache_len: int | None = None) -> torch.Tensor:
        """Logits ``(batch, seq, vocab)`` from the inference path: input ids alone, positionally
        (and the KV cache's ``cache_len`` when given), checked by `check_logits`.

        Never passes targets (that switches on dropout in the contract's models).
        """
        if cache_len is None:
            self.cache_owner = None  # a forward without cache_len overwrites the cache from 0
            out, call = self.model(input_ids), "model(input_ids)"
        else:
            out, call = self.model(input_ids, cache_len), "model(input_ids, cache_len)"
        return check_logits(out, tuple(input_ids.shape), self.info.get("vocab_size"), call)


def check_logits(out: Any, input_shape: tuple[int, int], vocab: int | None = None, call: str = "model(input_ids)") -> torch.Tensor:
    """The logits of a forward's output, or a `ContractViolation` naming the wrong shape.

    The one check of every forward (the probe, scoring, generation): ``(batch, seq, vocab)``
    for an input ``(batch, seq)``, with the width the probe found once it is known. A model
    right for the probe's 4 tokens but not for longer inputs is caught where it goes wrong.
    """
    logits = out[0] if isinstance(out, (tuple, list)) and out else out
    ok = isinstance(logits, torch.Tensor) and logits.dim() == 3 and tuple(logits.shape[:2]) == tuple(input_shape)
    if ok and (vocab is None or logits.shape[2] == vocab):
        return logits
    shape = tuple(logits.shape) if isinstance(logits, torch.Tensor) else type(logits).__name__
    expected = (*input_shape, vocab if vocab is not None else "vocab")
    raise ContractViolation(
        "forward",
        "modules/model.py",
        f"{call} returned logits of shape {shape}; expected ({', '.join(map(str, expected))}).",
        "Return (logits, None) with logits (batch, seq, vocab) for inputs of every length up to max_seq_len.",
    )
