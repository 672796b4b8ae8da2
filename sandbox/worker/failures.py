"""Errors raised by experiment code, turned into one sentence and a fix hint.

A worker's reply never carries a server path or a traceback a visitor would see: the
sentence names the experiment's own file (relative to its root), the traceback goes to the
server log only.
"""

from __future__ import annotations

import importlib
import re
import traceback
from pathlib import Path
from typing import Any

import torch

from sandbox.errors import ContractViolation
from sandbox.worker.protocol import strip_paths


def short_exception(exc: BaseException) -> str:
    """``Type: first line of the message`` (or the type alone): an exception in a few words."""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def first_sentence(text: str) -> str:
    """The first sentence of a library's message (torch adds paragraphs of advice)."""
    return re.split(r"(?<=[a-z0-9)])\.\s", text.strip(), maxsplit=1)[0].rstrip(".")


MEMORY_HINT = (
    "The device ran out of memory: use a smaller batch or fewer documents, free the device "
    "(other programs, other workers), or choose another device with SANDBOX_DEVICE or --device."
)
LOG_HINT = "The server log has the full traceback."


def is_out_of_memory(exc: BaseException) -> bool:
    """True for a host or device out-of-memory error (torch raises a RuntimeError for the CPU)."""
    if isinstance(exc, (MemoryError, torch.OutOfMemoryError)):
        return True
    text = str(exc).lower()
    return isinstance(exc, RuntimeError) and ("out of memory" in text or "can't allocate memory" in text)


def failure_hint(exc: BaseException, otherwise: str = "") -> str:
    """The fix hint for an error raised by experiment code: out of memory has its own."""
    return MEMORY_HINT if is_out_of_memory(exc) else otherwise


def contract_violation(rule: str, file: str, sentence: str, exc: BaseException, hint: str) -> ContractViolation:
    """A `ContractViolation` for an error raised by experiment code, its traceback kept for the log."""
    detail = "".join(traceback.format_exception(exc))[-4000:]
    return ContractViolation(rule, file, sentence, failure_hint(exc, hint), detail)


def describe_exception(exc: BaseException, root: Path | str | None = None) -> dict:
    """The error part of a failed reply: a sentence and hint with no absolute server path
    (``root``, the experiment root, defaults to the cwd a worker runs in) and, for the
    server log only, the traceback.
    """
    root = Path(root) if root is not None else Path.cwd()
    if isinstance(exc, ContractViolation):
        error = {**exc.as_dict(), "traceback": exc.detail}
    else:
        error = {
            "sentence": short_exception(exc),
            "rule": "",
            "file": "",
            "hint": failure_hint(exc, _where_raised(exc, root)),
            "traceback": "".join(traceback.format_exception(exc))[-4000:],
        }
    for key in ("sentence", "hint", "file"):
        error[key] = strip_paths(error[key], root)
    return error


def _where_raised(exc: BaseException, root: Path) -> str:
    """"Fix the error at modules/model.py, line 12 …" when the innermost frame of experiment
    code is known, else "" (the error is the sandbox's own, and its sentence says it all)."""
    frames = traceback.extract_tb(exc.__traceback__)
    inside = [f for f in frames if Path(f.filename).is_relative_to(root)]
    if not inside:
        return ""
    frame = inside[-1]
    where = f"{Path(frame.filename).relative_to(root).as_posix()}, line {frame.lineno}"
    return f"Fix the error at {where} (the server log has the full traceback)."


def import_experiment_module(module: str, file: str, rule: str) -> Any:
    """Import experiment code, turning every failure into a sentence about ``file``."""
    try:
        return importlib.import_module(module)
    except SyntaxError as exc:
        raise ContractViolation(
            rule,
            file,
            f"{file} has a syntax error on line {exc.lineno}: {exc.msg}.",
            "Fix the line named; the experiment's own scripts will fail on it too.",
        ) from None
    except ModuleNotFoundError as exc:
        if exc.name and (exc.name == module or module.startswith(exc.name + ".")):
            raise ContractViolation(
                rule, file, f"{file} is missing (the contract expects it).", "Add the file."
            ) from None
        package = (exc.name or "").split(".")[0]
        raise ContractViolation(
            rule,
            file,
            f"{file} imports {package}, which is not installed in the sandbox's environment."
            if package else f"{file} failed to import: {short_exception(exc)}.",
            f"Install it there (.venv/bin/pip install {package}; the PyPI name can differ from the "
            "module's), or remove the import." if package else "Install the package it needs, or remove the import.",
        ) from None
    except Exception as exc:  # noqa: BLE001 — any error in trusted experiment code becomes a sentence
        raise contract_violation(
            rule,
            file,
            f"{file} raised {short_exception(exc)} when imported.",
            exc,
            f"Fix the error raised while importing {file} (the experiment's own scripts fail on it "
            f"too). {LOG_HINT}",
        ) from None
