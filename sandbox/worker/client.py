"""The app's side of the workers: one long-lived process per experiment, started on demand.

`WorkerClient` talks to one worker (`sandbox.worker`). Requests are *multiplexed*: each is
sent at once, tagged with an id and the session it comes from, without waiting for the
requests of other sessions on the same worker (the worker serves them fairly and batches
them, `sandbox.worker.scheduler`); a reader thread hands each reply to its request. Each
message has a timeout (`settings.request_timeout`). A worker that crashes or hangs is
reported with its own last error line and stopped; requests it had not answered at all when
it was stopped for hanging are sent again to a fresh one. `WorkerLimiter`
(`sandbox.worker.limiter`) holds one cap on live worker processes across every pool given
it, and gives each its share of the cores.

Worker tracebacks and stderr go to this module's logger (the app's server log); the
exceptions carry one sentence for visitors. The main process never imports experiment code.
"""

from __future__ import annotations

import contextlib
import logging
import os
import queue
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
from sandbox.worker.channel import DEAD, Pending, Process
from sandbox.worker.limiter import WorkerLimiter, available_cores
from sandbox.worker.protocol import error_from_reply, strip_paths

__all__ = ["WorkerClient", "WorkerLimiter", "worker_env"]

log = logging.getLogger(__name__)

START_TIMEOUT = 120.0  # spawn + import torch + experiment imports, on a busy machine
CANCEL_WAIT = 30.0  # how long a cancelled stream may take to end before its worker is stopped
NEXT_STARTS_FRESH = "The next request starts a fresh worker."


def worker_env(threads: int | None = None) -> dict[str, str]:
    """The environment of a worker process: this one's, with the folder that holds the
    `sandbox` package this process imported first on ``PYTHONPATH`` (a worker runs in its
    experiment's folder, so a source checkout that is not installed is found there too),
    and, given ``threads``, the BLAS/OpenMP thread counts of its share of the cores."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(PACKAGE_PARENT), env.get("PYTHONPATH")]))
    env["PYTHONUNBUFFERED"] = "1"
    if threads:
        for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
            env[name] = str(threads)
    # Idle OpenMP threads sleep instead of spinning: on a shared machine a spinning thread
    # waits for a partner that is not scheduled (seen: a 2-thread worker 8-35x slower than
    # with this, under load).
    env.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    return env


class _Resend(Exception):
    """The worker was stopped (it hung on another request) before answering this one at all."""


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
        self._lock = threading.Lock()  # the gate: starting the process and sending requests
        self._state = threading.Lock()  # guards _proc and _in_flight
        self._in_flight = 0
        self._proc: Process | None = None
        self._next_id = 1
        self.pid: int | None = None
        self.threads: int | None = None  # intra-op threads its process was last given
        self.starts = 0

    # -- what the pages show ---------------------------------------------------------------

    @property
    def alive(self) -> bool:
        p = self._proc
        return p is not None and p.proc.poll() is None

    @property
    def in_flight(self) -> int:
        """Requests sent to this worker and not finished (every session's)."""
        return self._in_flight

    def _waiters(self) -> list[Pending]:
        p = self._proc
        if p is None:
            return []
        with p.lock:
            return list(p.pending.values())

    @property
    def waiting(self) -> int:
        """Requests the worker holds in its queue, not yet given their first turn."""
        return sum(w.place > 0 for w in self._waiters())

    def ahead(self, session: str | None = None) -> int:
        """How many requests the worker said were ahead of ``session``'s waiting request
        (any session's when None); 0 once it has had its first turn."""
        return max((w.place for w in self._waiters() if session is None or w.session == session), default=0)

    def for_session(self, session: str) -> SessionView:
        """This client with every request tagged as coming from ``session`` (the worker
        serves sessions in turn)."""
        return SessionView(self, session)

    # -- lifecycle -----------------------------------------------------------------------

    def _start(self) -> Process:
        """Start the process (its slot, if limited, is already taken) and wait for its hello."""
        threads = self.limiter.threads() if self.limiter is not None else available_cores()
        cmd = [sys.executable, "-m", "sandbox.worker", str(self.root), "--threads", str(threads)]
        if self.device:
            cmd += ["--device", self.device]
        stderr = tempfile.TemporaryFile()
        proc = subprocess.Popen(
            cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=stderr, cwd=self.root, env=worker_env(threads)
        )
        p = Process(proc, Connection(os.dup(proc.stdin.fileno()), readable=False), Connection(os.dup(proc.stdout.fileno()), writable=False), stderr)
        proc.stdin.close()
        proc.stdout.close()
        hello = p.pending[0] = Pending("")
        self._proc, self.threads = p, threads
        self.starts += 1
        threading.Thread(target=p.read, daemon=True, name=f"worker-reader-{self.root.name}").start()
        msg = self._wait(p, 0, hello, self.start_timeout, what="starting the worker")
        with p.lock:
            p.pending.pop(0, None)
        self.pid = msg["result"]["pid"]
        self.device = msg["result"]["device"]
        return p

    def set_threads(self, n: int) -> None:
        """Give the running worker (if any) ``n`` intra-op threads (the limiter's re-balance)."""
        p = self._proc
        if p is None or n == self.threads:
            return
        try:
            p.send({"op": "threads", "n": int(n)})
            self.threads = n
        except (OSError, ValueError):
            log.info("could not re-balance the threads of the worker of %s (it has stopped)", self.root.name)

    def close(self) -> None:
        """Stop the worker (politely, then by force) and free its slot."""
        with self._state:
            p, self._proc = self._proc, None
        if p is not None:
            p.stopped = True
            p.end(kill=False)
        self._free_slot()

    def retire(self) -> None:
        """Stop the worker once nobody uses it: now if idle, else after the requests in
        flight on it have finished (its code changed; a new client replaces it).
        """
        self._retired = True
        if self._lock.acquire(blocking=False):
            try:
                if not self._in_flight:
                    self.close()
            finally:
                self._lock.release()

    def _drop(self, p: Process, *, hung: bool = False) -> None:
        """Kill process ``p``; when it is still this client's, forget it and free its slot."""
        p.hung = p.hung or hung
        p.stopped = True
        with self._state:
            current = self._proc is p
            if current:
                self._proc = None
        p.end(kill=True)
        if current:
            self._free_slot()

    def _free_slot(self) -> None:
        if self.limiter is not None:
            self.limiter.release(self)

    def _crash_error(self, p: Process, what: str) -> WorkerCrashed:
        with contextlib.suppress(subprocess.TimeoutExpired):
            p.proc.wait(timeout=5)
        if p.stopped and not p.hung:
            return WorkerCrashed(f"The worker of {self.root.name} was stopped while {what}.", hint=NEXT_STARTS_FRESH)
        code = p.proc.returncode
        tail = p.stderr_tail()
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
        if not p.logged:
            p.logged = True
            log.warning("%s\n%s", message, tail or "(nothing on its stderr)")
        self._drop(p)
        return WorkerCrashed(message, detail=tail, hint=NEXT_STARTS_FRESH)

    def _failed(self, op: str, error: dict) -> RequestFailed:
        """The exception for a failed reply; its traceback goes to the log, not to visitors."""
        exc = error_from_reply(error)
        detail = f"\n{exc.detail}" if exc.detail else ""
        log.warning("worker of %s: %r failed: %s%s", self.root.name, op, exc, detail)
        return exc

    # -- requests ------------------------------------------------------------------------

    def _open(self, op: str, args: dict, session: str | None) -> tuple[Process, int, Pending]:
        """Send one request (starting the process first if need be); it is now in flight."""
        if not self._lock.acquire(timeout=self.wait_timeout):
            raise WorkerBusy(f"The worker of {self.root.name} stayed busy for {self.wait_timeout:.0f} s.")
        try:
            p = self._proc
            if p is None or p.proc.poll() is not None:
                if p is not None:
                    self._drop(p)  # a process that died between requests: reap it, free its slot
                try:
                    if self.limiter is not None:
                        self.limiter.acquire(self, self.timeout)
                    p = self._start()
                except BaseException:
                    if self._proc is not None:
                        self._drop(self._proc)  # never keep a slot for a process that did not start
                    else:
                        self._free_slot()
                    raise
            rid, self._next_id = self._next_id, self._next_id + 1
            waiter = Pending(session or "")
            with p.lock:
                p.pending[rid] = waiter
            with self._state:
                self._in_flight += 1
            try:
                p.send({"id": rid, "op": op, "args": args, "session": session})
            except (OSError, ValueError):
                self._close_request(p, rid)
                raise self._crash_error(p, f"receiving {op!r}") from None
            return p, rid, waiter
        finally:
            self._lock.release()

    def _close_request(self, p: Process, rid: int) -> None:
        with p.lock:
            p.pending.pop(rid, None)
        with self._state:
            self._in_flight -= 1
        self.last_used = time.monotonic()
        if self._retired and not self._in_flight:
            self.retire()
        if self.limiter is not None:
            self.limiter.notify()

    def _wait(self, p: Process, rid: int, waiter: Pending, timeout: float, what: str) -> dict:
        """The next message for request ``rid``; raises on crash or timeout.

        A request that times out stops the worker only when no request on it has been
        silent longer (the worker serves one unit at a time: the oldest silent request is
        the one it hangs on); the others, never answered, are then sent to a fresh worker.
        """
        while True:
            deadline = waiter.heard + timeout
            older = self._older_silent(p, waiter)
            if older is not None:
                deadline = max(deadline, older + timeout + 1.0)  # its timeout comes first
            try:
                msg = waiter.replies.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                if self._older_silent(p, waiter) is not None:
                    continue
                self._drop(p, hung=True)
                message = (
                    f"The worker of {self.root.name} did not answer within {timeout:.0f} s while "
                    f"{what}; it was stopped."
                )
                log.warning("%s (pid %s)", message, self.pid)
                raise WorkerTimeout(message, hint=NEXT_STARTS_FRESH) from None
            if msg is DEAD:
                if p.hung and not waiter.got_any and rid != 0:
                    raise _Resend
                raise self._crash_error(p, what)
            waiter.got_any = True
            return msg

    @staticmethod
    def _older_silent(p: Process, waiter: Pending) -> float | None:
        """When the longest-silent other request on ``p`` was last heard of, if before ``waiter``."""
        if p.proc.poll() is not None:
            return None
        with p.lock:
            heard = [w.heard for w in p.pending.values() if w is not waiter and w.heard < waiter.heard]
        return min(heard, default=None)

    def request(self, op: str, *, timeout: float | None = None, session: str | None = None, **args: Any) -> Any:
        """Run one request and return its result (raises a `WorkerError` subclass on failure).

        ``session`` names the browser session (or other caller) it comes from: the worker
        takes sessions in turn.
        """
        limit = timeout or self.timeout
        for attempt in (1, 2):
            p, rid, waiter = self._open(op, args, session)
            try:
                items: list | None = None
                while "items" in (msg := self._wait(p, rid, waiter, limit, what=f"answering {op!r}")):
                    items = [] if items is None else items  # a streaming op asked for as a plain request
                    items.extend(msg["items"])
                if not msg["ok"]:
                    raise self._failed(op, msg["error"])
                return items if items is not None else msg["result"]
            except _Resend:
                if attempt == 2:
                    raise self._crash_error(p, f"answering {op!r}") from None
            finally:
                self._close_request(p, rid)
        raise AssertionError("unreachable")

    def stream(self, op: str, *, timeout: float | None = None, session: str | None = None, **args: Any) -> Iterator[Any]:
        """Yield the items of a streaming request; closing the iterator cancels it."""
        limit = timeout or self.timeout
        for attempt in (1, 2):
            p, rid, waiter = self._open(op, args, session)
            finished = False
            try:
                while True:
                    msg = self._wait(p, rid, waiter, limit, what=f"streaming {op!r}")
                    if "items" in msg:
                        yield from msg["items"]
                        continue
                    finished = True
                    if not msg["ok"]:
                        raise self._failed(op, msg["error"])
                    return
            except _Resend:
                finished = True
                if attempt == 2:
                    raise self._crash_error(p, f"streaming {op!r}") from None
                continue
            except (WorkerCrashed, WorkerTimeout):
                finished = True
                raise
            finally:
                if not finished and p.proc.poll() is None:
                    self._cancel(p, rid, waiter, limit)
                self._close_request(p, rid)

    def _cancel(self, p: Process, rid: int, waiter: Pending, timeout: float) -> None:
        """Ask the worker to end stream ``rid`` and drain it; stop the worker if it won't."""
        try:
            p.send({"op": "cancel", "id": rid})
            waiter.heard = time.monotonic()
            while "items" in self._wait(p, rid, waiter, min(CANCEL_WAIT, timeout), what="cancelling"):
                pass
        except (WorkerCrashed, WorkerTimeout, _Resend, OSError, ValueError):
            self._drop(p)


class SessionView:
    """A `WorkerClient` seen from one session: `request` and `stream` carry its id, `ahead`
    is its own place in the worker's queue; everything else is the client's."""

    def __init__(self, client: WorkerClient, session: str):
        self.client = client
        self.session = session

    def request(self, op: str, **kw: Any) -> Any:
        return self.client.request(op, session=self.session, **kw)

    def stream(self, op: str, **kw: Any) -> Iterator[Any]:
        return self.client.stream(op, session=self.session, **kw)

    def ahead(self) -> int:
        return self.client.ahead(self.session)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.client, name)
