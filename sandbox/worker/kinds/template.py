"""templateGPT, every version: the experiment's own ``tools.load_model`` first, else the contract.

templateGPT changed over its commits (EXPERIMENT_CONTRACT.md, fact 10): the tokenizer package
(``tokenizers`` or ``custom_tokenizers``), how ``get_tokenizer`` is sized, whether
``model_config.json`` names a tokenizer at all, the forward's signature. Each version's own
``tools.load_model(name)`` knows its layout, so it is tried first when ``tools.py`` defines it;
its ``tools.py`` imports training-only packages at its top (``datasets``), which the loader
does not use: a package missing here is stood in for while ``tools.py`` is imported, and the
run is noted. Where the own loader is absent or fails, the contract's steps below load the
run, each failure a `ContractViolation` naming the rule and the file. This module imports
experiment code, so it only runs in a worker whose cwd is the experiment root.
"""

from __future__ import annotations

import ast
import dataclasses
import importlib
import inspect
import json
import os
import re
import sys
import types
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
from sandbox.worker.kinds.wrap import embedding_rows
from sandbox.worker.loaded import LoadedRun
from sandbox.zoo.confine import OutsideError, confine

# Special-token attributes every tokenizer must have (contract fact 4).
TOKENIZER_ATTRS = ("encode", "decode", "bos_id", "eos_id", "pad_id")
OWN_LOADER = "tools.load_model"
TOKENIZER_PACKAGES = ("tokenizers", "custom_tokenizers")  # the name changed over versions


def load(run: Any, device: str) -> LoadedRun:
    """The run loaded by the experiment's own ``tools.load_model`` when it has one that works,
    else by the contract (whose sentence is the one reported when both fail)."""
    root = run.experiment_root
    own_error: BaseException | None = None
    if defines_load_model(root / "tools.py"):
        try:
            return _own_load(run, device)
        except Exception as exc:  # noqa: BLE001 — trusted code; the contract is tried next
            own_error = exc
    try:
        loaded = ContractLoader(root, device).load(run)
    except ContractViolation as exc:
        if own_error is not None:  # both ways failed: the contract's sentence, the own loader's too
            exc.hint = f"{OWN_LOADER} failed as well ({short_exception(own_error)}). {exc.hint}".strip()
        raise
    if own_error is not None:
        loaded.notes += (f"{OWN_LOADER} failed ({short_exception(own_error)}); loaded by the contract instead.",)
    return loaded


def defines_load_model(tools: Path) -> bool:
    """True when ``tools.py`` defines a top-level function ``load_model`` (read, not run)."""
    try:
        tree = ast.parse(tools.read_text(encoding="utf-8"))
    except (OSError, SyntaxError, UnicodeDecodeError, ValueError):
        return False
    return any(isinstance(n, ast.FunctionDef) and n.name == "load_model" for n in tree.body)


class _StandIn(types.ModuleType):
    """A package that is not installed, stood in for while ``tools.py`` is imported: any name
    taken from it is a function that says so when called (training code only)."""

    def __init__(self, name: str):
        super().__init__(name)
        self.__path__: list[str] = []  # a package: its submodules can be stood in for too

    def __getattr__(self, attr: str) -> Any:
        if attr.startswith("__"):
            raise AttributeError(attr)
        package = self.__name__

        def missing(*_args: Any, **_kwargs: Any) -> Any:
            raise ModuleNotFoundError(f"{package} is not installed in the sandbox's environment", name=package)

        return missing


def import_tools() -> tuple[types.ModuleType, list[str]]:
    """``tools`` imported, standing in for packages it imports that are not installed (up to
    three, with their submodules: ``matplotlib.pyplot``); returns the module and the packages
    stood in for."""
    stood_in: list[str] = []  # every dotted name put in sys.modules here
    try:
        while True:
            try:
                return importlib.import_module("tools"), sorted({n.split(".")[0] for n in stood_in})
            except ModuleNotFoundError as exc:
                name = exc.name or ""
                top = name.split(".")[0]
                tops = {n.split(".")[0] for n in stood_in}
                if not top or name in stood_in or (top not in tops and len(tops) >= 3) or (Path.cwd() / top).exists():
                    raise
                parts = name.split(".")
                for i in range(1, len(parts) + 1):
                    dotted = ".".join(parts[:i])
                    if dotted not in sys.modules:
                        sys.modules[dotted] = _StandIn(dotted)
                        stood_in.append(dotted)
                        if i > 1:
                            setattr(sys.modules[".".join(parts[: i - 1])], parts[i - 1], sys.modules[dotted])
                sys.modules.pop("tools", None)
    finally:
        for name in stood_in:  # experiment code imported later meets the real ImportError
            sys.modules.pop(name, None)


def _own_load(run: Any, device: str) -> LoadedRun:
    tools, stood_in = import_tools()
    load_model = tools.load_model
    params = inspect.signature(load_model).parameters
    # Versions that call torch.load(path) without map_location fail here on weights saved on
    # another device ("mps"): while their loader runs, that default is this worker's device.
    original = torch.load

    def load_here(*args: Any, **kwargs: Any) -> Any:
        kwargs.setdefault("map_location", device)
        return original(*args, **kwargs)

    torch.load = load_here
    try:
        result = load_model(run.name, device=device) if "device" in params else load_model(run.name)
    finally:
        torch.load = original
    model, tokenizer, cfg = result
    missing = [a for a in TOKENIZER_ATTRS if not hasattr(tokenizer, a)]
    if missing or not isinstance(model, torch.nn.Module):
        raise TypeError(f"{OWN_LOADER} returned a tokenizer without {', '.join(missing)}" if missing
                        else f"{OWN_LOADER} returned no torch module")
    model.to(device).eval()
    notes = tuple(
        f"tools.py imports {name}, which is not installed here; {OWN_LOADER} does not use it." for name in stood_in
    )
    name = getattr(cfg, "tokenizer", "") or ""
    return _loaded(run, model, cfg, tokenizer, device, OWN_LOADER, notes, str(name))


def _loaded(run: Any, model: torch.nn.Module, cfg: Any, tokenizer: Any, device: str, by: str,
            notes: tuple[str, ...], tokenizer_name: str) -> LoadedRun:
    params = inspect.signature(model.forward).parameters
    # A forward that takes the cache as an argument (and returns it) keeps none itself: the
    # incremental decoding of `sandbox.worker.generation` needs one kept inside the model.
    takes_cache = "cache_len" in params and "kv_cache" not in params
    return LoadedRun(
        name=run.name,
        model=model,
        cfg=cfg,
        tokenizer=tokenizer,
        device=device,
        stamp=(-1, -1),
        takes_cache_len=takes_cache,
        embedding_rows=embedding_rows(model, getattr(cfg, "vocab_len", None)),
        zero_cache_len="cache_len" in params,
        loaded_by=by,
        notes=notes,
        tokenizer_name=tokenizer_name,
        tokenizer_file=f"tokenizers/{tokenizer_name}/tokenizer.py" if tokenizer_name else "tokenizers/",
    )


class ContractLoader:
    """Loads a run of the experiment at ``root`` (the process cwd) step by step, as the
    contract says."""

    def __init__(self, root: Path, device: str):
        self.root = Path(root)
        self.device = device

    def run_dir(self, name: str) -> Path:
        """The folder of run ``name``: a direct child of ``trained/``."""
        return self.root / "trained" / name

    def _checked(self, run_dir: Path, name: str) -> Path:
        """A run file for reading: never one that is a link out of the models directory."""
        try:
            return confine(run_dir / name, self.root.parent, f"trained/{run_dir.name}/{name}")
        except OutsideError as exc:
            raise ContractViolation("files", f"trained/{run_dir.name}/{name}", str(exc), "") from None

    def load(self, run: Any) -> LoadedRun:
        return self._load(run.name, self.run_dir(run.name), run)

    # -- the contract, step by step -------------------------------------------------------

    def _load(self, name: str, run_dir: Path, run: Any) -> LoadedRun:
        rel = f"trained/{name}"
        cfg = self._config(rel, run_dir)
        tokenizer = self._tokenizer(cfg)
        model = self._model(cfg)
        self._weights(rel, run_dir, model)
        model.to(self.device).eval()
        return _loaded(run, model, cfg, tokenizer, self.device, "the contract", (), cfg.tokenizer)

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
        # Mid-2024 versions of the template called the package custom_tokenizers.
        package = next((p for p in TOKENIZER_PACKAGES if (self.root / p / name.replace(".", "/")).is_dir()),
                       TOKENIZER_PACKAGES[0])
        file = f"{package}/{name.replace('.', '/')}/tokenizer.py"
        module = import_experiment_module(f"{package}.{name}.tokenizer", file, "tokenizer")
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

def tokenizer_name_ok(name: str) -> bool:
    """True when ``tokenizers.<name>.tokenizer`` is a module path importlib can find in folders.

    Any folder name goes (hyphens included, as importlib allows); a name that is empty,
    has an empty dotted part (``..``, a leading dot) or a path separator does not.
    """
    return bool(name) and all(part and not set(part) & {"/", "\\", "\0"} for part in name.split("."))
