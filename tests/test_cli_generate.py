"""`python -m sandbox generate` in a subprocess, against the same generation through a worker."""

from __future__ import annotations

import subprocess
import sys

from sandbox.settings import PROJECT_ROOT
from sandbox.zoo.discovery import find_experiment


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "sandbox", "generate", *args],
        capture_output=True,
        text=True,
        timeout=180,
        cwd=PROJECT_ROOT,
    )


def test_generate_prints_the_continuation(toy_models, pool):
    out = run_cli(
        "--run", "toy_b/cached", "--prompt", "the fox", "--max-new-tokens", "25", "--seed", "4",
        "--temperature", "0.9", "--top-k", "10", "--top-p", "0.9", "--min-p", "0.01",
        "--models-dir", str(toy_models),
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    # The same settings through a worker give the same text: the CLI printed all of it.
    client = pool.client(find_experiment(toy_models, "toy_b"))
    prompt = client.request("encode", run="cached", texts=["the fox"])[0]
    settings = {"temperature": 0.9, "top_k": 10, "top_p": 0.9, "min_p": 0.01, "max_new_tokens": 25, "seed": 4}
    events = client.request("generate", run="cached", prompt_ids=prompt, settings=settings)
    assert events[-2]["text"] and out.stdout == events[-2]["text"] + "\n"
    assert "toy_b/cached:" in out.stderr and "tokens in" in out.stderr


def test_generate_reports_bad_input(toy_models):
    out = run_cli("--run", "toy_a/run1", "--prompt", "Hello", "--max-new-tokens", "5000", "--temperature", "0", "--models-dir", str(toy_models))
    assert out.returncode == 0 and out.stdout.strip()
    assert "using 1024" in out.stderr and "'H' (U+0048)" in out.stderr
    out = run_cli("--run", "../toy_a/run1", "--models-dir", str(toy_models))
    assert out.returncode == 2 and "no run called '../toy_a/run1'" in out.stderr
    out = run_cli("--run", "toy_a/run1", "--top-p", "0", "--models-dir", str(toy_models))
    assert out.returncode == 2 and "top_p" in out.stderr
