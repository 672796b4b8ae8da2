"""Teacher-forced scoring of token windows for one loaded run (runs in its worker).

For each predicted position it returns the negative log-likelihood of the true next token
and its rank (how many tokens have a strictly larger logit): the true token is in the top k
exactly when ``rank < k``, so every k is answered from one number per position. Logits come
from ``model(input_ids)`` alone under ``torch.inference_mode`` — never with targets.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterator

import numpy as np
import torch

from sandbox.worker.loaded import LoadedRun

DEFAULT_BATCH = 8
_AUTOCAST = {"bf16": torch.bfloat16, "fp16": torch.float16}


def batches_by_length(lengths: list[int], batch_size: int) -> list[list[int]]:
    """Indices of windows grouped by length, at most ``batch_size`` each (no padding needed)."""
    groups: dict[int, list[int]] = defaultdict(list)
    for i, n in enumerate(lengths):
        groups[n].append(i)
    out = []
    for n in sorted(groups, reverse=True):
        idx = groups[n]
        out.extend(idx[j : j + batch_size] for j in range(0, len(idx), batch_size))
    return out


def position_stats(logits: torch.Tensor, targets: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(nll, rank) of ``targets`` (batch, seq) under ``logits`` (batch, seq, vocab)."""
    logits = logits.float()
    target_logit = logits.gather(-1, targets.unsqueeze(-1))
    nll = torch.logsumexp(logits, dim=-1) - target_logit.squeeze(-1)
    rank = (logits > target_logit).sum(dim=-1)
    return nll, rank


def batch_limit(run: LoadedRun, batch_size: int | None = None) -> int:
    """Windows per forward: the request's ``batch_size`` (default 8), at most the config's
    ``max_batch_size``."""
    size = batch_size or DEFAULT_BATCH
    if run.max_batch_size:
        size = min(size, run.max_batch_size)
    return max(1, size)


def check_windows(run: LoadedRun, windows: list, targets: list) -> None:
    """Raise ValueError unless every window has its targets and fits ``max_seq_len``."""
    if len(windows) != len(targets):
        raise ValueError("windows and targets differ in number")
    for w, t in zip(windows, targets, strict=True):
        if len(w) != len(t) or not 0 < len(w) <= run.max_seq_len:
            raise ValueError(f"a window of {len(w)} tokens does not fit max_seq_len {run.max_seq_len}")


def score_batch(
    run: LoadedRun,
    windows: list,
    targets: list,
    *,
    top_n_positions: int = 0,
    top_n: int = 10,
    autocast: str | None = None,
) -> dict:
    """``{"nll", "rank"}`` (and ``top_ids``/``top_probs``) of windows of ONE length, in one forward.

    The windows may come from different requests (a worker batches other sessions' windows
    of the same run and length together): each row's numbers depend on its own tokens only.
    """
    use_autocast = autocast in _AUTOCAST and run.device.startswith("cuda")
    with torch.inference_mode():
        x = torch.as_tensor(np.asarray(windows, dtype=np.int64), device=run.device)
        y = torch.as_tensor(np.asarray(targets, dtype=np.int64), device=run.device)
        with torch.autocast("cuda", dtype=_AUTOCAST.get(autocast or "", torch.float32), enabled=use_autocast):
            logits = run.forward(x)
        nll, rank = position_stats(logits, y)
        item = {
            "nll": nll.cpu().numpy().astype(np.float32),
            "rank": rank.cpu().numpy().astype(np.int32),
        }
        if top_n_positions > 0:
            probs = torch.softmax(logits[:, :top_n_positions].float(), dim=-1)
            top = torch.topk(probs, min(top_n, probs.shape[-1]), dim=-1)
            item["top_ids"] = top.indices.cpu().numpy().astype(np.int32)
            item["top_probs"] = top.values.cpu().numpy().astype(np.float32)
    return item


def score_windows(
    run: LoadedRun,
    windows: list[list[int]],
    targets: list[list[int]],
    *,
    batch_size: int | None = None,
    top_n_positions: int = 0,
    top_n: int = 10,
    autocast: str | None = None,
    should_stop: Callable[[], bool] = lambda: False,
) -> Iterator[dict]:
    """Yield one result per batch: ``{"index": [...], "nll": [...], "rank": [...]}``.

    Windows of the same length are batched together, up to the config's ``max_batch_size``.
    With ``top_n_positions`` > 0 each window also gets the ``top_n`` most likely ids and
    their probabilities at its first positions (for the per-token views).
    """
    check_windows(run, windows, targets)
    size = batch_limit(run, batch_size)
    for group in batches_by_length([len(w) for w in windows], size):
        if should_stop():
            return
        item = score_batch(
            run,
            [windows[i] for i in group],
            [targets[i] for i in group],
            top_n_positions=top_n_positions,
            top_n=top_n,
            autocast=autocast,
        )
        yield {"index": group, **item}


def token_byte_lengths(tokenizer, ids: list[int]) -> tuple[list[int], str]:
    """UTF-8 bytes each token of ``ids`` adds to ``decode(ids)``, and that decoded text.

    The lengths add up to the decoded text's bytes, so a token's loss can be spread over
    the bytes it covers (`sandbox.evaluation.bytelosses`). Fast path, linear: each distinct
    token is decoded alone once; when the pieces join to the full decoding (character and
    piece tokenizers, byte-level BPE that splits no character) a token covers its piece's
    bytes. Otherwise (a byte-level token holding part of a character decodes alone to
    U+FFFD; some decoders join pieces with context) the decoded prefixes are measured, as
    `sandbox.evaluation.details.decoded_prefix_ends` does: a prefix ending inside a
    character does not count the dangling U+FFFD, so that token covers no byte and its loss
    joins the token that completes the character.
    """
    from sandbox.worker.generation import token_piece

    ids = [int(i) for i in ids]
    decoded = tokenizer.decode(ids)
    piece = {i: token_piece(tokenizer, i) for i in set(ids)}
    pieces = [piece[i] for i in ids]
    if "".join(pieces) == decoded:
        return [len(p.encode("utf-8", errors="surrogatepass")) for p in pieces], decoded
    offsets = np.concatenate([[0], np.cumsum([len(c.encode("utf-8", errors="surrogatepass")) for c in decoded])])
    lengths, previous = [], 0
    for n in range(len(ids)):
        prefix = tokenizer.decode(ids[: n + 1])
        k = len(prefix)
        while k and prefix[k - 1] == "\ufffd" and (k > len(decoded) or decoded[k - 1] != "\ufffd"):
            k -= 1
        end = max(int(offsets[min(k, len(decoded))]), previous)  # a token adds bytes or none
        lengths.append(end - previous)
        previous = end
    if lengths:
        lengths[-1] += int(offsets[-1]) - previous  # bytes no prefix reached: the last token's
    return lengths, decoded
