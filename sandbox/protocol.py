"""The messages between the app and a worker process, and the errors they carry.

Requests are dicts ``{"id": int, "op": str, "args": dict}``. Replies carry the same id:
``{"id", "ok": True, "result"}`` or ``{"id", "ok": False, "error": {...}}``; a streaming op
sends ``{"id", "items": [...]}`` messages before its final reply (items made within a few
milliseconds of each other travel together: one message per token costs more than the
token on a small model). The only other request is
``{"op": "cancel", "id": n}``, which ends the stream with that id.

Both ends are our own processes (the worker is started by the app from `sandbox.worker`),
so the pickled Connection messages never carry anything a web request sent.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

# An absolute POSIX path: a "/" that does not continue a word, a relative path or a URL.
_ABSOLUTE_PATH = re.compile(r"(?<![\w.~:/-])/(?:[^\s'\"()\[\]<>,;:]+/)*[^\s'\"()\[\]<>,;:]*")


def strip_paths(text: str, root: Path | str | None = None) -> str:
    """``text`` with no absolute server path: paths inside ``root`` made relative to it, any
    other absolute path cut to its last part.

    Sentences are shown to visitors, who must never see where the server keeps its files;
    the full text (tracebacks included) goes to the server log instead.
    """
    if root:
        base = str(root).rstrip("/")
        text = text.replace(base + "/", "").replace(base, ".")
    return _ABSOLUTE_PATH.sub(lambda m: m.group(0).rstrip("/").rsplit("/", 1)[-1] or "/", text)


@dataclass
class ContractViolation(Exception):
    """An experiment breaks a rule of the contract: one plain sentence naming file and rule."""

    rule: str
    file: str
    sentence: str
    hint: str = ""
    detail: str = ""  # the traceback of the experiment's own error, for the server log only

    def __str__(self) -> str:
        return self.sentence

    def as_dict(self) -> dict:
        return {"rule": self.rule, "file": self.file, "sentence": self.sentence, "hint": self.hint}


class WorkerError(RuntimeError):
    """Base class of everything that can go wrong on the other side of a worker."""

    def __init__(self, message: str, *, rule: str = "", file: str = "", hint: str = "", detail: str = ""):
        super().__init__(message)
        self.rule = rule
        self.file = file
        self.hint = hint
        self.detail = detail  # the worker's traceback or stderr tail: for the server log, never shown


class RequestFailed(WorkerError):
    """The request raised inside the worker (the worker itself is fine)."""


class WorkerCrashed(WorkerError):
    """The worker process died while (or before) answering."""


class WorkerTimeout(WorkerError):
    """The worker did not answer within the request's timeout; it was stopped."""


class WorkerBusy(WorkerError):
    """Waited too long for other requests on the same worker to finish."""


def error_from_reply(error: dict) -> RequestFailed:
    """Rebuild the exception a worker described in a failed reply."""
    return RequestFailed(
        error.get("sentence") or error.get("message") or "the request failed",
        rule=error.get("rule", ""),
        file=error.get("file", ""),
        hint=error.get("hint", ""),
        detail=error.get("traceback", ""),
    )
