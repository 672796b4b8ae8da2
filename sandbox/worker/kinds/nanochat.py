"""nanochat, loaded by its own ``checkpoint_manager.build_model``.

The checkout's ``nanochat`` package is imported with ``NANOCHAT_BASE_DIR`` pointing at the
base directory inside the experiment, and ``build_model(checkpoint_dir, step, device,
"eval")`` does what nanochat does for every load: the state dict read with ``torch.load``,
bf16 tensors made float on CPU, the ``_orig_mod.`` prefix of a compiled run removed, missing
config keys and parameters of older checkpoints patched (``window_pattern``,
``resid_lambdas``, ``x0_lambdas``), the tokenizer from ``tokenizer/tokenizer.pkl``, and its
check that the two agree. Its forward without targets returns the logits of every position;
it refuses a single position (a training-path assert), so a one-token input is given twice
and the first position kept (a causal model never looks ahead). A document starts after
``<|bos|>``, as nanochat's dataloader puts it before every document. ``rustbpe`` (which its
tokenizer module imports, to train tokenizers only) is stood in for when it is not installed.
"""

from __future__ import annotations

import importlib.util
import os
import re
import sys
from typing import Any

import torch

from sandbox.errors import ContractViolation
from sandbox.worker.failures import (
    LOG_HINT,
    contract_violation,
    import_experiment_module,
    short_exception,
)
from sandbox.worker.kinds.template import _StandIn
from sandbox.worker.kinds.wrap import FullLogits, TextTokenizer, embedding_rows
from sandbox.worker.loaded import LoadedRun
from sandbox.zoo.kinds import nanochat as files_side

# Packages nanochat's loading path imports only for training; stood in for when missing.
TRAINING_ONLY = ("rustbpe",)
_TORCH_SPEC = re.compile(r'"torch\s*((?:[=<>!~]=?|===)\s*[0-9][^";]*)"')


def load(run: Any, device: str) -> LoadedRun:
    root = run.experiment_root
    base = files_side.base_dir(root)
    os.environ["NANOCHAT_BASE_DIR"] = str(base)  # where its get_tokenizer() looks
    notes = [f"nanochat's tokenizer.py imports {name}, which is not installed here; loading does not use it (it "
             "trains tokenizers)." for name in _stand_in_training_packages()]
    manager = import_experiment_module("nanochat.checkpoint_manager", "nanochat/checkpoint_manager.py", "model")
    build = getattr(manager, "build_model", None)
    if build is None:
        raise ContractViolation("model", "nanochat/checkpoint_manager.py",
                                "nanochat/checkpoint_manager.py defines no build_model (this checkout is not nanochat's layout).", "")
    step = files_side.last_step(run)
    rel = run.shown(run.weights)
    try:
        model, tokenizer, meta = build(str(run.dir), step, torch.device(device), "eval")
    except Exception as exc:  # noqa: BLE001 — trusted code; its failure becomes a sentence
        raise contract_violation(
            "weights", rel, f"nanochat's build_model could not load {rel} ({short_exception(exc)[:300]}).", exc,
            f"Its meta_<step>.json, model_<step>.pt, tokenizer and this checkout's gpt.py must belong together. {LOG_HINT}",
        ) from None
    config = meta.get("model_config", {}) if isinstance(meta, dict) else {}
    vocab = int(config.get("vocab_size") or tokenizer.get_vocab_size())
    bos = int(tokenizer.get_bos_token_id())
    wrapped = TextTokenizer(
        encode=lambda text: tokenizer.encode(text),
        decode=lambda ids: tokenizer.decode(ids),
        start_id=bos,
        eos_id=bos,  # nanochat ends a base model's text where the next document's bos would come
    )
    notes += _torch_note(root)
    dtype = getattr(sys.modules.get("nanochat.common"), "COMPUTE_DTYPE", None)
    if dtype is not None:
        notes.append(f"Computes in {str(dtype).removeprefix('torch.')}, as nanochat chooses for this device "
                     "(NANOCHAT_DTYPE overrides it).")
    return LoadedRun(
        name=run.name,
        model=FullLogits(model, full_logits),
        cfg=getattr(model, "config", config),
        tokenizer=wrapped,
        device=device,
        stamp=(-1, -1),
        takes_cache_len=False,
        embedding_rows=embedding_rows(model, vocab),
        kind="nanochat",
        context=int(config.get("sequence_len") or 0),
        start_note="<|bos|>, as nanochat's dataloader starts every document",
        loaded_by=f"nanochat's checkpoint_manager.build_model (step {step})",
        notes=tuple(notes),
        tokenizer_name=f"nanochat BPE ({run.shown(base / files_side.TOKENIZER)})",
        tokenizer_file=run.shown(base / files_side.TOKENIZER),
        model_file="nanochat/gpt.py",
    )


def full_logits(model: torch.nn.Module, ids: torch.Tensor) -> torch.Tensor:
    """``(batch, seq, vocab)`` logits from nanochat's forward without targets; a single
    position is given twice (its forward asserts more than one) and the first one kept."""
    if ids.shape[1] == 1:
        return _logits(model(ids.repeat(1, 2)))[:, :1]
    return _logits(model(ids))


def _logits(out: Any) -> torch.Tensor:
    return out[0] if isinstance(out, (tuple, list)) else out


def _stand_in_training_packages() -> list[str]:
    """Stand in for the training-only packages that are not installed; returns their names."""
    missing = [name for name in TRAINING_ONLY if name not in sys.modules and importlib.util.find_spec(name) is None]
    for name in missing:
        sys.modules[name] = _StandIn(name)
    return missing


def _torch_note(root: Any) -> list[str]:
    """A sentence when the checkout's pyproject.toml asks for a torch that this worker's is not
    (``torch==2.9.1`` today; early versions asked for ``torch>=2.8.0``, which 2.13 satisfies)."""
    try:
        text = (root / "pyproject.toml").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return []
    here = torch.__version__.split("+")[0]
    wanted = sorted(set(_TORCH_SPEC.findall(text)))
    unmet = [spec for spec in wanted if not _satisfies(here, spec)]
    if unmet:
        return [f"This nanochat asks for torch{' / torch'.join(unmet)} (its pyproject.toml); the sandbox runs torch {here}."]
    return []


def _satisfies(version: str, spec: str) -> bool:
    from packaging.specifiers import InvalidSpecifier, SpecifierSet

    try:
        return SpecifierSet(spec).contains(version, prereleases=True)
    except InvalidSpecifier:
        return True  # nothing to say about a requirement that cannot be read
