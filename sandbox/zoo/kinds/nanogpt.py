"""nanoGPT (karpathy/nanoGPT) and forks that keep its conventions.

A checkout: ``model.py`` defining ``GPTConfig`` and ``GPT``, ``train.py``, and one folder per
run (``out``, ``out-shakespeare-char``, ...: its ``out_dir``) holding ``ckpt.pt`` =
``{model, optimizer, model_args, iter_num, best_val_loss, config}``. The training log exists
only as printed lines, kept by whoever ran it: a ``*.log`` or ``*.txt`` file in the run folder.
Character vocabularies are in ``data/<config['dataset']>/meta.pkl``; without one, GPT-2 BPE.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from sandbox.zoo.ckptread import TensorStub, plain, read_checkpoint

HINTS = {
    "layout": "Train with nanoGPT's train.py: each out_dir holds a ckpt.pt (pass --always_save_checkpoint=True to keep one).",
    "weights": "Copy the out_dir's ckpt.pt again from where the run trained; it holds model_args, config and the state dict.",
    "model": "model.py must define GPTConfig and GPT as nanoGPT's does, matching the checkpoint's model_args.",
    "tokenizer": "Character runs need data/<dataset>/meta.pkl from prepare.py; GPT-2 BPE needs tiktoken's cached files.",
}
NAME = "nanogpt"
LABEL = "nanoGPT"
CHECKPOINT = "ckpt.pt"
# Where a saved stdout log is looked for in a run folder, in this order.
LOG_NAMES = ("train.log", "log.txt", "train.txt", "output.log", "stdout.txt")
_GPT_CONFIG = re.compile(rb"^class GPTConfig\b", re.M)


def recognise(root: Path) -> bool:
    """``model.py`` defines ``class GPTConfig`` (nanoGPT's, or a fork's)."""
    try:
        head = (root / "model.py").read_bytes()[:200_000]
    except OSError:
        return False
    return bool(_GPT_CONFIG.search(head))


def run_folders(root: Path) -> list[tuple[str, Path]]:
    """Every folder of the checkout that holds a ``ckpt.pt`` (nanoGPT's ``out_dir``s)."""
    return [
        (d.name, d)
        for d in sorted(root.iterdir(), key=lambda p: p.name)
        if d.is_dir() and not d.name.startswith((".", "_")) and (d / CHECKPOINT).is_file()
    ]


def log_file(run_dir: Path) -> Path:
    """The run's saved stdout: a known name, else the one ``*.log`` file (may not exist)."""
    for name in LOG_NAMES:
        if (run_dir / name).is_file():
            return run_dir / name
    logs = sorted(run_dir.glob("*.log"))
    return logs[0] if logs else run_dir / LOG_NAMES[0]


def files(run: Any) -> dict[str, Path]:
    ckpt = run.dir / CHECKPOINT
    return {
        "weights": ckpt,
        "model_config": ckpt,
        "train_config": ckpt,
        "log": log_file(run.dir),
        "readme": run.dir / "README.md",
    }


def checkpoint(run: Any) -> dict:
    """The run's ``ckpt.pt`` read without torch; ``ValueError`` naming the file otherwise."""
    path = run.checked(CHECKPOINT)
    if not path.is_file():
        raise ValueError(f"{CHECKPOINT} is missing")
    data = read_checkpoint(path)
    if not isinstance(data, dict) or not isinstance(data.get("model_args"), dict):
        raise ValueError(f"{CHECKPOINT} holds no model_args (it was not saved by nanoGPT's train.py)")
    return data


def model_config(run: Any) -> dict:
    """``model_args``: what ``GPTConfig(**model_args)`` is built from."""
    return plain(checkpoint(run)["model_args"])


def train_config(run: Any) -> dict | None:
    """The training ``config`` saved in the checkpoint, with ``iter_num`` (steps done)."""
    data = checkpoint(run)
    config = plain(data.get("config")) if isinstance(data.get("config"), dict) else {}
    if isinstance(data.get("iter_num"), int):
        config["iter_num"] = data["iter_num"]
    return config


def findings(exp: Any) -> list[tuple]:
    out: list[tuple] = []
    if not exp.runs:
        out.append((None, "layout", "out/ckpt.pt",
                    "There is no run: no folder of this nanoGPT checkout holds a ckpt.pt.", "warning"))
    for run in exp.runs:
        rel = f"{run.name}/{CHECKPOINT}"
        try:
            data = checkpoint(run)
        except ValueError as exc:
            out.append((run.name, "weights", rel, f"{run.name}/{exc}.", "error"))
            continue
        if not isinstance(data.get("model"), dict) or not any(isinstance(v, TensorStub) for v in data["model"].values()):
            out.append((run.name, "weights", rel, f"{rel} holds no model state dict under 'model'.", "error"))
    return out


def tokenizer_label(run: Any, cfg: dict) -> str | None:
    """Characters of ``data/<dataset>/meta.pkl`` when it exists, else GPT-2 BPE (as nanoGPT's
    sample.py decides)."""
    try:
        dataset = (train_config(run) or {}).get("dataset")
    except ValueError:
        return None
    meta = meta_file(run.experiment_root, dataset)
    if meta is not None and meta.is_file():
        return f"chars ({dataset})"
    return "GPT-2 BPE"


def meta_file(root: Path, dataset: Any) -> Path | None:
    """``data/<dataset>/meta.pkl`` of the checkout, or None when the dataset's name would lead
    out of it (an absolute path, ``..``) or is not a name at all."""
    if not isinstance(dataset, str) or not dataset or Path(dataset).is_absolute() or ".." in Path(dataset).parts:
        return None
    return root / "data" / dataset / "meta.pkl"
