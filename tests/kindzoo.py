"""Tiny experiments of every kind, each written the way its codebase writes them, for tests.

- `make_nanogpt`: a checkout in nanoGPT's layout: ``model.py`` (``GPTConfig``, ``GPT`` with
  ``transformer.wte/wpe/h/ln_f`` and ``lm_head``, a forward that returns only the last
  position's logits without targets), ``data/<dataset>/meta.pkl`` (a character vocabulary),
  and run folders holding ``ckpt.pt`` (``model``, ``model_args``, ``config``, ``iter_num``,
  ``best_val_loss``) and the printed training log, trained a few steps here. The model code is
  written here after nanoGPT's conventions; none of nanoGPT's own code is copied.
- `make_old_template`: an experiment of an early templateGPT version: no ``tokenizer`` in
  ``model_config.json``, ``tokenizers/bpe`` sized ``vocab_len - 3``, a forward that crashes
  unless ``cache_len=0`` is passed, and ``tools.load_model`` whose ``tools.py`` imports a
  training-only package that is not installed.
- `make_adapter`: any codebase, let in by ``sandbox_adapter.py``.
- `make_huggingface`: a GPT-2 saved by ``transformers``' own ``save_pretrained`` after a few
  steps of its ``Trainer`` (only when ``transformers`` is installed).

Each maker returns the experiment folder; `direct_*` helpers evaluate a run the codebase's
own way, for tests that compare the sandbox's numbers with them.
"""

from __future__ import annotations

import importlib.util
import json
import math
import pickle
import sys
import textwrap
from pathlib import Path

import torch

from sandbox.corpus.stories import bundled_split

NANOGPT_MODEL = '''
"""A GPT in nanoGPT's layout, written for the sandbox's tests."""
from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F


@dataclass
class GPTConfig:
    block_size: int = 64
    vocab_size: int = 40
    n_layer: int = 2
    n_head: int = 2
    n_embd: int = 32
    dropout: float = 0.0
    bias: bool = True


class Block(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.ln_1 = nn.LayerNorm(config.n_embd, bias=config.bias)
        self.attn = nn.MultiheadAttention(config.n_embd, config.n_head, bias=config.bias, batch_first=True)
        self.ln_2 = nn.LayerNorm(config.n_embd, bias=config.bias)
        self.mlp = nn.Sequential(
            nn.Linear(config.n_embd, 4 * config.n_embd, bias=config.bias), nn.GELU(),
            nn.Linear(4 * config.n_embd, config.n_embd, bias=config.bias),
        )

    def forward(self, x):
        t = x.shape[1]
        mask = torch.triu(torch.ones(t, t, dtype=torch.bool, device=x.device), 1)
        h = self.ln_1(x)
        x = x + self.attn(h, h, h, attn_mask=mask, need_weights=False)[0]
        return x + self.mlp(self.ln_2(x))


class GPT(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.config = config
        self.transformer = nn.ModuleDict(dict(
            wte=nn.Embedding(config.vocab_size, config.n_embd),
            wpe=nn.Embedding(config.block_size, config.n_embd),
            drop=nn.Dropout(config.dropout),
            h=nn.ModuleList([Block(config) for _ in range(config.n_layer)]),
            ln_f=nn.LayerNorm(config.n_embd, bias=config.bias),
        ))
        self.lm_head = nn.Linear(config.n_embd, config.vocab_size, bias=False)
        self.transformer.wte.weight = self.lm_head.weight  # tied, as nanoGPT ties them

    def forward(self, idx, targets=None):
        pos = torch.arange(idx.shape[1], device=idx.device)
        x = self.transformer.drop(self.transformer.wte(idx) + self.transformer.wpe(pos))
        for block in self.transformer.h:
            x = block(x)
        x = self.transformer.ln_f(x)
        if targets is not None:
            logits = self.lm_head(x)
            loss = F.cross_entropy(logits.view(-1, logits.size(-1)), targets.reshape(-1), ignore_index=-1)
        else:
            logits = self.lm_head(x[:, [-1], :])  # inference: only the last position
            loss = None
        return logits, loss
'''


def _import_file(name: str, path: Path):
    """A module imported from ``path`` under a name of its own (no clash with other tests)."""
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def training_text() -> str:
    return "\n".join(bundled_split("train")[:60])


def _train(model: torch.nn.Module, batches, steps: int, lr: float = 3e-3, log=None) -> list[float]:
    """A few steps of AdamW; ``batches(step)`` gives (x, y); ``log(step, loss)`` prints."""
    torch.manual_seed(0)
    opt = torch.optim.AdamW(model.parameters(), lr=lr)
    losses = []
    for step in range(steps):
        x, y = batches(step)
        _, loss = model(x, targets=y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
        if log is not None:
            log(step, float(loss.detach()))
    return losses


def make_nanogpt(models: Path, name: str = "nanogpt", steps: int = 60) -> Path:
    """A nanoGPT-style checkout with two runs: ``out-char`` and ``out-compiled`` (its state
    dict keys prefixed ``_orig_mod.``, as a ``torch.compile``d run saves them)."""
    root = models / name
    (root / "data" / "tiny_char").mkdir(parents=True)
    (root / "model.py").write_text(textwrap.dedent(NANOGPT_MODEL))
    (root / "train.py").write_text("# nanoGPT's train.py would be here; the sandbox never runs it\n")
    text = training_text()
    chars = sorted(set(text))
    stoi = {c: i for i, c in enumerate(chars)}
    itos = dict(enumerate(chars))
    with open(root / "data" / "tiny_char" / "meta.pkl", "wb") as f:
        pickle.dump({"vocab_size": len(chars), "itos": itos, "stoi": stoi}, f)
    data = torch.tensor([stoi[c] for c in text], dtype=torch.long)
    module = _import_file(f"nanogpt_model_{id(root)}", root / "model.py")
    model_args = dict(n_layer=2, n_head=2, n_embd=32, block_size=32, bias=True, vocab_size=len(chars), dropout=0.0)
    for run, prefix in (("out-char", ""), ("out-compiled", "_orig_mod.")):
        torch.manual_seed(1 if prefix else 0)
        model = module.GPT(module.GPTConfig(**model_args))
        gen = torch.Generator().manual_seed(0)

        def batches(_step, gen=gen):
            ix = torch.randint(len(data) - 33, (8,), generator=gen)
            x = torch.stack([data[i : i + 32] for i in ix])
            y = torch.stack([data[i + 1 : i + 33] for i in ix])
            return x, y

        lines = []
        losses = _train(model, batches, steps, log=lambda s, v, lines=lines: lines.append(
            f"iter {s}: loss {v:.4f}, time 12.34ms, mfu -100.00%"))
        for s in range(0, steps, 20):
            lines.insert(0, "")  # nanoGPT prints other lines too
            lines.append(f"step {s}: train loss {losses[s]:.4f}, val loss {losses[s] + 0.05:.4f}")
        model.eval()
        out = root / run
        out.mkdir()
        config = {"dataset": "tiny_char", "batch_size": 8, "gradient_accumulation_steps": 1, "block_size": 32,
                  "max_iters": steps, "learning_rate": 3e-3, "compile": bool(prefix), "out_dir": run}
        torch.save({
            "model": {prefix + k: v for k, v in model.state_dict().items()},
            "optimizer": {},
            "model_args": model_args,
            "iter_num": steps,
            "best_val_loss": torch.tensor(losses[-1]),
            "config": config,
        }, out / "ckpt.pt")
        (out / "train.log").write_text("Overriding config with config/train_tiny.py:\n" + "\n".join(lines) + "\n")
    return root


def direct_nanogpt(root: Path, run: str, text: str) -> dict:
    """``text`` scored the nanoGPT way: its model.py, its checkpoint as sample.py loads it, its
    meta.pkl, a newline before the first character, non-overlapping block_size windows."""
    module = _import_file(f"nanogpt_direct_{id(root)}_{run}", root / "model.py")
    ckpt = torch.load(root / run / "ckpt.pt", map_location="cpu", weights_only=True)
    model = module.GPT(module.GPTConfig(**ckpt["model_args"]))
    model.load_state_dict({k.removeprefix("_orig_mod."): v for k, v in ckpt["model"].items()})
    model.eval()
    with open(root / "data" / ckpt["config"]["dataset"] / "meta.pkl", "rb") as f:
        stoi = pickle.load(f)["stoi"]
    ids = [stoi["\n"]] + [stoi.get(c, stoi[" "]) for c in text]
    return _windows_score(lambda x: model(x, targets=x)[0], ids, ckpt["model_args"]["block_size"], text)


def _windows_score(logits_of, ids: list[int], max_len: int, text: str) -> dict:
    """Sum of nats and top-1/top-5 hits over non-overlapping windows of ``max_len``."""
    nats, hits1, hits5, n = 0.0, 0, 0, 0
    with torch.inference_mode():
        for s in range(0, len(ids) - 1, max_len):
            e = min(s + max_len, len(ids) - 1)
            x = torch.tensor([ids[s:e]])
            y = torch.tensor(ids[s + 1 : e + 1])
            logits = logits_of(x)[0].float()
            nll = torch.logsumexp(logits, -1) - logits.gather(-1, y[:, None])[:, 0]
            rank = (logits > logits.gather(-1, y[:, None])).sum(-1)
            nats += float(nll.double().sum())
            hits1 += int((rank < 1).sum())
            hits5 += int((rank < 5).sum())
            n += len(y)
    nbytes = len(text.encode("utf-8"))
    return {"nats": nats, "tokens": n, "bits_per_byte": nats / math.log(2) / nbytes, "top1": hits1 / n, "top5": hits5 / n}


# -- an early templateGPT version --------------------------------------------------------------

OLD_CONFIG = """
from dataclasses import dataclass


@dataclass
class ModelConfig:
    dim: int = 16
    vocab_len: int = None  # set from the tokenizer
    device: str = "cpu"
    max_seq_len: int = 32
    max_batch_size: int = 4
"""

# The inference path needs cache_len to be a number: None (the default) crashes, as in the
# template's mid-2024 versions; its own comparison code calls model(x, cache_len=0).
OLD_MODEL = """
import torch
from torch import nn


class Model(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.emb = nn.Embedding(cfg.vocab_len, cfg.dim)
        self.mix = nn.Linear(cfg.dim, cfg.dim)
        self.out = nn.Linear(cfg.dim, cfg.vocab_len)
        self.max_seq_len = cfg.max_seq_len

    def forward(self, input_token_ids, cache_len=None, kv_cache=None, target_token_ids=None):
        mask = torch.nn.functional.pad(torch.ones(2, 2), (cache_len, 0, 0, 0))  # TypeError on None
        x = self.emb(input_token_ids)
        mean = x.cumsum(1) / torch.arange(1, x.shape[1] + 1).view(1, -1, 1)
        return self.out(x + torch.tanh(self.mix(mean))) * mask.sum() / 4, kv_cache
"""

OLD_TOKENIZER = """
class BPE_Tokenizer:
    def __init__(self, chars):
        self.stoi = {c: i for i, c in enumerate(chars)}
        self.itos = dict(enumerate(chars))
        self.bos_id, self.eos_id, self.pad_id = len(chars), len(chars) + 1, len(chars) + 2

    def encode(self, text, bos=True, eos=False, pad=None):
        ids = [self.stoi.get(c, self.stoi[" "]) for c in text]
        return ([self.bos_id] if bos else []) + ids + ([self.eos_id] if eos else [])

    def decode(self, ids):
        return "".join(self.itos.get(i, "") for i in ids)


def get_tokenizer(vocab_size):
    with open(f"tokenizers/bpe/models/{vocab_size}.model") as f:
        return BPE_Tokenizer(f.read())
"""

OLD_TOOLS = """
import json

import torch
from sandbox_test_missing_training_package import load_dataset  # training only


def load_model(name, device="cpu"):
    from config import ModelConfig
    from modules.model import Model
    from tokenizers.bpe.tokenizer import get_tokenizer

    with open(f"trained/{name}/model_config.json") as f:
        cfg = ModelConfig(**json.load(f))
    cfg.device = device
    tokenizer = get_tokenizer(cfg.vocab_len - 3)
    model = Model(cfg).to(device)
    model.load_state_dict(torch.load(f"trained/{name}/model.pth"))
    print(cfg, sum(p.numel() for p in model.parameters()) / 1e3, "K parameters")
    return model, tokenizer, cfg
"""

OLD_CHARS = "abcdefghijklmnopqrstuvwxyz .,!?'\"\n"


def make_old_template(models: Path, name: str = "tgpt_old") -> Path:
    """An early templateGPT version's experiment (see the module docstring), one run ``r1``."""
    root = models / name
    for rel, text in (("config.py", OLD_CONFIG), ("modules/model.py", OLD_MODEL), ("modules/__init__.py", ""),
                      ("tokenizers/bpe/tokenizer.py", OLD_TOKENIZER), ("tools.py", OLD_TOOLS)):
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(textwrap.dedent(text))
    n = len(OLD_CHARS)
    (root / "tokenizers/bpe/models").mkdir(parents=True)
    (root / f"tokenizers/bpe/models/{n}.model").write_text(OLD_CHARS)
    cfg = {"dim": 16, "vocab_len": n + 3, "device": "mps", "max_seq_len": 32, "max_batch_size": 4}
    run = root / "trained" / "r1"
    run.mkdir(parents=True)
    (run / "model_config.json").write_text(json.dumps(cfg))
    torch.manual_seed(3)
    state = {
        "emb.weight": torch.randn(n + 3, 16) * 0.5, "mix.weight": torch.randn(16, 16) * 0.2, "mix.bias": torch.zeros(16),
        "out.weight": torch.randn(n + 3, 16) * 0.5, "out.bias": torch.zeros(n + 3),
    }
    torch.save(state, run / "model.pth")
    (run / "log_data.csv").write_text("Step,Learning Rate,Train Loss,Validation Loss,Perplexity,Time Elapsed\n"
                                      "0,1e-07,3.6,3.61,36.9,1.0\n10,0.001,3.1,3.2,24.5,10.0\n")
    return root


# -- your own adapter ----------------------------------------------------------------------------

ADAPTER = '''
"""Let the sandbox in: a bigram model of characters, kept in this folder's own format."""
import torch
from torch import nn

RUNS = "checkpoints/*"
LOG = "history.csv"
WEIGHTS = "weights.pt"
CONTEXT = 48
CHARS = "abcdefghijklmnopqrstuvwxyz .,!?'\\n"


class Chars:
    bos_id = len(CHARS)
    vocab_size = len(CHARS) + 1

    def encode(self, text):
        return [CHARS.index(c) if c in CHARS else CHARS.index(" ") for c in text]

    def decode(self, ids):
        return "".join(CHARS[i] if i < len(CHARS) else "" for i in ids)


class Bigram(nn.Module):
    def __init__(self):
        super().__init__()
        self.table = nn.Embedding(len(CHARS) + 1, len(CHARS) + 1)


def load(run_dir, device):
    model = Bigram()
    model.load_state_dict(torch.load(f"{run_dir}/weights.pt", map_location=device, weights_only=True))
    return model, Chars()


def logits(model, input_ids):
    return model.table(input_ids)
'''


def make_adapter(models: Path, name: str = "own_code") -> Path:
    """A folder of another codebase with ``sandbox_adapter.py``; two runs under checkpoints/."""
    root = models / name
    root.mkdir(parents=True)
    (root / "sandbox_adapter.py").write_text(textwrap.dedent(ADAPTER))
    chars = "abcdefghijklmnopqrstuvwxyz .,!?'\n"
    text = training_text().lower()
    counts = torch.ones(len(chars) + 1, len(chars) + 1)
    ids = [chars.index(c) if c in chars else chars.index(" ") for c in text]
    for a, b in zip(ids, ids[1:], strict=False):
        counts[a, b] += 1
    counts[len(chars), ids[0]] += 1
    for run, smooth in (("bigram", 1.0), ("bigram_smooth", 20.0)):
        folder = root / "checkpoints" / run
        folder.mkdir(parents=True)
        table = torch.log((counts + smooth) / (counts + smooth).sum(1, keepdim=True))
        torch.save({"table.weight": table}, folder / "weights.pt")
        (folder / "history.csv").write_text("step,train_loss,val_loss\n0,3.5,3.5\n100,2.6,2.7\n200,2.4,2.5\n")
        (folder / "config.json").write_text(json.dumps({"vocab_size": len(chars) + 1, "smoothing": smooth}))
    return root


def direct_adapter(root: Path, run: str, text: str) -> dict:
    module = _import_file(f"adapter_direct_{id(root)}_{run}", root / "sandbox_adapter.py")
    model, tok = module.load(str(root / "checkpoints" / run), "cpu")
    ids = [tok.bos_id] + tok.encode(text)
    return _windows_score(lambda x: module.logits(model, x), ids, module.CONTEXT, text)


# -- Hugging Face ----------------------------------------------------------------------------------


def make_huggingface(models: Path, name: str = "hf_gpt2", steps: int = 12) -> Path:
    """A tiny GPT-2 and its byte-level BPE, trained a few steps by ``transformers``' Trainer and
    saved by its ``save_pretrained``: checkpoint folders with ``trainer_state.json`` too."""
    from tokenizers import Tokenizer, decoders, pre_tokenizers, trainers
    from tokenizers import models as tok_models
    from transformers import (
        GPT2Config,
        GPT2LMHeadModel,
        PreTrainedTokenizerFast,
        Trainer,
        TrainingArguments,
    )

    root = models / name
    text = training_text()
    bpe = Tokenizer(tok_models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    bpe.train_from_iterator(text.splitlines(), trainers.BpeTrainer(
        vocab_size=300, special_tokens=["<|endoftext|>"], initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    tok = PreTrainedTokenizerFast(tokenizer_object=bpe, bos_token="<|endoftext|>", eos_token="<|endoftext|>")
    config = GPT2Config(vocab_size=len(tok), n_positions=48, n_embd=32, n_layer=2, n_head=2,
                        bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id)
    torch.manual_seed(0)
    model = GPT2LMHeadModel(config)
    ids = tok(text)["input_ids"]
    blocks = [ids[i : i + 48] for i in range(0, len(ids) - 48, 48)][:64]
    data = [{"input_ids": torch.tensor(b), "labels": torch.tensor(b)} for b in blocks]
    args = TrainingArguments(
        output_dir=str(root), max_steps=steps, per_device_train_batch_size=8, learning_rate=3e-3,
        logging_steps=2, save_steps=steps // 2, eval_strategy="steps", eval_steps=steps // 2,
        report_to=[], use_cpu=True, disable_tqdm=True, seed=0,
    )
    trainer = Trainer(model=model, args=args, train_dataset=data, eval_dataset=data[:8])
    trainer.train()
    trainer.save_model(str(root))
    tok.save_pretrained(str(root))
    return root


def direct_huggingface(root: Path, text: str) -> dict:
    """``text`` scored with transformers itself: the tokenizer's bos first, n_positions windows."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(root, local_files_only=True).eval()
    tok = AutoTokenizer.from_pretrained(root, local_files_only=True)
    ids = [tok.bos_token_id] + tok(text, add_special_tokens=False)["input_ids"]
    return _windows_score(lambda x: model(input_ids=x).logits, ids, model.config.n_positions, text)
