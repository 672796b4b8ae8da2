"""Load the runs of ONE experiment the way the contract says, inside its worker process.

Every step that can fail because an experiment breaks the contract raises a
`ContractViolation` naming the rule and the file, in one plain sentence. This module imports
experiment code (`config`, `modules.model`, `tokenizers.<name>.tokenizer`), so it must only
ever run in a worker whose cwd is the experiment root (see `sandbox.worker`).
"""

from __future__ import annotations

import dataclasses
import inspect
import json
import os
import re
from pathlib import Path
from typing import Any

import torch

from sandbox.errors import ContractViolation
from sandbox.worker.failures import (
    LOG_HINT,
    contract_violation,
    first_sentence,
    import_experiment_module,
    short_exception,
)
from sandbox.worker.loaded import LoadedRun, check_logits
from sandbox.worker.params import parameter_breakdown
from sandbox.zoo.confine import OutsideError, confine, inside

# Special-token attributes every tokenizer must have (contract fact 4).
TOKENIZER_ATTRS = ("encode", "decode", "bos_id", "eos_id", "pad_id")


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
    return root


def purge_experiment_modules() -> None:
    """Drop modules an earlier import (or the parent) may have left under the contract's names."""
    import sys

    for name in list(sys.modules):
        top = name.split(".")[0]
        if top in {"config", "modules", "tokenizers", "tools"}:
            del sys.modules[name]


class RunHost:
    """Loads and caches the runs of the experiment at ``root`` (the process cwd)."""

    def __init__(self, root: Path, device: str):
        self.root = Path(root)
        self.device = device
        self._runs: dict[str, LoadedRun] = {}

    def run_dir(self, name: str) -> Path:
        """The folder of run ``name``: only a direct child of ``trained/`` is accepted."""
        trained = self.root / "trained"
        if not trained.is_dir() or name not in os.listdir(trained):
            raise ContractViolation(
                "layout", f"trained/{name}", f"There is no run folder trained/{name}.", ""
            )
        if not inside(trained / name, self.root.parent.resolve()):
            raise ContractViolation(
                "files", f"trained/{name}",
                f"trained/{name} is a link to a folder outside the models directory; it is not listed.", "",
            )  # fmt: skip
        return trained / name

    def _checked(self, run_dir: Path, name: str) -> Path:
        """A run file for reading: never one that is a link out of the models directory."""
        try:
            return confine(run_dir / name, self.root.parent, f"trained/{run_dir.name}/{name}")
        except OutsideError as exc:
            raise ContractViolation("files", f"trained/{run_dir.name}/{name}", str(exc), "") from None

    def load(self, name: str) -> LoadedRun:
        """The run ``name``, loaded once and reloaded when its weights file changes."""
        run_dir = self.run_dir(name)
        weights = run_dir / "model.pth"
        try:
            st = weights.stat()
            stamp = (st.st_size, st.st_mtime_ns)
        except OSError:
            raise ContractViolation(
                "weights",
                f"trained/{name}/model.pth",
                f"trained/{name}/model.pth is missing.",
                "Train the run or copy its weights there.",
            ) from None
        cached = self._runs.get(name)
        if cached is not None and cached.stamp == stamp:
            return cached
        self._runs.pop(name, None)
        loaded = self._load(name, run_dir, stamp)
        self._runs[name] = loaded
        return loaded

    # -- the contract, step by step -------------------------------------------------------

    def _load(self, name: str, run_dir: Path, stamp: tuple[int, int]) -> LoadedRun:
        rel = f"trained/{name}"
        cfg = self._config(rel, run_dir)
        tokenizer = self._tokenizer(cfg)
        model = self._model(cfg)
        self._weights(rel, run_dir, model)
        model.to(self.device).eval()
        takes_cache = "cache_len" in inspect.signature(model.forward).parameters
        emb_rows = _embedding_rows(model, getattr(cfg, "vocab_len", None))
        loaded = LoadedRun(
            name=name,
            model=model,
            cfg=cfg,
            tokenizer=tokenizer,
            device=self.device,
            stamp=stamp,
            takes_cache_len=takes_cache,
            embedding_rows=emb_rows,
        )
        self._check_special_ids(loaded)
        loaded.info = self._probe(loaded)
        return loaded

    def _config(self, rel: str, run_dir: Path) -> Any:
        config = import_experiment_module("config", "config.py", "config")
        model_config = getattr(config, "ModelConfig", None)
        if model_config is None or not dataclasses.is_dataclass(model_config):
            raise ContractViolation(
                "config", "config.py", "config.py defines no dataclass called ModelConfig.", ""
            )
        path = self._checked(run_dir, "model_config.json")
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ContractViolation(
                "run files", f"{rel}/model_config.json", f"{rel}/model_config.json is missing.", ""
            ) from None
        except (ValueError, OSError) as exc:
            raise ContractViolation(
                "run files",
                f"{rel}/model_config.json",
                f"{rel}/model_config.json is not valid JSON ({short_exception(exc)}).",
                "",
            ) from None
        if not isinstance(data, dict):
            raise ContractViolation(
                "run files", f"{rel}/model_config.json", f"{rel}/model_config.json must hold an object.", ""
            )
        fields = {f.name for f in dataclasses.fields(model_config) if f.init}
        unknown = sorted(set(data) - fields)
        if unknown:
            raise ContractViolation(
                "config",
                f"{rel}/model_config.json",
                f"{rel}/model_config.json has keys that ModelConfig in config.py does not define: "
                f"{', '.join(unknown)}.",
                "Remove the keys, or add the fields to ModelConfig if the run needs them.",
            )
        try:
            cfg = model_config(**data)
        except Exception as exc:  # noqa: BLE001 — the config's own validation, reported as a sentence
            raise ContractViolation(
                "config",
                f"{rel}/model_config.json",
                f"ModelConfig(**{rel}/model_config.json) raised {short_exception(exc)}.",
                "",
            ) from None
        # Saved JSON may name a device that is not here ("mps", "cuda"): use ours.
        if hasattr(cfg, "device"):
            cfg.device = self.device
        return cfg

    def _tokenizer(self, cfg: Any) -> Any:
        name = getattr(cfg, "tokenizer", None)
        if not isinstance(name, str):
            raise ContractViolation(
                "tokenizer", "config.py", "ModelConfig has no usable `tokenizer` name.", ""
            )
        if not tokenizer_name_ok(name):
            raise ContractViolation(
                "tokenizer",
                "model_config.json",
                f"The tokenizer name {name!r} names no folder under tokenizers/.",
                "Set `tokenizer` to the name of a folder tokenizers/<name>/ that holds tokenizer.py.",
            )
        # The experiment's own code does importlib.import_module(f"tokenizers.{name}.tokenizer"):
        # a folder name need not be a Python identifier (`bpe_fineweb-edu`), so neither do we.
        file = f"tokenizers/{name.replace('.', '/')}/tokenizer.py"
        module = import_experiment_module(f"tokenizers.{name}.tokenizer", file, "tokenizer")
        get_tokenizer = getattr(module, "get_tokenizer", None)
        if get_tokenizer is None:
            raise ContractViolation("tokenizer", file, f"{file} defines no get_tokenizer(size).", "")
        try:
            tokenizer = get_tokenizer(size=cfg.vocab_len)
        except FileNotFoundError as exc:
            missing = self._missing_file(exc)
            raise ContractViolation(
                "tokenizer data",
                missing or file,
                f"The tokenizer data file {missing} is missing (opened by {file}, relative to the "
                "experiment root)."
                if missing
                else f"A tokenizer data file opened by {file} is missing.",
                "Train or copy the tokenizer model; check its size naming ({size} vs {size-3}).",
            ) from None
        except Exception as exc:  # noqa: BLE001 — trusted code; report its failure as a sentence
            raise contract_violation(
                "tokenizer", file, f"get_tokenizer(size={cfg.vocab_len}) raised {short_exception(exc)}.", exc, LOG_HINT
            ) from None
        missing = [a for a in TOKENIZER_ATTRS if not hasattr(tokenizer, a)]
        if missing:
            raise ContractViolation(
                "tokenizer", file, f"The tokenizer from {file} lacks {', '.join(missing)}.", ""
            )
        return tokenizer

    def _missing_file(self, exc: FileNotFoundError) -> str | None:
        """The file a FileNotFoundError is about, relative to the experiment root.

        ``exc.filename`` when set; else the first name in its message that looks like a file
        (experiments raise their own, e.g. "... not found (cwd is /abs/path)").
        """
        names = [exc.filename] if exc.filename else re.findall(r"[^\s'\"()\[\],;]+", str(exc))
        for name in map(str, names):
            path = Path(name) if os.path.isabs(name) else self.root / name
            if not (exc.filename or "/" in name or path.suffix) or path.is_dir():
                continue
            try:
                return Path(os.path.normpath(path)).relative_to(self.root).as_posix()
            except ValueError:
                return path.name  # outside the experiment: its name, not where the server keeps it
        return None

    def _model(self, cfg: Any) -> torch.nn.Module:
        module = import_experiment_module("modules.model", "modules/model.py", "model")
        model_cls = getattr(module, "Model", None)
        if model_cls is None:
            raise ContractViolation("model", "modules/model.py", "modules/model.py defines no class Model.", "")
        try:
            return model_cls(cfg)
        except Exception as exc:  # noqa: BLE001 — trusted code; report its failure as a sentence
            raise contract_violation(
                "model",
                "modules/model.py",
                f"Model(cfg) raised {short_exception(exc)}.",
                exc,
                f"Model(cfg) must build from the run's model_config.json. {LOG_HINT}",
            ) from None

    def _weights(self, rel: str, run_dir: Path, model: torch.nn.Module) -> None:
        file = f"{rel}/model.pth"
        try:
            state = torch.load(self._checked(run_dir, "model.pth"), map_location="cpu", weights_only=True)
        except ContractViolation:
            raise
        except Exception as exc:  # noqa: BLE001 — corrupt or non-tensor pickles land here
            from sandbox.zoo.doctor import weights_problem

            # One sentence: what is wrong with the file when its container says so, else
            # torch's first sentence (the rest is paragraphs of advice).
            sentence = weights_problem(run_dir / "model.pth", file) or (
                f"{file} cannot be loaded as plain tensors ({type(exc).__name__}: {first_sentence(str(exc))})."
            )
            raise ContractViolation(
                "weights", file, sentence, "Save it with torch.save(model.state_dict(), path)."
            ) from None
        if not isinstance(state, dict):
            raise ContractViolation("weights", file, f"{file} does not hold a state_dict.", "")
        result = model.load_state_dict(state, strict=False)
        expected = model.state_dict()
        shape_errors = [
            f"{k} {tuple(v.shape)} vs {tuple(expected[k].shape)}"
            for k, v in state.items()
            if k in expected and hasattr(v, "shape") and tuple(v.shape) != tuple(expected[k].shape)
        ]
        if result.missing_keys or result.unexpected_keys or shape_errors:
            parts = []
            if result.missing_keys:
                parts.append("missing keys: " + ", ".join(result.missing_keys[:8]))
            if result.unexpected_keys:
                parts.append("unexpected keys: " + ", ".join(result.unexpected_keys[:8]))
            if shape_errors:
                parts.append("shape mismatches: " + ", ".join(shape_errors[:8]))
            raise ContractViolation(
                "weights",
                file,
                f"{file} does not match Model(cfg) ({'; '.join(parts)}).",
                "The weights come from another config or code version of the model.",
            )

    def _check_special_ids(self, run: LoadedRun) -> None:
        rows = run.embedding_rows
        if rows is None:
            return
        for attr in ("bos_id", "eos_id"):
            value = getattr(run.tokenizer, attr)
            if value is not None and not 0 <= int(value) < rows:
                raise ContractViolation(
                    "special ids",
                    f"tokenizers/{run.cfg.tokenizer}/tokenizer.py",
                    f"The tokenizer's {attr} ({value}) lies outside the model's embedding "
                    f"({rows} rows), so the model cannot read it.",
                    "Size the embedding for the special ids, or change the tokenizer's ids.",
                )

    def _probe(self, run: LoadedRun) -> dict:
        """One short forward pass: checks the output shape and learns the logits' width."""
        bos = int(run.tokenizer.bos_id)
        ids = torch.tensor([[bos] * min(4, run.max_seq_len)], dtype=torch.long, device=self.device)
        try:
            with torch.inference_mode():
                out = run.model(ids)
        except Exception as exc:  # noqa: BLE001 — a forward that raises is a contract failure
            raise contract_violation(
                "forward",
                "modules/model.py",
                f"model(input_ids) raised {short_exception(exc)} on a (1, {ids.shape[1]}) input.",
                exc,
                f"The inference path must accept input ids alone. {LOG_HINT}",
            ) from None
        logits = check_logits(out, tuple(ids.shape))
        vocab = int(logits.shape[-1])
        # The one parameter count (tied weights once, buffers excluded), with its breakdown:
        # the app stores it for every page and command that shows a run's size.
        breakdown = parameter_breakdown(run.model, run.cfg)
        tok = run.tokenizer
        pad = getattr(tok, "pad_id", None)
        return {
            "run": run.name,
            "n_params": int(breakdown["total"]),
            "params": breakdown,
            "vocab_size": vocab,
            "vocab_len": int(getattr(run.cfg, "vocab_len", vocab)),
            "embedding_rows": run.embedding_rows,
            "max_seq_len": run.max_seq_len,
            "max_batch_size": run.max_batch_size,
            "bos_id": int(tok.bos_id),
            "eos_id": int(tok.eos_id) if tok.eos_id is not None else None,
            "pad_id": int(pad) if pad is not None else None,
            "pad_outside_model": pad is not None and int(pad) >= vocab,
            "takes_cache_len": run.takes_cache_len,
            "tokenizer": getattr(run.cfg, "tokenizer", ""),
            "device": self.device,
            "config": config_dict(run.cfg),
        }


def tokenizer_name_ok(name: str) -> bool:
    """True when ``tokenizers.<name>.tokenizer`` is a module path importlib can find in folders.

    Any folder name goes (hyphens included, as importlib allows); a name that is empty,
    has an empty dotted part (``..``, a leading dot) or a path separator does not.
    """
    return bool(name) and all(part and not set(part) & {"/", "\\", "\0"} for part in name.split("."))


def config_dict(cfg: Any) -> dict:
    """All config values: dataclass fields plus class attributes such as ``dropout_rate``."""
    values = {f.name: getattr(cfg, f.name) for f in dataclasses.fields(cfg)}
    for name, value in vars(type(cfg)).items():
        if not name.startswith("_") and name not in values and isinstance(value, (int, float, str, bool)):
            values[name] = value
    return {k: v if isinstance(v, (int, float, str, bool, type(None))) else repr(v) for k, v in values.items()}


def _embedding_rows(model: torch.nn.Module, vocab_len: int | None) -> int | None:
    """Rows of the token embedding: the nn.Embedding whose size is closest to ``vocab_len``.

    (A GPT-2-style model also has a position embedding; it must not be mistaken for it.)
    """
    rows = [int(m.num_embeddings) for m in model.modules() if isinstance(m, torch.nn.Embedding)]
    if not rows:
        return None
    if vocab_len is None:
        return max(rows)
    return min(rows, key=lambda r: (abs(r - vocab_len), -r))
