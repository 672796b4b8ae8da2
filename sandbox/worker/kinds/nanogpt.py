"""nanoGPT, loaded as its own ``sample.py`` loads a checkpoint.

``GPT(GPTConfig(**checkpoint['model_args']))`` from the checkout's ``model.py``, the state dict
under ``model`` with the ``_orig_mod.`` prefix of a ``torch.compile``d run taken off, the
vocabulary from ``data/<config['dataset']>/meta.pkl`` when there is one (characters), else
GPT-2 BPE through tiktoken. Its forward returns only the last position's logits when given no
targets; the full logits are taken from its own modules without changing its code: a hook
keeps what ``transformer.ln_f`` returns for every position, and ``lm_head`` maps that to
logits (a fork without those modules is called with targets, which gives all positions and
applies no dropout in eval mode).
"""

from __future__ import annotations

import hashlib
import os
import pickle
import tempfile
from pathlib import Path
from typing import Any

import torch

from sandbox.errors import ContractViolation
from sandbox.worker.failures import (
    LOG_HINT,
    contract_violation,
    first_sentence,
    import_experiment_module,
    short_exception,
)
from sandbox.worker.kinds.wrap import FullLogits, TextTokenizer, embedding_rows
from sandbox.worker.loaded import LoadedRun
from sandbox.zoo.confine import OutsideError, confine
from sandbox.zoo.kinds.nanogpt import meta_file

PREFIX = "_orig_mod."  # what torch.compile puts before every key of a compiled model's state
# The two files of GPT-2's BPE that tiktoken fetches and keeps in its cache folder.
GPT2_FILES = (
    "https://openaipublic.blob.core.windows.net/gpt-2/encodings/main/vocab.bpe",
    "https://openaipublic.blob.core.windows.net/gpt-2/encodings/main/encoder.json",
)


def load(run: Any, device: str) -> LoadedRun:
    module = import_experiment_module("model", "model.py", "model")
    gpt_config, gpt = getattr(module, "GPTConfig", None), getattr(module, "GPT", None)
    if gpt_config is None or gpt is None:
        raise ContractViolation("model", "model.py", "model.py defines no GPTConfig and GPT classes.", "")
    rel = run.shown(run.weights)
    try:
        ckpt = torch.load(run.checked("ckpt.pt"), map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 — a corrupt file, or objects other than tensors and plain values
        raise ContractViolation(
            "weights", rel, f"{rel} cannot be loaded as tensors and plain values ({first_sentence(str(exc))[:200]}).",
            "Save it with nanoGPT's train.py (torch.save of model_args, config and the state dict).",
        ) from None
    if not isinstance(ckpt, dict) or not isinstance(ckpt.get("model_args"), dict) or not isinstance(ckpt.get("model"), dict):
        raise ContractViolation("weights", rel, f"{rel} holds no model_args and model state dict.", "")
    try:
        model = gpt(gpt_config(**ckpt["model_args"]))
    except Exception as exc:  # noqa: BLE001 — trusted code; its failure becomes a sentence
        raise contract_violation(
            "model", "model.py", f"GPT(GPTConfig(**model_args)) raised {short_exception(exc)}.", exc,
            f"The checkpoint's model_args must fit this checkout's model.py. {LOG_HINT}",
        ) from None
    state = {k.removeprefix(PREFIX): v for k, v in ckpt["model"].items()}
    result = model.load_state_dict(state, strict=False)
    if result.missing_keys or result.unexpected_keys:
        parts = [f"{what}: {', '.join(keys[:6])}" for what, keys in
                 (("missing keys", result.missing_keys), ("unexpected keys", result.unexpected_keys)) if keys]
        raise ContractViolation(
            "weights", rel, f"{rel} does not match GPT(GPTConfig(**model_args)) ({'; '.join(parts)}).",
            "The checkpoint comes from another version of model.py.",
        )
    model.to(device).eval()
    config = ckpt.get("config") if isinstance(ckpt.get("config"), dict) else {}
    tokenizer, tokenizer_name, start = _tokenizer(run, config)
    cfg = model.config if hasattr(model, "config") else gpt_config(**ckpt["model_args"])
    return LoadedRun(
        name=run.name,
        model=FullLogits(model, _full_logits_fn(model)),
        cfg=cfg,
        tokenizer=tokenizer,
        device=device,
        stamp=(-1, -1),
        takes_cache_len=False,
        embedding_rows=embedding_rows(model, ckpt["model_args"].get("vocab_size")),
        kind="nanogpt",
        context=int(ckpt["model_args"].get("block_size") or 0),
        start_note=start,
        loaded_by="nanoGPT's model.py, as its sample.py loads a checkpoint",
        tokenizer_name=tokenizer_name,
        tokenizer_file=tokenizer_name,
        model_file="model.py",
    )


def _full_logits_fn(model: torch.nn.Module):
    """``(model, ids) -> logits`` for every position, from nanoGPT's own modules."""
    transformer = getattr(model, "transformer", None)
    ln_f = getattr(transformer, "ln_f", None) if transformer is not None else None
    head = getattr(model, "lm_head", None)
    if isinstance(ln_f, torch.nn.Module) and isinstance(head, torch.nn.Module):
        kept: dict[str, torch.Tensor] = {}
        ln_f.register_forward_hook(lambda _m, _i, out: kept.__setitem__("h", out))

        def via_hook(m: torch.nn.Module, ids: torch.Tensor) -> torch.Tensor:
            m(ids)
            return head(kept.pop("h"))

        return via_hook

    def via_targets(m: torch.nn.Module, ids: torch.Tensor) -> torch.Tensor:
        return m(ids, targets=ids)[0]

    return via_targets


def _tokenizer(run: Any, config: dict) -> tuple[TextTokenizer, str, str]:
    """The run's tokenizer, its name, and what a document's ids start with."""
    root = run.experiment_root
    meta = meta_file(root, config.get("dataset"))
    if meta is not None and meta.is_file():
        rel = meta.relative_to(root)
        try:
            confine(meta, run.models_root, rel.as_posix())
        except OutsideError as exc:
            raise ContractViolation("files", rel.as_posix(), str(exc), "") from None
        return _char_tokenizer(root, rel)
    return _gpt2_tokenizer()


class _PlainUnpickler(pickle.Unpickler):
    """meta.pkl holds dicts, strings and numbers: nothing else is built from it."""

    def find_class(self, module: str, name: str) -> Any:
        raise pickle.UnpicklingError(f"{module}.{name} is not read from meta.pkl")


def _char_tokenizer(root: Path, meta: Path) -> tuple[TextTokenizer, str, str]:
    shown = meta.as_posix()
    try:
        with open(root / meta, "rb") as f:
            data = _PlainUnpickler(f).load()
        stoi, itos = data["stoi"], data["itos"]
    except (OSError, pickle.UnpicklingError, EOFError, KeyError, TypeError, ValueError) as exc:
        raise ContractViolation(
            "tokenizer", shown, f"{shown} cannot be read as nanoGPT's character vocabulary ({short_exception(exc)}).",
            "Make it again with data/<dataset>/prepare.py.",
        ) from None
    # A character outside the vocabulary becomes a space (nanoGPT itself would raise); the
    # evaluation measures and reports the text this changes.
    fallback = stoi.get(" ", stoi.get("\n", 0))
    start_char = "\n" if "\n" in stoi else " " if " " in stoi else None
    start_id = stoi[start_char] if start_char is not None else 0
    tokenizer = TextTokenizer(
        encode=lambda text: [stoi.get(c, fallback) for c in text],
        decode=lambda ids: "".join(itos.get(i, "") for i in ids),
        start_id=start_id,
        eos_id=None,
    )
    start = {"\n": "a newline (as nanoGPT's sample.py starts)", " ": "a space"}.get(start_char or "", "character id 0")
    return tokenizer, shown, start


def gpt2_cache_dir() -> Path:
    """Where tiktoken keeps (and looks for) the files it fetched."""
    chosen = os.environ.get("TIKTOKEN_CACHE_DIR") or os.environ.get("DATA_GYM_CACHE_DIR")
    return Path(chosen) if chosen else Path(tempfile.gettempdir(), "data-gym-cache")


def _gpt2_tokenizer() -> tuple[TextTokenizer, str, str]:
    cache = gpt2_cache_dir()
    missing = [url for url in GPT2_FILES if not (cache / hashlib.sha1(url.encode()).hexdigest()).is_file()]
    if missing:
        raise ContractViolation(
            "tokenizer", "GPT-2 BPE",
            "This run uses GPT-2 BPE (its dataset has no meta.pkl), whose files tiktoken downloads on "
            "first use, and the sandbox downloads nothing.",
            "On a machine with internet run python -c \"import tiktoken; tiktoken.get_encoding('gpt2')\", "
            "then copy its cache folder (TIKTOKEN_CACHE_DIR, by default data-gym-cache in the temp "
            "folder) here and start the sandbox with TIKTOKEN_CACHE_DIR pointing at it.",
        )
    import tiktoken

    enc = tiktoken.get_encoding("gpt2")
    tokenizer = TextTokenizer(
        encode=lambda text: enc.encode_ordinary(text),
        decode=lambda ids: enc.decode(ids, errors="replace"),
        start_id=enc.eot_token,
        eos_id=enc.eot_token,
    )
    return tokenizer, "GPT-2 BPE (tiktoken)", "<|endoftext|>, which GPT-2 reads between documents"
