"""Per-byte losses: runs with different tokenizers lined up on the same text, and what differs.

A run's loss on a document is a loss per *token*, and two tokenizers cut the same text into
different tokens. Spreading each token's loss evenly over the UTF-8 bytes it covers gives
every run one number per byte of the **same** text, and the numbers of a run add up to its
total loss (nats) on the document; a byte's value / ln 2 is its share of bits per byte. The
spreading is that of `sandbox.evaluation.metrics.char_losses`, in bytes instead of characters:

- token i covers the decoded bytes ``[ends[i-1], ends[i])``, where ``ends`` are the byte
  lengths of the decoded prefixes (:func:`char_ends_to_byte_ends` turns the character ends
  of `sandbox.evaluation.details.decoded_prefix_ends` into them);
- a token that ends inside a multi-byte character covers no byte of its own: its loss joins
  the token that completes the character (prefix ends are cut back to whole characters);
- a lossy tokenizer decodes to other text than it was given: the decoded bytes are carried
  onto the original's bytes as `sandbox.evaluation.metrics.align_to_original` does for characters
  (equal blocks copy, a replaced block spreads its total evenly, inserted bytes add to the
  byte before them, original bytes the decoding dropped get NaN), so totals are kept.

Arrays are float64 while computed; :func:`pack` stores them as float32, zlib-compressed and
base64-encoded, for caching beside evaluation results. Who predicts each byte best and what
differs across a corpus is `sandbox.analysis`'s.

(The module is not called ``bytes`` so that importing it never shadows the builtin.)
"""

from __future__ import annotations

import base64
import math
import zlib
from collections.abc import Sequence

import numpy as np

from sandbox.evaluation.metrics import align_to_original, char_losses

LN2 = math.log(2.0)


# -- text and bytes ---------------------------------------------------------------------------


def _utf8(text: str) -> bytes:
    # Lone surrogates (possible in a Python str) are encoded as-is rather than refused.
    return text.encode("utf-8", errors="surrogatepass")


def char_byte_offsets(text: str) -> np.ndarray:
    """Byte offset of each character's start in ``text``'s UTF-8, plus the total at the end
    (length ``len(text) + 1``)."""
    if not text:
        return np.zeros(1, dtype=np.int64)
    cp = np.frombuffer(text.encode("utf-32-le", errors="surrogatepass"), dtype=np.uint32)
    widths = 1 + (cp >= 0x80).astype(np.int64) + (cp >= 0x800) + (cp >= 0x10000)
    return np.concatenate([[0], np.cumsum(widths)])


def char_ends_to_byte_ends(decoded: str, char_ends: Sequence[int]) -> np.ndarray:
    """Decoded-prefix lengths in characters (`sandbox.evaluation.details.decoded_prefix_ends`) as
    lengths in UTF-8 bytes of ``decoded``."""
    offsets = char_byte_offsets(decoded)
    ends = np.clip(np.asarray(char_ends, dtype=np.int64), 0, len(decoded))
    return offsets[ends]


def bytes_to_chars(text: str, byte_values: np.ndarray) -> np.ndarray:
    """Per-byte values summed per character of ``text`` (NaN if any of its bytes is NaN)."""
    offsets = char_byte_offsets(text)
    values = np.asarray(byte_values, dtype=np.float64)
    if values.size != offsets[-1]:
        raise ValueError(f"{values.size} byte values for a text of {int(offsets[-1])} bytes")
    if not len(text):
        return np.zeros(0)
    return np.add.reduceat(values, offsets[:-1]) if values.size else np.zeros(len(text))


# -- per-byte losses --------------------------------------------------------------------------


def align_bytes(original: bytes, decoded: bytes, values: np.ndarray) -> np.ndarray:
    """Per-byte ``values`` of ``decoded`` carried onto the bytes of ``original``.

    The byte version of `sandbox.evaluation.metrics.align_to_original`: identity when the two are
    equal; otherwise difflib's opcodes: equal blocks copy, a replaced block spreads its
    total evenly over the original block, inserted bytes add to the original byte before
    them (the total is kept), original bytes the decoding dropped get NaN.
    """
    return align_to_original(original, decoded, values)  # difflib compares bytes as it does text


def per_byte_losses(
    text: str, token_nll: Sequence[float], byte_ends: Sequence[int], decoded: str | None = None
) -> np.ndarray:
    """Each token's loss (nats) spread evenly over the UTF-8 bytes of ``text`` it covers.

    ``byte_ends[i]``: byte length of the text decoded from the document's tokens ``0..i``
    (:func:`char_ends_to_byte_ends`); ``decoded``: the text the tokens decode to (default:
    ``text``, a lossless tokenizer). The result has one value per byte of ``text``; its
    ``np.nansum`` equals ``sum(token_nll)`` (NaN only at bytes a lossy tokenizer dropped).
    """
    original = _utf8(text)
    decoded_bytes = original if decoded is None else _utf8(decoded)
    spread = char_losses(len(decoded_bytes), np.asarray(byte_ends), np.asarray(token_nll, dtype=np.float64))
    return align_bytes(original, decoded_bytes, spread)


def token_of_chars(decoded: str, byte_ends: Sequence[int]) -> np.ndarray:
    """For each character of ``decoded``, the index of the token that covers it (for a hover
    naming each run's token, probability and rank there); a character split over several
    tokens belongs to the one that completes it. For a lossy tokenizer this is in the
    decoded text's characters; -1 past the last token."""
    ends = np.maximum.accumulate(np.asarray(byte_ends, dtype=np.int64)) if len(byte_ends) else np.zeros(0, np.int64)
    starts = char_byte_offsets(decoded)[:-1]
    index = np.searchsorted(ends, starts, side="right")
    return np.where(index < ends.size, index, -1)


def pack(values: np.ndarray) -> str:
    """Per-byte losses as compact text: float32, zlib-compressed, base64 (for JSON caches)."""
    raw = np.ascontiguousarray(values, dtype="<f4").tobytes()
    return base64.b64encode(zlib.compress(raw, 6)).decode("ascii")


def unpack(packed: str) -> np.ndarray:
    """The float32 array :func:`pack` stored (raises ValueError on anything else)."""
    try:
        raw = zlib.decompress(base64.b64decode(packed.encode("ascii"), validate=True))
    except (ValueError, zlib.error) as exc:
        raise ValueError("not a packed per-byte loss array") from exc
    if len(raw) % 4:
        raise ValueError("not a packed per-byte loss array")
    return np.frombuffer(raw, dtype="<f4").copy()


def pack_documents(per_document: Sequence[np.ndarray]) -> str:
    """Every document's per-byte losses as one packed string (documents end to end; their
    byte counts, kept with the result, cut them apart again)."""
    arrays = [np.asarray(a, dtype=np.float64).ravel() for a in per_document]
    return pack(np.concatenate(arrays) if arrays else np.zeros(0))


def unpack_documents(packed: str, doc_bytes: Sequence[int]) -> list[np.ndarray]:
    """The arrays :func:`pack_documents` stored, one per document of ``doc_bytes`` bytes."""
    values = unpack(packed)
    sizes = np.asarray(doc_bytes, dtype=np.int64)
    if values.size != int(sizes.sum()):
        raise ValueError(f"{values.size} per-byte losses for documents of {int(sizes.sum())} bytes")
    return np.split(values, np.cumsum(sizes)[:-1]) if sizes.size else []
