"""Experiment kinds, worker side: how each codebase's own code loads a model and a tokenizer.

One module per kind, named as in `sandbox.zoo.kinds` (the files side), each with
``load(run, device) -> LoadedRun``: the model on the device in eval mode whose
``model(input_ids)`` gives full-sequence logits, and a tokenizer with the contract's
interface (`wrap` adapts other codebases to both). `sandbox.worker.host` then checks every
kind the same way. Worker side: these modules import torch, experiment code and (the Hugging
Face kind only) ``transformers``; they may import `sandbox.zoo` (the run's files),
`sandbox.errors` and the worker side's `loaded` and `failures`; only `sandbox.worker.host`
imports them. Logs-only runs (`logs`) have no model: their loader refuses in one sentence.
"""

from __future__ import annotations

import importlib
from types import ModuleType

_MODULES = {
    "template": "sandbox.worker.kinds.template",
    "nanogpt": "sandbox.worker.kinds.nanogpt",
    "nanochat": "sandbox.worker.kinds.nanochat",
    "huggingface": "sandbox.worker.kinds.huggingface",
    "adapter": "sandbox.worker.kinds.adapter",
    "logs": "sandbox.worker.kinds.logs",
}


def loader(kind: str) -> ModuleType:
    """The worker module of ``kind`` (imported on first use: a worker hosts one kind, and
    ``transformers`` alone takes seconds to import)."""
    return importlib.import_module(_MODULES.get(kind, _MODULES["template"]))
