"""Error classes shared by the app side and the worker side.

No imports of the sandbox: the worker raises these, the app catches them, and both ends
may import this module without pulling in the other side. Each error carries one plain
sentence (``str(exc)``) fit to show to a visitor; a ``hint`` says how to fix it, and a
``detail`` (a traceback) goes to the server log only.
"""

from __future__ import annotations

from dataclasses import dataclass


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


class UnknownRunError(KeyError):
    """A run id that is not one of the runs discovered under the models directory."""

    def __str__(self) -> str:  # KeyError quotes its message; keep it a plain sentence
        return str(self.args[0]) if self.args else "unknown run"
