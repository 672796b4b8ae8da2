"""A zoo for the Compare page, the `compare`/`fit` commands and their screenshots.

Two experiments with different tokenizers (characters, greedy pieces), four runs each, whose
logs end at losses on known power laws of their training compute: the pieces group follows
L = 1.5 + 60·C^(−0.2), the character group L = 1.5 + 90·C^(−0.2), so at any loss the
character group needs (90/60)^(1/0.2) ≈ 7.6 times the compute. Sizes (non-embedding
parameters) are recorded as a worker would record them, per run fingerprint, under the
cache folder (set ``SANDBOX_CACHE_DIR`` first); a worker loading a run later writes its
real count instead.
"""

from __future__ import annotations

import json
from pathlib import Path

import toyzoo

from sandbox.zoo import accounting
from sandbox.zoo.discovery import find_run

RUNS = ("r1", "r2", "r3", "r4")
SIZES = (2_000, 8_000, 32_000, 128_000)  # non-embedding parameters, recorded per run
LAWS = {"toy_a": (1.5, 90.0, 0.2), "toy_pieces": (1.5, 60.0, 0.2)}  # E, A, alpha
STEPS = 40  # log rows (every 10 steps)


def _with_layers(root: Path) -> None:
    """Give the toy a layer count (real configs have one), so its FLOPs per token are known."""
    config = root / "config.py"
    config.write_text(config.read_text().replace("    dim: int = 16\n", "    dim: int = 16\n    n_layers: int = 1\n"))
    for cfg_path in root.glob("trained/*/model_config.json"):
        cfg_path.write_text(json.dumps(json.loads(cfg_path.read_text()) | {"n_layers": 1}))


def make_compare_zoo(models: Path) -> Path:
    """The zoo (see the module docstring); returns ``models``."""
    toyzoo.make_toy_a(models, runs=RUNS)
    toyzoo.make_toy_pieces(models, runs=RUNS)
    for experiment, (e, a, alpha) in LAWS.items():
        root = models / experiment
        _with_layers(root)
        for run_name, size in zip(RUNS, SIZES, strict=True):
            run_dir = root / "trained" / run_name
            (run_dir / "train_config.json").write_text(json.dumps({"batch_size": 4, "gradient_accumulation_steps": 2}))
            run = find_run(models, f"{experiment}/{run_name}")
            per_step, _ = accounting.tokens_per_step(run)
            per_token = accounting.training_flops_per_token(size, run.model_config())
            rows = []
            for i in range(1, STEPS + 1):
                step = 10 * i
                compute = per_token * per_step * step
                val = e + a * compute ** (-alpha)
                rows.append(f"{step},{step * 0.5},1000,{val + 0.05:.6f},{val:.6f},2.7,0.001,0.5\n")
            (run_dir / "log_data.csv").write_text(toyzoo.LOG_A + "".join(rows))
    record_sizes(models)
    return models


def record_sizes(models: Path) -> None:
    """Record the zoo's sizes again (a worker that loaded a run recorded its real count)."""
    for experiment in LAWS:
        for run_name, size in zip(RUNS, SIZES, strict=True):
            run = find_run(models, f"{experiment}/{run_name}")
            accounting.store_breakdown(run, {"total": size + 1_000, "non_embedding": size, "embedding": 1_000})
