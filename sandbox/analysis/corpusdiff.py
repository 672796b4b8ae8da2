"""Where two runs differ across a corpus: documents and passages ranked by the difference in
bits per byte (:func:`rank_passages`), and the words on which one run is most often better or
worse (:func:`word_stats`), from per-byte losses (`sandbox.evaluation.bytelosses`).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from sandbox.evaluation.bytelosses import LN2, _utf8, char_byte_offsets

ORDERS = ("abs", "second_worse", "first_worse")
WORD_CLASSES = ("names", "punctuation", "digits", "other")


# -- where two runs differ across a corpus ----------------------------------------------------


@dataclass
class Ranking:
    """Documents and passages ranked by the bits-per-byte difference ``second − first``."""

    first: str
    second: str
    documents: pd.DataFrame  # doc, bytes, bpb_first, bpb_second, diff, largest
    passages: pd.DataFrame  # doc, byte_start, byte_end, char_start, char_end, text, bpb_first, bpb_second, diff

    def to_dict(self) -> dict:
        """JSON-able (NaN as None)."""
        def records(frame: pd.DataFrame) -> list[dict]:
            return [{k: _json_value(v) for k, v in row.items()} for row in frame.to_dict(orient="records")]

        return {"first": self.first, "second": self.second,
                "documents": records(self.documents), "passages": records(self.passages)}  # fmt: skip


def _json_value(value: object) -> object:
    if isinstance(value, (float, np.floating)):
        return float(value) if math.isfinite(value) else None
    if isinstance(value, np.integer):
        return int(value)
    return value


def _order_key(diff: np.ndarray, order: str) -> np.ndarray:
    if order == "abs":
        return np.abs(diff)
    if order == "second_worse":
        return diff
    if order == "first_worse":
        return -diff
    raise ValueError(f"order must be one of {ORDERS}, not {order!r}")


def _windows(n: int, window: int) -> np.ndarray:
    """Starts of windows of ``window`` bytes, half-overlapping, the last flush with the end."""
    if n <= window:
        return np.zeros(1, dtype=np.int64)
    stride = max(1, window // 2)
    starts = np.arange(0, n - window + 1, stride, dtype=np.int64)
    if starts[-1] != n - window:
        starts = np.append(starts, n - window)
    return starts


def rank_passages(
    docs: Sequence[str],
    per_run_byte_losses: Mapping[str, Sequence[np.ndarray]],
    *,
    window_bytes: int = 256,
    top: int = 20,
    runs: tuple[str, str] | None = None,
    order: str = "abs",
) -> Ranking:
    """Rank documents and passages by how much two runs differ there, in bits per byte.

    ``per_run_byte_losses[run][d]`` is the run's per-byte losses on ``docs[d]``;
    ``runs = (first, second)`` picks the two (default: the first two given), and every
    difference is ``second − first`` (positive: the second run is worse there). A missing
    value (a byte a lossy tokenizer dropped) counts as 0 in both, so a document's bits per
    byte is its total loss over its bytes, as on the Evaluation page.

    Documents: mean difference (``diff``) and the largest window difference in them
    (``largest``, the window with the largest ``|diff|``, sign kept), ranked by ``diff``.
    Passages: windows of ``window_bytes`` bytes (half-overlapping; a shorter document is one
    window) ranked by their mean difference, the ``top`` best that do not overlap; their
    bounds are widened to whole characters for ``text``. ``order``: "abs" (largest
    difference either way), "second_worse" or "first_worse".
    """
    _order_key(np.zeros(1), order)  # checks the name
    names = list(per_run_byte_losses) if runs is None else list(runs)
    if len(names) < 2 or any(n not in per_run_byte_losses for n in names[:2]):
        raise ValueError("rank_passages needs two runs that are among the given losses")
    first, second = str(names[0]), str(names[1])
    la, lb = per_run_byte_losses[names[0]], per_run_byte_losses[names[1]]
    if not (len(la) == len(lb) == len(docs)):
        raise ValueError("each run needs one per-byte loss array per document")
    window = max(1, int(window_bytes))
    doc_rows, win_doc, win_start, win_len, win_a, win_b = [], [], [], [], [], []
    for d, text in enumerate(docs):
        a = np.nan_to_num(np.asarray(la[d], dtype=np.float64))
        b = np.nan_to_num(np.asarray(lb[d], dtype=np.float64))
        n = len(_utf8(text))
        if a.size != n or b.size != n:
            raise ValueError(f"document {d} has {n} bytes but {a.size} and {b.size} per-byte losses")
        if n == 0:
            continue
        ca, cb = np.concatenate([[0.0], np.cumsum(a)]), np.concatenate([[0.0], np.cumsum(b)])
        starts = _windows(n, window)
        ends = np.minimum(starts + window, n)
        sa, sb = ca[ends] - ca[starts], cb[ends] - cb[starts]
        length = ends - starts
        wdiff = (sb - sa) / LN2 / length
        largest = float(wdiff[int(np.argmax(np.abs(wdiff)))])
        bpb_a, bpb_b = ca[-1] / LN2 / n, cb[-1] / LN2 / n
        doc_rows.append({"doc": d, "bytes": n, "bpb_first": bpb_a, "bpb_second": bpb_b,
                         "diff": bpb_b - bpb_a, "largest": largest})  # fmt: skip
        win_doc.append(np.full(starts.size, d))
        win_start.append(starts)
        win_len.append(length)
        win_a.append(sa / LN2 / length)
        win_b.append(sb / LN2 / length)
    documents = pd.DataFrame(doc_rows, columns=["doc", "bytes", "bpb_first", "bpb_second", "diff", "largest"])
    if not documents.empty:
        key = _order_key(documents["diff"].to_numpy(), order)
        documents = documents.iloc[np.argsort(-key, kind="stable")].reset_index(drop=True)
    passages = _top_passages(docs, win_doc, win_start, win_len, win_a, win_b, top, order)
    return Ranking(first, second, documents, passages)


def _top_passages(docs, win_doc, win_start, win_len, win_a, win_b, top: int, order: str) -> pd.DataFrame:
    columns = ["doc", "byte_start", "byte_end", "char_start", "char_end", "text", "bpb_first", "bpb_second", "diff"]
    if not win_doc:
        return pd.DataFrame(columns=columns)
    doc = np.concatenate(win_doc)
    start = np.concatenate(win_start)
    length = np.concatenate(win_len)
    bpb_a, bpb_b = np.concatenate(win_a), np.concatenate(win_b)
    diff = bpb_b - bpb_a
    picked: dict[int, list[tuple[int, int]]] = {}
    rows = []
    for i in np.argsort(-_order_key(diff, order), kind="stable"):
        if len(rows) >= top:
            break
        d, s, e = int(doc[i]), int(start[i]), int(start[i] + length[i])
        if any(s < pe and ps < e for ps, pe in picked.get(d, [])):
            continue
        picked.setdefault(d, []).append((s, e))
        offsets = char_byte_offsets(docs[d])
        c0 = int(np.searchsorted(offsets, s, side="right") - 1)
        c1 = int(np.searchsorted(offsets, e, side="left"))
        rows.append({"doc": d, "byte_start": s, "byte_end": e, "char_start": c0, "char_end": c1,
                     "text": docs[d][c0:c1], "bpb_first": float(bpb_a[i]), "bpb_second": float(bpb_b[i]),
                     "diff": float(diff[i])})  # fmt: skip
    return pd.DataFrame(rows, columns=columns)


# -- words on which a run is better or worse --------------------------------------------------

_TOKEN = re.compile(r"\w+|[^\w\s]+")
_SENTENCE_END = re.compile(r"[.!?]")


def word_class(token: str, sentence_start: bool) -> str:
    """One of WORD_CLASSES: digits (all digits), punctuation (no letter, digit or space),
    names (a capitalised word not at a sentence's start), other (everything else)."""
    if token.isdigit():
        return "digits"
    if not any(c.isalnum() or c == "_" for c in token):
        return "punctuation"
    if token[0].isupper() and not sentence_start:
        return "names"
    return "other"


def _occurrences(text: str, a: np.ndarray, b: np.ndarray) -> list[tuple[str, str, int, float, float]]:
    """(word, class, bytes, loss a, loss b) per word of ``text``; words with a missing
    per-byte value in either run are skipped (a lossy tokenizer dropped them)."""
    offsets = char_byte_offsets(text)
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    if a.size != offsets[-1] or b.size != offsets[-1]:
        raise ValueError(f"{a.size} and {b.size} byte losses for a text of {int(offsets[-1])} bytes")
    # Cumulative sums give each word's loss in O(1); NaNs are counted apart (a NaN in a
    # cumulative sum would spoil every word after it).
    ca = np.concatenate([[0.0], np.cumsum(np.nan_to_num(a))])
    cb = np.concatenate([[0.0], np.cumsum(np.nan_to_num(b))])
    cmiss = np.concatenate([[0], np.cumsum(np.isnan(a) | np.isnan(b))])
    out = []
    previous_end, start_of_sentence = 0, True
    for match in _TOKEN.finditer(text):
        token = match.group()
        # A new line (a heading, a list item) also starts a sentence.
        start_of_sentence = start_of_sentence or "\n" in text[previous_end : match.start()]
        cls = word_class(token, start_of_sentence)
        s, e = offsets[match.start()], offsets[match.end()]
        if cmiss[e] == cmiss[s]:
            out.append((token if cls == "names" else token.lower(), cls, int(e - s), ca[e] - ca[s], cb[e] - cb[s]))
        start_of_sentence = cls == "punctuation" and bool(_SENTENCE_END.search(token))
        previous_end = match.end()
    return out


@dataclass
class WordStats:
    """Words (and word classes) on which run b is better or worse than run a."""

    words: pd.DataFrame  # word, class, count, better, worse, share_better, diff_bits, diff_bpb
    classes: pd.DataFrame  # class, count, better, worse, share_better, diff_bpb

    def most_often(self, better: bool = True, *, min_count: int = 3, top: int = 20) -> pd.DataFrame:
        """Words seen at least ``min_count`` times on which b is most often better (or worse)."""
        frame = self.words[self.words["count"] >= min_count]
        column = "share_better" if better else "share_worse"
        return frame.sort_values([column, "count"], ascending=[False, False], kind="stable").head(top)

    def to_dict(self, *, min_count: int = 3, top: int = 20) -> dict:
        """JSON-able: the classes, and the words most often better and most often worse."""
        def records(frame: pd.DataFrame) -> list[dict]:
            return [{k: _json_value(v) for k, v in row.items()} for row in frame.to_dict(orient="records")]

        return {
            "classes": records(self.classes),
            "most_often_better": records(self.most_often(True, min_count=min_count, top=top)),
            "most_often_worse": records(self.most_often(False, min_count=min_count, top=top)),
        }


def word_stats(
    text: str | Sequence[str],
    byte_losses_a: np.ndarray | Sequence[np.ndarray],
    byte_losses_b: np.ndarray | Sequence[np.ndarray],
) -> WordStats:
    """Per word and per class (names, punctuation, digits, other): how often run b's loss on
    the word is lower than run a's (``better``), higher (``worse``), and the mean difference
    b − a in bits per occurrence (``diff_bits``) and per byte (``diff_bpb``; negative: b is
    better). ``text`` is one document or a list (then the losses are lists too).

    Words are ``\\w+`` runs and runs of punctuation; whitespace is not a word. A name is a
    capitalised word not at the start of a sentence (after . ! ? or a line break), so
    sentence-initial words count as "other" and are merged with their lower-case form.
    """
    if isinstance(text, str):
        texts, la, lb = [text], [byte_losses_a], [byte_losses_b]
    else:
        texts, la, lb = list(text), list(byte_losses_a), list(byte_losses_b)
    rows = [occ for t, a, b in zip(texts, la, lb, strict=True) for occ in _occurrences(t, a, b)]
    occ = pd.DataFrame(rows, columns=["word", "class", "bytes", "a", "b"])
    occ["diff"] = (occ["b"] - occ["a"]) / LN2
    occ["better"] = occ["diff"] < 0
    occ["worse"] = occ["diff"] > 0
    return WordStats(_aggregate(occ, ["word", "class"]), _aggregate(occ, ["class"]))


def _aggregate(occ: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    grouped = occ.groupby(keys, sort=False)
    out = grouped.agg(count=("diff", "size"), better=("better", "sum"), worse=("worse", "sum"),
                      diff_bits=("diff", "mean"), diff_sum=("diff", "sum"), bytes=("bytes", "sum"))  # fmt: skip
    out = out.reset_index()
    out["share_better"] = out["better"] / out["count"]
    out["share_worse"] = out["worse"] / out["count"]
    out["diff_bpb"] = out["diff_sum"] / out["bytes"]
    columns = [*keys, "count", "better", "worse", "share_better", "share_worse", "diff_bits", "diff_bpb"]
    return out.sort_values("count", ascending=False, kind="stable")[columns].reset_index(drop=True)


def word_sentence(stats: WordStats, a: str, b: str, *, min_count: int = 10) -> str:
    """E.g. "b wins on names (64 % of 212), loses on punctuation (58 % of 1,031)." from the
    classes with the largest share of wins and of losses (seen at least ``min_count`` times)."""
    classes = stats.classes[stats.classes["count"] >= min_count]
    if classes.empty:
        return f"Too few words to say where {b} wins or loses against {a}."
    win = classes.sort_values("share_better", ascending=False, kind="stable").iloc[0]
    lose = classes.sort_values("share_worse", ascending=False, kind="stable").iloc[0]
    return (
        f"Against {a}, {b} wins most often on {win['class']} ({win['share_better']:.0%} of {int(win['count']):,}), "
        f"loses most often on {lose['class']} ({lose['share_worse']:.0%} of {int(lose['count']):,})."
    )
