"""Tiny experiments written to the contract, built in a temp folder for tests.

Two of them share every top-level module name (`config`, `modules`, `tokenizers`) but differ
in tokenizer, vocabulary, forward signature and file naming, like the real zoo. Weights are
tensors saved from here, so no experiment code is imported by the tests: a "trained" toy is
a bigram model of the bundled corpus (a low-rank factorisation of its bigram log-probabilities
in the embedding and head, see `_trained`) with a small context-dependent part, so its loss
is well below uniform guessing, as a trained model's is; an
*untrained* run (`add_untrained_run`) has random weights at the scale of a fresh model
with a bad init, and scores worse than uniform (loss > ln vocab).
Fault switches: a file named CRASH or HANG in the experiment root makes the next forward
call `os._exit(3)` or sleep for an hour.
"""

from __future__ import annotations

import json
import shutil
import textwrap
from pathlib import Path

import torch

ALPHABET = "abcdefghijklmnopqrstuvwxyz .,!?'\n"

CONFIG_A = """
from dataclasses import dataclass


@dataclass
class ModelConfig:
    vocab_len: int = 36
    dim: int = 16
    max_seq_len: int = 64
    tokenizer: str = "char"
    device: str = "mps"
    dropout_rate = 0.1  # class attribute, not a field: absent from the JSON


@dataclass
class TrainConfig:
    batch_size: int = 4
    gradient_accumulation_steps: int = 2
"""

LAYERS = """
import os
import time

import torch
from torch import nn


def faults():
    if os.path.exists("CRASH"):
        os._exit(3)
    if os.path.exists("HANG"):
        time.sleep(3600)


class Mixer(nn.Module):
    \"\"\"Causal running mean of the inputs, then a linear map: context matters.\"\"\"

    def __init__(self, dim):
        super().__init__()
        self.proj = nn.Linear(dim, dim)

    def forward(self, x, prefix_sum=None, offset=0):
        total = x.cumsum(1)
        if prefix_sum is not None:
            total = total + prefix_sum
        count = torch.arange(1, x.shape[1] + 1, device=x.device).view(1, -1, 1) + offset
        return x + torch.tanh(self.proj(total / count))
"""

MODEL_A = """
import torch.nn.functional as F
from torch import nn

from modules.layers import Mixer, faults


class Model(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.cfg = cfg
        self.emb = nn.Embedding(cfg.vocab_len, cfg.dim)
        self.mix = Mixer(cfg.dim)
        self.head = nn.Linear(cfg.dim, cfg.vocab_len, bias=False)

    def forward(self, input_ids, target_ids=None):
        faults()
        x = self.mix(self.emb(input_ids))
        if target_ids is not None:
            assert input_ids.shape[1] == self.cfg.max_seq_len
            x = F.dropout(x, self.cfg.dropout_rate, training=True)
        logits = self.head(x)
        if target_ids is None:
            return logits, None
        return logits, F.cross_entropy(logits.flatten(0, 1), target_ids.flatten())
"""

TOKENIZER = """
class CharTokenizer:
    \"\"\"Characters of a fixed alphabet; anything else becomes a space (lossy).\"\"\"

    def __init__(self, alphabet, specials_at):
        self.alphabet = alphabet
        self.index = {c: i for i, c in enumerate(alphabet)}
        self.bos_id, self.eos_id, self.pad_id = specials_at, specials_at + 1, specials_at + 2

    def encode(self, text, bos=True, eos=False, pad=None):
        ids = [self.index.get(c, self.index[" "]) for c in text]
        ids = ([self.bos_id] if bos else []) + ids + ([self.eos_id] if eos else [])
        if pad is not None:
            ids += [self.pad_id] * (pad - len(ids))
        return ids

    def decode(self, ids):
        return "".join(self.alphabet[i] for i in ids if 0 <= i < len(self.alphabet))


def get_tokenizer(size):
    # Opened relative to the experiment root, as real experiments do.
    with open(f"__PATH__", encoding="utf-8") as f:
        alphabet = f.read()
    return CharTokenizer(alphabet, __SPECIALS__)
"""

# Experiment B: KV-cache-style forward, max_batch_size 1, {size} naming, pad outside the model.
CONFIG_B = """
from dataclasses import dataclass


@dataclass
class ModelConfig:
    vocab_len: int = 33
    dim: int = 24
    max_seq_len: int = 48
    max_batch_size: int = 1
    tokenizer: str = "letters"
    device: str = "cuda"
"""

MODEL_B = """
import torch
import torch.nn.functional as F
from torch import nn

from modules.layers import Mixer, faults


class Model(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.cfg = cfg
        self.emb = nn.Embedding(cfg.vocab_len + 2, cfg.dim)  # bos and eos inside, pad outside
        self.mix = Mixer(cfg.dim)
        self.out = nn.Linear(cfg.dim, cfg.vocab_len + 2, bias=False)
        self.register_buffer("cache", torch.zeros(cfg.max_batch_size, cfg.max_seq_len, cfg.dim), persistent=False)

    def forward(self, input_ids, cache_len=0, target_ids=None):
        faults()
        batch, seq = input_ids.shape
        assert batch <= self.cfg.max_batch_size, "batch larger than max_batch_size"
        assert cache_len + seq <= self.cfg.max_seq_len
        x = self.emb(input_ids)
        prefix = self.cache[:batch, :cache_len].sum(1, keepdim=True) if cache_len else None
        self.cache[:batch, cache_len : cache_len + seq] = x
        logits = self.out(self.mix(x, prefix, cache_len))
        if target_ids is None:
            return logits, None
        return logits, F.cross_entropy(logits.flatten(0, 1), target_ids.flatten())
"""


# Experiment C: like A, but its state_dict also holds persistent buffers (a causal mask of
# context², RoPE-style inverse frequencies), and its head is tied to the embedding, as in
# real experiments. Counting the tensors of model.pth overstates its parameters.
MODEL_C = """
import torch
import torch.nn.functional as F
from torch import nn

from modules.layers import Mixer, faults


class Model(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.cfg = cfg
        self.emb = nn.Embedding(cfg.vocab_len, cfg.dim)
        self.mix = Mixer(cfg.dim)
        self.head = nn.Linear(cfg.dim, cfg.vocab_len, bias=False)
        self.head.weight = self.emb.weight  # tied: one tensor, two names in the state_dict
        n = cfg.max_seq_len
        self.register_buffer("mask", torch.tril(torch.ones(n, n)).view(1, n, n))
        self.register_buffer("inv_freq", 1.0 / 10000 ** (torch.arange(0, cfg.dim, 2) / cfg.dim))

    def forward(self, input_ids, target_ids=None):
        faults()
        seq = input_ids.shape[1]
        x = self.emb(input_ids)
        weights = self.mask[:, :seq, :seq] / self.mask[:, :seq, :seq].sum(-1, keepdim=True)
        x = self.mix(x + weights @ x * self.inv_freq[0])
        logits = self.head(x)
        if target_ids is None:
            return logits, None
        return logits, F.cross_entropy(logits.flatten(0, 1), target_ids.flatten())
"""

# Its size, counted by hand: embedding (tied head counted once) + the mixer's linear map.
TOY_C = {"vocab_len": 36, "dim": 16, "max_seq_len": 64}
TOY_C_PARAMETERS = 36 * 16 + 16 * 16 + 16
TOY_C_STATE_TENSORS = TOY_C_PARAMETERS + 64 * 64 + 16 // 2  # + the mask and inv_freq buffers


def _tokenizer_source(path_pattern: str, specials_expr: str) -> str:
    return TOKENIZER.replace("__PATH__", path_pattern).replace("__SPECIALS__", specials_expr)


def _write(root: Path, rel: str, text: str) -> None:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text).lstrip(), encoding="utf-8")


def _bigram(tokenize, n: int, bos: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Next-token log-probabilities after each token (``n x n``, add-one smoothed) and the
    unigram log-probabilities, counted on stories of the bundled corpus.

    Stories of another seed than the bundled corpus's: "trained" on the same kind of text,
    evaluated on a validation split it never saw.
    """
    from sandbox.corpus.stories import generate_stories

    counts = torch.ones(n, n)
    for story in generate_stories(40, seed=7):
        # Lower case: the toys' alphabets have no capitals (they read them as spaces), and a
        # model of "  he" after every full stop would only ever write spaces greedily.
        ids = torch.tensor([bos, *tokenize(story.lower())])
        counts.index_put_((ids[:-1], ids[1:]), torch.ones(len(ids) - 1), accumulate=True)
    return (counts / counts.sum(1, keepdim=True)).log(), (counts.sum(0) / counts.sum()).log()


_CONSTANT = 4.0  # embedding column 0 of every token: the head's unigram column reads it


def _trained(g: torch.Generator, tokenize, n: int, bos: int, d: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(embedding, head) of a toy that knows the bigrams of the bundled corpus.

    Column 0 carries the unigram (a constant embedding column read by the head); the other
    ``d - 1`` columns are the best rank-(d-1) factorisation of the bigram log-probabilities
    minus the unigram, so ``head @ emb[token]`` is close to log p(next | token): a loss well
    below ln vocab, and greedy decoding that writes words rather than spaces.
    """
    bigram, unigram = _bigram(tokenize, n, bos)
    u, sv, vt = torch.linalg.svd(bigram - unigram)
    r = d - 1
    emb = torch.empty(n, d)
    head = torch.empty(n, d)
    emb[:, 0] = _CONSTANT
    head[:, 0] = unigram / _CONSTANT
    emb[:, 1:] = u[:, :r] * sv[:r].sqrt()
    head[:, 1:] = vt[:r].T * sv[:r].sqrt()
    emb[:, 1:] += torch.randn(n, r, generator=g) * 0.01  # seeded: runs of one toy differ a little
    return emb, head


def _mixer(g: torch.Generator, d: int) -> torch.Tensor:
    """Small mixing weights: the running mean of the context moves the logits a little."""
    return torch.randn(d, d, generator=g) * (0.02 / d**0.5)


def _char_ids(alphabet: str):
    space = alphabet.index(" ")
    return lambda text: [alphabet.index(c) if c in alphabet else space for c in text]


def _state_a(cfg: dict, seed: int) -> dict:
    g = torch.Generator().manual_seed(seed)
    d, v = cfg["dim"], cfg["vocab_len"]
    emb, head = _trained(g, _char_ids(ALPHABET), v, v - 3, d)
    return {
        "emb.weight": emb,
        "mix.proj.weight": _mixer(g, d),
        "mix.proj.bias": torch.zeros(d),
        "head.weight": head,
    }


def _untrained_state_a(cfg: dict, seed: int) -> dict:
    """Random weights at the scale of a bad init: logits of std ~4, far worse than uniform."""
    g = torch.Generator().manual_seed(seed)
    d, v = cfg["dim"], cfg["vocab_len"]
    return {
        "emb.weight": torch.randn(v, d, generator=g),
        "mix.proj.weight": torch.randn(d, d, generator=g) / d**0.5,
        "mix.proj.bias": torch.zeros(d),
        "head.weight": torch.randn(v, d, generator=g),
    }


def _state_b(cfg: dict, seed: int, letters: str) -> dict:
    g = torch.Generator().manual_seed(seed)
    d, v = cfg["dim"], cfg["vocab_len"] + 2
    emb, head = _trained(g, _char_ids(letters), v, cfg["vocab_len"], d)
    return {
        "emb.weight": emb,
        "mix.proj.weight": _mixer(g, d),
        "mix.proj.bias": torch.zeros(d),
        "out.weight": head,
    }


LOG_A = "Step,Time Elapsed,Tokens Per Second,Train Loss,Validation Loss,Perplexity,Learning Rate,Norm\n"
LOG_B = "Step,Learning Rate,Train Loss,Validation Loss,Perplexity,Time Elapsed\n"


def make_toy_a(
    models: Path, name: str = "toy_a", runs: tuple[str, ...] = ("run1",), tokenizer: str = "char"
) -> Path:
    """Experiment A: char tokenizer at tokenizers/<tokenizer>/models/{size-3}.model, specials last.

    ``tokenizer`` names the folder; real ones are not always identifiers (``bpe_fineweb-edu``).
    """
    root = models / name
    _write(root, "config.py", CONFIG_A)
    _write(root, "modules/__init__.py", "")
    _write(root, "modules/layers.py", LAYERS)
    _write(root, "modules/model.py", MODEL_A)
    source = _tokenizer_source(f"tokenizers/{tokenizer}/models/{{size - 3}}.model", "size - 3")
    _write(root, f"tokenizers/{tokenizer}/tokenizer.py", source)
    cfg = {"vocab_len": 36, "dim": 16, "max_seq_len": 64, "tokenizer": tokenizer, "device": "mps"}
    (root / f"tokenizers/{tokenizer}/models").mkdir(parents=True, exist_ok=True)
    (root / f"tokenizers/{tokenizer}/models/{cfg['vocab_len'] - 3}.model").write_text(ALPHABET, encoding="utf-8")
    for i, run in enumerate(runs):
        d = root / "trained" / run
        d.mkdir(parents=True, exist_ok=True)
        torch.save(_state_a(cfg, seed=i), d / "model.pth")
        (d / "model_config.json").write_text(json.dumps(cfg))
        (d / "train_config.json").write_text(json.dumps({"batch_size": 4, "gradient_accumulation_steps": 2}))
        rows = "".join(f"{s},{s * 0.5},{1000 + s},{3.5 - s / 100},{3.6 - s / 120},{2.7},{1e-3},{0.5}\n" for s in range(0, 200, 10))
        (d / "log_data.csv").write_text(LOG_A + rows)
        (d / "README.md").write_text(f"# {run}\nA toy run.\n")
    return root


def make_toy_b(models: Path, name: str = "toy_b", runs: tuple[str, ...] = ("cached",)) -> Path:
    """Experiment B: same module names, {size} naming, pad == vocab_len + 2, KV-style forward."""
    root = models / name
    letters = "abcdefghijklmnopqrstuvwxyz .,!?\n"  # 32 chars + 1 below = 33 regular ids
    letters += "-"
    _write(root, "config.py", CONFIG_B)
    _write(root, "modules/__init__.py", "")
    _write(root, "modules/layers.py", LAYERS)
    _write(root, "modules/model.py", MODEL_B)
    _write(root, "tokenizers/letters/tokenizer.py", _tokenizer_source("tokenizers/letters/models/{size}.model", "size"))
    cfg = {"vocab_len": 33, "dim": 24, "max_seq_len": 48, "max_batch_size": 1, "tokenizer": "letters", "device": "cuda"}
    (root / "tokenizers/letters/models").mkdir(parents=True, exist_ok=True)
    (root / f"tokenizers/letters/models/{cfg['vocab_len']}.model").write_text(letters, encoding="utf-8")
    for i, run in enumerate(runs):
        d = root / "trained" / run
        d.mkdir(parents=True, exist_ok=True)
        torch.save(_state_b(cfg, seed=100 + i, letters=letters), d / "model.pth")
        (d / "model_config.json").write_text(json.dumps(cfg))
        rows = "".join(f"{s},{1e-3},{3.3 - s / 90},{3.4 - s / 100},{2.9},{s * 0.7}\n" for s in range(0, 200, 10))
        (d / "log_data.csv").write_text(LOG_B + rows)
    return root


def make_pair(models: Path) -> Path:
    """toy_a (runs run1, run2) and toy_b (run cached) in ``models``: two experiments with the
    same module names and different everything else (the worker, fault and Ray tests' zoo)."""
    make_toy_a(models, runs=("run1", "run2"))
    make_toy_b(models)
    return models


def make_toy_buffers(models: Path, name: str = "toy_c", runs: tuple[str, ...] = ("run1",)) -> Path:
    """Experiment C: experiment A's tokenizer and config, a model with persistent buffers
    (``mask``, ``inv_freq``) saved in model.pth and its head tied to the embedding."""
    root = make_toy_a(models, name=name, runs=())
    _write(root, "modules/model.py", MODEL_C)
    cfg = {**TOY_C, "tokenizer": "char", "device": "mps"}
    n, d = cfg["max_seq_len"], cfg["dim"]
    for i, run in enumerate(runs):
        g = torch.Generator().manual_seed(200 + i)
        emb = torch.randn(cfg["vocab_len"], d, generator=g)
        state = {
            "emb.weight": emb,
            "mix.proj.weight": torch.randn(d, d, generator=g) / d**0.5,
            "mix.proj.bias": torch.zeros(d),
            "head.weight": emb,  # the same tensor: torch.save keeps it shared
            "mask": torch.tril(torch.ones(n, n)).view(1, n, n),
            "inv_freq": 1.0 / 10000 ** (torch.arange(0, d, 2) / d),
        }
        d_run = root / "trained" / run
        d_run.mkdir(parents=True, exist_ok=True)
        torch.save(state, d_run / "model.pth")
        (d_run / "model_config.json").write_text(json.dumps(cfg))
        rows = "".join(f"{s},{s * 0.5},{1000 + s},{3.4 - s / 100},{3.5 - s / 120},{2.7},{1e-3},{0.5}\n" for s in range(0, 200, 10))
        (d_run / "log_data.csv").write_text(LOG_A + rows)
    return root


def copy_experiment(src: Path, models: Path, name: str) -> Path:
    """A copy of ``src`` under ``models/name``, to break on purpose."""
    dst = models / name
    shutil.copytree(src, dst)
    return dst


def add_untrained_run(root: Path, run: str = "untrained", seed: int = 0) -> Path:
    """A run of experiment A (at ``root``) whose model.pth is an untrained model.

    Its config, train config and log are those of a trained run (the log ends at a
    validation loss of about 2.0), as when a checkpoint from before training, or from other
    code, is saved over the trained one: loss on any text is far above ln 36.
    """
    d = root / "trained" / run
    d.mkdir(parents=True, exist_ok=True)
    cfg = {"vocab_len": 36, "dim": 16, "max_seq_len": 64, "tokenizer": "char", "device": "mps"}
    torch.save(_untrained_state_a(cfg, seed), d / "model.pth")
    (d / "model_config.json").write_text(json.dumps(cfg))
    (d / "train_config.json").write_text(json.dumps({"batch_size": 4, "gradient_accumulation_steps": 2}))
    rows = "".join(f"{s},{s * 0.5},{1000 + s},{3.5 - s / 100},{3.6 - s / 120},{2.7},{1e-3},{0.5}\n" for s in range(0, 200, 10))
    (d / "log_data.csv").write_text(LOG_A + rows)
    return d


def say_trained_on_bundled(run_dir: Path, final_val_loss: float | None = None) -> None:
    """Make a run's train config name the bundled corpus (as the sandbox's own zoo does).

    With ``final_val_loss``, its log's last validation loss becomes that value: a log that
    does not describe these weights when it is far from what they score (a toy scores ~2.5).
    """
    from sandbox.corpus.stories import BUNDLED_SEED

    path = run_dir / "train_config.json"
    cfg = json.loads(path.read_text()) if path.is_file() else {}
    path.write_text(json.dumps({**cfg, "corpus_seed": BUNDLED_SEED}))
    if final_val_loss is not None:
        log = run_dir / "log_data.csv"
        header, *rows = log.read_text().splitlines()
        column = header.split(",").index("Validation Loss")
        last = rows[-1].split(",")
        last[column] = str(final_val_loss)
        log.write_text("\n".join([header, *rows[:-1], ",".join(last)]) + "\n")


# Experiment P: a tokenizer of pieces (characters and frequent chunks, greedy longest match).
# Fewer tokens per byte than the character toys: a higher loss per token, but (trained the
# same way) fewer bits per byte, so per-token and per-byte rankings disagree.
PIECES = list(dict.fromkeys(list(ALPHABET) + [
    " the ", "the ", " and ", " a ", "ed ", "ing", " to ", " was ", "he ", "she ", " of ", " in ",
    "said", " it", "er", "on", "an", "en", "in", "at", "ou", "ll", "re", "th", ". ", ", ", "e ",
    "s ", "d ", "t ", "y ", "little", "time", "once upon a ", " her ", " his ", " with ", "day",
    " they ", "friend",
]))

PIECE_TOKENIZER = """
import json


class PieceTokenizer:
    \"\"\"Greedy longest match over a list of pieces; a character no piece starts with becomes a space.\"\"\"

    def __init__(self, pieces):
        self.pieces = pieces
        self.index = {p: i for i, p in enumerate(pieces)}
        self.longest = max(map(len, pieces))
        n = len(pieces)
        self.bos_id, self.eos_id, self.pad_id = n, n + 1, n + 2

    def encode(self, text, bos=True, eos=False, pad=None):
        ids, i = [], 0
        while i < len(text):
            for length in range(min(self.longest, len(text) - i), 0, -1):
                j = self.index.get(text[i : i + length])
                if j is not None:
                    ids.append(j)
                    i += length
                    break
            else:
                ids.append(self.index[" "])
                i += 1
        ids = ([self.bos_id] if bos else []) + ids + ([self.eos_id] if eos else [])
        if pad is not None:
            ids += [self.pad_id] * (pad - len(ids))
        return ids

    def decode(self, ids):
        return "".join(self.pieces[i] for i in ids if 0 <= i < len(self.pieces))


def get_tokenizer(size):
    with open("tokenizers/pieces/models/pieces.json", encoding="utf-8") as f:
        pieces = json.load(f)
    assert len(pieces) + 3 == size, "vocab_len must be the pieces and three specials"
    return PieceTokenizer(pieces)
"""


def make_toy_pieces(models: Path, name: str = "toy_pieces", runs: tuple[str, ...] = ("run1",)) -> Path:
    """Experiment P: experiment A's code with the pieces tokenizer (vocab: the pieces + 3 specials)."""
    root = models / name
    vocab = len(PIECES) + 3
    _write(root, "config.py", CONFIG_A.replace("vocab_len: int = 36", f"vocab_len: int = {vocab}")
           .replace('tokenizer: str = "char"', 'tokenizer: str = "pieces"'))
    _write(root, "modules/__init__.py", "")
    _write(root, "modules/layers.py", LAYERS)
    _write(root, "modules/model.py", MODEL_A)
    _write(root, "tokenizers/pieces/tokenizer.py", PIECE_TOKENIZER)
    (root / "tokenizers/pieces/models").mkdir(parents=True, exist_ok=True)
    (root / "tokenizers/pieces/models/pieces.json").write_text(json.dumps(PIECES), encoding="utf-8")
    namespace: dict = {}
    exec(compile(textwrap.dedent(PIECE_TOKENIZER), "pieces_tokenizer", "exec"), namespace)  # noqa: S102 — our own fixture code
    tokenizer = namespace["PieceTokenizer"](PIECES)
    cfg = {"vocab_len": vocab, "dim": 16, "max_seq_len": 64, "tokenizer": "pieces", "device": "cpu"}
    for i, run in enumerate(runs):
        d = root / "trained" / run
        d.mkdir(parents=True, exist_ok=True)
        g = torch.Generator().manual_seed(200 + i)
        emb, head = _trained(g, lambda text: tokenizer.encode(text, bos=False), vocab, tokenizer.bos_id, cfg["dim"])
        state = {"emb.weight": emb, "mix.proj.weight": _mixer(g, cfg["dim"]),
                 "mix.proj.bias": torch.zeros(16), "head.weight": head}
        torch.save(state, d / "model.pth")
        (d / "model_config.json").write_text(json.dumps(cfg))
        rows = "".join(f"{s},{s * 0.5},{1000 + s},{4.5 - s / 100},{4.6 - s / 120},{2.7},{1e-3},{0.5}\n" for s in range(0, 200, 10))
        (d / "log_data.csv").write_text(LOG_A + rows)
    return root
