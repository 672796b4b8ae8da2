"""A run loaded in its worker: model, config, tokenizer, and the one check of every forward."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch

from sandbox.errors import ContractViolation


@dataclass
class LoadedRun:
    """A run ready to use: model on the device in eval mode, its config and tokenizer.

    Every kind gives the same two things: a tokenizer with the contract's interface
    (``encode(text, bos=True, eos=False)``, ``decode(ids)``, ``bos_id``, ``eos_id``,
    ``pad_id``), and a model whose ``model(input_ids)`` is the full-sequence inference path
    (a kind whose codebase returns less wraps its model, see `sandbox.worker.kinds.wrap`).
    """

    name: str
    model: torch.nn.Module
    cfg: Any
    tokenizer: Any
    device: str
    stamp: tuple[int, int]
    takes_cache_len: bool
    embedding_rows: int | None
    info: dict = field(default_factory=dict)
    kind: str = "template"
    context: int = 0  # tokens the model reads at most (0: the config's max_seq_len)
    # A forward that takes cache_len gets cache_len=0 for a whole sequence: some template
    # versions crash without it (their own comparison code passes it).
    zero_cache_len: bool = False
    start_note: str = "the tokenizer's bos token"  # what the ids of a document start with
    loaded_by: str = "the contract"  # whose code built the model ("tools.load_model", ...)
    notes: tuple[str, ...] = ()  # things a person should know about this load
    tokenizer_name: str = ""
    tokenizer_file: str = "tokenizer"  # the file a tokenizer problem is reported against
    model_file: str = "modules/model.py"  # the file a forward problem is reported against
    # The generation stream whose tokens the model's KV cache holds (None: nobody's). A
    # worker interleaves streams, and any forward writes the cache, so a stream refills it
    # when it is not the owner (`sandbox.worker.generation.GenStream.own_cache`).
    cache_owner: Any = field(default=None, repr=False, compare=False)

    @property
    def max_seq_len(self) -> int:
        return self.context or int(getattr(self.cfg, "max_seq_len", 0) or 0) or 1024

    @property
    def forward_call(self) -> str:
        """How the inference path is called, as a sentence names it."""
        return "model(input_ids, cache_len=0)" if self.zero_cache_len else "model(input_ids)"

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
            call = self.forward_call
            out = self.model(input_ids, cache_len=0) if self.zero_cache_len else self.model(input_ids)
        else:
            out, call = self.model(input_ids, cache_len), "model(input_ids, cache_len)"
        return check_logits(out, tuple(input_ids.shape), self.info.get("vocab_size"), call, self.model_file)


def check_logits(
    out: Any, input_shape: tuple[int, int], vocab: int | None = None, call: str = "model(input_ids)",
    file: str = "modules/model.py",
) -> torch.Tensor:
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
        file,
        f"{call} returned logits of shape {shape}; expected ({', '.join(map(str, expected))}).",
        "Return (logits, None) with logits (batch, seq, vocab) for inputs of every length up to max_seq_len.",
    )
