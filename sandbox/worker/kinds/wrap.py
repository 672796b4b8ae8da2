"""Other codebases' models and tokenizers, given the contract's interface.

`TextTokenizer` puts any ``encode(text) -> ids`` / ``decode(ids) -> text`` pair behind the
contract's ``encode(text, bos=True, eos=False)``, ``decode``, ``bos_id``, ``eos_id`` and
``pad_id``. Codebases without a beginning-of-sequence token still need one id before a
document's first token, so that the first token is predicted from something: each kind names
its *start* id (GPT-2's ``<|endoftext|>``, which such models read between documents; a
newline for a character model) and the evaluation states it beside the number.
`FullLogits` makes ``model(input_ids)`` return logits for every position.
"""

from __future__ import annotations

from collections.abc import Callable

import torch


class TextTokenizer:
    """The contract's tokenizer over another codebase's encode and decode."""

    def __init__(
        self,
        encode: Callable[[str], list[int]],
        decode: Callable[[list[int]], str],
        start_id: int,
        eos_id: int | None,
    ):
        self._encode = encode
        self._decode = decode
        self.bos_id = int(start_id)
        self.eos_id = eos_id
        self.pad_id = None  # never fed to a model: windows are never padded with it

    def encode(self, text: str, bos: bool = True, eos: bool = False, pad: int | None = None) -> list[int]:
        ids = [int(i) for i in self._encode(text)]
        if bos:
            ids.insert(0, self.bos_id)
        if eos and self.eos_id is not None:
            ids.append(int(self.eos_id))
        return ids

    def decode(self, ids: list[int]) -> str:
        return self._decode([int(i) for i in ids])


class FullLogits(torch.nn.Module):
    """``wrapped`` with a forward that returns ``(batch, seq, vocab)`` logits.

    ``logits(wrapped, input_ids)`` is the kind's way to get them from the codebase's own
    modules; the wrapped model's parameters are this module's (counted the same way).
    """

    def __init__(self, wrapped: torch.nn.Module, logits: Callable[[torch.nn.Module, torch.Tensor], torch.Tensor]):
        super().__init__()
        self.wrapped = wrapped
        self._logits = logits

    def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
        return self._logits(self.wrapped, input_ids)


def embedding_rows(model: torch.nn.Module, vocab: int | None) -> int | None:
    """Rows of the token embedding: the ``nn.Embedding`` closest in size to ``vocab`` (a
    GPT-2-style model also has a position embedding, which must not be taken for it)."""
    rows = [int(m.num_embeddings) for m in model.modules() if isinstance(m, torch.nn.Embedding)]
    if not rows:
        return None
    if vocab is None:
        return max(rows)
    return min(rows, key=lambda r: (abs(r - vocab), -r))
