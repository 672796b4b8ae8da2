"""nanochat (karpathy/nanochat): a checkout with its base directory inside it.

The experiment folder is the nanochat checkout (``nanochat/gpt.py`` and
``nanochat/checkpoint_manager.py``), holding the *base directory* that nanochat keeps under
``NANOCHAT_BASE_DIR`` (by default ``~/.cache/nanochat``): a ``base_dir/`` folder (train with
``NANOCHAT_BASE_DIR=<checkout>/base_dir``, or copy the cache folder there), else the first
other subfolder, or the checkout itself, holding ``tokenizer/tokenizer.pkl`` or a
``*_checkpoints/`` folder. In it, ``tokenizer/tokenizer.pkl`` (a pickled tiktoken encoding)
and ``<phase>_checkpoints/<model_tag>/`` with ``model_<step:06d>.pt`` (the state dict) and
``meta_<step:06d>.json`` (``model_config``, ``step``, ``val_bpb``, the training arguments)
per saved step. A run is one model tag at its latest saved step, as nanochat's own
``find_last_step`` picks it; named by the tag (``d20``) for ``base_checkpoints``, else with
the phase before it (``sft-d20`` for ``chatsft_checkpoints``). Its training log is the
printed output of ``scripts/base_train.py`` saved by whoever ran it: a ``*.log`` file in the
model tag's folder, else ``<run>.log`` in the checkout or the base directory.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from sandbox.zoo.jsonfile import read_json_object

HINTS = {
    "layout": "Keep nanochat's base directory inside the checkout (train with NANOCHAT_BASE_DIR=<checkout>/base_dir, "
              "or copy ~/.cache/nanochat there): tokenizer/ and base_checkpoints/<model_tag>/.",
    "weights": "Copy the model tag's model_<step>.pt and meta_<step>.json again from where it trained.",
    "tokenizer": "Train the tokenizer with scripts/tok_train.py (it writes tokenizer/tokenizer.pkl in the base directory).",
    "config": "meta_<step>.json must hold model_config, as nanochat's save_checkpoint writes it.",
}
NAME = "nanochat"
LABEL = "nanochat"
BASE_DIR = "base_dir"  # where the sandbox looks first for the base directory
TOKENIZER = Path("tokenizer", "tokenizer.pkl")
# Run-name prefixes of the checkpoint folders of nanochat's phases (base: none).
PHASES = {"base": "", "mid": "mid-", "chatsft": "sft-", "chatrl": "rl-"}
LOG_NAMES = ("train.log", "log.txt", "base_train.log", "output.log")
_STEP = re.compile(r"^model_(\d+)\.pt$")
_SKIP = (".", "_")
_CODE_FOLDERS = {"nanochat", "scripts", "tasks", "tests", "dev", "runs", "rustbpe"}


def recognise(root: Path) -> bool:
    """A nanochat checkout: ``nanochat/gpt.py`` and ``nanochat/checkpoint_manager.py``."""
    return (root / "nanochat" / "gpt.py").is_file() and (root / "nanochat" / "checkpoint_manager.py").is_file()


def _is_base(path: Path) -> bool:
    if (path / TOKENIZER).is_file():
        return True
    try:
        return any(d.is_dir() and d.name.endswith("_checkpoints") for d in path.iterdir())
    except OSError:
        return False


def base_dir(root: Path) -> Path:
    """The base directory inside the checkout ``root`` (``base_dir/`` when none is found)."""
    if (root / BASE_DIR).is_dir():
        return root / BASE_DIR
    try:
        folders = sorted((d for d in root.iterdir() if d.is_dir()), key=lambda p: p.name)
    except OSError:
        folders = []
    for folder in folders:
        if not folder.name.startswith(_SKIP) and folder.name not in _CODE_FOLDERS and _is_base(folder):
            return folder
    return root if _is_base(root) else root / BASE_DIR


def steps(checkpoint_dir: Path) -> list[int]:
    """The saved steps of one model tag's folder, in order."""
    try:
        found = [_STEP.match(p.name) for p in checkpoint_dir.iterdir()]
    except OSError:
        return []
    return sorted(int(m.group(1)) for m in found if m)


def run_folders(root: Path) -> list[tuple[str, Path]]:
    """Every model tag with at least one saved step: base checkpoints first, then the others."""
    base = base_dir(root)
    try:
        phases = sorted((d for d in base.iterdir() if d.is_dir() and d.name.endswith("_checkpoints")),
                        key=lambda d: (d.name != "base_checkpoints", d.name))
    except OSError:
        return []
    runs = []
    for phase_dir in phases:
        phase = phase_dir.name.removesuffix("_checkpoints")
        prefix = PHASES.get(phase, f"{phase}-")
        for tag in sorted((d for d in phase_dir.iterdir() if d.is_dir()), key=lambda p: p.name):
            if not tag.name.startswith(_SKIP) and steps(tag):
                runs.append((f"{prefix}{tag.name}", tag))
    return runs


def last_step(run: Any) -> int | None:
    found = steps(run.dir)
    return found[-1] if found else None


def log_file(run: Any) -> Path:
    """The run's saved stdout: a known name or the one ``*.log`` in its folder, else
    ``<run>.log`` in the checkout or the base directory (may not exist)."""
    for name in LOG_NAMES:
        if (run.dir / name).is_file():
            return run.dir / name
    logs = sorted(run.dir.glob("*.log"))
    if logs:
        return logs[0]
    for folder in (run.experiment_root, base_dir(run.experiment_root)):
        if (folder / f"{run.name}.log").is_file():
            return folder / f"{run.name}.log"
    return run.dir / LOG_NAMES[0]


def files(run: Any) -> dict[str, Path]:
    step = last_step(run)
    meta = run.dir / (f"meta_{step:06d}.json" if step is not None else "meta_000000.json")
    return {
        "weights": run.dir / (f"model_{step:06d}.pt" if step is not None else "model_000000.pt"),
        "model_config": meta,
        "train_config": meta,
        "log": log_file(run),
        "readme": run.dir / "README.md",
    }


def meta(run: Any) -> dict:
    """The latest step's ``meta_<step>.json``; ``ValueError`` with a sentence naming it."""
    step = last_step(run)
    if step is None:
        raise ValueError("holds no model_<step>.pt")
    return read_json_object(run.checked(f"meta_{step:06d}.json"))


def model_config(run: Any) -> dict:
    """``model_config`` of the meta file, patched as nanochat's checkpoint_manager patches
    older checkpoints (no ``window_pattern``: full context, ``"L"``)."""
    config = meta(run).get("model_config")
    if not isinstance(config, dict):
        raise ValueError(f"meta_{last_step(run):06d}.json holds no model_config")
    return {"window_pattern": "L", **config}


def train_config(run: Any) -> dict | None:
    """The training facts of the meta file (``step``, ``val_bpb``, its arguments under
    ``user_config``, flattened), without the model config and the loader's resume state."""
    data = meta(run)
    out = {k: v for k, v in data.items() if k not in ("model_config", "user_config", "dataloader_state_dict",
                                                       "loop_state", "optimizer")}
    user = data.get("user_config")
    if isinstance(user, dict):
        out.update({k: v for k, v in user.items() if k not in out})
    if "batch_size" not in out and isinstance(out.get("device_batch_size"), int):
        out["batch_size"] = out["device_batch_size"]
    if "max_seq_len" in out and "block_size" not in out:
        out["block_size"] = out["max_seq_len"]
    # Tokens per step are its total_batch_size (devices and accumulation together): said as
    # batch × accumulation × context, the way the sandbox counts tokens seen.
    per_pass = out.get("device_batch_size", 0) * out.get("max_seq_len", 0)
    total = out.get("total_batch_size")
    if isinstance(per_pass, int) and per_pass > 0 and isinstance(total, int) and total % per_pass == 0:
        out.setdefault("gradient_accumulation_steps", total // per_pass)
    return out


def findings(exp: Any) -> list[tuple]:
    root = exp.root
    base = base_dir(root)
    shown = base.relative_to(root).as_posix() if base != root else "."
    out: list[tuple] = []
    if not exp.runs:
        out.append((None, "layout", f"{shown}/base_checkpoints",
                    f"There is no run: no model_<step>.pt under {shown}/*_checkpoints/<model_tag>/.", "warning"))
    if not (base / TOKENIZER).is_file():
        out.append((None, "tokenizer", f"{shown}/{TOKENIZER.as_posix()}",
                    f"{shown}/{TOKENIZER.as_posix()} is missing, so no run can be tokenized.", "error"))
    for run in exp.runs:
        rel = run.shown(run.model_config_path)
        try:
            model_config(run)
        except ValueError as exc:
            out.append((run.name, "config", rel, f"{rel}: {exc}.", "error"))
    return out


def tokenizer_label(run: Any, cfg: dict) -> str | None:
    """nanochat's BPE (trained by rustbpe, read by tiktoken) and its size."""
    vocab = cfg.get("vocab_size")
    return f"nanochat BPE {vocab}" if vocab else "nanochat BPE"
