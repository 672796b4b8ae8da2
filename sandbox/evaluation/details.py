"""One document in detail: per-token losses, ranks and top predictions of one run."""

from __future__ import annotations

from typing import Any

import numpy as np

from sandbox.evaluation import metrics
from sandbox.evaluation.windows import make_windows, plan_windows

MAX_DETAIL_CHARS = 4000  # per-token views read at most this much of a document


# -- one document in detail --------------------------------------------------------------------


def document_details(
    client: Any,
    run_name: str,
    text: str,
    *,
    max_len: int,
    overlap: int = 0,
    top_n: int = 10,
    n_positions: int = 64,
) -> dict:
    """Per-token view of one document for one run.

    Returns ``ids`` (bos first), ``pieces`` (each token decoded alone), per-target ``nll`` and
    ``rank``, ``top_ids``/``top_probs``/``top_pieces`` for the first ``n_positions`` targets,
    the ``decoded`` text and ``char_nll``: each token's loss spread evenly over its characters
    and carried onto the characters of ``text`` (see `sandbox.evaluation.metrics.char_losses`).
    """
    text = text[:MAX_DETAIL_CHARS]
    ids = client.request("encode", run=run_name, texts=[text], bos=True)[0]
    windows = make_windows([ids], max_len, overlap)
    n = len(ids) - 1
    nll, rank = np.zeros(n), np.zeros(n, dtype=np.int64)
    p = min(n_positions, n, max_len)
    top_ids, top_probs = np.zeros((p, top_n), dtype=np.int64), np.zeros((p, top_n))
    starts = [int(w[0]) for w in plan_windows(n, max_len, overlap)]
    stream = client.stream(
        "score", run=run_name, windows=windows.inputs, targets=windows.targets, top_n_positions=p, top_n=top_n
    )
    try:
        for item in stream:
            for row, w in enumerate(item["index"]):
                first, length = int(windows.first[w]), len(windows.inputs[w])
                at = slice(starts[w] + first, starts[w] + length)
                nll[at] = item["nll"][row, first:length]
                rank[at] = item["rank"][row, first:length]
                if w == 0 and p:
                    width = item["top_ids"].shape[-1]
                    top_ids[:, :width] = item["top_ids"][row, :p]
                    top_probs[:, :width] = item["top_probs"][row, :p]
    finally:
        stream.close()
    unique = sorted(set(ids) | set(top_ids.ravel().tolist()))
    piece_of = dict(zip(unique, client.request("pieces", run=run_name, ids=unique), strict=True))
    decoded = client.request("decode", run=run_name, ids=ids[1:])
    prefixes = client.request("decode_prefixes", run=run_name, ids=ids[1 : n + 1])
    ends = decoded_prefix_ends(prefixes, decoded)
    char_nll = metrics.align_to_original(text, decoded, metrics.char_losses(len(decoded), ends, nll))
    return {
        "ids": ids,
        "pieces": [piece_of[i] for i in ids],
        "nll": nll,
        "rank": rank,
        "top_ids": top_ids,
        "top_probs": top_probs,
        "top_pieces": [[piece_of[int(i)] for i in row] for row in top_ids],
        "decoded": decoded,
        "text": text,
        "char_nll": char_nll,
    }


def decoded_prefix_ends(prefixes: list[str], full: str) -> np.ndarray:
    """Character length of each decoded prefix, not counting a dangling partial character.

    A prefix that ends inside a multi-byte character decodes with a trailing U+FFFD that the
    full text does not have there; it is not counted, so that token adds no character and its
    loss goes to the token that completes the character.
    """
    ends = np.empty(len(prefixes), dtype=np.int64)
    for i, prefix in enumerate(prefixes):
        n = len(prefix)
        while n and prefix[n - 1] == "\ufffd" and (n > len(full) or full[n - 1] != "\ufffd"):
            n -= 1
        ends[i] = n
    return ends
