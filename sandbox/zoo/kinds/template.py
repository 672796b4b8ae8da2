"""templateGPT and experiments written to the contract (EXPERIMENT_CONTRACT.md).

``config.py``, ``modules/``, ``tokenizers/`` (or an older version's ``custom_tokenizers/``)
and one folder per run under ``trained/`` holding ``model.pth``, ``model_config.json``,
``train_config.json``, ``log_data.csv`` and ``README.md``. The static checks of this kind
live in `sandbox.zoo.doctor`, where they were first written.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sandbox.zoo.jsonfile import read_json_object

HINTS: dict[str, str] = {}  # the template's hints are the doctor's own (`sandbox.zoo.doctor.HINTS`)
NAME = "template"
LABEL = "templateGPT"
SKIP_PREFIXES = (".", "_")
ROLES = {
    "weights": "model.pth",
    "model_config": "model_config.json",
    "train_config": "train_config.json",
    "log": "log_data.csv",
    "readme": "README.md",
}


def recognise(root: Path) -> bool:
    """Any of the contract's marks: ``config.py``, ``modules/`` or ``trained/``."""
    return any((root / mark).exists() for mark in ("config.py", "modules", "trained"))


def run_folders(root: Path) -> list[tuple[str, Path]]:
    """Every folder under ``trained/`` (hidden and ``_`` ones left out)."""
    trained = root / "trained"
    if not trained.is_dir():
        return []
    return [
        (d.name, d)
        for d in sorted(trained.iterdir(), key=lambda p: p.name)
        if d.is_dir() and not d.name.startswith(SKIP_PREFIXES)
    ]


def files(run: Any) -> dict[str, Path]:
    return {role: run.dir / name for role, name in ROLES.items()}


def model_config(run: Any) -> dict:
    return read_json_object(run.checked("model_config.json"))


def train_config(run: Any) -> dict | None:
    if not (run.dir / "train_config.json").is_file():
        return None
    return read_json_object(run.checked("train_config.json"))


def findings(exp: Any) -> list[tuple]:
    return []  # sandbox.zoo.doctor checks this kind itself


def tokenizer_label(run: Any, cfg: dict) -> str | None:
    """The tokenizer folder the config names."""
    return cfg.get("tokenizer")
