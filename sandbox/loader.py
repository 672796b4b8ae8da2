"""The app's side of the workers: one long-lived process per experiment, started on demand.

`WorkerClient` talks to one worker (`sandbox.worker`): requests are serialized per worker
(several browser sessions may share it) and each has a timeout. A worker that crashes or
hangs is reported with its own last error line and stopped; the next request starts a fresh
one. `WorkerPool` keeps at most N workers alive, keyed by experiment root, code fingerprint
and device, closing the least recently used.

The main process never imports experiment code.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import OrderedDict
from collections.abc import Iterator
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from sandbox.discovery import Experiment
from sandbox.protocol import WorkerBusy, WorkerCrashed, WorkerTimeout, error_from_reply
from sandbox.settings import PROJECT_ROOT

START_TIMEOUT = 120.0  # spawn + import torch + experiment imports, on a busy machine
DEFAULT_TIMEOUT = 120.0  # one request, or one item of a stream
POLL = 0.05


class WorkerClient:
    """A handle on the worker of one experiment; restarts it transparently when needed."""

    def __init__(
        self,
        root: Path | str,
        device: str | None = None,
        *,
        timeout: float = DEFAULT_TIMEOUT,
        start_timeout: float = START_TIMEOUT,
        wait_timeout: float = 600.0,
    ):
        self.root = Path(root).resolve()
        self.device = device
        self.timeout = timeout
        self.start_timeout = start_timeout
        self.wait_timeout = wait_timeout
        self._lock = threading.Lock()
        self._state = threading.Lock()  # guards _waiting and the process fields
        self._waiting = 0
        self._proc: subprocess.Popen | None = None
        self._send: Connection | None = None
        self._recv: Connection | None = None
        self._stderr = None
        self._next_id = 1
        self.pid: int | None = None
        self.starts = 0

    # -- lifecycle -----------------------------------------------------------------------

    @property
    def alive(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    @property
    def waiting(self) -> int:
        """Requests queued behind the one running (for "position in queue" displays)."""
        return self._waiting

    def _start(self) -> None:
        self._stderr = tempfile.TemporaryFile()
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(PROJECT_ROOT), env.get("PYTHONPATH")]))
        env["PYTHONUNBUFFERED"] = "1"
        cmd = [sys.executable, "-m", "sandbox.worker", str(self.root)]
        if self.device:
            cmd += ["--device", self.device]
        proc = subprocess.Popen(
            cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self._stderr, cwd=self.root, env=env
        )
        self._send = Connection(os.dup(proc.stdin.fileno()), readable=False)
        self._recv = Connection(os.dup(proc.stdout.fileno()), writable=False)
        proc.stdin.close()
        proc.stdout.close()
        self._proc = proc
        self.starts += 1
        hello = self._wait_reply(0, self.start_timeout, what="starting the worker")
        self.pid = hello["result"]["pid"]
        self.device = hello["result"]["device"]

    def close(self) -> None:
        """Stop the worker (politely, then by force)."""
        proc, self._proc = self._proc, None
        if proc is None:
            return
        with contextlib.suppress(OSError, ValueError):
            self._send.send({"op": "shutdown"})
        try:
            proc.wait(timeout=2)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)
        self._close_pipes()

    def _kill(self) -> None:
        proc, self._proc = self._proc, None
        if proc is not None and proc.poll() is None:
            proc.kill()
            proc.wait(timeout=5)
        self._close_pipes()

    def _close_pipes(self) -> None:
        for conn in (self._send, self._recv):
            if conn is not None:
                with contextlib.suppress(OSError):
                    conn.close()
        self._send = self._recv = None

    def _stderr_tail(self, lines: int = 12) -> str:
        if self._stderr is None:
            return ""
        try:
            self._stderr.seek(0, os.SEEK_END)
            size = self._stderr.tell()
            self._stderr.seek(max(0, size - 8192))
            text = self._stderr.read().decode("utf-8", errors="replace")
        except (OSError, ValueError):
            return ""
        return "\n".join(text.strip().splitlines()[-lines:])

    def _crash_error(self, what: str) -> WorkerCrashed:
        proc = self._proc
        code = proc.returncode if proc is not None else None
        tail = self._stderr_tail()
        last = next((ln.strip() for ln in reversed(tail.splitlines()) if ln.strip()), "")
        if code is not None and code < 0:
            try:
                how = f"was killed by signal {signal.Signals(-code).name}"
            except ValueError:
                how = f"was killed by signal {-code}"
        else:
            how = f"exited with status {code}"
        message = f"The worker of {self.root.name} {how} while {what}"
        message += f" (its last words: {last})." if last else "."
        self._kill()
        return WorkerCrashed(message, detail=tail, hint="The next request starts a fresh worker.")

    # -- requests ------------------------------------------------------------------------

    @contextlib.contextmanager
    def _turn(self) -> Iterator[None]:
        """Serialize requests on this worker; waiting callers are counted for the UI."""
        with self._state:
            self._waiting += 1
        try:
            if not self._lock.acquire(timeout=self.wait_timeout):
                raise WorkerBusy(f"The worker of {self.root.name} stayed busy for {self.wait_timeout:.0f} s.")
        finally:
            with self._state:
                self._waiting -= 1
        try:
            if not self.alive:
                self._kill()
                self._start()
            yield
        finally:
            self._lock.release()

    def _wait_reply(self, rid: int, timeout: float, what: str) -> dict:
        """The next message for request ``rid``; raises on crash or timeout."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                ready = self._recv.poll(POLL)
            except (OSError, EOFError):
                ready = False
            if ready:
                try:
                    msg = self._recv.recv()
                except (EOFError, OSError):
                    self._proc.wait(timeout=5)
                    raise self._crash_error(what) from None
                if msg.get("id") == rid:
                    return msg
                continue  # a late message of a request that was given up on
            if self._proc.poll() is not None:
                raise self._crash_error(what)
            if time.monotonic() > deadline:
                self._kill()
                raise WorkerTimeout(
                    f"The worker of {self.root.name} did not answer within {timeout:.0f} s while "
                    f"{what}; it was stopped.",
                    hint="The next request starts a fresh worker.",
                )

    def _post(self, op: str, args: dict) -> int:
        rid = self._next_id
        self._next_id += 1
        try:
            self._send.send({"id": rid, "op": op, "args": args})
        except (OSError, ValueError):
            self._proc.wait(timeout=5)
            raise self._crash_error(f"receiving {op!r}") from None
        return rid

    def request(self, op: str, *, timeout: float | None = None, **args: Any) -> Any:
        """Run one request and return its result (raises a `WorkerError` subclass on failure)."""
        with self._turn():
            rid = self._post(op, args)
            msg = self._wait_reply(rid, timeout or self.timeout, what=f"answering {op!r}")
            if "items" in msg:  # a streaming op asked for as a plain request: collect it
                items = list(msg["items"])
                while "items" in (msg := self._wait_reply(rid, timeout or self.timeout, f"answering {op!r}")):
                    items.extend(msg["items"])
                if not msg["ok"]:
                    raise error_from_reply(msg["error"])
                return items
            if not msg["ok"]:
                raise error_from_reply(msg["error"])
            return msg["result"]

    def stream(self, op: str, *, timeout: float | None = None, **args: Any) -> Iterator[Any]:
        """Yield the items of a streaming request; closing the iterator cancels it."""
        with self._turn():
            rid = self._post(op, args)
            finished = False
            try:
                while True:
                    msg = self._wait_reply(rid, timeout or self.timeout, what=f"streaming {op!r}")
                    if "items" in msg:
                        yield from msg["items"]
                        continue
                    finished = True
                    if not msg["ok"]:
                        raise error_from_reply(msg["error"])
                    return
            except (WorkerCrashed, WorkerTimeout):
                finished = True
                raise
            finally:
                if not finished and self.alive:
                    self._cancel(rid)

    def _cancel(self, rid: int) -> None:
        """Ask the worker to end stream ``rid`` and drain it; stop the worker if it won't."""
        try:
            self._send.send({"op": "cancel", "id": rid})
            while "items" in self._wait_reply(rid, 30.0, what="cancelling"):
                pass
        except (WorkerCrashed, WorkerTimeout, OSError, ValueError):
            self._kill()


class WorkerPool:
    """At most ``max_workers`` live workers, one per (experiment root, code fingerprint, device)."""

    def __init__(self, max_workers: int = 4, device: str | None = None, **client_kw: Any):
        self.max_workers = max_workers
        self.device = device
        self.client_kw = client_kw
        self._clients: OrderedDict[tuple, WorkerClient] = OrderedDict()
        self._lock = threading.Lock()

    def client(self, experiment: Experiment) -> WorkerClient:
        """The worker handle for ``experiment`` (created lazily; the process starts on first use)."""
        key = (str(experiment.root), experiment.fingerprint(), self.device)
        with self._lock:
            client = self._clients.get(key)
            if client is None:
                # Code changed since that worker was started: its modules are stale.
                for old_key in [k for k in self._clients if k[0] == key[0]]:
                    self._clients.pop(old_key).close()
                client = WorkerClient(experiment.root, self.device, **self.client_kw)
                self._clients[key] = client
            self._clients.move_to_end(key)
            self._evict(keep=key)
            return client

    def _evict(self, keep: tuple) -> None:
        """Close least recently used live workers so that ``keep`` fits under the limit.

        Busy workers are left alone (someone is using them); they go on a later call.
        """
        live = [(k, c) for k, c in self._clients.items() if c.alive and k != keep]
        for _key, client in live[: max(0, len(live) - (self.max_workers - 1))]:
            if not client._lock.locked():
                client.close()

    def close_all(self) -> None:
        with self._lock:
            for client in self._clients.values():
                client.close()
            self._clients.clear()

    def live_workers(self) -> int:
        return sum(c.alive for c in self._clients.values())
