"""The pipe to one worker process as the app sees it: requests in flight and their replies.

App side, torch-free (used by `sandbox.worker.client`). A reader thread per process hands
every message to the request it answers, so that many requests can be in flight at once.
"""

from __future__ import annotations

import contextlib
import os
import queue
import subprocess
import threading
import time
from multiprocessing.connection import Connection
from typing import Any

from sandbox.text import terminal_safe

DEAD = object()  # put in every waiting request's queue when its worker's pipe closes


class Pending:
    """One request in flight: its replies, as the reader thread hands them over."""

    def __init__(self, session: str):
        self.session = session
        self.replies: queue.SimpleQueue = queue.SimpleQueue()
        self.heard = time.monotonic()  # when it was sent or last heard of
        self.got_any = False  # a reply or stream item came (it cannot be sent again)
        self.place = 0  # requests ahead of it, as the worker last said


class Process:
    """One started worker process, its pipes and the requests in flight on it."""

    def __init__(self, proc: subprocess.Popen, send: Connection, recv: Connection, stderr: Any):
        self.proc, self.send_conn, self.recv_conn, self.stderr = proc, send, recv, stderr
        self.pending: dict[int, Pending] = {}
        self.lock = threading.Lock()  # guards pending and the send side of the pipe
        self.stopped = False  # stopped by us: its pipe closing is no crash
        self.hung = False  # stopped for not answering: requests it never answered go again
        self.logged = False

    def send(self, msg: dict) -> None:
        with self.lock:
            self.send_conn.send(msg)

    def read(self) -> None:
        """The reader thread: every message to its request; at the end, `DEAD` to all."""
        try:
            while True:
                msg = self.recv_conn.recv()
                with self.lock:
                    waiter = self.pending.get(msg.get("id"))
                if waiter is None:
                    continue  # a late message of a request that was given up on
                waiter.heard = time.monotonic()
                if "queue" in msg:
                    waiter.place = int(msg["queue"])
                    continue
                waiter.place = 0
                waiter.replies.put(msg)
        except (EOFError, OSError, ValueError):
            pass
        with self.lock:
            waiters = list(self.pending.values())
        for waiter in waiters:
            waiter.replies.put(DEAD)

    def stderr_tail(self, lines: int = 12) -> str:
        try:
            self.stderr.seek(0, os.SEEK_END)
            size = self.stderr.tell()
            self.stderr.seek(max(0, size - 8192))
            text = terminal_safe(self.stderr.read().decode("utf-8", errors="replace"))
        except (OSError, ValueError):
            return ""
        return "\n".join(text.strip().splitlines()[-lines:])

    def end(self, kill: bool) -> None:
        """Stop the process (by force when ``kill``, else politely first) and close its pipes."""
        proc = self.proc
        if proc.poll() is None and not kill:
            with contextlib.suppress(OSError, ValueError):
                self.send({"op": "shutdown"})
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=2)
        if proc.poll() is None:
            proc.kill()
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=5)
        for conn in (self.send_conn, self.recv_conn):
            with contextlib.suppress(OSError):
                conn.close()
