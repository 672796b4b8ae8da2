"""Character-alphabet BPE: tiktoken with ranks trained on the bundled corpus.

The base tokens are the characters of ``ALPHABET`` (ASCII letters, digits, basic
punctuation, space, newline) instead of the 256 bytes, so the tokenizer is LOSSY: any
other character becomes a space before encoding ("Zoë" -> "Zo ").

``get_tokenizer(size)`` reads ``size`` regular tokens from
``tokenizers/charbpe/models/{size}.model`` (a path relative to the experiment root) and
puts bos, eos, pad right after them: ids ``size``, ``size+1``, ``size+2``. The model's
embedding has ``size + 2`` rows, so pad lies outside it and must never be fed to it.
"""

from __future__ import annotations

import base64
import string
from pathlib import Path

import tiktoken

ALPHABET = string.ascii_letters + string.digits + " \n" + ".,!?;:'\"-()"
GPT2_PATTERN = r"""'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"""
MODELS_DIR = Path("tokenizers/charbpe/models")  # relative to the experiment root, on purpose

# Characters kept as they are; everything else becomes a space.
_KEEP = frozenset(ALPHABET)


def sanitize(text: str) -> str:
    """``text`` with every character outside ``ALPHABET`` replaced by a space."""
    return "".join(c if c in _KEEP else " " for c in text)


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


class CharBPETokenizer:
    """BPE over an alphabet of characters; bos/eos/pad follow the regular tokens."""

    def __init__(self, size: int) -> None:
        ranks = load_ranks(MODELS_DIR / f"{size}.model")
        if len(ranks) != size:
            raise ValueError(f"{size}.model holds {len(ranks)} tokens, not {size}")
        # Never tiktoken.get_encoding(): that downloads. The ranks ship with the experiment.
        self.enc = tiktoken.Encoding(
            name=f"charbpe-{size}", pat_str=GPT2_PATTERN, mergeable_ranks=ranks,
            special_tokens={},
        )
        self.n_regular = size
        self.bos_id, self.eos_id, self.pad_id = size, size + 1, size + 2
        self.n_words = size + 3

    def encode(self, text: str, bos: bool = True, eos: bool = False,
               pad: int | None = None) -> list[int]:
        """Token ids of ``sanitize(text)``; ``pad`` right-pads with ``pad_id`` to that length."""
        # Sanitizing first is also what keeps tiktoken safe: a byte with no rank would panic.
        ids = self.enc.encode_ordinary(sanitize(text))
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


def get_tokenizer(size: int = 4096) -> CharBPETokenizer:
    """The tokenizer with ``size`` regular tokens (ranks file ``{size}.model``)."""
    return CharBPETokenizer(size)
