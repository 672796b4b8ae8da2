"""Hugging Face Transformers folders: what ``save_pretrained`` and the ``Trainer`` write.

A model folder holds ``config.json`` (with ``model_type``), weights (``model.safetensors``,
``pytorch_model.bin``, or a sharded ``*.index.json``) and tokenizer files. The Trainer's
output folder adds ``checkpoint-<step>/`` folders, each with ``trainer_state.json`` whose
``log_history`` is the training log (without one, the TensorBoard events of its ``runs/``). An experiment folder is either one model folder (its
run is called ``final``) or a folder of model folders (one run each). Only local files are
ever read: nothing is fetched from the hub.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from sandbox.zoo import tbread
from sandbox.zoo.jsonfile import read_json_object

HINTS = {
    "layout": "Save the model and its tokenizer with save_pretrained into this folder (or one subfolder per model).",
    "config": "config.json must come from save_pretrained (it names the model_type AutoModelForCausalLM builds).",
    "weights": "Save the weights with save_pretrained (model.safetensors); only local files are read.",
    "tokenizer": "Save the tokenizer with tokenizer.save_pretrained into the model's folder.",
}
NAME = "huggingface"
LABEL = "Hugging Face"
FINAL = "final"  # the run name of a folder that is itself a model
WEIGHTS = ("model.safetensors", "pytorch_model.bin", "model.safetensors.index.json", "pytorch_model.bin.index.json")
_CHECKPOINT = re.compile(r"^checkpoint-(\d+)$")


def is_model_folder(path: Path) -> bool:
    """``config.json`` naming a ``model_type`` beside weights of a known name."""
    return any((path / w).is_file() for w in WEIGHTS) and _names_a_model_type(path / "config.json")


def _names_a_model_type(config: Path) -> bool:
    try:
        return b'"model_type"' in config.read_bytes()[:1_000_000]
    except OSError:
        return False


def recognise(root: Path) -> bool:
    """A ``config.json`` naming a ``model_type`` (what ``save_pretrained`` writes; another
    codebase's config.json does not), a ``trainer_state.json``, or model folders inside."""
    if _names_a_model_type(root / "config.json") or (root / "trainer_state.json").is_file():
        return True
    return any(is_model_folder(d) for d in _subfolders(root))


def _subfolders(root: Path) -> list[Path]:
    try:
        return [
            d for d in sorted(root.iterdir(), key=lambda p: p.name)
            if d.is_dir() and not d.name.startswith((".", "_")) and not _CHECKPOINT.match(d.name)
            and d.name != "runs"
        ]
    except OSError:
        return []


def run_folders(root: Path) -> list[tuple[str, Path]]:
    """``final`` for a folder that is itself a model (or has a config.json at least, so that a
    broken one is listed and said to be broken), else its model subfolders."""
    if (root / "config.json").is_file():
        return [(FINAL, root)]
    return [(d.name, d) for d in _subfolders(root) if is_model_folder(d)]


def checkpoints(run_dir: Path) -> list[tuple[int, Path]]:
    """The Trainer's ``checkpoint-<step>`` folders, by step."""
    found = []
    try:
        for d in run_dir.iterdir():
            m = _CHECKPOINT.match(d.name)
            if m and d.is_dir():
                found.append((int(m.group(1)), d))
    except OSError:
        return []
    return sorted(found)


def trainer_state(run_dir: Path) -> Path:
    """``trainer_state.json`` of the folder, else that of its last checkpoint (the Trainer
    writes it with each checkpoint; ``save_model`` alone does not)."""
    own = run_dir / "trainer_state.json"
    if own.is_file():
        return own
    for _, folder in reversed(checkpoints(run_dir)):
        if (folder / "trainer_state.json").is_file():
            return folder / "trainer_state.json"
    return own


def log_file(run_dir: Path) -> Path:
    """``trainer_state.json`` (see `trainer_state`); without one, the newest TensorBoard event
    file of the Trainer's ``runs/<date>_<host>/`` (its folder's event files are read together)."""
    state = trainer_state(run_dir)
    if state.is_file():
        return state
    events = sorted((p for p in run_dir.glob("runs/*/" + tbread.PREFIX + "*") if p.is_file()),
                    key=lambda p: (p.parent.name, p.name))
    return events[-1] if events else state


def weights_file(run_dir: Path) -> Path:
    for name in WEIGHTS:
        if (run_dir / name).is_file():
            return run_dir / name
    return run_dir / WEIGHTS[0]


def files(run: Any) -> dict[str, Path]:
    return {
        "weights": weights_file(run.dir),
        "model_config": run.dir / "config.json",
        "train_config": trainer_state(run.dir),
        "log": log_file(run.dir),
        "readme": run.dir / "README.md",
    }


def model_config(run: Any) -> dict:
    return read_json_object(run.checked("config.json"))


def train_config(run: Any) -> dict | None:
    """The Trainer's settings kept in ``trainer_state.json`` (its ``log_history`` left out)."""
    path = trainer_state(run.dir)
    if not path.is_file():
        return None
    data = read_json_object(run.checked(path.relative_to(run.dir).as_posix()))
    return {k: v for k, v in data.items() if k not in ("log_history", "stateful_callbacks")}


def findings(exp: Any) -> list[tuple]:
    out: list[tuple] = []
    if not exp.runs:
        out.append((None, "layout", "config.json",
                    "There is no model here: no config.json beside model.safetensors or pytorch_model.bin.", "warning"))
    for run in exp.runs:
        prefix = "" if run.dir == exp.root else f"{run.name}/"
        try:
            config = model_config(run)
        except ValueError as exc:
            out.append((run.name, "config", f"{prefix}config.json", f"{prefix}{exc}.", "error"))
            continue
        if "model_type" not in config:
            out.append((run.name, "config", f"{prefix}config.json",
                        f"{prefix}config.json names no model_type, so AutoModelForCausalLM cannot build it.", "error"))
        if not any((run.dir / w).is_file() for w in WEIGHTS):
            out.append((run.name, "weights", f"{prefix}model.safetensors",
                        f"{prefix}model.safetensors (or pytorch_model.bin) is missing.", "error"))
        if not any((run.dir / t).is_file() for t in ("tokenizer.json", "tokenizer_config.json", "vocab.json", "tokenizer.model")):
            out.append((run.name, "tokenizer", f"{prefix}tokenizer.json",
                        f"{prefix}tokenizer.json is missing (save the tokenizer with save_pretrained beside the model).", "error"))
    return out


def tokenizer_label(run: Any, cfg: dict) -> str | None:
    """``tokenizer_class`` of ``tokenizer_config.json``, else the model type's."""
    try:
        tok = read_json_object(run.checked("tokenizer_config.json"))
    except ValueError:
        tok = {}
    name = tok.get("tokenizer_class") or cfg.get("model_type")
    return str(name) if name else None
