"""One Playground column: what it asks its run's worker, and what it has received so far.

`column_events` is the stream behind a column: the run's info, the prepared prompt (with its
notices), then the worker's generation events. `ColumnState` folds the messages of that
stream (from `sandbox.playground.multistream`) into what the page draws: text, tokens, notices, the time
to the first token, tokens per second, and an error if the worker failed. Both are plain
Python, so the CLI and the tests use them the same way the page does.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from sandbox.playground.multistream import Ended, Failed, Message
from sandbox.playground.prompts import Notice, PreparedPrompt, prepare_prompt
from sandbox.playground.settings import SamplingSettings

ALTERNATIVES = 5  # top alternatives sent with every token (the token view's hover)
DRAW_EVERY = 1 / 15  # seconds between redraws of a column while it streams
TOKEN_VIEW_BYTES_PER_TOKEN = 300  # a token view span with its hover title, roughly
FULL_RATE_STREAMS = 3  # streams in the whole app that all redraw at the full rate


def redraw_interval(n_tokens: int, token_view: bool, streams: int = 1) -> float:
    """Seconds to wait before redrawing a streaming column.

    Plain text is cheap to resend ~15 times a second. The token view resends every span
    with its title each time (~300 bytes a token), so it slows down as it grows, to at most
    about 150 kB a second per column, and at least one redraw a second. With ``streams``
    columns streaming in the whole app (every session's), beyond `FULL_RATE_STREAMS` each
    redraws less often, so that the app's redraws together stay at one session's rate and
    leave the cores to the workers.
    """
    shared = DRAW_EVERY * max(1.0, streams / FULL_RATE_STREAMS)
    if not token_view:
        return min(1.0, shared)
    return min(1.0, max(shared, n_tokens * TOKEN_VIEW_BYTES_PER_TOKEN / 150_000))


def assign_lanes(run_ids: Sequence[str]) -> list[int]:
    """For each run, how many earlier runs share its experiment (0, 1, 2, ...).

    A worker answers one request at a time, so two runs of ONE experiment in lane 0 would
    stream one after the other; giving the second its own worker (lane 1) lets both write
    at the same time.
    """
    seen: dict[str, int] = {}
    lanes = []
    for run_id in run_ids:
        experiment = run_id.split("/", 1)[0]
        lanes.append(seen.get(experiment, 0))
        seen[experiment] = lanes[-1] + 1
    return lanes


def column_events(
    client: Any, run: str, prompt: str, settings: SamplingSettings, *, alternatives: int = ALTERNATIVES
) -> Iterator[dict]:
    """The stream of one column: ``{"info"}``, ``{"prompt"}``, then the generation events.

    ``client`` is the run's `WorkerClient`, ``run`` the run's folder name. Closing this
    generator closes the worker stream inside it, which cancels the generation.
    """
    info = client.request("info", run=run)
    yield {"info": info}
    prepared = prepare_prompt(client, run, prompt, info)
    yield {"prompt": prepared.as_dict()}
    yield from client.stream(
        "generate", run=run, prompt_ids=prepared.ids, settings=settings.as_dict(), alternatives=alternatives
    )


def error_summary(exc: BaseException) -> dict:
    """An exception as plain data a visitor may see: the sentence and the fix hint.

    Not the worker's traceback (server paths; `sandbox.worker.client` has logged it).
    """
    return {
        "kind": type(exc).__name__,
        "message": str(exc) or type(exc).__name__,
        "hint": getattr(exc, "hint", ""),
    }


@dataclass
class ColumnState:
    """Everything one column has received, and the numbers it shows."""

    run_id: str
    settings: SamplingSettings
    started_at: float  # perf_counter when the column's stream was started
    info: dict | None = None
    prompt: PreparedPrompt | None = None
    tokens: list[dict] = field(default_factory=list)  # token events without their "text"
    text: str = ""
    requested_at: float | None = None  # when the generate request went out (prompt ready)
    first_at: float | None = None
    last_at: float | None = None
    done: dict | None = None
    error: dict | None = None
    ended: bool = False
    stopped: bool = False

    def apply(self, message: Message) -> None:
        """Fold one message of this column's stream into the state."""
        item, at = message.item, message.at
        if isinstance(item, Failed):
            self.error = error_summary(item.error)
        elif isinstance(item, Ended):
            self.ended = True
            self.stopped = self.stopped or (item.stopped and self.done is None)
        elif "info" in item:
            self.info = item["info"]
        elif "prompt" in item:
            self.prompt = PreparedPrompt.from_dict(item["prompt"])
            self.requested_at = at
        elif item.get("done"):
            self.done = item
        else:
            if self.first_at is None:
                self.first_at = at
            self.last_at = at
            self.text = item["text"]
            self.tokens.append({k: v for k, v in item.items() if k != "text"})

    def mark_stopped(self) -> None:
        """The page was stopped or rerun before this column finished."""
        if self.done is None and self.error is None:
            self.stopped = True

    # -- what the column shows -----------------------------------------------------------

    @property
    def status(self) -> str:
        """``starting`` (worker, model, prompt), ``generating``, ``done``, ``stopped`` or ``error``."""
        if self.error is not None:
            return "error"
        if self.stopped:
            return "stopped"
        if self.done is not None:
            return "done"
        if self.prompt is not None:
            return "generating"
        return "starting"

    @property
    def n_tokens(self) -> int:
        return len(self.tokens)

    @property
    def notices(self) -> list[Notice]:
        return list(self.prompt.notices) if self.prompt is not None else []

    @property
    def ttft(self) -> float | None:
        """Seconds from the generate request to the first token (prompt prefill included)."""
        if self.first_at is None or self.requested_at is None:
            return None
        return self.first_at - self.requested_at

    @property
    def startup(self) -> float | None:
        """Seconds before the generate request: worker start, model load, tokenizing."""
        if self.requested_at is None:
            return None
        return self.requested_at - self.started_at

    @property
    def tokens_per_second(self) -> float | None:
        """Tokens after the first per second of streaming (None before two tokens)."""
        if self.n_tokens < 2 or self.first_at is None or self.last_at is None or self.last_at <= self.first_at:
            return None
        return (self.n_tokens - 1) / (self.last_at - self.first_at)

    def stats_line(self) -> str:
        """``first token 0.04 s · 152 tok/s · 100 tokens · done (length)``."""
        parts = []
        if self.ttft is not None:
            parts.append(f"first token {self.ttft:.2f} s")
        if self.startup is not None and self.startup >= 0.5:
            parts.append(f"loading {self.startup:.1f} s")
        if self.tokens_per_second is not None:
            parts.append(f"{self.tokens_per_second:.0f} tok/s")
        parts.append(f"{self.n_tokens} tokens")
        status = self.status
        if status == "done":
            reason = self.done.get("reason", "") if self.done else ""
            parts.append({"eos": "ended at eos", "length": "reached max new tokens"}.get(reason, reason))
        elif status != "error":
            parts.append(status)
        return " · ".join(parts)

    def summary(self) -> dict:
        """The column as plain data, for the session's history and the Markdown export."""
        return {
            "run": self.run_id,
            "settings": self.settings.as_dict(),
            "text": self.text,
            "n_tokens": self.n_tokens,
            "status": self.status,
            "reason": (self.done or {}).get("reason", self.status),
            "ttft": self.ttft,
            "tokens_per_second": self.tokens_per_second,
            "used_cache": (self.done or {}).get("used_cache"),
            "notices": [n.text for n in self.notices],
            "error": dict(self.error) if self.error else None,
        }
