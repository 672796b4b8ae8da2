"""Your own adapter: any codebase, let in by a file ``sandbox_adapter.py`` in its folder.

The adapter's functions run only in the experiment's worker (`sandbox.worker.kinds.adapter`):
``load(run_dir, device) -> (model, tokenizer)`` and ``logits(model, ids) -> (batch, seq,
vocab)``. What the files side needs is read from the adapter's syntax tree, never by running
it: optional module-level strings ``RUNS`` (a glob of run folders relative to the experiment,
default ``trained/*``; with no match the experiment folder is its one run, ``main``),
``LOG`` (the training log in a run folder, default ``log.csv``: CSV, nanoGPT-style printed
lines or a ``trainer_state.json``), ``WEIGHTS`` (the file whose change means a new model,
default ``model.pt``) and ``CONFIG`` (a JSON file of the model's settings, default
``config.json``).
"""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Any

from sandbox.zoo.jsonfile import read_json_object

HINTS = {
    "adapter": "sandbox_adapter.py must define load(run_dir, device) -> (model, tokenizer) and logits(model, input_ids); see the README, Bring your experiments.",
}
NAME = "adapter"
LABEL = "your own adapter"
FILE = "sandbox_adapter.py"
MAIN = "main"
DEFAULTS = {"RUNS": "trained/*", "LOG": "log.csv", "WEIGHTS": "model.pt", "CONFIG": "config.json", "TRAIN_CONFIG": "train_config.json"}


def recognise(root: Path) -> bool:
    return (root / FILE).is_file()


def settings(root: Path) -> dict[str, str]:
    """The adapter's module-level string constants named in `DEFAULTS`, read without running it."""
    found = dict(DEFAULTS)
    try:
        tree = ast.parse((root / FILE).read_text(encoding="utf-8"))
    except (OSError, SyntaxError, UnicodeDecodeError, ValueError):
        return found
    for node in tree.body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            name = node.targets[0].id
            if name in DEFAULTS and isinstance(node.value, ast.Constant) and isinstance(node.value.value, str):
                found[name] = node.value.value
    return found


def _safe(pattern: str) -> bool:
    """A relative pattern that stays inside the experiment (no absolute path, no ``..``)."""
    return bool(pattern) and not Path(pattern).is_absolute() and ".." not in Path(pattern).parts


def run_folders(root: Path) -> list[tuple[str, Path]]:
    pattern = settings(root)["RUNS"]
    found = []
    if _safe(pattern):
        found = [(d.name, d) for d in sorted(root.glob(pattern)) if d.is_dir() and not d.name.startswith((".", "_"))]
    return found or [(MAIN, root)]


def files(run: Any) -> dict[str, Path]:
    s = settings(run.experiment_root)
    pick = {role: s[key] if _safe(s[key]) else DEFAULTS[key]
            for role, key in (("weights", "WEIGHTS"), ("model_config", "CONFIG"), ("log", "LOG"), ("train_config", "TRAIN_CONFIG"))}
    return {**{role: run.dir / rel for role, rel in pick.items()}, "readme": run.dir / "README.md"}


def _json(run: Any, role: str) -> dict | None:
    path = files(run)[role]
    if not path.is_file():
        return None
    return read_json_object(run.checked(path.relative_to(run.dir).as_posix()))


def model_config(run: Any) -> dict:
    return _json(run, "model_config") or {}


def train_config(run: Any) -> dict | None:
    return _json(run, "train_config")


def findings(exp: Any) -> list[tuple]:
    out: list[tuple] = []
    try:
        tree = ast.parse((exp.root / FILE).read_text(encoding="utf-8"), filename=FILE)
    except SyntaxError as exc:
        return [(None, "adapter", FILE, f"{FILE} has a syntax error on line {exc.lineno}: {exc.msg}.", "error")]
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        return [(None, "adapter", FILE, f"{FILE} cannot be read ({type(exc).__name__}).", "error")]
    defined = {n.name for n in tree.body if isinstance(n, ast.FunctionDef)}
    for needed in ("load", "logits"):
        if needed not in defined:
            out.append((None, "adapter", FILE, f"{FILE} defines no function {needed}().", "error"))
    return out


def tokenizer_label(run: Any, cfg: dict) -> str | None:
    """What the run's config calls its tokenizer, if anything."""
    name = cfg.get("tokenizer")
    return str(name) if name else None
