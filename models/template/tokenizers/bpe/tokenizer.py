"""Byte-level BPE tokenizer: tiktoken with ranks trained on the bundled corpus.

``get_tokenizer(size)`` gives ``size`` ids in all: ``size - 3`` regular tokens read from
``tokenizers/bpe/models/{size-3}.model`` and then bos, eos, pad as the last three ids.
The data path is relative to the experiment root, so run from there (the sandbox's
workers do). Byte-level: every string round-trips exactly.
"""

from __future__ import annotations

import base64
from pathlib import Path

import tiktoken

GPT2_PATTERN = r"""'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"""
MODELS_DIR = Path("tokenizers/bpe/models")  # relative to the experiment root, on purpose


def load_ranks(path: Path) -> dict[bytes, int]:
    """Parse tiktoken's ranks format: one ``base64(token bytes) rank`` per line."""
    if not path.is_file():
        raise FileNotFoundError(
            f"{path} not found (cwd is {Path.cwd()}; run from the experiment root)")
    ranks: dict[bytes, int] = {}
    for line in path.read_text(encoding="ascii").splitlines():
        if line.strip():
            token, rank = line.split()
            ranks[base64.b64decode(token)] = int(rank)
    return ranks


class Tokenizer:
    """BPE over bytes with bos/eos/pad appended after the regular tokens."""

    def __init__(self, size: int) -> None:
        n_regular = size - 3
        ranks = load_ranks(MODELS_DIR / f"{n_regular}.model")
        if len(ranks) != n_regular:
            raise ValueError(f"{n_regular}.model holds {len(ranks)} tokens, not {n_regular}")
        # Never tiktoken.get_encoding(): that downloads. The ranks ship with the experiment.
        self.enc = tiktoken.Encoding(
            name=f"template-bpe-{size}", pat_str=GPT2_PATTERN, mergeable_ranks=ranks,
            special_tokens={},
        )
        self.n_regular = n_regular
        self.n_words = size
        self.bos_id, self.eos_id, self.pad_id = size - 3, size - 2, size - 1

    def encode(self, text: str, bos: bool = True, eos: bool = False,
               pad: int | None = None) -> list[int]:
        """Token ids of ``text``; ``pad`` right-pads with ``pad_id`` up to that length."""
        ids = self.enc.encode_ordinary(text)
        if bos:
            ids.insert(0, self.bos_id)
        if eos:
            ids.append(self.eos_id)
        if pad is not None and len(ids) < pad:
            ids.extend([self.pad_id] * (pad - len(ids)))
        return ids

    def decode(self, ids: list[int]) -> str:
        """Text of ``ids``; special ids (bos, eos, pad) are dropped."""
        return self.enc.decode([int(i) for i in ids if 0 <= int(i) < self.n_regular])


def get_tokenizer(size: int = 1024) -> Tokenizer:
    """The tokenizer with ``size`` ids in all (its ranks file is ``{size-3}.model``)."""
    return Tokenizer(size)
