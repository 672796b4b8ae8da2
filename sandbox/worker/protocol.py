"""The messages between the app and a worker process (their errors: `sandbox.errors`).

Requests are dicts ``{"id": int, "op": str, "args": dict, "session": str | None}``, sent
without waiting for earlier ones to end (the worker serves sessions in turn). Replies carry
the same id: ``{"id", "ok": True, "result"}`` or ``{"id", "ok": False, "error": {...}}``; a
streaming op sends ``{"id", "items": [...]}`` messages before its final reply (items made
within a few milliseconds of each other travel together: one message per token costs more
than the token on a small model). A request that arrives behind others is told its place,
``{"id", "queue": n}``, and ``{"id", "queue": 0}`` at its first turn. The other requests:
``{"op": "cancel", "id": n}`` ends request n at once (its final reply follows),
``{"op": "threads", "n": k}`` gives the worker k intra-op threads, ``{"op": "shutdown"}``.

Both ends are our own processes (the worker is started by the app from `sandbox.worker`),
so the pickled Connection messages never carry anything a web request sent.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from sandbox.errors import RequestFailed
from sandbox.text import terminal_safe

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


def error_from_reply(error: dict) -> RequestFailed:
    """Rebuild the exception a worker described in a failed reply.

    Its text is the experiment's (an exception message can hold anything): made
    `terminal_safe` here, where it enters the app or the CLI, so it prints and renders
    anywhere (no half surrogate pairs, no terminal escapes).
    """
    return RequestFailed(
        terminal_safe(str(error.get("sentence") or error.get("message") or "the request failed")),
        rule=terminal_safe(str(error.get("rule", ""))),
        file=terminal_safe(str(error.get("file", ""))),
        hint=terminal_safe(str(error.get("hint", ""))),
        detail=terminal_safe(str(error.get("traceback", ""))),
    )


DEVICE_ENV = "SANDBOX_DEVICE"  # the device workers use (cpu, cuda, cuda:N, mps); unset: the best present


def requested_device(override: str | None = None) -> str | None:
    """The device asked for: ``override``, else ``$SANDBOX_DEVICE``, else None (the worker
    picks the best present). Raises ValueError for a name that is no device. No torch needed:
    the app passes the choice on as the worker's ``--device``."""
    chosen = override or os.environ.get(DEVICE_ENV)
    if not chosen:
        return None
    if chosen not in {"cpu", "cuda", "mps"} and not chosen.startswith("cuda:"):
        raise ValueError(f"unknown device {chosen!r}: use cpu, cuda, cuda:N or mps")
    return chosen
