"""Several streams at once: concurrency, one failing while the others go on, stop = cancel."""

from __future__ import annotations

import threading
import time
from collections import defaultdict

import pytest

from sandbox.errors import RequestFailed
from sandbox.playground.multistream import Ended, Failed, MultiStream
from sandbox.zoo.discovery import find_experiment


def collect(streams: MultiStream, timeout: float = 60) -> dict:
    items: dict = defaultdict(list)
    for msg in streams.drain(timeout):
        items[msg.key].append(msg.item)
    assert streams.finished, "every stream must end"
    return items


def test_streams_run_at_the_same_time():
    # Each stream waits for the other's first item before going on: run one after the
    # other, they would both give up (the wait times out) instead of finishing.
    a_started, b_started = threading.Event(), threading.Event()

    def job(mine: threading.Event, other: threading.Event, name: str):
        mine.set()
        yield f"{name}0"
        yield f"{name}1" if other.wait(10) else "alone"

    with MultiStream({"a": lambda: job(a_started, b_started, "a"), "b": lambda: job(b_started, a_started, "b")}) as s:
        items = collect(s)
    assert items["a"] == ["a0", "a1", Ended(stopped=False)]
    assert items["b"] == ["b0", "b1", Ended(stopped=False)]


def test_a_failing_stream_is_reported_and_the_others_go_on():
    def bad():
        yield 1
        raise RequestFailed("the run broke", hint="fix it")

    with MultiStream({"bad": bad, "good": lambda: iter(range(5))}) as s:
        items = collect(s)
    assert items["good"] == [0, 1, 2, 3, 4, Ended(stopped=False)]
    assert items["bad"][0] == 1 and isinstance(items["bad"][1], Failed)
    assert str(items["bad"][1].error) == "the run broke" and items["bad"][1].error.hint == "fix it"
    assert items["bad"][2] == Ended(stopped=False)


def test_a_job_that_cannot_even_start_is_reported():
    def broken():
        raise KeyError("no such run")

    with MultiStream({"x": broken}) as s:
        items = collect(s)
    assert isinstance(items["x"][0], Failed) and isinstance(items["x"][0].error, KeyError)


def test_stop_closes_every_stream():
    closed = []
    gate = threading.Event()

    def endless(name: str):
        try:
            n = 0
            while True:
                yield n
                n += 1
                gate.wait(0.01)
        finally:
            closed.append(name)

    streams = MultiStream({"a": lambda: endless("a"), "b": lambda: endless("b")}).start()
    seen: dict = defaultdict(int)
    while min(seen["a"], seen["b"]) < 3:
        for msg in streams.poll(1.0):
            seen[msg.key] += 1
    streams.stop()
    assert streams.join(timeout=10)
    rest = collect(streams)
    assert sorted(closed) == ["a", "b"]
    assert rest["a"][-1] == Ended(stopped=True) and rest["b"][-1] == Ended(stopped=True)


def test_a_started_multistream_cannot_start_twice():
    streams = MultiStream({"a": lambda: iter([1])}).start()
    with pytest.raises(RuntimeError):
        streams.start()
    collect(streams)


def test_stopping_cancels_the_generation_inside_the_worker(toy_models, pool):
    client = pool.client(find_experiment(toy_models, "toy_a"))
    pid = client.request("ping")["pid"]
    settings = {"temperature": 1.0, "max_new_tokens": 1000, "stop_at_eos": False, "seed": 3}
    streams = MultiStream({"a": lambda: client.stream("generate", run="run1", prompt_ids=[33], settings=settings)})
    streams.start()
    tokens = 0
    while tokens < 5:
        tokens += sum(1 for m in streams.poll(5.0) if isinstance(m.item, dict))
    streams.stop()
    assert streams.join(timeout=30)
    items = collect(streams)["a"]
    assert items[-1] == Ended(stopped=True)
    assert not any(isinstance(i, dict) and i.get("done") for i in items), "it was cancelled, not finished"
    # The worker is free and the same process: the cancelled generation left nothing queued.
    assert client.waiting == 0
    done = client.request("generate", run="run1", prompt_ids=[33], settings={**settings, "max_new_tokens": 4})
    assert done[-1]["n_tokens"] == 4
    assert client.request("ping")["pid"] == pid


def test_live_streams_counts_every_running_stream_of_the_process() -> None:
    from sandbox.playground.multistream import live_streams

    gate = threading.Event()

    def blocked():
        gate.wait(30)
        yield "x"

    before = live_streams()
    streams = MultiStream({"a": blocked, "b": blocked}).start()
    try:
        deadline = time.monotonic() + 10
        while live_streams() < before + 2 and time.monotonic() < deadline:
            streams.poll(0.01)
        assert live_streams() == before + 2
    finally:
        gate.set()
        assert streams.join(timeout=10)
    assert live_streams() == before
