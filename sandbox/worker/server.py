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


class Worker:
    """The requests of one experiment's worker: plain calls here; scoring and generation,
    which stream and are batched across requests, in `sandbox.worker.scheduler`."""

    def __init__(self, conn_in: Connection, conn_out: Connection, host: Any):
        self.conn_in = conn_in
        self.conn_out = conn_out
        self.host = host

    # Each call takes the request's args and returns a value.
    def calls(self) -> dict[str, Callable[..., Any]]:
        from sandbox.worker import generation

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

        def token_bytes(run: str, docs: list[list[int]]) -> list[dict]:
            """Per document: the UTF-8 bytes each token adds to its decoding, and the decoding."""
            from sandbox.worker.scoring import token_byte_lengths

            tok = host.load(run).tokenizer
            out = []
            for ids in docs:
                lengths, decoded = token_byte_lengths(tok, ids)
                out.append({"lengths": lengths, "decoded": decoded})
            return out

        def pieces(run: str, ids: list[int]) -> list[str]:
            tok = host.load(run).tokenizer
            return [generation.token_piece(tok, i) for i in ids]

        def params(run: str) -> dict:
            from sandbox.worker.params import parameter_breakdown

            loaded = host.load(run)
            return parameter_breakdown(loaded.model, loaded.cfg)

        def ping() -> dict:
            import torch

            return {"pid": os.getpid(), "device": host.device, "root": str(host.root), "threads": torch.get_num_threads()}

        return {
            "info": info,
            "encode": encode,
            "decode": decode,
            "pieces": pieces,
            "decode_prefixes": decode_prefixes,
            "token_bytes": token_bytes,
            "params": params,
            "ping": ping,
        }

    def serve(self) -> None:
        from sandbox.worker.scheduler import Scheduler

        Scheduler(self.conn_in, self.conn_out, self.host, self.calls()).serve()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("root", type=Path)
    parser.add_argument("--device", default=None)
    parser.add_argument("--threads", type=int, default=None, help="torch intra-op threads (default: every core)")
    args = parser.parse_args(argv)

    # Keep the protocol on private fds, then send fd 1 to stderr and close stdin.
    conn_in = Connection(os.dup(0), writable=False)
    conn_out = Connection(os.dup(1), readable=False)
    os.dup2(os.open(os.devnull, os.O_RDONLY), 0)
    os.dup2(2, 1)
    _watch_parent(os.getppid())

    from sandbox.worker.host import RunHost, enter_experiment

    root = enter_experiment(args.root)
    import torch

    from sandbox.worker.scheduler import default_threads

    # Workers share the cores: the app gives each its share (and re-balances it with a
    # "threads" message as workers start and stop). One inter-op thread: nothing here runs
    # independent ops in parallel, and each idle pool thread is one more to schedule.
    torch.set_num_threads(max(1, args.threads or default_threads()))
    torch.set_num_interop_threads(1)
    from sandbox.worker.device import pick_device

    Worker(conn_in, conn_out, RunHost(root, pick_device(args.device))).serve()


if __name__ == "__main__":
    main()
