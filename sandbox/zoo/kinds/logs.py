"""Training logs without a model: a TensorBoard logdir, or Lightning's ``metrics.csv`` folders.

A folder of the models directory with no code of a known codebase, holding

- **TensorBoard event files** (``events.out.tfevents.*``, written by ``SummaryWriter``,
  Lightning's ``TensorBoardLogger``, Keras, a Trainer's ``runs/``): each folder holding event
  files is a run, as TensorBoard calls it, named by its path below the experiment with ``-``
  between the parts (``main`` when the files lie in the experiment folder itself); or
- **Lightning's CSVLogger** output: ``lightning_logs/version_<N>/metrics.csv`` (with
  ``hparams.yaml``), or ``version_<N>/metrics.csv`` folders, or one ``metrics.csv``; each
  folder holding one is a run (``metrics.csv`` wins over event files in the same folder).

Such a run is on the Loss curves page and in the runs table (scalar tags and CSV headers
mapped to train and validation loss by name), and has no model to load: the pages and
commands that need one leave it out and say so.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from sandbox.zoo import tbread

HINTS = {
    "layout": "Put the logdir (folders of events.out.tfevents.* files) or lightning_logs/version_<N>/metrics.csv here.",
}
NAME = "logs"
LABEL = "training logs only"
HAS_MODEL = False  # nothing here can be evaluated, sampled or compared by its outputs
MAIN = "main"
METRICS = "metrics.csv"
NO_MODEL = "has only training logs (no model to load)"
_DEPTH = 4  # folders below the experiment searched for logs
_SKIP = (".", "_")


def _log_folders(root: Path) -> list[Path]:
    """Folders (the experiment's included) that hold ``metrics.csv`` or event files, sorted."""
    found = []
    base = len(root.parts)
    for folder, dirs, names in os.walk(root):
        depth = len(Path(folder).parts) - base
        dirs[:] = sorted(d for d in dirs if not d.startswith(_SKIP)) if depth < _DEPTH else []
        if METRICS in names or any(n.startswith(tbread.PREFIX) for n in names):
            found.append(Path(folder))
    return sorted(found, key=lambda p: p.parts)


def recognise(root: Path) -> bool:
    """Event files or a ``metrics.csv`` within a few folders of ``root``."""
    return bool(_log_folders(root))


def _name(root: Path, folder: Path) -> str:
    if folder == root:
        return MAIN
    parts = folder.relative_to(root).parts
    if len(parts) > 1 and parts[0] == "lightning_logs":
        parts = parts[1:]
    return "-".join(parts)


def run_folders(root: Path) -> list[tuple[str, Path]]:
    return [(_name(root, folder), folder) for folder in _log_folders(root)]


def log_file(run_dir: Path) -> Path:
    """``metrics.csv``, else the newest event file (its folder's others are read with it)."""
    if (run_dir / METRICS).is_file():
        return run_dir / METRICS
    events = tbread.event_files(run_dir)
    return events[-1] if events else run_dir / METRICS


def files(run: Any) -> dict[str, Path]:
    log = log_file(run.dir)
    return {
        "weights": log,  # no weights: the log stands in as what changes when the run moves on
        "model_config": run.dir / "hparams.yaml",
        "train_config": run.dir / "hparams.yaml",
        "log": log,
        "readme": run.dir / "README.md",
    }


def _hparams(run: Any) -> dict:
    """Lightning's ``hparams.yaml`` as flat ``key: value`` pairs of plain scalars (read as
    text, no YAML tags run); {} when there is none."""
    path = run.dir / "hparams.yaml"
    if not path.is_file():
        return {}
    try:
        text = run.checked("hparams.yaml").read_text(encoding="utf-8", errors="replace")
    except (OSError, ValueError):
        return {}
    out: dict[str, Any] = {}
    for line in text.splitlines():
        if line.startswith((" ", "\t", "#", "-")) or ":" not in line:
            continue
        key, _, value = line.partition(":")
        value = value.strip().strip("'\"")
        if not value:
            continue
        try:
            out[key.strip()] = int(value)
        except ValueError:
            try:
                out[key.strip()] = float(value)
            except ValueError:
                out[key.strip()] = value
    return out


def model_config(run: Any) -> dict:
    return _hparams(run)


def train_config(run: Any) -> dict | None:
    return _hparams(run) or None


def findings(exp: Any) -> list[tuple]:
    if exp.runs:
        return []
    return [(None, "layout", METRICS, "There is no run: no folder holds event files or a metrics.csv.", "warning")]


def tokenizer_label(run: Any, cfg: dict) -> str | None:
    return None
