"""Train a kv_variant GPT on the bundled corpus (CPU, a few minutes).

    sandbox corpus --out data         # once: data/train.txt, data/validation.txt, data/corpus.json
    python train.py --run gqa_atto --seed 1337 [--max-steps N] [--data DIR]

Forked from the template's train.py. Writes trained/<run>/: model.pth (fp32 state_dict),
model_config.json, train_config.json, log_data.csv (one row per eval interval, flushed as
it goes; this experiment's header has no tokens columns) and README.md.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import os
import time
from dataclasses import asdict
from pathlib import Path

import torch
import torch.nn.functional as F

ROOT = Path(__file__).resolve().parent
CALLED_FROM = Path.cwd()  # where relative paths on the command line start
os.chdir(ROOT)  # the tokenizer opens its ranks relative to the experiment root

from config import ModelConfig, TrainConfig  # noqa: E402
from modules.model import Model  # noqa: E402
from tokenizers.charbpe.tokenizer import get_tokenizer  # noqa: E402

# The training text comes from files, not from the sandbox: `sandbox corpus --out data` writes
# the bundled corpus as data/train.txt and data/validation.txt (see README.md, Train).
DOCUMENT_SEPARATOR = "\n\n"  # one blank line between two documents

LOG_HEADER = ["Step", "Learning Rate", "Train Loss", "Validation Loss", "Perplexity",
              "Time Elapsed"]


def read_split(data_dir: Path, split: str) -> list[str]:
    """The documents of one split of the corpus files (``sandbox corpus --out DIR`` writes
    ``train.txt`` and ``validation.txt``: documents separated by one blank line)."""
    return (data_dir / f"{split}.txt").read_text(encoding="utf-8").rstrip("\n").split(DOCUMENT_SEPARATOR)


def check_corpus(data_dir: Path, seed: int) -> None:
    """Stop with a sentence unless ``data_dir`` holds the corpus files of ``seed``."""
    manifest = data_dir / "corpus.json"
    if not manifest.is_file():
        raise SystemExit(f"no corpus in {data_dir}: write it first with `sandbox corpus --out {data_dir}`")
    found = json.loads(manifest.read_text(encoding="utf-8")).get("seed")
    if found != seed:
        raise SystemExit(f"{data_dir} holds the corpus of seed {found}, not {seed} (TrainConfig.corpus_seed)")


def tokenize(docs: list[str], tok) -> torch.Tensor:
    """All documents as one stream: ``bos doc eos bos doc eos ...`` (never pad: it is
    outside the embedding)."""
    ids: list[int] = []
    for doc in docs:
        ids.extend(tok.encode(doc, bos=True, eos=True))
    return torch.tensor(ids, dtype=torch.long)


def lr_at(step: int, tc: TrainConfig) -> float:
    """Linear warmup, then cosine decay to min_learning_rate at max_steps."""
    if step < tc.warmup_steps:
        return tc.learning_rate * (step + 1) / tc.warmup_steps
    progress = (step - tc.warmup_steps) / max(1, tc.max_steps - tc.warmup_steps)
    cosine = 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))
    return tc.min_learning_rate + cosine * (tc.learning_rate - tc.min_learning_rate)


@torch.no_grad()
def evaluate(model: Model, windows: torch.Tensor) -> float:
    """Mean next-token loss over fixed validation windows (inference path: no dropout).

    The inference path goes through the KV cache, so it takes at most max_batch_size
    sequences at a time.
    """
    model.eval()
    losses = []
    for chunk in windows.split(model.cfg.max_batch_size):
        logits, _ = model(chunk[:, :-1])
        losses.append(F.cross_entropy(logits.flatten(0, 1), chunk[:, 1:].flatten()).item())
    model.train()
    return sum(losses) / len(losses)


def save_weights(model: Model, path: Path) -> None:
    """torch.save the state_dict atomically: readers never see a half-written file."""
    tmp = path.with_suffix(".pth.tmp")
    torch.save(model.state_dict(), tmp)
    os.replace(tmp, path)


def run_readme(run: str, cfg: ModelConfig, tc: TrainConfig, n_params: int, elapsed: float,
               train_loss: float, val_loss: float, command: str) -> str:
    """The run's README.md: what it is, how it was trained, where it ended."""
    tokens = tc.max_steps * tc.batch_size * tc.gradient_accumulation_steps * cfg.max_seq_len
    return f"""# {run}

kv_variant experiment: {n_params:,} parameters, dim {cfg.dim}, {cfg.n_layers} layers, \
{cfg.n_heads} query heads sharing {cfg.n_kv_heads} k/v heads (grouped-query attention), complex \
RoPE, RMSNorm, SwiGLU, context {cfg.max_seq_len}. Embedding and head are NOT tied; each has \
{cfg.n_embeddings} rows ({cfg.vocab_len} regular tokens + bos + eos; the pad id \
{cfg.vocab_len + 2} lies outside). A KV cache serves inference for max_batch_size \
{cfg.max_batch_size}. Tokenizer: character-alphabet BPE, lossy (characters outside the \
alphabet become spaces).

Trained on the sandbox's bundled corpus (generated children's stories, corpus seed \
{tc.corpus_seed}) on CPU with 2 threads: {tc.max_steps} steps of {tc.batch_size} x \
{tc.gradient_accumulation_steps} sequences of {cfg.max_seq_len} tokens ({tokens:,} tokens) in \
{elapsed / 60:.1f} minutes. AdamW, peak learning rate {tc.learning_rate}, warmup then cosine \
decay, gradient clipping at {tc.grad_clip}, seed {tc.seed}. Validation runs through the \
inference path one window at a time ({tc.eval_windows} windows), as max_batch_size allows.

    {command}

| | loss |
|---|---|
| final train loss | {train_loss:.3f} |
| final validation loss | {val_loss:.3f} (perplexity {math.exp(val_loss):.2f}) |
| uniform guess, ln {cfg.vocab_len} | {math.log(cfg.vocab_len):.2f} |

`model_config.json` keeps `"device": "{cfg.device}"` as the config wrote it: loaders override it.
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", required=True, help="name of the folder under trained/")
    parser.add_argument("--seed", type=int, default=1337)
    parser.add_argument("--max-steps", type=int, default=None)
    parser.add_argument("--eval-interval", type=int, default=None)
    parser.add_argument("--data", type=Path, default=ROOT / "data",
                        help="folder of the corpus files (default: data/ here; `sandbox corpus --out DIR`)")
    args = parser.parse_args()
    data_dir = CALLED_FROM / args.data

    torch.set_num_threads(2)
    torch.manual_seed(args.seed)
    cfg = ModelConfig()
    tc = TrainConfig(seed=args.seed)
    if args.max_steps is not None:
        tc.max_steps = args.max_steps
    if args.eval_interval is not None:
        tc.eval_interval = args.eval_interval
    device = "cpu"  # cfg.device stays as configured ("cuda"): it is what gets saved

    tok = get_tokenizer(cfg.vocab_len)
    check_corpus(data_dir, tc.corpus_seed)
    train_ids = tokenize(read_split(data_dir, "train"), tok)
    val_ids = tokenize(read_split(data_dir, "validation"), tok)
    seq = cfg.max_seq_len
    # Fixed, evenly spaced validation windows of seq+1 tokens (inputs and shifted targets).
    n_val = tc.eval_windows
    starts = torch.linspace(0, len(val_ids) - seq - 2, n_val).long()
    val_windows = torch.stack([val_ids[s:s + seq + 1] for s in starts])
    print(f"train tokens {len(train_ids):,}, validation tokens {len(val_ids):,}")

    model = Model(cfg).to(device)
    n_params = sum(p.numel() for p in model.parameters())
    print(f"{args.run}: {n_params:,} parameters")
    decay = [p for p in model.parameters() if p.dim() >= 2]
    no_decay = [p for p in model.parameters() if p.dim() < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": tc.weight_decay},
                             {"params": no_decay, "weight_decay": 0.0}],
                            lr=tc.learning_rate, betas=(0.9, 0.95))
    gen = torch.Generator().manual_seed(tc.seed)  # deterministic data order

    out = ROOT / "trained" / args.run
    out.mkdir(parents=True, exist_ok=True)
    (out / "model_config.json").write_text(json.dumps(asdict(cfg), indent=2) + "\n")
    (out / "train_config.json").write_text(json.dumps(asdict(tc), indent=2) + "\n")
    log_file = open(out / "log_data.csv", "w", newline="")
    log = csv.writer(log_file)
    log.writerow(LOG_HEADER)
    log_file.flush()

    t0 = t_last = time.time()
    tokens_per_step = tc.batch_size * tc.gradient_accumulation_steps * seq
    train_losses: list[float] = []
    train_loss = val_loss = float("nan")
    model.train()
    for step in range(1, tc.max_steps + 1):
        lr = lr_at(step - 1, tc)
        for group in opt.param_groups:
            group["lr"] = lr
        for _ in range(tc.gradient_accumulation_steps):
            starts = torch.randint(0, len(train_ids) - seq - 1, (tc.batch_size,), generator=gen)
            batch = torch.stack([train_ids[s:s + seq + 1] for s in starts]).to(device)
            _, loss = model(batch[:, :-1], target_ids=batch[:, 1:])  # 2nd arg is cache_len
            (loss / tc.gradient_accumulation_steps).backward()
            train_losses.append(loss.item())
        norm = torch.nn.utils.clip_grad_norm_(model.parameters(), tc.grad_clip).item()
        opt.step()
        opt.zero_grad(set_to_none=True)

        if step % tc.eval_interval == 0 or step == tc.max_steps:
            now = time.time()
            val_loss = evaluate(model, val_windows)
            train_loss = sum(train_losses) / len(train_losses)
            steps_done = len(train_losses) // tc.gradient_accumulation_steps
            tps = steps_done * tokens_per_step / (now - t_last)
            log.writerow([step, f"{lr:.6f}", f"{train_loss:.4f}", f"{val_loss:.4f}",
                          f"{math.exp(val_loss):.3f}", f"{now - t0:.2f}"])
            log_file.flush()
            print(f"step {step:5d} | train {train_loss:.4f} | val {val_loss:.4f} | "
                  f"lr {lr:.2e} | norm {norm:.3f} | {tps:,.0f} tok/s | {now - t0:.0f}s")
            # A checkpoint per eval keeps a run that is still training loadable.
            save_weights(model, out / "model.pth")
            train_losses, t_last = [], time.time()
    log_file.close()
    elapsed = time.time() - t0
    save_weights(model, out / "model.pth")

    command = (f"python train.py --run {args.run} --seed {args.seed} --max-steps {tc.max_steps} "
               f"--eval-interval {tc.eval_interval}")
    (out / "README.md").write_text(run_readme(args.run, cfg, tc, n_params, elapsed, train_loss,
                                              val_loss, command))
    print(f"saved {out} in {elapsed:.0f}s")


if __name__ == "__main__":
    main()
