"""Hugging Face Transformers folders, loaded by ``transformers`` from local files only.

``AutoModelForCausalLM.from_pretrained(folder, local_files_only=True)`` and
``AutoTokenizer.from_pretrained(folder, local_files_only=True)``, with the hub switched off
for the whole worker (``HF_HUB_OFFLINE``) and no code of the folder run
(``trust_remote_code`` stays off). Weights in float32; safetensors when the folder has them.
A document starts after the tokenizer's bos token, or its eos token when it has no bos
(GPT-2 reads ``<|endoftext|>`` between documents). ``transformers`` is optional, like Ray:
without it such a run is one sentence saying how to install it.
"""

from __future__ import annotations

import os
from typing import Any

import torch

from sandbox.errors import ContractViolation
from sandbox.worker.failures import LOG_HINT, contract_violation, short_exception
from sandbox.worker.kinds.wrap import FullLogits, TextTokenizer, embedding_rows
from sandbox.worker.loaded import LoadedRun

INSTALL = "Install it into the sandbox's environment: .venv/bin/pip install -r requirements-hf.txt"
CONTEXT_KEYS = ("n_positions", "max_position_embeddings", "n_ctx", "seq_length", "max_seq_len")


def _transformers() -> Any:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")  # never reach the hub, whatever a folder names
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
    try:
        import transformers
    except ImportError:
        raise ContractViolation(
            "dependencies", "config.json",
            "This is a Hugging Face model folder, and the transformers package is not installed.", INSTALL,
        ) from None
    transformers.logging.set_verbosity_error()
    return transformers


def load(run: Any, device: str) -> LoadedRun:
    transformers = _transformers()
    folder = run.dir
    prefix = run.shown(folder / "config.json")
    try:
        model = transformers.AutoModelForCausalLM.from_pretrained(
            folder, local_files_only=True, dtype=torch.float32, trust_remote_code=False
        )
    except Exception as exc:  # noqa: BLE001 — a broken folder becomes one sentence
        raise contract_violation(
            "model", prefix, f"AutoModelForCausalLM could not load {run.shown(folder)} ({short_exception(exc)[:300]}).", exc,
            f"Save the model with save_pretrained; only local files are read. {LOG_HINT}",
        ) from None
    try:
        hf_tok = transformers.AutoTokenizer.from_pretrained(folder, local_files_only=True, trust_remote_code=False)
    except Exception as exc:  # noqa: BLE001
        raise contract_violation(
            "tokenizer", run.shown(folder / "tokenizer.json"),
            f"AutoTokenizer could not load the tokenizer of {run.shown(folder)} ({short_exception(exc)[:300]}).", exc,
            "Save the tokenizer with save_pretrained beside the model.",
        ) from None
    start = hf_tok.bos_token_id if hf_tok.bos_token_id is not None else hf_tok.eos_token_id
    if start is None:
        raise ContractViolation(
            "tokenizer", run.shown(folder / "tokenizer.json"),
            "The tokenizer has neither a bos nor an eos token, so a document's first token has nothing to follow.",
            "Give the tokenizer a bos_token (or eos_token) and save it again.",
        )
    start_name = "bos" if hf_tok.bos_token_id is not None else "eos"
    model.to(device).eval()
    config = model.config
    context = next((int(getattr(config, k)) for k in CONTEXT_KEYS if isinstance(getattr(config, k, None), int)), 0)
    tokenizer = TextTokenizer(
        encode=lambda text: hf_tok(text, add_special_tokens=False)["input_ids"],
        decode=lambda ids: hf_tok.decode(ids, skip_special_tokens=False, clean_up_tokenization_spaces=False),
        start_id=start,
        eos_id=hf_tok.eos_token_id,
    )
    return LoadedRun(
        name=run.name,
        model=FullLogits(model, lambda m, ids: m(input_ids=ids, use_cache=False).logits),
        cfg=config,
        tokenizer=tokenizer,
        device=device,
        stamp=(-1, -1),
        takes_cache_len=False,
        embedding_rows=embedding_rows(model, getattr(config, "vocab_size", None)),
        kind="huggingface",
        context=context,
        start_note=f"the tokenizer's {start_name} token {hf_tok.convert_ids_to_tokens(int(start))!r}",
        loaded_by=f"transformers {transformers.__version__} (AutoModelForCausalLM, local files only)",
        tokenizer_name=type(hf_tok).__name__,
        tokenizer_file=run.shown(folder / "tokenizer.json"),
        model_file=prefix,
    )
