"""A local OpenAI-compatible chat-completions server for the arena's judge tests (127.0.0.1 only)."""

from __future__ import annotations

import contextlib
import json
import re
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

KEY = "sk-test-SECRET-4f9a2c"

# A reply: (status, body dict or text or Trickle, seconds to wait first, extra headers).
Reply = tuple[int, object, float, dict]


@dataclass(frozen=True)
class Trickle:
    """A body sent one byte at a time, ``every`` seconds apart: no single read ever waits long."""

    data: bytes
    every: float


class FakeServer:
    """An OpenAI-compatible /v1/chat/completions on 127.0.0.1; ``answer`` scripts each reply."""

    def __init__(self, answer: Callable[[dict, int], Reply]):
        self.answer = answer
        self.requests: list[dict] = []
        self.lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 — the http.server API
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                with server.lock:
                    n = len(server.requests)
                    server.requests.append({"path": self.path, "auth": self.headers.get("Authorization"), "body": body})
                status, payload, wait, headers = server.answer(body, n)
                time.sleep(wait)
                trickle = payload if isinstance(payload, Trickle) else None
                if trickle is not None:
                    data = trickle.data
                else:
                    data = payload.encode() if isinstance(payload, str) else json.dumps(payload).encode()
                try:
                    self.send_response(status)
                    for k, v in headers.items():
                        self.send_header(k, v)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    if trickle is None:
                        self.wfile.write(data)
                    for i in range(len(data) if trickle else 0):
                        self.wfile.write(data[i : i + 1])
                        self.wfile.flush()
                        time.sleep(trickle.every)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up waiting (the timeout test): nothing to answer

            def log_message(self, *args) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()
        self.base_url = f"http://127.0.0.1:{self.httpd.server_port}/v1"

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@contextlib.contextmanager
def fake_servers() -> Iterator[Callable[[Callable[[dict, int], Reply]], FakeServer]]:
    """``start(answer)`` makes a server; every one is shut down on leaving."""
    servers: list[FakeServer] = []

    def start(answer: Callable[[dict, int], Reply]) -> FakeServer:
        servers.append(FakeServer(answer))
        return servers[-1]

    try:
        yield start
    finally:
        for s in servers:
            s.close()


def chat(content: str | None) -> dict:
    return {"id": "x", "object": "chat.completion", "choices": [{"index": 0, "message": {"role": "assistant", "content": content}}]}


def shown(body: dict) -> tuple[str, str]:
    """The continuations a request showed as A and as B."""
    user = body["messages"][-1]["content"]
    a = re.search(r"Continuation A:\n<<<\n(.*?)\n>>>", user, re.S).group(1)
    b = re.search(r"Continuation B:\n<<<\n(.*?)\n>>>", user, re.S).group(1)
    return a, b


