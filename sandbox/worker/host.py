"""Load the runs of ONE experiment in its worker process, whatever codebase wrote it.

The worker's cwd is the experiment root (experiment code opens files by relative paths).
`RunHost` finds a run with the files side's discovery (`sandbox.zoo.discovery`: its kind and
files), asks the kind's loader (`sandbox.worker.kinds`) for a `LoadedRun`, then checks what
every kind must satisfy the same way: the special ids fit the embedding, and one short forward
gives logits of the right shape (the probe, which also counts the parameters). Every failure
is a `ContractViolation`: one sentence naming the file.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Any

import torch

from sandbox.errors import ContractViolation
from sandbox.worker import kinds
from sandbox.worker.failures import LOG_HINT, contract_violation, short_exception
from sandbox.worker.loaded import LoadedRun, check_logits
from sandbox.worker.params import parameter_breakdown
from sandbox.zoo import discovery

# Top-level module names that experiments of every kind define (and collide on).
EXPERIMENT_MODULES = frozenset(
    {"config", "modules", "tokenizers", "custom_tokenizers", "tools", "model", "sandbox_adapter", "nanochat"}
)


def enter_experiment(root: Path | str) -> Path:
    """Make this process the home of the experiment at ``root``: its folder the cwd (tokenizers
    open data by relative paths), first on ``sys.path`` (its ``config``, ``modules``,
    ``tokenizers`` win over anything of the same name), and no module of those names left from
    before. What a worker does first; the benchmarks' bare baselines do the same."""
    import sys

    root = Path(root).resolve()
    os.chdir(root)
    sys.path.insert(0, str(root))
    purge_experiment_modules()
    claim_namespace_folders(root)
    return root


def claim_namespace_folders(root: Path) -> None:
    """The experiment's package folders that have no ``__init__.py`` (``tokenizers/`` often has
    none) are made its packages now. Python prefers a regular package of the same name from
    anywhere on the path over such a folder, and Hugging Face's ``tokenizers`` library is one:
    without this, ``import tokenizers.bpe.tokenizer`` would look inside that library."""
    import sys
    import types

    for name in sorted(EXPERIMENT_MODULES):
        folder = root / name
        if folder.is_dir() and not (folder / "__init__.py").exists():
            package = types.ModuleType(name)
            package.__path__ = [str(folder)]
            package.__file__ = None
            sys.modules[name] = package


def purge_experiment_modules() -> None:
    """Drop modules an earlier import (or the parent) may have left under the experiments' names."""
    import sys

    for name in list(sys.modules):
        if name.split(".")[0] in EXPERIMENT_MODULES:
            del sys.modules[name]


class RunHost:
    """Loads and caches the runs of the experiment at ``root`` (the process cwd)."""

    def __init__(self, root: Path, device: str):
        self.root = Path(root)
        self.device = device
        self._runs: dict[str, LoadedRun] = {}
        self._found: dict[str, discovery.Run] = {}

    def find(self, name: str) -> discovery.Run:
        """The run called ``name`` as discovery finds it in this experiment (looked up again
        when the name is new: a run trained since the worker started)."""
        run = self._found.get(name)
        if run is None or not run.dir.is_dir():
            exp = discovery.experiment_at(self.root, self.root.parent.resolve())
            self._found = {r.name: r for r in (exp.runs if exp else ())}
            run = self._found.get(name)
        if run is None:
            raise self._no_run(name)
        return run

    def _no_run(self, name: str) -> ContractViolation:
        """The sentence for a run name discovery did not find: a link out, or no such folder."""
        from sandbox.zoo.confine import inside

        trained = self.root / "trained"
        if trained.is_dir() and name in os.listdir(trained) and not inside(trained / name, self.root.parent.resolve()):
            return ContractViolation(
                "files", f"trained/{name}",
                f"trained/{name} is a link to a folder outside the models directory; it is not listed.", "",
            )  # fmt: skip
        if (self.root / "trained").is_dir() or not discovery.experiment_at(self.root, self.root.parent.resolve()):
            return ContractViolation("layout", f"trained/{name}", f"There is no run folder trained/{name}.", "")
        return ContractViolation("layout", name, f"There is no run called {name!r} in this experiment.", "")

    def load(self, name: str) -> LoadedRun:
        """The run ``name``, loaded once and reloaded when its weights file changes."""
        run = self.find(name)
        stamp = run.weights_stamp()
        if stamp[0] < 0:
            shown = run.shown(run.weights)
            raise ContractViolation(
                "weights", shown, f"{shown} is missing.", "Train the run or copy its weights there."
            )
        cached = self._runs.get(name)
        if cached is not None and cached.stamp == stamp:
            return cached
        self._runs.pop(name, None)
        loaded = kinds.loader(run.kind).load(run, self.device)
        loaded.stamp = stamp
        check_special_ids(loaded)
        loaded.info = probe(loaded, self.device)
        self._runs[name] = loaded
        return loaded


def check_special_ids(run: LoadedRun) -> None:
    """The start and end ids must be rows of the model's embedding (it cannot read others)."""
    rows = run.embedding_rows
    if rows is None:
        return
    for attr in ("bos_id", "eos_id"):
        value = getattr(run.tokenizer, attr)
        if value is not None and not 0 <= int(value) < rows:
            raise ContractViolation(
                "special ids",
                run.tokenizer_file,
                f"The tokenizer's {attr} ({value}) lies outside the model's embedding "
                f"({rows} rows), so the model cannot read it.",
                "Size the embedding for the special ids, or change the tokenizer's ids.",
            )


def probe(run: LoadedRun, device: str) -> dict:
    """One short forward pass: checks the output shape and learns the logits' width."""
    bos = int(run.tokenizer.bos_id)
    ids = torch.tensor([[bos] * min(4, run.max_seq_len)], dtype=torch.long, device=device)
    try:
        with torch.inference_mode():
            logits = run.forward(ids)
    except ContractViolation:
        raise
    except Exception as exc:  # noqa: BLE001 — a forward that raises is a contract failure
        raise contract_violation(
            "forward",
            run.model_file,
            f"{run.forward_call} raised {short_exception(exc)} on a (1, {ids.shape[1]}) input.",
            exc,
            f"The inference path must accept input ids alone. {LOG_HINT}",
        ) from None
    logits = check_logits(logits, tuple(ids.shape))
    vocab = int(logits.shape[-1])
    # The one parameter count (tied weights once, buffers excluded), with its breakdown:
    # the app stores it for every page and command that shows a run's size.
    breakdown = parameter_breakdown(run.model, run.cfg)
    tok = run.tokenizer
    pad = getattr(tok, "pad_id", None)
    return {
        "run": run.name,
        "kind": run.kind,
        "n_params": int(breakdown["total"]),
        "params": breakdown,
        "vocab_size": vocab,
        "vocab_len": int(getattr(run.cfg, "vocab_len", vocab) or vocab),
        "embedding_rows": run.embedding_rows,
        "max_seq_len": run.max_seq_len,
        "max_batch_size": run.max_batch_size,
        "bos_id": int(tok.bos_id),
        "eos_id": int(tok.eos_id) if tok.eos_id is not None else None,
        "pad_id": int(pad) if pad is not None else None,
        "pad_outside_model": pad is not None and int(pad) >= vocab,
        "takes_cache_len": run.takes_cache_len,
        "tokenizer": run.tokenizer_name,
        "start": run.start_note,
        "loaded_by": run.loaded_by,
        "notes": list(run.notes),
        "device": device,
        "config": config_dict(run.cfg),
    }


def config_dict(cfg: Any) -> dict:
    """All config values: dataclass fields plus class attributes such as ``dropout_rate``; a
    Hugging Face config's ``to_dict()``; a plain dict as it is."""
    if dataclasses.is_dataclass(cfg) and not isinstance(cfg, type):
        values = {f.name: getattr(cfg, f.name) for f in dataclasses.fields(cfg)}
        for name, value in vars(type(cfg)).items():
            if not name.startswith("_") and name not in values and isinstance(value, (int, float, str, bool)):
                values[name] = value
    elif hasattr(cfg, "to_dict"):
        values = cfg.to_dict()
    elif isinstance(cfg, dict):
        values = dict(cfg)
    else:
        values = {}
    return {
        str(k): v if isinstance(v, (int, float, str, bool, type(None))) else repr(v)[:200]
        for k, v in values.items()
    }
