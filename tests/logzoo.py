"""Synthetic training logs for the Loss curves tests: both real header variants and broken logs."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

V1 = ["Step", "Time Elapsed", "Tokens Per Second", "Train Loss", "Validation Loss",
      "Perplexity", "Learning Rate", "Norm"]  # fmt: skip
V2 = ["Step", "Learning Rate", "Train Loss", "Validation Loss", "Perplexity", "Time Elapsed"]


def curve_frame(header: list[str], rows: int = 50, scale: float = 1.0, every: int = 10) -> pd.DataFrame:
    """A decreasing loss curve logged every ``every`` steps under ``header``."""
    step = np.arange(rows) * every
    loss = scale * (1.5 + 3.0 * np.exp(-step / (rows * every / 4)))
    values = {
        "Step": step,
        "Time Elapsed": step * 0.5,
        "Tokens Per Second": np.full(rows, 1000.0) + step,
        "Train Loss": loss,
        "Validation Loss": loss + 0.1,
        "Perplexity": np.exp(loss + 0.1),
        "Learning Rate": np.full(rows, 1e-3),
        "Norm": np.linspace(2.0, 0.5, rows),
        "Tokens Seen": step * 1024,
    }
    return pd.DataFrame({h: values[h] for h in header})


def add_run(models: Path, experiment: str, name: str, log: str | bytes | None,
            train: dict | None = None, model: dict | None = None) -> Path:  # fmt: skip
    """A run folder with configs and (unless None) a log_data.csv holding ``log``."""
    run_dir = models / experiment / "trained" / name
    run_dir.mkdir(parents=True, exist_ok=True)
    (models / experiment / "config.py").write_text("# toy experiment\n")
    (run_dir / "model_config.json").write_text(json.dumps(model or {"max_seq_len": 64}))
    if train is not None:
        (run_dir / "train_config.json").write_text(json.dumps(train))
    if log is not None:
        data = log.encode() if isinstance(log, str) else log
        (run_dir / "log_data.csv").write_bytes(data)
    return run_dir


def broken_log() -> str:
    """A log with every problem at once: text cell, NaN/inf from step 300, a resumed step,
    and a half-written last line."""
    frame = curve_frame(V2, rows=50)
    text = frame.to_csv(index=False)
    lines = text.splitlines()
    cells = lines[5].split(",")  # step 40
    cells[2] = "oops"  # Train Loss
    lines[5] = ",".join(cells)
    for i in range(31, 51):  # steps 300..490 diverged
        cells = lines[i].split(",")
        cells[2], cells[3] = "nan", "inf"
        lines[i] = ",".join(cells)
    lines.append("100,0.001,9.0,9.1,9.2,50")  # step 100 logged again after a resume
    return "\n".join(lines) + "\n" + "500,0.001,2."


def tensor_repr_log(rows: int = 20) -> tuple[str, np.ndarray]:
    """A log whose learning rate was logged straight from a tensor, as real experiments do:
    cells like ``tensor(0.0100)``, one written with its device and dtype as a CUDA run prints
    it, and one ``tensor(nan)``. Returns the text and the learning rates it holds."""
    frame = curve_frame(V2, rows=rows)
    lrs = np.round(0.01 * (1 - np.arange(rows) / rows), 4)
    lines = [",".join(V2)]
    for i, row in enumerate(frame.itertuples(index=False)):
        cell = f"tensor({lrs[i]:.4f})"
        if i == 3:
            cell = f"\"tensor({lrs[i]:.4f}, device='cuda:0', dtype=torch.float64)\""
        if i == rows - 1:
            cell, lrs[i] = "tensor(nan)", np.nan
        lines.append(",".join([f"{row[0]}", cell, *(f"{v:.4f}" for v in row[2:])]))
    return "\n".join(lines) + "\n", lrs


def make_zoo(models: Path) -> dict[str, Path]:
    """alpha/v1 (header variant 1 + Tokens Seen), beta/v2 (variant 2 + train_config),
    beta/broken (every problem), beta/fresh (no log yet)."""
    return {
        "alpha/v1": add_run(models, "alpha", "v1", curve_frame([*V1, "Tokens Seen"]).to_csv(index=False)),
        "beta/v2": add_run(
            models, "beta", "v2", curve_frame(V2, scale=1.1).to_csv(index=False),
            train={"batch_size": 4, "gradient_accumulation_steps": 2},
        ),  # fmt: skip
        "beta/broken": add_run(models, "beta", "broken", broken_log()),
        "beta/fresh": add_run(models, "beta", "fresh", None),
    }


def outlier_frame(rows: int = 50, every: int = 10, start: float = 65.0) -> pd.DataFrame:
    """A run whose loss starts at ``start`` (a bad initialization) and falls fast to about 4."""
    step = np.arange(rows) * every
    loss = 4.0 + (start - 4.0) * np.exp(-step / (every * 1.5))
    frame = curve_frame(V1, rows=rows, every=every)
    frame["Train Loss"], frame["Validation Loss"] = loss, loss + 0.1
    frame["Perplexity"] = np.exp(np.minimum(loss + 0.1, 50))
    return frame


def make_vocab_zoo(models: Path) -> dict[str, Path]:
    """Runs with different tokenizers and vocabularies (1,024 to 32,768) and training data,
    as a researcher's real zoo has them; one starts at loss 65 (``hot/start65``).

    small/bpe1k: bpe, vocab 1024, data "tinystories"; big/bpe32k: bpe, vocab 32768, data
    "fineweb-edu"; hot/start65: bpe_fineweb-edu, vocab 8192, no data recorded.
    """
    def cfg(tokenizer: str, vocab: int) -> dict:
        return {"tokenizer": tokenizer, "vocab_len": vocab, "max_seq_len": 64}

    return {
        "small/bpe1k": add_run(
            models, "small", "bpe1k", curve_frame(V1).to_csv(index=False),
            train={"batch_size": 4, "dataset": "tinystories"}, model=cfg("bpe", 1024),
        ),
        "big/bpe32k": add_run(
            models, "big", "bpe32k", curve_frame(V1, scale=1.6).to_csv(index=False),
            train={"batch_size": 4, "dataset": "fineweb-edu"}, model=cfg("bpe", 32768),
        ),
        "hot/start65": add_run(
            models, "hot", "start65", outlier_frame().to_csv(index=False),
            train={"batch_size": 4}, model=cfg("bpe_fineweb-edu", 8192),
        ),
    }  # fmt: skip


def cache_evaluation(run, tokens: int, n_bytes: int, root: Path | None = None) -> None:
    """A cached evaluation of ``run``'s current fingerprint that scored ``tokens`` tokens of a
    text of ``n_bytes`` bytes (one document), written by `sandbox.evaluation.run` itself."""
    from sandbox.evaluation import cache, metrics, results

    sums = metrics.DocSums(
        tokens=np.array([tokens]), nll=np.array([tokens * 3.0]), bytes=np.array([n_bytes]),
        hits=np.zeros((1, 1), dtype=np.int64),
    )  # fmt: skip
    result = results.RunResult(run_id=run.id, sums=sums, n_chars=n_bytes, windows=1)
    settings = results.EvalSettings(kmax=1, device="cpu")
    data_fp = f"fixture-{tokens}-{n_bytes}"
    key = cache.cache_key(run.id, run.fingerprint(), data_fp, settings)
    meta = {"run_fp": run.fingerprint(), "data_fp": data_fp, "settings": {}}
    assert cache.save_cached(key, result, root, meta) is None
