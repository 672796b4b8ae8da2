"""Fixtures of more sources, each written here the way its tool writes it, for tests.

- `make_nanochat`: a checkout in nanochat's layout: a ``nanochat`` package (``gpt.py``,
  ``tokenizer.py``, ``checkpoint_manager.py``, ``common.py``) written here after nanochat's
  conventions (a GPT whose forward without targets returns every position's softcapped
  logits and refuses a single position, per-layer ``resid_lambdas``/``x0_lambdas``, a
  padded vocabulary, a ``build_model`` that turns bf16 into float on CPU, strips
  ``_orig_mod.`` and patches older checkpoints), none of nanochat's own code copied; and its
  base directory ``base_dir/`` with ``tokenizer/tokenizer.pkl`` (a pickled tiktoken encoding
  with ``<|bos|>``) and ``base_checkpoints/<tag>/model_<step:06d>.pt`` + ``meta_<step:06d>.json``.
- `make_tensorboard`: a logdir of two runs written by torch's ``SummaryWriter`` (one resumed:
  two event files).
- `make_lightning`: ``lightning_logs/version_<N>/metrics.csv`` + ``hparams.yaml`` as
  Lightning's CSVLogger writes them (a step's train and validation rows apart).

`direct_nanochat` evaluates a nanochat run with nanochat's conventions (its loss path, bos
before the text, special tokens excluded, nats over UTF-8 bytes of the targets).
"""

from __future__ import annotations

import json
import math
import pickle
import re
import textwrap
from collections import Counter
from pathlib import Path

import torch
from kindzoo import _import_file, training_text

NANOCHAT_COMMON = '''
"""Written for the sandbox's tests after nanochat's common.py."""
import os

import torch

COMPUTE_DTYPE = torch.float32


def get_base_dir():
    return os.environ.get("NANOCHAT_BASE_DIR") or os.path.join(os.path.expanduser("~"), ".cache", "nanochat")
'''

NANOCHAT_GPT = '''
"""A GPT in nanochat's conventions, written for the sandbox's tests."""
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn


@dataclass
class GPTConfig:
    sequence_len: int = 64
    vocab_size: int = 300
    n_layer: int = 2
    n_head: int = 2
    n_kv_head: int = 2
    n_embd: int = 32
    window_pattern: str = "SL"


def norm(x):
    return F.rms_norm(x, (x.size(-1),))


class Block(nn.Module):
    def __init__(self, config, window):
        super().__init__()
        self.n_head, self.window = config.n_head, window
        self.c_qkv = nn.Linear(config.n_embd, 3 * config.n_embd, bias=False)
        self.c_proj = nn.Linear(config.n_embd, config.n_embd, bias=False)
        self.c_fc = nn.Linear(config.n_embd, 4 * config.n_embd, bias=False)
        self.c_out = nn.Linear(4 * config.n_embd, config.n_embd, bias=False)

    def forward(self, x):
        b, t, c = x.shape
        q, k, v = self.c_qkv(norm(x)).view(b, t, 3, self.n_head, c // self.n_head).permute(2, 0, 3, 1, 4)
        i = torch.arange(t, device=x.device)
        allowed = (i[None, :] <= i[:, None]) & (i[:, None] - i[None, :] < self.window)
        y = F.scaled_dot_product_attention(q, k, v, attn_mask=allowed)
        x = x + self.c_proj(y.transpose(1, 2).reshape(b, t, c))
        return x + self.c_out(F.relu(self.c_fc(norm(x))).square())


class GPT(nn.Module):
    def __init__(self, config, pad_vocab_size_to=64):
        super().__init__()
        self.config = config
        padded = -(-config.vocab_size // pad_vocab_size_to) * pad_vocab_size_to
        short = max(1, config.sequence_len // 4)
        windows = [config.sequence_len if config.window_pattern[i % len(config.window_pattern)] == "L" else short
                   for i in range(config.n_layer)]
        windows[-1] = config.sequence_len
        self.transformer = nn.ModuleDict({
            "wte": nn.Embedding(padded, config.n_embd),
            "h": nn.ModuleList([Block(config, w) for w in windows]),
        })
        self.lm_head = nn.Linear(config.n_embd, padded, bias=False)
        self.resid_lambdas = nn.Parameter(torch.ones(config.n_layer))
        self.x0_lambdas = nn.Parameter(torch.zeros(config.n_layer))
        self.register_buffer("scale", torch.ones(1), persistent=False)  # made by init_weights, as rotary is

    @torch.no_grad()
    def init_weights(self):
        torch.nn.init.normal_(self.transformer.wte.weight, std=0.8)
        torch.nn.init.normal_(self.lm_head.weight, std=0.02)
        for block in self.transformer.h:
            for lin in (block.c_qkv, block.c_fc):
                torch.nn.init.normal_(lin.weight, std=self.config.n_embd ** -0.5)
            for lin in (block.c_proj, block.c_out):
                torch.nn.init.zeros_(lin.weight)
        self.resid_lambdas.fill_(1.0)
        self.x0_lambdas.fill_(0.0)
        self.scale = torch.ones(1, device=self.lm_head.weight.device)

    def get_device(self):
        return self.transformer.wte.weight.device

    def forward(self, idx, targets=None, kv_cache=None, loss_reduction="mean"):
        b, t = idx.size()
        assert t > 1, "Training forward pass should have T > 1"
        x = norm(self.transformer.wte(idx)) * self.scale
        x0 = x
        for i, block in enumerate(self.transformer.h):
            x = block(self.resid_lambdas[i] * x + self.x0_lambdas[i] * x0)
        logits = self.lm_head(norm(x))[..., : self.config.vocab_size].float()
        logits = 15 * torch.tanh(logits / 15)
        if targets is not None:
            return F.cross_entropy(logits.view(-1, logits.size(-1)), targets.view(-1), ignore_index=-1,
                                   reduction=loss_reduction)
        return logits
'''

NANOCHAT_TOKENIZER = '''
"""nanochat's tokenizer conventions: trained by rustbpe, read back with tiktoken."""
import os
import pickle

import rustbpe  # noqa: F401 — trains tokenizers; imported at the top as nanochat's is
import tiktoken  # noqa: F401 — tokenizer.pkl is a tiktoken Encoding


class RustBPETokenizer:
    def __init__(self, enc, bos_token):
        self.enc = enc
        self.bos_token_id = enc.encode_single_token(bos_token)

    @classmethod
    def from_directory(cls, tokenizer_dir):
        with open(os.path.join(tokenizer_dir, "tokenizer.pkl"), "rb") as f:
            return cls(pickle.load(f), "<|bos|>")

    def get_vocab_size(self):
        return self.enc.n_vocab

    def get_bos_token_id(self):
        return self.bos_token_id

    def encode(self, text, prepend=None, append=None):
        ids = self.enc.encode_ordinary(text)
        if prepend is not None:
            ids.insert(0, prepend if isinstance(prepend, int) else self.enc.encode_single_token(prepend))
        return ids

    def decode(self, ids):
        return self.enc.decode(ids)


def get_tokenizer():
    from nanochat.common import get_base_dir

    return RustBPETokenizer.from_directory(os.path.join(get_base_dir(), "tokenizer"))
'''

NANOCHAT_CHECKPOINT_MANAGER = '''
"""Loading in nanochat's conventions: bf16 to float on CPU, _orig_mod. off, old checkpoints patched."""
import json
import os

import torch

from nanochat.gpt import GPT, GPTConfig
from nanochat.tokenizer import get_tokenizer


def _patch_missing_config_keys(kwargs):
    kwargs.setdefault("window_pattern", "L")


def _patch_missing_keys(data, config):
    data.setdefault("resid_lambdas", torch.ones(config.n_layer))
    data.setdefault("x0_lambdas", torch.zeros(config.n_layer))


def load_checkpoint(checkpoint_dir, step, device):
    data = torch.load(os.path.join(checkpoint_dir, f"model_{step:06d}.pt"), map_location=device)
    with open(os.path.join(checkpoint_dir, f"meta_{step:06d}.json"), encoding="utf-8") as f:
        meta = json.load(f)
    return data, None, meta


def build_model(checkpoint_dir, step, device, phase):
    data, _, meta = load_checkpoint(checkpoint_dir, step, device)
    if device.type in {"cpu", "mps"}:
        data = {k: v.float() if v.dtype == torch.bfloat16 else v for k, v in data.items()}
    data = {k.removeprefix("_orig_mod."): v for k, v in data.items()}
    kwargs = meta["model_config"]
    _patch_missing_config_keys(kwargs)
    config = GPTConfig(**kwargs)
    _patch_missing_keys(data, config)
    with torch.device("meta"):
        model = GPT(config)
    model.to_empty(device=device)
    model.init_weights()
    model.load_state_dict(data, strict=True, assign=True)
    model.eval() if phase == "eval" else model.train()
    tokenizer = get_tokenizer()
    assert tokenizer.get_vocab_size() == kwargs["vocab_size"]
    return model, tokenizer, meta
'''

SPLIT = r"""'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"""
SPECIALS = ("<|bos|>", "<|user_start|>", "<|user_end|>")


def bpe_encoding(text: str, merges: int = 60):
    """A byte-level BPE trained here (a few merges) as a tiktoken Encoding with nanochat's
    special tokens after the mergeable ranks."""
    import tiktoken

    words = Counter(re.findall(r" ?[A-Za-z]+| ?[0-9]+| ?[^\sA-Za-z0-9]+|\s+", text))
    pieces = {w: [bytes([b]) for b in w.encode()] for w in words}
    ranks = {bytes([i]): i for i in range(256)}
    for _ in range(merges):
        pairs: Counter = Counter()
        for w, parts in pieces.items():
            for a, b in zip(parts, parts[1:], strict=False):
                pairs[a, b] += words[w]
        if not pairs:
            break
        (a, b), _count = pairs.most_common(1)[0]
        ranks.setdefault(a + b, len(ranks))
        for w, parts in pieces.items():
            i, out = 0, []
            while i < len(parts):
                if i + 1 < len(parts) and parts[i] == a and parts[i + 1] == b:
                    out.append(a + b)
                    i += 2
                else:
                    out.append(parts[i])
                    i += 1
            pieces[w] = out
    specials = {name: len(ranks) + i for i, name in enumerate(SPECIALS)}
    return tiktoken.Encoding(name="rustbpe", pat_str=SPLIT, mergeable_ranks=ranks, special_tokens=specials)


def _train_nanochat(gpt, config, enc, steps: int, freeze_lambdas: bool, saved: tuple[int, ...]) -> tuple[dict, list[str]]:
    """``({step: state dict after that many steps}, printed lines)`` of one training."""
    torch.manual_seed(0)
    model = gpt.GPT(config)
    model.init_weights()
    if freeze_lambdas:  # an older nanochat without them: identity scaling, no x0 mixing
        model.resid_lambdas.requires_grad_(False)
        model.x0_lambdas.requires_grad_(False)
    bos = enc.encode_single_token("<|bos|>")
    ids: list[int] = []
    for doc in training_text().split("\n"):
        ids += [bos] + enc.encode_ordinary(doc)
    data = torch.tensor(ids)
    gen = torch.Generator().manual_seed(0)
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-2)
    lines: list[str] = []
    states = {}
    t = config.sequence_len
    for step in range(steps):
        ix = torch.randint(len(data) - t - 1, (8,), generator=gen)
        x = torch.stack([data[i : i + t] for i in ix])
        y = torch.stack([data[i + 1 : i + t + 1] for i in ix])
        loss = model(x, y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        if step + 1 in saved:
            states[step + 1] = {k: v.detach().clone() for k, v in model.state_dict().items()}
        lines.append(f"step {step:05d}/{steps:05d} ({100 * step / steps:.2f}%) | loss: {loss.item():.6f} | lrm: 1.00 | "
                     f"dt: 12.34ms | tok/sec: 41,234 | bf16_mfu: 0.01 | epoch: 1 | total time: 0.01m")
        if step % 10 == 0:
            lines.append(f"Step {step:05d} | Validation bpb: {loss.item() / math.log(2) / 3.5:.6f}")
    return states, lines


def make_nanochat(models: Path, name: str = "nanochat") -> Path:
    """A nanochat checkout (see the module docstring) with two model tags: ``d2`` (steps 20
    and 40, saved in bf16 with ``_orig_mod.`` keys, as a compiled GPU run saves them) and
    ``d1`` (one step of an older nanochat: no ``window_pattern`` in its meta, no
    ``resid_lambdas``/``x0_lambdas`` in its state dict)."""
    root = models / name
    package = root / "nanochat"
    package.mkdir(parents=True)
    for file, text in (("__init__.py", ""), ("common.py", NANOCHAT_COMMON), ("gpt.py", NANOCHAT_GPT),
                       ("tokenizer.py", NANOCHAT_TOKENIZER), ("checkpoint_manager.py", NANOCHAT_CHECKPOINT_MANAGER)):
        (package / file).write_text(textwrap.dedent(text))
    (root / "pyproject.toml").write_text('[project]\nname = "nanochat"\ndependencies = ["torch==2.9.1"]\n')
    base = root / "base_dir"
    (base / "tokenizer").mkdir(parents=True)
    enc = bpe_encoding(training_text())
    with open(base / "tokenizer" / "tokenizer.pkl", "wb") as f:
        pickle.dump(enc, f)
    gpt = _import_file(f"nanochat_gpt_make_{id(root)}", package / "gpt.py")
    for tag, steps, saved, old in (("d2", 40, (20, 40), False), ("d1", 10, (10,), True)):
        config = gpt.GPTConfig(sequence_len=64, vocab_size=enc.n_vocab, n_layer=2 if tag == "d2" else 1,
                               window_pattern="L" if old else "SL")
        folder = base / "base_checkpoints" / tag
        folder.mkdir(parents=True)
        states, lines = _train_nanochat(gpt, config, enc, steps, old, saved)
        for step, state in states.items():
            if old:
                state = {k: v for k, v in state.items() if k not in ("resid_lambdas", "x0_lambdas")}
            else:
                state = {f"_orig_mod.{k}": v.to(torch.bfloat16) for k, v in state.items()}
            torch.save(state, folder / f"model_{step:06d}.pt")
            model_config = dict(vars(config))
            if old:
                model_config.pop("window_pattern")
            meta = {"step": step, "val_bpb": 2.0, "model_config": model_config,
                    "user_config": {"depth": config.n_layer, "max_seq_len": 64, "device_batch_size": 8, "run": "dummy"},
                    "device_batch_size": 8, "max_seq_len": 64, "total_batch_size": 1024}
            (folder / f"meta_{step:06d}.json").write_text(json.dumps(meta, indent=2))
        (folder / "train.log").write_text("Vocab size: 2,048\n" + "\n".join(lines) + "\n")
    return root


def direct_nanochat(root: Path, tag: str, text: str) -> dict:
    """``text`` scored with nanochat's conventions: its model_<last step>.pt and meta as its
    checkpoint manager reads them, ``<|bos|>`` before the text, ``sequence_len`` windows through
    its loss path (``loss_reduction='none'``), nats of targets with bytes (special tokens
    have none) over the targets' UTF-8 bytes, as its ``evaluate_bpb``."""
    base = root / "base_dir"
    folder = base / "base_checkpoints" / tag
    step = max(int(p.stem.split("_")[1]) for p in folder.glob("model_*.pt"))
    meta = json.loads((folder / f"meta_{step:06d}.json").read_text())
    gpt = _import_file(f"nanochat_gpt_direct_{id(root)}_{tag}", root / "nanochat" / "gpt.py")
    config = gpt.GPTConfig(**{"window_pattern": "L", **meta["model_config"]})
    state = torch.load(folder / f"model_{step:06d}.pt", map_location="cpu", weights_only=True)
    state = {k.removeprefix("_orig_mod."): v.float() if v.dtype == torch.bfloat16 else v for k, v in state.items()}
    state.setdefault("resid_lambdas", torch.ones(config.n_layer))
    state.setdefault("x0_lambdas", torch.zeros(config.n_layer))
    model = gpt.GPT(config)
    model.init_weights()
    model.load_state_dict(state)
    model.eval()
    with open(base / "tokenizer" / "tokenizer.pkl", "rb") as f:
        enc = pickle.load(f)
    special = {enc.encode_single_token(s) for s in SPECIALS}
    token_bytes = torch.tensor([0 if i in special else len(enc.decode_single_token_bytes(i)) for i in range(enc.n_vocab)])
    ids = [enc.encode_single_token("<|bos|>")] + enc.encode_ordinary(text)
    t = config.sequence_len
    nats, nbytes = 0.0, 0
    with torch.no_grad():
        for s in range(0, len(ids) - 1, t):
            e = min(s + t, len(ids) - 1)
            x = torch.tensor([ids[s:e]])
            y = torch.tensor([ids[s + 1 : e + 1]])
            loss = model(x, y, loss_reduction="none").view(-1)
            counted = token_bytes[y.view(-1)]
            nats += float((loss.double() * (counted > 0)).sum())
            nbytes += int(counted.sum())
    return {"bits_per_byte": nats / (math.log(2) * nbytes), "bytes": nbytes, "tokens": len(ids) - 1,
            "window_remainder": (len(ids) - 1) % t}


# -- logs only --------------------------------------------------------------------------------


def make_tensorboard(models: Path, name: str = "tb_lab") -> Path:
    """A logdir: ``runA`` (steps 0–19, resumed at 10 into a second event file) and ``runB``
    (steps 0–9), with ``train/loss`` each step, ``eval/loss`` every 5 steps and
    ``train/learning_rate``, written by torch's ``SummaryWriter``."""
    import time

    from torch.utils.tensorboard import SummaryWriter

    root = models / name
    for run, parts in (("runA", ((0, 10), (10, 20))), ("runB", ((0, 10),))):
        for start, stop in parts:
            writer = SummaryWriter(log_dir=str(root / run), filename_suffix=f".part{start}")
            for step in range(start, stop):
                loss = 5.0 / (1 + step) + (0.3 if run == "runB" else 0.0)
                writer.add_scalar("train/loss", loss, step)
                writer.add_scalar("train/learning_rate", 1e-3, step)
                if step % 5 == 4:
                    writer.add_scalar("eval/loss", loss + 0.1, step)
            writer.close()
            time.sleep(0.01)  # event file names carry the time: a resumed run's file sorts after
    return root


def tensorboard_loss(run: str, step: int) -> float:
    """The train loss `make_tensorboard` wrote for ``run`` at ``step``."""
    return 5.0 / (1 + step) + (0.3 if run == "runB" else 0.0)


def make_lightning(models: Path, name: str = "pl_lab") -> Path:
    """``lightning_logs/version_0/metrics.csv`` and ``hparams.yaml`` as Lightning's CSVLogger
    writes them: train rows each 10 steps, a validation row at each epoch's end apart from the
    train row of the same step."""
    folder = models / name / "lightning_logs" / "version_0"
    folder.mkdir(parents=True)
    rows = ["epoch,step,train_loss_step,val_loss,train_loss_epoch"]
    for epoch in range(3):
        for step in range(epoch * 30 + 9, epoch * 30 + 30, 10):
            rows.append(f"{epoch},{step},{3.0 - step / 50:.4f},,")
        last = epoch * 30 + 29
        rows.append(f"{epoch},{last},,{3.1 - last / 50:.4f},")
        rows.append(f"{epoch},{last},,,{3.05 - last / 50:.4f}")
    (folder / "metrics.csv").write_text("\n".join(rows) + "\n")
    (folder / "hparams.yaml").write_text("lr: 0.001\nbatch_size: 16\nmodel:\n  n_layer: 2\n")
    return models / name
