"""Train the byte-level BPE ranks shipped in tokenizers/bpe/models/.

    sandbox corpus --out data          # once, from the experiment root: the training text as files
    python tokenizers/bpe/train_tokenizer.py --sizes 1024 2048 [--data DIR]

For a vocabulary of ``size`` ids the ranks file holds ``size - 3`` regular tokens (the 256
bytes plus merges) and is written to ``models/{size-3}.model`` in tiktoken's own format
(``base64(token bytes) rank`` per line); the last three ids are bos, eos and pad.

Classic BPE (Sennrich et al., GPT-2): text is split into pre-tokens with the GPT-2 regex,
counted once, and merges are learned over that word-frequency table. Pair counts are kept
incrementally (only the words that contain the merged pair are revisited) with a lazy
max-heap, so thousands of merges take seconds in pure Python.
"""

from __future__ import annotations

import argparse
import base64
import heapq
import time
from collections import Counter, defaultdict
from pathlib import Path

import regex

# GPT-2's pre-tokenization: contractions, words with their leading space, numbers,
# punctuation runs, whitespace.
GPT2_PATTERN = r"""'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"""
N_SPECIAL = 3  # bos, eos, pad take the last three ids
EXPERIMENT_ROOT = Path(__file__).resolve().parents[2]


def train_bpe(texts: list[str], n_tokens: int) -> list[bytes]:
    """Learn byte-level BPE; returns the tokens in rank order (256 bytes first, then merges).

    Ties between equally frequent pairs are broken by the pair's bytes, so the result is
    deterministic.
    """
    words = Counter()
    pattern = regex.compile(GPT2_PATTERN)
    for text in texts:
        words.update(pattern.findall(text))

    vocab: list[bytes] = [bytes([b]) for b in range(256)]
    index = {tok: i for i, tok in enumerate(vocab)}
    seqs = [[b for b in w.encode("utf-8")] for w in words]
    freqs = list(words.values())

    pair_counts: Counter = Counter()
    pair_words: defaultdict = defaultdict(set)  # pair -> indices of words that contain it
    for wi, seq in enumerate(seqs):
        for pair in zip(seq, seq[1:], strict=False):
            pair_counts[pair] += freqs[wi]
            pair_words[pair].add(wi)

    def heap_key(pair: tuple[int, int]) -> tuple[int, bytes, bytes]:
        return (-pair_counts[pair], vocab[pair[0]], vocab[pair[1]])

    heap = [(*heap_key(p), p) for p in pair_counts]
    heapq.heapify(heap)

    while len(vocab) < n_tokens and heap:
        neg, _, _, pair = heapq.heappop(heap)
        if pair_counts.get(pair, 0) != -neg or -neg < 2:
            continue  # stale heap entry (count changed since it was pushed) or too rare
        merged = vocab[pair[0]] + vocab[pair[1]]
        # Two different pairs can spell the same bytes ("ab"+"c", "a"+"bc"): reuse the id
        # so that every token in the ranks file is distinct.
        new_id = index.get(merged)
        if new_id is None:
            new_id = len(vocab)
            vocab.append(merged)
            index[merged] = new_id
        changed: set = set()
        for wi in list(pair_words[pair]):
            old = seqs[wi]
            new, i = [], 0
            while i < len(old):
                if i + 1 < len(old) and (old[i], old[i + 1]) == pair:
                    new.append(new_id)
                    i += 2
                else:
                    new.append(old[i])
                    i += 1
            f = freqs[wi]
            for p in zip(old, old[1:], strict=False):
                pair_counts[p] -= f
                changed.add(p)
            for p in zip(new, new[1:], strict=False):
                pair_counts[p] += f
                pair_words[p].add(wi)
                changed.add(p)
            seqs[wi] = new
        for p in changed:
            if pair_counts[p] <= 0:
                del pair_counts[p]
                pair_words.pop(p, None)
            else:
                heapq.heappush(heap, (*heap_key(p), p))
    if len(vocab) < n_tokens:
        raise SystemExit(f"the corpus only supports {len(vocab)} tokens, not {n_tokens}")
    return vocab


def read_split(data_dir: Path, split: str) -> list[str]:
    """The documents of one split of the corpus files (``sandbox corpus --out DIR`` writes
    ``train.txt`` and ``validation.txt``: documents separated by one blank line)."""
    return (data_dir / f"{split}.txt").read_text(encoding="utf-8").rstrip("\n").split("\n\n")


def write_ranks(tokens: list[bytes], path: Path) -> None:
    """Write tiktoken's ranks format: ``base64(token) rank`` per line, in rank order."""
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = [f"{base64.b64encode(tok).decode('ascii')} {rank}" for rank, tok in enumerate(tokens)]
    path.write_text("\n".join(lines) + "\n", encoding="ascii")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1024, 2048],
                        help="vocabulary sizes (ids incl. the 3 specials) to write")
    parser.add_argument("--data", type=Path, default=EXPERIMENT_ROOT / "data",
                        help="folder of the corpus files (default: the experiment's data/; `sandbox corpus --out DIR`)")
    args = parser.parse_args()

    t0 = time.time()
    texts = read_split(args.data, "train")
    # One training run gives every size: the first k ranks of a longer run are exactly the
    # ranks a run stopped at k would have learned.
    tokens = train_bpe(texts, max(args.sizes) - N_SPECIAL)
    for size in sorted(args.sizes):
        path = Path(__file__).resolve().parent / "models" / f"{size - N_SPECIAL}.model"
        write_ranks(tokens[: size - N_SPECIAL], path)
        print(f"wrote {path} ({size - N_SPECIAL} regular tokens, vocab {size})")
    print(f"trained in {time.time() - t0:.1f}s")


if __name__ == "__main__":
    main()
