"""The app's side of the workers: one long-lived process per experiment, started on demand.

`WorkerClient` talks to one worker (`sandbox.worker`): requests are serialized per worker
(several browser sessions may share it) and each has a timeout (`settings.request_timeout`).
A worker that crashes or hangs is reported with its own last error line and stopped; the
request queued next starts a fresh one. `WorkerPool` keys workers by experiment root, code
fingerprint and device. A `WorkerLimiter` holds one cap on live worker processes across
every pool given it: a worker process starts only in a free slot, made if need be by
stopping the least recently used IDLE worker; a busy one is never stopped mid-request, so a
request may wait for a slot and, after its timeout, says that all workers are busy.

Worker tracebacks and stderr go to this module's logger (the app's server log); the
exceptions carry one sentence for visitors. The main process never imports experiment code.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from sandbox.errors import RequestFailed, WorkerBusy, WorkerCrashed, WorkerTimeout
from sandbox.settings import PACKAGE_PARENT, request_timeout
from sandbox.worker.protocol import error_from_reply, strip_paths

log = logging.getLogger(__name__)

START_TIMEOUT = 120.0  # spawn + import torch + experiment imports, on a busy machine
CANCEL_WAIT = 30.0  # how long a cancelled stream may take to end before its worker is stopped
POLL = 0.05
NEXT_STARTS_FRESH = "The next request starts a fresh worker."


def worker_env() -> dict[str, str]:
    """The environment of a worker process: this one's, with the folder that holds the
    `sandbox` package this process imported first on ``PYTHONPATH`` (a worker runs in its
    experiment's folder, so a source checkout that is not installed is found there too)."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(PACKAGE_PARENT), env.get("PYTHONPATH")]))
    env["PYTHONUNBUFFERED"] = "1"
    return env


class WorkerLimiter:
    """One cap on live worker processes, shared by every pool (and client) given it.

    A client holds a slot from just before its process starts until the process is gone.
    When all slots are taken, the least recently used idle worker is stopped to free one
    (idle: no request in flight, checked by taking its request lock without waiting); a
    busy worker is never stopped, so the request waits for one to finish.
    """

    def __init__(self, cap: int):
        if cap < 1:
            raise ValueError(f"the worker cap must be at least 1, not {cap}")
        self.cap = cap
        self._cond = threading.Condition()
        self._holders: set[WorkerClient] = set()

    def live(self) -> int:
        """Slots taken: worker processes alive or starting."""
        with self._cond:
            return len(self._holders)

    def acquire(self, client: WorkerClient, timeout: float) -> None:
        """A slot for ``client``'s next process; raises `WorkerBusy` after ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        while True:
            with self._cond:
                if client in self._holders:
                    return
                if len(self._holders) < self.cap:
                    self._holders.add(client)
                    return
                victim = self._lock_idle(exclude=client)
                if victim is None:
                    left = deadline - time.monotonic()
                    if left <= 0:
                        raise WorkerBusy(
                            f"All {self.cap} workers are busy with other requests (at most {self.cap} "
                            f"run at once), so the worker of {client.root.name} could not start.",
                            hint="Try again when one of them has finished.",
                        )
                    # Woken when a worker stops or finishes a request; the periodic wake-up
                    # also notices a holder whose process died on its own.
                    self._cond.wait(min(left, 1.0))
                    continue
                # The victim's slot passes to ``client`` before the victim is stopped, so
                # no other request can take it in between.
                self._holders.discard(victim)
                self._holders.add(client)
            try:
                log.info("stopping the idle worker of %s to start one for %s", victim.root.name, client.root.name)
                victim.close()
            finally:
                victim._lock.release()
            return

    def _lock_idle(self, exclude: WorkerClient) -> WorkerClient | None:
        """The least recently used holder that is idle, with its request lock taken."""
        others = sorted((c for c in self._holders if c is not exclude), key=lambda c: (c.waiting > 0, c.last_used))
        for candidate in others:
            if candidate._lock.acquire(blocking=False):
                return candidate
        return None

    def release(self, client: WorkerClient) -> None:
        """``client``'s process is gone: its slot is free."""
        with self._cond:
            self._holders.discard(client)
            self._cond.notify_all()

    def notify(self) -> None:
        """A worker finished a request: requests waiting for a slot may now stop it."""
        with self._cond:
            self._cond.notify_all()


class WorkerClient:
    """A handle on the worker of one experiment; restarts it transparently when needed."""

    def __init__(
        self,
        root: Path | str,
        device: str | None = None,
        *,
        timeout: float | None = None,
        start_timeout: float = START_TIMEOUT,
        wait_timeout: float = 600.0,
        limiter: WorkerLimiter | None = None,
    ):
        self.root = Path(root).resolve()
        self.device = device
        self.timeout = timeout if timeout is not None else request_timeout()
        self.start_timeout = start_timeout
        self.wait_timeout = wait_timeout
        self.limiter = limiter
        self.last_used = 0.0  # monotonic time the last request ended (least recently used first)
        self._retired = False
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
        """Start the process (its slot, if limited, is already taken) and wait for its hello."""
        if self._stderr is not None:
            self._stderr.close()  # the last process's stderr: read (if ever) when it died
        self._stderr = tempfile.TemporaryFile()
        cmd = [sys.executable, "-m", "sandbox.worker", str(self.root)]
        if self.device:
            cmd += ["--device", self.device]
        proc = subprocess.Popen(
            cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self._stderr, cwd=self.root, env=worker_env()
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
        """Stop the worker (politely, then by force) and free its slot."""
        proc, self._proc = self._proc, None
        if proc is not None:
            with contextlib.suppress(OSError, ValueError, AttributeError):
                self._send.send({"op": "shutdown"})
            try:
                proc.wait(timeout=2)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=5)
            self._close_pipes()
        self._free_slot()

    def retire(self) -> None:
        """Stop the worker once nobody uses it: now if idle, else after the requests in
        flight and queued on it have finished (its code changed; a new client replaces it).
        """
        self._retired = True
        if self._lock.acquire(blocking=False):
            try:
                if not self.waiting:
                    self.close()
            finally:
                self._lock.release()

    def _kill(self) -> None:
        proc, self._proc = self._proc, None
        if proc is not None and proc.poll() is None:
            proc.kill()
            proc.wait(timeout=5)
        self._close_pipes()
        self._free_slot()

    def _free_slot(self) -> None:
        if self.limiter is not None:
            self.limiter.release(self)

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
        message += f" (its last words: {strip_paths(last, self.root)})." if last else "."
        log.warning("%s\n%s", message, tail or "(nothing on its stderr)")
        self._kill()
        return WorkerCrashed(message, detail=tail, hint=NEXT_STARTS_FRESH)

    def _failed(self, op: str, error: dict) -> RequestFailed:
        """The exception for a failed reply; its traceback goes to the log, not to visitors."""
        exc = error_from_reply(error)
        detail = f"\n{exc.detail}" if exc.detail else ""
        log.warning("worker of %s: %r failed: %s%s", self.root.name, op, exc, detail)
        return exc

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
                self._kill()  # a process that died between requests: reap it, free its slot
                try:
                    if self.limiter is not None:
                        self.limiter.acquire(self, self.timeout)
                    self._start()
                except BaseException:
                    self._kill()  # never keep a slot for a process that did not start
                    raise
            yield
        finally:
            self.last_used = time.monotonic()
            if self._retired and not self.waiting:
                self.close()
            self._lock.release()
            if self.limiter is not None:
                self.limiter.notify()

    def _wait_reply(self, rid: int, timeout: float, what: str) -> dict:
        """The next message for request ``rid``; raises on crash or timeout."""
        deadline = time.monotonic() + timeout
        while True:
            recv, proc = self._recv, self._proc
            if recv is None or proc is None:  # closed under us (the app is shutting down)
                raise WorkerCrashed(f"The worker of {self.root.name} was stopped while {what}.", hint=NEXT_STARTS_FRESH)
            try:
                ready = recv.poll(POLL)
            except (OSError, EOFError):
                ready = False
            if ready:
                try:
                    msg = recv.recv()
                except (EOFError, OSError):
                    proc.wait(timeout=5)
                    raise self._crash_error(what) from None
                if msg.get("id") == rid:
                    return msg
                continue  # a late message of a request that was given up on
            if proc.poll() is not None:
                raise self._crash_error(what)
            if time.monotonic() > deadline:
                # Stopped at once, so that the requests queued behind this one get a fresh
                # worker instead of waiting on a hung one.
                self._kill()
                message = (
                    f"The worker of {self.root.name} did not answer within {timeout:.0f} s while "
                    f"{what}; it was stopped."
                )
                log.warning("%s (pid %s)", message, self.pid)
                raise WorkerTimeout(message, hint=NEXT_STARTS_FRESH)

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
                    raise self._failed(op, msg["error"])
                return items
            if not msg["ok"]:
                raise self._failed(op, msg["error"])
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
                        raise self._failed(op, msg["error"])
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
            while "items" in self._wait_reply(rid, min(CANCEL_WAIT, self.timeout), what="cancelling"):
                pass
        except (WorkerCrashed, WorkerTimeout, OSError, ValueError):
            self._kill()
