"""Your own adapter: ``sandbox_adapter.py`` in the experiment folder lets any codebase in.

It defines ``load(run_dir: str, device: str) -> (model, tokenizer)`` and
``logits(model, input_ids) -> (batch, seq, vocab)``; optionally ``CONTEXT`` (the most tokens
the model reads; default 1024). The tokenizer needs ``encode(text) -> ids`` (without any
start token), ``decode(ids) -> text`` and ``bos_id`` (the id a document starts after; or
``eos_id`` when it has no bos). The adapter is the experiment's own code, run in its worker
with the experiment folder as the working directory, like any experiment's code.
"""

from __future__ import annotations

from typing import Any

import torch

from sandbox.errors import ContractViolation
from sandbox.worker.failures import (
    LOG_HINT,
    contract_violation,
    import_experiment_module,
    short_exception,
)
from sandbox.worker.kinds.wrap import FullLogits, TextTokenizer, embedding_rows
from sandbox.worker.loaded import LoadedRun

FILE = "sandbox_adapter.py"


def load(run: Any, device: str) -> LoadedRun:
    module = import_experiment_module("sandbox_adapter", FILE, "adapter")
    for needed in ("load", "logits"):
        if not callable(getattr(module, needed, None)):
            raise ContractViolation("adapter", FILE, f"{FILE} defines no function {needed}().", "")
    try:
        model, tok = module.load(str(run.dir), device)
    except Exception as exc:  # noqa: BLE001 — trusted code; its failure becomes a sentence
        raise contract_violation("adapter", FILE, f"load(run_dir, device) raised {short_exception(exc)}.", exc, LOG_HINT) from None
    if not isinstance(model, torch.nn.Module):
        raise ContractViolation("adapter", FILE, f"load() of {FILE} returned no torch.nn.Module as its model.", "")
    start = getattr(tok, "bos_id", None)
    start = start if start is not None else getattr(tok, "eos_id", None)
    if start is None or not callable(getattr(tok, "encode", None)) or not callable(getattr(tok, "decode", None)):
        raise ContractViolation(
            "adapter", FILE, f"The tokenizer load() of {FILE} returns needs encode, decode and a bos_id (or eos_id).", ""
        )
    model.to(device).eval()
    vocab = getattr(tok, "vocab_size", None)
    return LoadedRun(
        name=run.name,
        model=FullLogits(model, module.logits),
        cfg={"adapter": FILE},
        tokenizer=TextTokenizer(tok.encode, tok.decode, int(start), getattr(tok, "eos_id", None)),
        device=device,
        stamp=(-1, -1),
        takes_cache_len=False,
        embedding_rows=embedding_rows(model, vocab if isinstance(vocab, int) else None),
        kind="adapter",
        context=int(getattr(module, "CONTEXT", 0) or 0),
        start_note="the tokenizer's bos_id" if getattr(tok, "bos_id", None) is not None else "the tokenizer's eos_id",
        loaded_by=f"{FILE}",
        tokenizer_name=type(tok).__name__,
        tokenizer_file=FILE,
        model_file=FILE,
    )
