"""The Playground's history: one entry per generation, and its export as Markdown.

An entry is plain data (JSON-able dicts and lists) so that it can live in Streamlit's
session state and be written out as is. Model output goes into fenced code blocks whose
fence is longer than any run of backticks in it, so generated text can never close the
block and turn into Markdown.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import datetime

from sandbox.playground.settings import SamplingSettings, describe_settings

MAX_ENTRIES = 50  # oldest entries are dropped: the history lives in the server's memory


def make_entry(prompt: str, settings: SamplingSettings, columns: Sequence[dict], when: datetime | None = None) -> dict:
    """One history entry: the prompt, the shared settings and each column's `summary()`."""
    return {
        "when": (when or datetime.now()).isoformat(timespec="seconds"),
        "prompt": prompt,
        "settings": settings.as_dict(),
        "columns": [dict(c) for c in columns],
    }


def add_entry(history: list[dict], entry: dict, limit: int = MAX_ENTRIES) -> None:
    """Append ``entry`` to ``history`` in place, keeping the newest ``limit`` entries.

    In place because the page appends from a ``finally`` where it may no longer assign to
    Streamlit's session state (the list object already lives there).
    """
    history.append(entry)
    del history[:-limit]


def fenced(text: str, info: str = "text") -> str:
    """``text`` in a code fence that nothing inside it can close."""
    longest = max((len(m) for m in re.findall(r"`+", text)), default=0)
    fence = "`" * max(3, longest + 1)
    return f"{fence}{info}\n{text}\n{fence}"


def _stats(column: dict) -> str:
    parts = []
    if column.get("ttft") is not None:
        parts.append(f"first token {column['ttft']:.2f} s")
    if column.get("tokens_per_second") is not None:
        parts.append(f"{column['tokens_per_second']:.0f} tok/s")
    parts.append(f"{column.get('n_tokens', 0)} tokens")
    parts.append(str(column.get("reason") or column.get("status", "")))
    return " · ".join(parts)


def _one_line(text: str) -> str:
    """Plain text on one Markdown line: no line breaks, Markdown punctuation escaped."""
    return re.sub(r"([\\`*_\[\]<>|~#])", r"\\\1", " ".join(str(text).split()))


def entry_markdown(entry: dict, number: int | None = None) -> str:
    """One entry as Markdown: prompt, settings, then each run's continuation."""
    base = SamplingSettings(**entry["settings"])
    title = f"Generation {number} — {entry['when']}" if number is not None else f"Generation — {entry['when']}"
    lines = [f"## {title}", "", "**Prompt**", "", fenced(entry["prompt"]), "", f"**Settings:** {describe_settings(base)}", ""]
    for column in entry["columns"]:
        lines += [f"### {_one_line(column['run'])}", ""]
        own = SamplingSettings(**column["settings"])
        if own != base:
            lines += [f"**Own settings:** {describe_settings(own, base)}", ""]
        for notice in column.get("notices", []):
            lines += [f"> {_one_line(notice)}", ""]
        if column.get("error"):
            lines += [f"**Error:** {_one_line(column['error']['message'])}", ""]
        lines += [f"*{_stats(column)}*", "", fenced(column.get("text", "")), ""]
    return "\n".join(lines)


def history_markdown(history: Sequence[dict], title: str = "Playground history") -> str:
    """The whole history as one Markdown document (oldest first, numbered from 1)."""
    parts = [f"# {title}", ""]
    if not history:
        parts.append("No generations yet.")
    parts += [entry_markdown(entry, n) for n, entry in enumerate(history, start=1)]
    return "\n".join(parts).rstrip() + "\n"
