"""Experiment kinds, files side: which codebase wrote a folder, its runs, configs and logs.

A *kind* is one codebase's way of keeping experiments. Each kind is one module here (what
can be read from files, without torch and without running the experiment's code) and one
module of the same name in `sandbox.worker.kinds` (how its code loads a model and a
tokenizer, and gets full-sequence logits). A kind module here defines:

- ``NAME`` (as stored with a run) and ``LABEL`` (as shown);
- ``recognise(root) -> bool``: is this folder an experiment of the kind;
- ``run_folders(root) -> [(run name, folder)]``: its runs;
- ``files(run) -> {role: Path}``: the run's files by role (``weights``, ``model_config``,
  ``train_config``, ``log``, ``readme``), each a path inside the run's experiment, which
  may not exist;
- ``model_config(run) -> dict`` and ``train_config(run) -> dict | None``, raising
  ``ValueError`` with one sentence naming the file;
- ``tokenizer_label(run, model config) -> str | None``: the tokenizer, as the runs table
  names it;
- ``HAS_MODEL`` (optional, default True): False for runs that are training logs only;
- ``findings(exp) -> [(run or None, rule, file, sentence, severity)]``: what is wrong, read
  from files (the doctor's static checks), with ``HINTS`` by rule.

`KINDS` lists them in the order a folder is tried: an adapter file wins over everything,
then the codebases whose marks are the most specific, and a folder of training logs last.
Like all of `sandbox.zoo`, these modules never import torch or experiment code (a checkpoint
is read by `sandbox.zoo.ckptread`, which runs no code); they may import the rest of `sandbox.zoo` below discovery (`jsonfile`,
`ckptread`, `confine`, `tbread`) and the base modules.
"""

from __future__ import annotations

from pathlib import Path
from types import ModuleType

from sandbox.zoo.kinds import adapter, huggingface, logs, nanochat, nanogpt, template

KINDS: tuple[ModuleType, ...] = (adapter, nanogpt, nanochat, huggingface, template, logs)
BY_NAME: dict[str, ModuleType] = {k.NAME: k for k in KINDS}


def kind_of(root: Path) -> ModuleType | None:
    """The kind of the experiment folder ``root``, or None when no kind recognises it."""
    for kind in KINDS:
        if kind.recognise(root):
            return kind
    return None


def get(name: str) -> ModuleType:
    """The kind module called ``name`` (``"template"`` for runs stored before kinds)."""
    return BY_NAME.get(name, template)


def has_model(kind_name: str) -> bool:
    """False for a kind whose runs are training logs alone (nothing to evaluate or sample)."""
    return bool(getattr(get(kind_name), "HAS_MODEL", True))


def labels() -> str:
    """The kinds as a person names them, for sentences: "templateGPT, nanoGPT, ..."."""
    return ", ".join(k.LABEL for k in (template, nanogpt, nanochat, huggingface, adapter, logs))
