"""Consume several streams at once: one thread per stream, one queue for the reader.

Streamlit renders from one script thread and `st.write_stream` takes one generator at a
time, so the Playground cannot iterate its columns' worker streams one after the other. Here
each stream gets a thread that only moves its items into a shared queue (threads never touch
the UI); the page polls the queue with a short timeout, so Streamlit's stop and rerun
exceptions still reach it, and redraws the columns that changed.

A stream is given as a zero-argument callable returning an iterator (usually a generator
wrapping `WorkerClient.stream`). Its thread closes the iterator when it ends, fails or is
stopped; closing a worker stream cancels the request inside the worker.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Hashable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Failed:
    """The stream raised ``error`` (its thread ended)."""

    error: BaseException


@dataclass(frozen=True)
class Ended:
    """The stream is over (after its last item, a `Failed`, or a stop)."""

    stopped: bool


@dataclass(frozen=True)
class Message:
    """One thing a stream's thread reported: ``item`` is a stream item, `Failed` or `Ended`."""

    key: Hashable
    item: Any
    at: float  # time.perf_counter() when the thread received it (not when it was polled)


_live_lock = threading.Lock()
_live = 0  # streams running now in this process, every MultiStream's (every session's)


def live_streams() -> int:
    """How many streams are running in this process now (the Playground's redraw rate)."""
    return _live


def _count(delta: int) -> None:
    global _live
    with _live_lock:
        _live += delta


class MultiStream:
    """Run the streams of ``jobs`` (key -> callable returning an iterator) side by side.

    Use as a context manager, or call `start` and, in a ``finally``, `stop`::

        with MultiStream({"a": make_a, "b": make_b}) as streams:
            while not streams.finished:
                for msg in streams.poll(0.07):
                    ...
    """

    def __init__(self, jobs: dict[Hashable, Callable[[], Iterable[Any]]]):
        self.jobs = dict(jobs)
        self._queue: queue.SimpleQueue[Message] = queue.SimpleQueue()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._open = set(self.jobs)  # keys whose `Ended` has not been polled yet
        self.started_at: float | None = None

    # -- lifecycle -----------------------------------------------------------------------

    def start(self) -> MultiStream:
        """Start one daemon thread per job (daemon: a stuck worker never blocks exit)."""
        if self._threads:
            raise RuntimeError("this MultiStream was already started")
        self.started_at = time.perf_counter()
        for key, job in self.jobs.items():
            thread = threading.Thread(target=self._consume, args=(key, job), daemon=True, name=f"stream-{key}")
            self._threads.append(thread)
            thread.start()
        return self

    def stop(self) -> None:
        """Ask every thread to close its stream after the item it is waiting for."""
        self._stop.set()

    def join(self, timeout: float | None = None) -> bool:
        """Wait up to ``timeout`` seconds in all for the threads; True if all have ended."""
        deadline = None if timeout is None else time.monotonic() + timeout
        for thread in self._threads:
            left = None if deadline is None else max(0.0, deadline - time.monotonic())
            thread.join(left)
        return not any(t.is_alive() for t in self._threads)

    def __enter__(self) -> MultiStream:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
        self.join(timeout=5.0)

    @property
    def stopped(self) -> bool:
        return self._stop.is_set()

    @property
    def finished(self) -> bool:
        """True once every stream's `Ended` has been returned by `poll`."""
        return not self._open

    # -- reading -------------------------------------------------------------------------

    def poll(self, timeout: float = 0.05) -> list[Message]:
        """Everything reported so far, waiting up to ``timeout`` seconds for the first message.

        Short timeouts keep the caller responsive (a blocking wait could not be interrupted
        by Streamlit's stop button).
        """
        messages: list[Message] = []
        try:
            messages.append(self._queue.get(timeout=timeout) if timeout > 0 else self._queue.get_nowait())
            while True:
                messages.append(self._queue.get_nowait())
        except queue.Empty:
            pass
        for msg in messages:
            if isinstance(msg.item, Ended):
                self._open.discard(msg.key)
        return messages

    def drain(self, timeout: float) -> Iterator[Message]:
        """Poll until every stream has ended or ``timeout`` seconds passed (for scripts and tests)."""
        deadline = time.monotonic() + timeout
        while not self.finished and time.monotonic() < deadline:
            yield from self.poll(min(0.1, max(0.0, deadline - time.monotonic())))

    # -- the threads ---------------------------------------------------------------------

    def _put(self, key: Hashable, item: Any) -> None:
        self._queue.put(Message(key, item, time.perf_counter()))

    def _consume(self, key: Hashable, job: Callable[[], Iterable[Any]]) -> None:
        iterator: Iterator[Any] | None = None
        stopped = False
        _count(+1)
        try:
            if self._stop.is_set():
                stopped = True
                return
            iterator = iter(job())
            for item in iterator:
                self._put(key, item)
                if self._stop.is_set():
                    stopped = True
                    break
        except Exception as exc:  # noqa: BLE001 — reported to the reader; the other streams go on
            self._put(key, Failed(exc))
        finally:
            close = getattr(iterator, "close", None)
            if close is not None:
                # Closing a worker stream cancels its request; a failure to cancel is
                # reported, not raised in a thread nobody joins.
                try:
                    close()
                except Exception as exc:  # noqa: BLE001 — see above
                    self._put(key, Failed(exc))
            _count(-1)
            self._put(key, Ended(stopped=stopped))
