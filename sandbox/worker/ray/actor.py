"""The node side: one Ray actor per experiment, hosting that experiment's worker process.

The actor runs `sandbox.worker.client.WorkerClient` on its node, so the experiment is served exactly
as on the app's machine: one `sandbox.worker` process with the experiment root as cwd and
first on ``sys.path`` (module names such as ``config`` never meet another experiment's), the
same ops, the same request timeout, and the same sentences when the worker fails (its own
last words from its stderr, which only this node can read). The actor itself imports no
experiment code and no torch.

Before the worker starts, the actor checks the files it was given (``hello``): the sandbox's
own code and the experiment's files, by content, against the fingerprints the app computed;
a stale or partial copy is refused, never used.

Streams are pulled (``open_stream`` / ``pull`` / ``cancel``): a pump thread moves the
worker's items into a queue, and each ``pull`` returns what is there (waiting a little for
the first item), so the app sets its own deadline on every call and can cancel at any time.

This class is plain Python; `sandbox.worker.ray.connect.actor_class` turns it into a Ray actor class.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import queue
import threading
import time
from pathlib import Path
from typing import Any

from sandbox.errors import WorkerError
from sandbox.worker.client import WorkerClient
from sandbox.worker.ray.files import fingerprint_here, sandbox_fingerprint

_END = object()  # marks the last queue entry of a stream; the reply follows it
LINGER = 0.02  # a pull takes the items made within this of its first one


def error_reply(exc: BaseException) -> dict:
    """A failed reply carrying a `WorkerError` (its class by name) across Ray as plain data."""
    kind = type(exc).__name__ if isinstance(exc, WorkerError) else "RequestFailed"
    message = str(exc) if isinstance(exc, WorkerError) else f"{type(exc).__name__}: {exc}"
    return {
        "ok": False,
        "error": {
            "kind": kind,
            "message": message,
            "rule": getattr(exc, "rule", ""),
            "file": getattr(exc, "file", ""),
            "hint": getattr(exc, "hint", ""),
            "detail": getattr(exc, "detail", ""),
        },
    }


class _Stream:
    """One stream in flight: its pump thread, the queue it fills and the flag that stops it."""

    def __init__(self) -> None:
        self.items: queue.SimpleQueue = queue.SimpleQueue()
        self.stop = threading.Event()
        self.thread: threading.Thread | None = None


class ExperimentActor:
    """Serves one experiment on this node through its own worker process."""

    def __init__(
        self, name: str, shared_root: str | None, device: str | None, timeout: float, start_timeout: float
    ):
        # Copied files: Ray unpacked them into this process's cwd as <cwd>/<name>/ (see
        # `files.stage`). Shared filesystem: the path the app gave, the same on every node.
        self.root = Path(shared_root) if shared_root else Path.cwd() / name
        self.device = device
        self.timeout = timeout
        self.start_timeout = start_timeout
        self.client: WorkerClient | None = None
        self._streams: dict[int, _Stream] = {}
        self._pumps: set[threading.Thread] = set()  # running, including cancelled ones not yet ended
        self._ids = itertools.count(1)

    def hello(self, code: str, files: str, rels: list[str]) -> dict:
        """Check the code, and the files ``rels`` by content, against the app's fingerprints;
        then start the worker."""
        if sandbox_fingerprint() != code:
            return {"ok": False, "error": {"kind": "stale code"}}
        if not self.root.is_dir():
            return {"ok": False, "error": {"kind": "missing", "message": str(self.root)}}
        if fingerprint_here(self.root, rels) != files:
            return {"ok": False, "error": {"kind": "stale files"}}
        self.client = WorkerClient(self.root, self.device, timeout=self.timeout, start_timeout=self.start_timeout)
        try:
            self.client.request("ping")
        except WorkerError as exc:
            return error_reply(exc)
        import ray

        return {
            "ok": True,
            "result": {
                "pid": self.client.pid,
                "device": self.client.device,
                "actor_pid": os.getpid(),
                "node": ray.util.get_node_ip_address(),
            },
        }

    def ping(self) -> bool:
        """Answers while the actor is alive (the app asks before each request)."""
        return True

    def request(self, op: str, args: dict, timeout: float) -> dict:
        """One request on the worker, as `WorkerClient.request` runs it."""
        try:
            return {"ok": True, "result": self.client.request(op, timeout=timeout, **args)}
        except WorkerError as exc:
            return error_reply(exc)

    def open_stream(self, op: str, args: dict, timeout: float, wait: float) -> dict:
        """Start a streaming request; returns its id and, as `pull` does, its first items (the
        rest are fetched with `pull`): one round trip fewer for every stream."""
        sid = next(self._ids)
        stream = _Stream()
        stream.thread = threading.Thread(
            target=self._pump, args=(stream, op, args, timeout), daemon=True, name=f"stream-{sid}"
        )
        self._streams[sid] = stream
        self._pumps.add(stream.thread)
        stream.thread.start()
        return {"ok": True, "result": {"sid": sid, **self.pull(sid, wait)}}

    def _pump(self, stream: _Stream, op: str, args: dict, timeout: float) -> None:
        items = self.client.stream(op, timeout=timeout, **args)
        end: dict = {"ok": True, "result": None}
        try:
            for item in items:
                stream.items.put(item)
                if stream.stop.is_set():
                    break  # closing the stream below cancels it in the worker
        except WorkerError as exc:
            end = error_reply(exc)
        except Exception as exc:  # noqa: BLE001 — any failure must end the stream with a reply
            end = error_reply(exc)
        finally:
            items.close()
            stream.items.put(_END)
            stream.items.put(end)
            self._pumps.discard(threading.current_thread())

    def pull(self, sid: int, wait: float) -> dict:
        """The items of stream ``sid``: waits up to ``wait`` s for the first one, then takes
        what comes within `LINGER` of it; ``end`` is the stream's final reply once it has
        ended, else None.

        Each pull is a round trip through Ray, which costs more than an item of a small model:
        items made close together travel together (the worker does the same for its pipe).
        """
        stream = self._streams.get(sid)
        if stream is None:
            return {"items": [], "end": {"ok": False, "error": {"kind": "RequestFailed", "message": "the stream is gone"}}}
        items: list[Any] = []
        try:
            item = stream.items.get(timeout=wait)
            until = time.monotonic() + LINGER
            while True:
                if item is _END:
                    self._streams.pop(sid, None)
                    return {"items": items, "end": stream.items.get()}
                items.append(item)
                item = stream.items.get(timeout=max(0.0, until - time.monotonic()))
        except queue.Empty:
            return {"items": items, "end": None}

    def cancel(self, sid: int, wait: float) -> bool:
        """Stop stream ``sid`` (its worker is told between items); True once it has ended."""
        stream = self._streams.pop(sid, None)
        if stream is None or stream.thread is None:
            return True
        stream.stop.set()
        stream.thread.join(wait)
        return not stream.thread.is_alive()

    def streams(self) -> int:
        """Streams whose worker request is still running (a cancelled one until it has ended)."""
        return len(self._pumps)

    def shutdown(self) -> None:
        """Stop the worker process (the app then ends the actor)."""
        for sid in list(self._streams):
            self.cancel(sid, 1.0)
        if self.client is not None:
            with contextlib.suppress(WorkerError, OSError):
                self.client.close()
