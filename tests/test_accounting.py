"""Parameter and compute accounting, and the code diff between experiments."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
import torch
import toyzoo
from torch import nn

from sandbox.errors import UnknownRunError
from sandbox.worker.params import parameter_breakdown
from sandbox.zoo import accounting
from sandbox.zoo.codediff import default_base, diff_experiments
from sandbox.zoo.discovery import discover, find_experiment

ROOT = toyzoo.Path(toyzoo.__file__).resolve().parent.parent


class TinyGPT(nn.Module):
    """nanoGPT's shape in miniature, with the head tied to the token embedding."""

    def __init__(self, vocab=50, dim=8, layers=2, context=16, tie=True):
        super().__init__()
        self.wte = nn.Embedding(vocab, dim)
        self.wpe = nn.Embedding(context, dim)
        self.blocks = nn.ModuleList(
            nn.ModuleDict(
                {
                    "ln_1": nn.LayerNorm(dim),
                    "attn": nn.Linear(dim, 3 * dim),
                    "ln_2": nn.LayerNorm(dim),
                    "mlp": nn.Sequential(nn.Linear(dim, 4 * dim), nn.GELU(), nn.Linear(4 * dim, dim)),
                }
            )
            for _ in range(layers)
        )
        self.ln_f = nn.LayerNorm(dim)
        self.lm_head = nn.Linear(dim, vocab, bias=False)
        if tie:
            self.lm_head.weight = self.wte.weight


@pytest.mark.parametrize("tie", [True, False])
def test_breakdown_sums_to_total_with_tied_weights_once(tie):
    model = TinyGPT(tie=tie)
    b = parameter_breakdown(model)
    unique = sum(p.numel() for p in model.parameters())  # parameters() yields a shared tensor once
    assert b["total"] == unique == sum(b["parts"].values())
    assert b["embedding"] == 50 * 8 + 16 * 8
    assert b["non_embedding"] == b["total"] - b["embedding"]
    assert b["tied_head"] is tie
    assert b["parts"].get("output head", 0) == (0 if tie else 50 * 8)
    assert b["parts"]["attention"] == 2 * (8 * 24 + 24)
    assert b["parts"]["mlp"] == 2 * (8 * 32 + 32 + 32 * 8 + 8)
    assert b["parts"]["norms"] == 5 * 16


def test_worker_params_match_the_loaded_model(toy_models, pool):
    client = pool.client(find_experiment(toy_models, "toy_a"))
    b = client.request("params", run="run1")
    assert b["total"] == client.request("info", run="run1")["n_params"] == 1424
    assert b["parts"]["output head"] == 36 * 16


def test_flops_follow_the_formula_on_a_known_config():
    cfg = {"n_layers": 4, "dim": 128, "max_seq_len": 256}
    n = 800_000
    assert accounting.training_flops_per_token(n, cfg) == 6 * n + 12 * 4 * 256 * 128
    assert accounting.inference_flops_per_token(n, cfg) == 2 * n + 2 * 4 * 256 * 128
    assert accounting.training_compute(n, cfg, 1e6) == (6 * n + 12 * 4 * 256 * 128) * 1e6
    assert accounting.training_compute(n, cfg, None) is None
    assert accounting.training_flops_per_token(n, {"dim": 128}) is None  # shape unknown: no guess
    assert accounting.shape_of({"n_layer": 2, "n_embd": 64, "block_size": 32}) == (2, 64, 32)


def test_diff_against_itself_is_empty(toy_models):
    exp = find_experiment(toy_models, "toy_a")
    diffs = diff_experiments(exp, exp)
    assert diffs and all(d.status == "unchanged" and not d.diff for d in diffs)
    assert {d.path for d in diffs} >= {"config.py", "modules/model.py", "modules/layers.py", "tokenizers/char/tokenizer.py"}


def test_diff_shows_exactly_the_changed_hunk(tmp_path):
    base = toyzoo.make_toy_a(tmp_path, name="base")
    fork = toyzoo.copy_experiment(base, tmp_path, "fork")
    layers = fork / "modules/layers.py"
    layers.write_text(layers.read_text().replace("return x + torch.tanh(self.proj(total / count))", "return x + torch.relu(self.proj(total / count))"))
    (fork / "README.md").write_text("A variant, forked from base.\n")
    exps = discover(tmp_path)
    diffs = {d.path: d for d in diff_experiments(find_experiment(tmp_path, "base"), find_experiment(tmp_path, "fork"))}
    changed = [d for d in diffs.values() if d.status == "changed"]
    assert [d.path for d in changed] == ["modules/layers.py"]
    d = changed[0]
    assert (d.added, d.removed) == (1, 1)
    assert "-        return x + torch.tanh(self.proj(total / count))" in d.diff
    assert "+        return x + torch.relu(self.proj(total / count))" in d.diff
    assert d.diff.count("\n@@ -") == 1  # exactly one hunk
    assert all(x.status == "unchanged" for p, x in diffs.items() if p != "modules/layers.py")
    assert default_base(find_experiment(tmp_path, "fork"), exps).name == "base"


def test_diff_never_leaves_the_models_dir(tmp_path):
    toyzoo.make_toy_a(tmp_path / "models", name="a")
    secret = tmp_path / "secret.py"
    secret.write_text("TOKEN = 'x'\n")
    os.symlink(secret, tmp_path / "models/a/modules/leak.py")
    for name in ("../secret", "/etc", "a/../../secret", "a/modules"):
        with pytest.raises(UnknownRunError):
            find_experiment(tmp_path / "models", name)
    exp = find_experiment(tmp_path / "models", "a")
    leak = {d.path: d for d in diff_experiments(exp, exp)}["modules/leak.py"]  # reported, not read
    assert leak.status == "outside the models directory" and "TOKEN" not in leak.diff


def test_cli_params_and_diff(toy_models, tmp_path):
    env = {**os.environ, "SANDBOX_DEVICE": "cpu"}
    out = subprocess.run(
        [sys.executable, "-m", "sandbox", "params", "--run", "toy_a/run1", "--models-dir", str(toy_models), "--json"],
        capture_output=True, text=True, cwd=ROOT, env=env, timeout=300,
    )
    assert out.returncode == 0, out.stderr
    import json

    data = json.loads(out.stdout)
    assert data["params"]["total"] == 1424 and data["compute"]["train_flops_per_token"] is None
    diff = subprocess.run(
        [sys.executable, "-m", "sandbox", "diff", "toy_a", "toy_b", "--models-dir", str(toy_models)],
        capture_output=True, text=True, cwd=ROOT, timeout=300,
    )
    assert diff.returncode == 0, diff.stderr
    assert "modules/model.py: changed" in diff.stdout and "+++ toy_b/modules/model.py" in diff.stdout
    bad = subprocess.run(
        [sys.executable, "-m", "sandbox", "diff", "toy_a", "../etc", "--models-dir", str(toy_models)],
        capture_output=True, text=True, cwd=ROOT, timeout=300,
    )
    assert bad.returncode == 2 and "no experiment called '../etc'" in bad.stderr
    torch.manual_seed(0)
