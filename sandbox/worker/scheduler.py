"""The worker's request multiplexer: many requests at once, served fairly, batched where it pays.

The app sends requests tagged with ids without waiting for earlier ones to end (several
sessions share one worker per experiment). A reader thread only moves messages from the pipe
into a queue; this loop, in the main thread, owns the model and:

(a) serves the *sessions* round-robin (`RoundRobin`; within a session its requests take turns
    too), one unit of work per turn;
(b) forms batches of compatible work: score windows of the same run and similar length
    (within 3/4 of the longest, padded at the end) from different requests in one forward (up to
    the batch limit), generation streams of the same run without a KV cache in one forward
    per token (`generation.step_together`);
(c) slices long work: one unit is one batch of windows or one token (a KV-cache stream makes
    `SLICE_TOKENS` while others wait: its cache is refilled once per turn, since the other
    requests' forwards overwrite it), so no request waits for another's whole length;
(d) drops a cancelled request at once (its final reply goes out, its place is freed);
(e) tells a request that arrives behind others its place (``{"id", "queue": n}``), and
    ``{"queue": 0}`` when its first turn comes.

Per session at most `MAX_SESSION_REQUESTS` requests and `MAX_SESSION_WINDOWS` score windows
are held (windows as int32 arrays): more is refused with one sentence, so one session
cannot fill the worker's memory.
"""

from __future__ import annotations

import os
import queue
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from typing import Any

import numpy as np

STREAM_BATCH_S = 0.02  # token events made within this of a stream's last send travel together
SLICE_TOKENS = 16  # tokens of a KV-cache stream per turn while other requests wait
GEN_BATCH = 8  # streams per batched forward when the config names no max_batch_size
MAX_SESSION_REQUESTS = 32
MAX_SESSION_WINDOWS = 50_000


class RoundRobin:
    """Items grouped by session; `next` takes the sessions in turn, and each session's items
    in turn. Items stay until `remove`d, so an item gets a turn every round until it ends."""

    def __init__(self) -> None:
        self._sessions: OrderedDict[str, deque] = OrderedDict()

    def add(self, session: str, item: Any) -> None:
        self._sessions.setdefault(session, deque()).append(item)

    def remove(self, session: str, item: Any) -> None:
        items = self._sessions.get(session)
        if items is not None and item in items:
            items.remove(item)
            if not items:
                del self._sessions[session]

    def next(self) -> Any | None:
        """The next item to serve (None when empty): the first session's next item, after
        which that session goes to the back of the line."""
        if not self._sessions:
            return None
        session, items = next(iter(self._sessions.items()))
        self._sessions.move_to_end(session)
        item = items[0]
        items.rotate(-1)
        return item

    def __len__(self) -> int:
        return sum(len(items) for items in self._sessions.values())

    def count(self, session: str) -> int:
        return len(self._sessions.get(session, ()))


@dataclass(eq=False)
class Task:
    """One request in the worker: a plain call, a scoring job or a generation stream."""

    id: int
    session: str
    op: str
    args: dict
    job: Any = None  # ScoreJob or GenStream once its first turn has set it up
    outbox: list = field(default_factory=list)
    last_send: float = 0.0
    queued: bool = False  # told it waits behind others (and owed a "queue": 0)
    windows: int = 0  # score windows it holds (the session's memory bound)


class ScoreJob:
    """The windows of one score request not scored yet, by length (longest first)."""

    def __init__(self, run: Any, windows: list, targets: list, batch_size: int | None, options: dict):
        from sandbox.worker import scoring

        scoring.check_windows(run, windows, targets)
        self.run = run
        self.limit = scoring.batch_limit(run, batch_size)
        self.options = options
        self.windows = [np.asarray(w, dtype=np.int32) for w in windows]
        self.targets = [np.asarray(t, dtype=np.int32) for t in targets]
        self.left: OrderedDict[int, deque[int]] = OrderedDict()
        for length in sorted({len(w) for w in windows}, reverse=True):
            self.left[length] = deque(i for i, w in enumerate(windows) if len(w) == length)

    @property
    def empty(self) -> bool:
        return not self.left

    def take(self, longest: int, shortest: int, n: int) -> list[int]:
        """Up to ``n`` indices of windows not scored yet, ``shortest``..``longest`` tokens long,
        longest first."""
        got: list[int] = []
        for length in [k for k in self.left if shortest <= k <= longest]:
            pending = self.left[length]
            while pending and len(got) < n:
                got.append(pending.popleft())
            if not pending:
                del self.left[length]
            if len(got) == n:
                break
        return got


class Scheduler:
    """The worker's loop over its requests (see the module docstring)."""

    def __init__(self, conn_in: Connection, conn_out: Connection, host: Any, calls: dict[str, Callable[..., Any]]):
        self.conn_in = conn_in
        self.conn_out = conn_out
        self.host = host
        self.calls = calls
        self.inbox: queue.SimpleQueue = queue.SimpleQueue()
        self.rr = RoundRobin()
        self.tasks: dict[int, Task] = {}

    # -- messages -------------------------------------------------------------------------

    def _read(self) -> None:
        """The reader thread: the pipe into the inbox; None when the app closed the pipe."""
        try:
            while True:
                self.inbox.put(self.conn_in.recv())
        except (EOFError, OSError):
            self.inbox.put(None)

    def _take(self, block: bool) -> bool:
        """Handle every waiting message (waiting for one when ``block``); False to stop."""
        timeout = STREAM_BATCH_S if any(t.outbox for t in self.tasks.values()) else None
        try:
            msg = self.inbox.get(timeout=timeout) if block else self.inbox.get_nowait()
        except queue.Empty:
            return True
        while True:
            if msg is None or msg.get("op") == "shutdown":
                return False
            self._handle(msg)
            try:
                msg = self.inbox.get_nowait()
            except queue.Empty:
                return True

    def _handle(self, msg: dict) -> None:
        op = msg.get("op")
        if op == "cancel":
            task = self.tasks.get(msg.get("id"))
            if task is not None:
                task.outbox.clear()  # nobody reads them any more
                self._finish(task, None)
            return
        if op == "threads":
            import torch

            torch.set_num_threads(max(1, int(msg.get("n", 1))))
            return
        task = Task(int(msg.get("id", 0)), str(msg.get("session") or f"request-{msg.get('id')}"), str(op), msg.get("args") or {})
        refusal = self._refusal(task)
        if refusal:
            self._send({"id": task.id, "ok": False, "error": {"sentence": refusal, "rule": "", "file": "", "hint": "Wait for your other requests to finish, or ask for less at once."}})
            return
        ahead = len(self.tasks)
        self.tasks[task.id] = task
        self.rr.add(task.session, task)
        if ahead:
            task.queued = True
            self._send({"id": task.id, "queue": ahead})

    def _refusal(self, task: Task) -> str:
        """The sentence refusing ``task`` when its session would hold too much, else ""."""
        if self.rr.count(task.session) >= MAX_SESSION_REQUESTS:
            return f"This session already has {MAX_SESSION_REQUESTS} requests on this worker; at most that many are held at once."
        if task.op == "score":
            task.windows = len(task.args.get("windows") or ())
            held = sum(t.windows for t in self.tasks.values() if t.session == task.session)
            if held + task.windows > MAX_SESSION_WINDOWS:
                return (
                    f"This evaluation needs {task.windows} windows while this session already holds {held}; "
                    f"at most {MAX_SESSION_WINDOWS} are held per session at once."
                )
        return ""

    def _send(self, msg: dict) -> None:
        self.conn_out.send(msg)

    def _emit(self, task: Task, item: Any, at_once: bool) -> None:
        """Queue a stream item; send the task's items now when ``at_once`` or they are due."""
        task.outbox.append(item)
        now = time.monotonic()
        if at_once or now - task.last_send >= STREAM_BATCH_S:
            self._send({"id": task.id, "items": task.outbox})
            task.outbox, task.last_send = [], now

    def _flush_due(self) -> None:
        now = time.monotonic()
        for task in self.tasks.values():
            if task.outbox and now - task.last_send >= STREAM_BATCH_S:
                self._send({"id": task.id, "items": task.outbox})
                task.outbox, task.last_send = [], now

    def _finish(self, task: Task, result: Any, error: dict | None = None) -> None:
        """The final reply (after the items made so far: made right, even when it failed)."""
        if task.outbox:
            self._send({"id": task.id, "items": task.outbox})
            task.outbox = []
        if error is None:
            self._send({"id": task.id, "ok": True, "result": result})
        else:
            self._send({"id": task.id, "ok": False, "error": error})
        self.tasks.pop(task.id, None)
        self.rr.remove(task.session, task)
        task.job = None  # drop its windows and stream state now: the memory is freed at once

    def _fail(self, task: Task, exc: BaseException) -> None:
        from sandbox.worker.failures import describe_exception

        self._finish(task, None, describe_exception(exc, self.host.root))

    # -- the loop ---------------------------------------------------------------------------

    def serve(self) -> None:
        import torch

        self._send({"id": 0, "ok": True, "result": self.calls["ping"]()})
        threading.Thread(target=self._read, daemon=True, name="pipe-reader").start()
        with torch.inference_mode():
            while True:
                if not self._take(block=not self.tasks):
                    return
                self._flush_due()
                task = self.rr.next()
                if task is not None:
                    self._turn(task)

    def _turn(self, task: Task) -> None:
        if task.queued:
            task.queued = False
            self._send({"id": task.id, "queue": 0})
        group = [task]
        try:
            if task.op == "score":
                if task.job is None:
                    task.job = self._start_score(task)
                else:
                    group = self._score_turn(task)
                if task.job is not None and task.job.empty:
                    self._finish(task, None)
            elif task.op == "generate":
                if task.job is None:
                    task.job = self._start_generate(task)
                else:
                    group = self._generate_turn(task)
            else:
                fn = self.calls.get(task.op)
                if fn is None:
                    raise ValueError(f"unknown request {task.op!r}")
                self._finish(task, fn(**task.args))
        except Exception as exc:  # noqa: BLE001 — every failure goes back to the app as a reply
            for member in group:
                if member.id in self.tasks:
                    self._fail(member, exc)

    # -- scoring ------------------------------------------------------------------------------

    def _start_score(self, task: Task) -> ScoreJob:
        args = dict(task.args)
        run = self.host.load(args.pop("run"))
        windows, targets = args.pop("windows"), args.pop("targets")
        batch_size = args.pop("batch_size", None)
        options = {k: args.pop(k) for k in ("top_n_positions", "top_n", "autocast") if k in args}
        if args:
            raise TypeError(f"score got unexpected arguments: {', '.join(sorted(args))}")
        task.args = {}  # the windows now live in the job, as int32
        return ScoreJob(run, windows, targets, batch_size, options)

    def _score_turn(self, lead: Task) -> list[Task]:
        """One forward: the lead's longest windows, topped up with windows of other requests
        on the same run with the same options, at least 3/4 as long.

        Shorter windows are padded to the longest by repeating their first token after
        their end: in a causal model a position never sees the ones after it, so each window's
        numbers are those it gets alone (to float rounding); the filler positions are cut off
        before anything is sent, and no pad id enters the model.
        """
        from sandbox.worker.scoring import score_batch

        job: ScoreJob = lead.job
        longest = next(iter(job.left))
        shortest = longest - longest // 4
        parts = [(lead, job.take(longest, shortest, job.limit))]
        room = job.limit - len(parts[0][1])
        for other in list(self.tasks.values()):
            if room <= 0:
                break
            ojob = other.job
            if other is lead or other.op != "score" or not isinstance(ojob, ScoreJob):
                continue
            if ojob.run is job.run and ojob.options == job.options and (got := ojob.take(longest, shortest, room)):
                parts.append((other, got))
                room -= len(got)
        rows = [(t, i, len(t.job.windows[i])) for t, idx in parts for i in idx]
        windows = [_filled(t.job.windows[i], longest) for t, i, _ in rows]
        targets = [_filled(t.job.targets[i], longest) for t, i, _ in rows]
        item = score_batch(job.run, windows, targets, **job.options)
        for task, _ in parts:
            # One item per length (the app reads each item as a (windows, positions) array).
            for length in sorted({n for t, _, n in rows if t is task}, reverse=True):
                picked = [r for r, (t, _, n) in enumerate(rows) if t is task and n == length]
                out = {"index": [rows[r][1] for r in picked]}
                for key, value in item.items():
                    out[key] = value[picked][:, :length]
                task.outbox.append(out)
            self._send({"id": task.id, "items": task.outbox})  # progress: sent at once
            task.outbox, task.last_send = [], time.monotonic()
            if task is not lead and task.job.empty:
                self._finish(task, None)
        return [t for t, _ in parts]

    # -- generation ----------------------------------------------------------------------------

    def _start_generate(self, task: Task) -> Any:
        from sandbox.playground.settings import SamplingSettings
        from sandbox.worker.generation import GenStream

        args = dict(task.args)
        run = self.host.load(args.pop("run"))
        settings = SamplingSettings(**args.pop("settings"))
        return GenStream(run, args.pop("prompt_ids"), settings, **args)

    def _generate_turn(self, lead: Task) -> list[Task]:
        """One token for every stream of the lead's run that can share a forward with it, or
        a slice of the lead's KV-cache stream alone."""
        from sandbox.worker.generation import step_together

        stream = lead.job
        limit = stream.run.max_batch_size or GEN_BATCH
        if stream.cached or limit <= 1:
            # A batch of one (the KV cache holds one stream): a slice of tokens, so that the
            # cache is refilled once per slice, not once per token, when requests alternate.
            # Counted in tokens, not seconds: on a busy machine a time slice shrinks to a
            # token or two, and the refills would cost more than the tokens.
            made, alone = 0, len(self.tasks) == 1
            while not stream.finished:
                self._emit(lead, stream.step(), at_once=False)
                made += 1
                if not self.inbox.empty() or (made >= SLICE_TOKENS and not alone):
                    break
            group = [lead]
        else:
            group = [lead] + [
                t for t in self.tasks.values()
                if t is not lead and t.op == "generate" and t.job is not None and t.job.run is stream.run
                and not t.job.cached and not t.job.finished
            ][: limit - 1]  # fmt: skip
            events = step_together([t.job for t in group])
            for task, event in zip(group, events, strict=True):
                self._emit(task, event, at_once=False)
        for task in group:
            if task.job.finished:
                self._emit(task, task.job.done_event(), at_once=False)
                self._finish(task, None)
        return group


def _filled(window: np.ndarray, width: int) -> np.ndarray:
    """``window`` padded to ``width`` tokens with its own first token repeated after its end."""
    if len(window) == width:
        return window
    return np.concatenate([window, np.full(width - len(window), window[0], dtype=window.dtype)])


def default_threads() -> int:
    """Intra-op threads of a worker started without a budget: every core this process may use."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
