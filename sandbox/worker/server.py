"""The worker process: hosts ONE experiment and answers requests about its runs.

Started by `sandbox.worker.client` as ``python -m sandbox.worker ROOT --device D`` (a fresh
interpreter: nothing of the app is imported here, and Streamlit's entry script is never
re-run). Experiments share top-level module names (`config`, `modules`, `tokenizers`), so each
gets its own process, with its root as cwd (tokenizers open data by relative paths) and
first on ``sys.path``.

The protocol runs over private copies of stdin/stdout (see `sandbox.worker.protocol`); fd 1 is
pointed at stderr so that an experiment's own ``print`` calls cannot corrupt it.
"""

from __future__ import annotations

import argparse
import os
import threading
import time
from collections import deque
from collections.abc import Callable
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any


def _watch_parent(parent_pid: int) -> None:
    """Exit when the app that started us is gone (orphaned workers waste memory)."""

    def loop() -> None:
        while True:
            if os.getppid() != parent_pid:
                os._exit(0)
            time.sleep(0.5)

    threading.Thread(target=loop, daemon=True, name="parent-watch").start()


# Ops whose stream items come faster than a pipe message is worth (one per token).
BATCHED_STREAMS = {"generate"}
STREAM_BATCH_S = 0.02  # their items made within this of the last send travel together


class Worker:
    """Request loop: one request at a time; streams can be cancelled between items."""

    def __init__(self, conn_in: Connection, conn_out: Connection, host: Any):
        self.conn_in = conn_in
        self.conn_out = conn_out
        self.host = host
        self.pending: deque[dict] = deque()
        self.cancelled: set[int] = set()
        self._current: int | None = None

    # Each op takes the request's args and returns a value, or an iterator for streams.
    def ops(self) -> dict[str, Callable[..., Any]]:
        from sandbox.playground.settings import SamplingSettings
        from sandbox.worker import generation, scoring

        host = self.host

        def info(run: str) -> dict:
            return host.load(run).info

        def encode(run: str, texts: list[str], bos: bool = True) -> list[list[int]]:
            tok = host.load(run).tokenizer
            return [list(map(int, tok.encode(t, bos=bos, eos=False))) for t in texts]

        def decode(run: str, ids: list[int]) -> str:
            return host.load(run).tokenizer.decode([int(i) for i in ids])

        def decode_prefixes(run: str, ids: list[int]) -> list[str]:
            """decode(ids[:1]), decode(ids[:2]), ...: one request instead of one per token."""
            tok = host.load(run).tokenizer
            ids = [int(i) for i in ids]
            return [tok.decode(ids[: n + 1]) for n in range(len(ids))]

        def pieces(run: str, ids: list[int]) -> list[str]:
            tok = host.load(run).tokenizer
            return [generation.token_piece(tok, i) for i in ids]

        def score(run: str, windows: list[list[int]], targets: list[list[int]], **kw: Any):
            return scoring.score_windows(host.load(run), windows, targets, should_stop=self._stop_check, **kw)

        def generate(run: str, prompt_ids: list[int], settings: dict, **kw: Any):
            return generation.generate(
                host.load(run), prompt_ids, SamplingSettings(**settings), should_stop=self._stop_check, **kw
            )

        def params(run: str) -> dict:
            from sandbox.worker.params import parameter_breakdown

            loaded = host.load(run)
            return parameter_breakdown(loaded.model, loaded.cfg)

        def ping() -> dict:
            return {"pid": os.getpid(), "device": host.device, "root": str(host.root)}

        return {
            "info": info,
            "encode": encode,
            "decode": decode,
            "pieces": pieces,
            "decode_prefixes": decode_prefixes,
            "score": score,
            "generate": generate,
            "params": params,
            "ping": ping,
        }

    def _stop_check(self) -> bool:
        """Between stream items: read any waiting messages; True if ours was cancelled."""
        while self.conn_in.poll(0):
            msg = self.conn_in.recv()
            if msg.get("op") == "cancel":
                self.cancelled.add(msg.get("id"))
            else:
                self.pending.append(msg)
        return self._current in self.cancelled

    def _send_stream(self, items: Any, batched: bool) -> None:
        """Send a stream's items; for ``batched`` ops, those made within STREAM_BATCH_S of the
        last send travel together.

        One pipe message per token cost more than the token on a small model (the app wakes
        for each). The first item goes at once (time to first token); a held item leaves with
        the next one, so only fast streams are batched. Slow streams (scoring, whose items
        are progress) send every item as soon as it exists.
        """
        batch: list = []
        last_send = 0.0
        try:
            for item in items:
                batch.append(item)
                now = time.monotonic()
                if not batched or now - last_send >= STREAM_BATCH_S:
                    self.conn_out.send({"id": self._current, "items": batch})
                    batch, last_send = [], now
        finally:
            # Also when the stream fails: the items made before the error were made right.
            if batch:
                self.conn_out.send({"id": self._current, "items": batch})

    def serve(self) -> None:
        from sandbox.worker.failures import describe_exception

        ops = self.ops()
        self.conn_out.send({"id": 0, "ok": True, "result": ops["ping"]()})
        while True:
            if self.pending:
                msg = self.pending.popleft()
            else:
                try:
                    msg = self.conn_in.recv()
                except (EOFError, OSError):
                    return  # the app closed the pipe: nothing more to do
            op = msg.get("op")
            if op == "shutdown":
                return
            if op == "cancel":
                continue  # the stream it names has already ended
            self._current = msg.get("id")
            try:
                fn = ops.get(op)
                if fn is None:
                    raise ValueError(f"unknown request {op!r}")
                result = fn(**msg.get("args", {}))
                if hasattr(result, "__next__"):
                    self._send_stream(result, batched=op in BATCHED_STREAMS)
                    result = None
                self.conn_out.send({"id": self._current, "ok": True, "result": result})
            except Exception as exc:  # noqa: BLE001 — every failure goes back to the app as a reply
                self.conn_out.send({"id": self._current, "ok": False, "error": describe_exception(exc, self.host.root)})
            finally:
                self.cancelled.discard(self._current)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("root", type=Path)
    parser.add_argument("--device", default=None)
    args = parser.parse_args(argv)

    # Keep the protocol on private fds, then send fd 1 to stderr and close stdin.
    conn_in = Connection(os.dup(0), writable=False)
    conn_out = Connection(os.dup(1), readable=False)
    os.dup2(os.open(os.devnull, os.O_RDONLY), 0)
    os.dup2(2, 1)
    _watch_parent(os.getppid())

    from sandbox.worker.host import RunHost, enter_experiment

    root = enter_experiment(args.root)
    from sandbox.worker.device import pick_device

    Worker(conn_in, conn_out, RunHost(root, pick_device(args.device))).serve()


if __name__ == "__main__":
    main()
