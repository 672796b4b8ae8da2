"""Turn what a person typed into the token ids one run will see, with notices about it.

Every way a prompt can go wrong for a particular model is handled here and reported in a
sentence instead of failing: an empty prompt starts from bos alone; a prompt longer than
the run's context is cut from the left (the model would only see the last ``max_seq_len``
tokens anyway, so we say so); characters the tokenizer cannot represent are named (a lossy
tokenizer silently turns them into something else); and the number of new tokens is capped.

The pure functions take plain values; `prepare_prompt` asks a run's worker for the ids.
"""

from __future__ import annotations

import difflib
from dataclasses import asdict, dataclass, field
from typing import Any

from sandbox.playground.settings import MAX_NEW_TOKENS_CAP


@dataclass
class Notice:
    """One thing to tell the person: ``level`` is "info" or "warning"."""

    level: str
    text: str


@dataclass
class PreparedPrompt:
    """The ids a run will be fed, how they were obtained, and what to tell the person."""

    ids: list[int]  # what the model sees: bos first unless the prompt was cut
    pieces: list[str]  # the text of each id on its own (for the tokenization view)
    n_tokens: int  # tokens of the whole prompt, bos included, before any cut
    dropped: int  # tokens cut from the left to fit the context
    bad_chars: list[str]  # characters the tokenizer could not represent, in order of first use
    roundtrip: str  # decode(encode(prompt)): what the tokenizer made of the text
    notices: list[Notice] = field(default_factory=list)
    bos_id: int | None = None  # to label the bos token in a view

    def as_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> PreparedPrompt:
        notices = [Notice(**n) for n in data.get("notices", [])]
        return cls(**{**data, "notices": notices})


def cap_max_new_tokens(requested: int) -> tuple[int, Notice | None]:
    """``requested`` clamped to 1..`MAX_NEW_TOKENS_CAP`, with a notice when it changed."""
    capped = max(1, min(int(requested), MAX_NEW_TOKENS_CAP))
    if capped == requested:
        return capped, None
    return capped, Notice("warning", f"Max new tokens {requested} is outside 1–{MAX_NEW_TOKENS_CAP}; using {capped}.")


def cut_to_context(ids: list[int], max_seq_len: int) -> tuple[list[int], int]:
    """The last ``max_seq_len`` ids and how many were dropped from the left."""
    if max_seq_len <= 0 or len(ids) <= max_seq_len:
        return list(ids), 0
    dropped = len(ids) - max_seq_len
    return list(ids[dropped:]), dropped


def unrepresentable(text: str, roundtrip: str) -> list[str]:
    """Characters of ``text`` that ``roundtrip`` (decode of encode) lost or changed.

    Lossy tokenizers usually swap one character for another (same length), which is compared
    position by position; otherwise a diff finds the characters that were replaced or dropped.
    Each character is listed once, in order of first appearance.
    """
    if text == roundtrip:
        return []
    lost: list[str] = []
    if len(text) == len(roundtrip):
        lost = [a for a, b in zip(text, roundtrip, strict=True) if a != b]
    else:
        matcher = difflib.SequenceMatcher(None, text, roundtrip, autojunk=False)
        for op, i1, i2, _j1, _j2 in matcher.get_opcodes():
            if op in ("replace", "delete"):
                lost.extend(text[i1:i2])
    return list(dict.fromkeys(lost))


def describe_chars(chars: list[str]) -> str:
    """Characters as a readable list: ``'ë' (U+00EB), '—' (U+2014)``."""
    return ", ".join(f"{c!r} (U+{ord(c):04X})" for c in chars)


def build_prompt(
    text: str,
    ids: list[int],
    roundtrip: str,
    *,
    bos_id: int,
    max_seq_len: int,
    pieces: list[str] | None = None,
) -> PreparedPrompt:
    """The `PreparedPrompt` for ``text`` given what the tokenizer made of it (``ids``, ``roundtrip``)."""
    notices: list[Notice] = []
    ids = [int(i) for i in ids]
    if not text:
        notices.append(Notice("info", "Empty prompt: the model starts from the bos token alone."))
    if not ids:  # a tokenizer that adds no bos to an empty text: the model needs one token
        ids, pieces = [int(bos_id)], [""]
    bad = unrepresentable(text, roundtrip)
    if bad:
        notices.append(
            Notice(
                "warning",
                f"This tokenizer cannot represent {len(bad)} character(s) of the prompt: "
                f"{describe_chars(bad)}. The model reads its own version of the text instead.",
            )
        )
    n_tokens = len(ids)
    kept, dropped = cut_to_context(ids, max_seq_len)
    if dropped:
        notices.append(
            Notice(
                "warning",
                f"The prompt is {n_tokens} tokens, longer than this model's context of "
                f"{max_seq_len}: the first {dropped} tokens were cut and the model sees only the last {max_seq_len}.",
            )
        )
    pieces = list(pieces[dropped:]) if pieces is not None else []
    return PreparedPrompt(
        ids=kept,
        pieces=pieces,
        n_tokens=n_tokens,
        dropped=dropped,
        bad_chars=bad,
        roundtrip=roundtrip,
        notices=notices,
        bos_id=int(bos_id),
    )


def prepare_prompt(client: Any, run: str, text: str, info: dict | None = None) -> PreparedPrompt:
    """Ask run ``run``'s worker (a `WorkerClient`) to tokenize ``text``; see `build_prompt`."""
    info = info or client.request("info", run=run)
    ids = client.request("encode", run=run, texts=[text], bos=True)[0]
    roundtrip = client.request("decode", run=run, ids=ids) if text else ""
    pieces = client.request("pieces", run=run, ids=ids) if ids else []
    return build_prompt(
        text, ids, roundtrip, bos_id=info["bos_id"], max_seq_len=int(info["max_seq_len"]), pieces=pieces
    )
