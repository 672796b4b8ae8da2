"""Per-byte losses: runs with different tokenizers lined up on the same text, and what differs.

A run's loss on a document is a loss per *token*, and two tokenizers cut the same text into
different tokens. Spreading each token's loss evenly over the UTF-8 bytes it covers gives
every run one number per byte of the **same** text, and the numbers of a run add up to its
total loss (nats) on the document; a byte's value / ln 2 is its share of bits per byte. The
spreading is that of `sandbox.metrics.char_losses`, in bytes instead of characters:

- token i covers the decoded bytes ``[ends[i-1], ends[i])``, where ``ends`` are the byte
  lengths of the decoded prefixes (:func:`char_ends_to_byte_ends` turns the character ends
  of `sandbox.evaluation.decoded_prefix_ends` into them);
- a token that ends inside a multi-byte character covers no byte of its own: its loss joins
  the token that completes the character (prefix ends are cut back to whole characters);
- a lossy tokenizer decodes to other text than it was given: the decoded bytes are carried
  onto the original's bytes as `sandbox.metrics.align_to_original` does for characters
  (equal blocks copy, a replaced block spreads its total evenly, inserted bytes add to the
  byte before them, original bytes the decoding dropped get NaN), so totals are kept.

Then: who predicts each byte best (:func:`who_wins`), the difference to a reference run in
bits (:func:`difference_to_reference`), documents and passages ranked by how much two runs
differ (:func:`rank_passages`) and the words on which one run is most often better or worse
(:func:`word_stats`). Arrays are float64 while computed; :func:`pack` stores them as float32,
zlib-compressed and base64-encoded, for caching beside evaluation results.

(The module is not called ``bytes`` so that importing it never shadows the builtin.)
"""

from __future__ import annotations

import base64
import difflib
import math
import re
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from sandbox.metrics import char_losses

LN2 = math.log(2.0)
TIE = -1  # who_wins' index where no run is strictly best (or a run has no value)
ORDERS = ("abs", "second_worse", "first_worse")
WORD_CLASSES = ("names", "punctuation", "digits", "other")


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
    """Decoded-prefix lengths in characters (`sandbox.evaluation.decoded_prefix_ends`) as
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

    The byte version of `sandbox.metrics.align_to_original`: identity when the two are
    equal; otherwise difflib's opcodes: equal blocks copy, a replaced block spreads its
    total evenly over the original block, inserted bytes add to the original byte before
    them (the total is kept), original bytes the decoding dropped get NaN.
    """
    values = np.asarray(values, dtype=np.float64)
    if original == decoded:
        return values.copy()
    out = np.full(len(original), np.nan)
    extra = np.zeros(len(original))
    matcher = difflib.SequenceMatcher(None, original, decoded, autojunk=False)
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag == "equal":
            out[i1:i2] = values[j1:j2]
        elif tag == "replace":
            out[i1:i2] = values[j1:j2].sum() / (i2 - i1)
        elif tag == "insert" and len(original):
            extra[max(i1 - 1, 0)] += values[j1:j2].sum()
    return np.where(np.isnan(out) & (extra != 0), extra, out + extra)


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


# -- who wins, differences --------------------------------------------------------------------


def _stack(per_run: Mapping[str, np.ndarray]) -> tuple[list[str], np.ndarray]:
    runs = [str(r) for r in per_run]
    arrays = [np.asarray(v, dtype=np.float64).ravel() for v in per_run.values()]
    if len({a.size for a in arrays}) > 1:
        raise ValueError("per-byte losses of different lengths: the runs were not scored on the same text")
    return runs, np.vstack(arrays) if arrays else np.zeros((0, 0))


@dataclass
class Wins:
    """Which run predicts each byte best, and each run's share of the bytes."""

    runs: list[str]
    winner: np.ndarray  # (n_bytes,) index into runs, TIE (-1) for a tie or a missing value
    share: dict[str, float]  # bytes won / bytes with a value for every run
    tie_share: float  # ties / bytes with a value for every run
    counted: int  # bytes with a value for every run

    def to_dict(self) -> dict:
        return {"runs": self.runs, "share": self.share, "tie_share": self.tie_share, "bytes": self.counted}


def who_wins(per_run: Mapping[str, np.ndarray], *, tol: float = 1e-9) -> Wins:
    """Per byte, the index of the run with the lowest loss; TIE (-1) where the best two lie
    within ``tol`` nats of each other or a run has no value there (NaN). The same works on
    per-character sums (:func:`bytes_to_chars`) for a character view."""
    runs, stack = _stack(per_run)
    n = stack.shape[1] if stack.size else 0
    if len(runs) < 2 or n == 0:
        winner = np.full(n, TIE if len(runs) != 1 else 0, dtype=np.int16)
        return Wins(runs, winner, dict.fromkeys(runs, math.nan), math.nan, 0)
    valid = np.isfinite(stack).all(axis=0)
    filled = np.where(np.isfinite(stack), stack, np.inf)
    order = np.argsort(filled, axis=0, kind="stable")
    best, second = order[0], order[1]
    cols = np.arange(n)
    gap = filled[second, cols] - filled[best, cols]
    winner = np.where(valid & (gap > tol), best, TIE).astype(np.int16)
    counted = int(valid.sum())
    share = {
        run: float(np.count_nonzero(winner == i) / counted) if counted else math.nan for i, run in enumerate(runs)
    }
    ties = float(np.count_nonzero(valid & (winner == TIE)) / counted) if counted else math.nan
    return Wins(runs, winner, share, ties, counted)


def difference_to_reference(per_run: Mapping[str, np.ndarray], reference: str) -> dict[str, np.ndarray]:
    """Per byte, each other run's loss minus the reference's, in **bits** (positive: worse
    than the reference there; NaN where either has no value). Their mean over a text is the
    difference in bits per byte."""
    if reference not in per_run:
        raise ValueError(f"the reference run {reference!r} is not among the runs compared")
    ref = np.asarray(per_run[reference], dtype=np.float64)
    out = {}
    for run, values in per_run.items():
        if run == reference:
            continue
        values = np.asarray(values, dtype=np.float64)
        if values.shape != ref.shape:
            raise ValueError("per-byte losses of different lengths: the runs were not scored on the same text")
        out[str(run)] = (values - ref) / LN2
    return out


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
