"""The sandbox's evaluation path against a bare in-process loop, measured in the same run.

Sandbox: `sandbox.evaluation.run.evaluate_run` through the run's worker process (tokenize with
bos, round-trip check, windows, streamed scoring, per-document and per-position sums); the
worker is started and the run loaded before timing.
Bare: a subprocess with only this experiment on ``sys.path`` loads the same model the way
its own codebase does (`bare_model`: the contract for the template, nanoGPT's ``model.py``
and its forward with targets for all logits, ``transformers`` for a Hugging Face folder, the
adapter's functions) and runs the same windows in the same batches (same batch size) under
``torch.inference_mode``, computing the same NLL and rank per position; nothing else. Any
kind: ``--run nanogpt/out-char --models-dir D``.

The two alternate, ``--repeats`` times each; the best time of each is compared (the machine
may be shared, and the best run is the least disturbed). Both sides get the same number of
torch threads (``--threads``, default 1: on a busy 2-core machine two spinning OpenMP threads
per process make timings swing tenfold; 0 keeps torch's default). Goal: sandbox <= 1.10x
bare on CPU. The total NLL of both must agree, or the comparison is void.

    python bench/eval.py [--run template/gpt2_atto] [--docs 100] [--repeats 7] [--threads 1]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

GOAL = 1.10


def bare_model(root: Path, run: str, kind: str, device: str):
    """``(encode with the start token, logits of a batch, batch cap)`` of one run, built the
    way its own codebase builds it, with none of the sandbox's loaders (its kinds' modules)."""
    import importlib
    import pickle

    import torch

    if kind == "nanogpt":
        module = importlib.import_module("model")
        ckpt = torch.load(root / run / "ckpt.pt", map_location="cpu", weights_only=True)
        model = module.GPT(module.GPTConfig(**ckpt["model_args"]))
        model.load_state_dict({k.removeprefix("_orig_mod."): v for k, v in ckpt["model"].items()})
        model.to(device).eval()
        with open(root / "data" / ckpt["config"]["dataset"] / "meta.pkl", "rb") as f:
            stoi = pickle.load(f)["stoi"]
        space = stoi.get(" ", 0)
        # its own forward gives every position's logits when given targets (no dropout in eval)
        return (lambda d: [stoi["\n"]] + [stoi.get(c, space) for c in d]), (lambda x: model(x, targets=x)[0]), None
    if kind == "huggingface":
        from transformers import AutoModelForCausalLM, AutoTokenizer

        folder = root if run == "final" else root / run
        model = AutoModelForCausalLM.from_pretrained(folder, local_files_only=True, dtype=torch.float32).to(device).eval()
        tok = AutoTokenizer.from_pretrained(folder, local_files_only=True)
        start = tok.bos_token_id if tok.bos_token_id is not None else tok.eos_token_id
        return (lambda d: [start] + tok(d, add_special_tokens=False)["input_ids"]), (lambda x: model(input_ids=x, use_cache=False).logits), None
    if kind == "adapter":
        module = importlib.import_module("sandbox_adapter")
        folders = [p for p in sorted(root.glob(getattr(module, "RUNS", "trained/*"))) if p.name == run] or [root]
        model, tok = module.load(str(folders[0]), device)
        model.to(device).eval()
        return (lambda d: [tok.bos_id] + list(tok.encode(d))), (lambda x: module.logits(model, x)), None
    from sandbox.worker.kinds.template import defines_load_model, import_tools

    if defines_load_model(root / "tools.py"):  # the template's own loader, as its comparison code uses it
        model, tokenizer, cfg = import_tools()[0].load_model(run, device=device)
    else:
        config = importlib.import_module("config")
        cfg = config.ModelConfig(**json.loads((root / "trained" / run / "model_config.json").read_text()))
        if hasattr(cfg, "device"):
            cfg.device = device
        tokenizer = importlib.import_module(f"tokenizers.{cfg.tokenizer}.tokenizer").get_tokenizer(size=cfg.vocab_len)
        model = importlib.import_module("modules.model").Model(cfg)
        model.load_state_dict(torch.load(root / "trained" / run / "model.pth", map_location="cpu", weights_only=True))
    model.to(device).eval()
    import inspect

    extra = {"cache_len": 0} if "cache_len" in inspect.signature(model.forward).parameters else {}

    def template_logits(x):
        out = model(x, **extra)
        return out[0] if isinstance(out, (tuple, list)) else out

    return (lambda d: tokenizer.encode(d, bos=True, eos=False)), template_logits, getattr(cfg, "max_batch_size", None)


def bare_child(root: Path, run: str, kind: str, docs_file: Path, max_len: int, batch_size: int, device: str) -> None:
    """In a fresh process: load one run in-process and time the plain scoring loop."""
    import torch

    from sandbox.evaluation.windows import make_windows
    from sandbox.worker.host import enter_experiment
    from sandbox.worker.scoring import batches_by_length, position_stats

    enter_experiment(root)
    encode, logits_of, cap = bare_model(root, run, kind, device)
    docs = json.loads(docs_file.read_text())
    size = min(batch_size, cap or batch_size)

    def once() -> tuple[float, float, float, int]:
        t0, c0 = time.perf_counter(), time.process_time()
        ids = [encode(d) for d in docs]
        w = make_windows(ids, max_len)
        total, count = 0.0, 0
        with torch.inference_mode():
            for group in batches_by_length([len(x) for x in w.inputs], size):
                x = torch.tensor([w.inputs[i] for i in group], dtype=torch.long, device=device)
                y = torch.tensor([w.targets[i] for i in group], dtype=torch.long, device=device)
                nll, rank = position_stats(logits_of(x), y)
                nll, rank = nll.cpu().numpy(), rank.cpu().numpy()
                total += float(nll.sum(dtype="float64"))
                count += nll.size
        return time.perf_counter() - t0, time.process_time() - c0, total, count

    once()  # warm-up, as the sandbox's worker is warm
    seconds, cpu, total, count = once()
    print(json.dumps({"seconds": seconds, "cpu": cpu, "nll": total, "tokens": count}))


def process_cpu(pid: int) -> float:
    """CPU seconds (user + system, all threads) a process has used so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run_bare(root: Path, run: str, kind: str, docs_file: Path, max_len: int, batch_size: int, device: str) -> dict:
    cmd = [sys.executable, __file__, "--bare-child", str(root), run, kind, str(docs_file), str(max_len), str(batch_size), device]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True, cwd=root)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> int:
    if len(sys.argv) > 1 and sys.argv[1] == "--bare-child":
        root, run, kind, docs_file, max_len, batch, device = sys.argv[2:9]
        bare_child(Path(root), run, kind, Path(docs_file), int(max_len), int(batch), device)
        return 0
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--run", default="template/gpt2_atto", help="EXPERIMENT/RUN")
    parser.add_argument("--docs", type=int, default=100)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--threads", type=int, default=1, help="torch threads on both sides (0: default)")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--models-dir", default=None)
    args = parser.parse_args()
    if args.threads > 0:  # inherited by the worker and by the bare child alike
        os.environ["OMP_NUM_THREADS"] = os.environ["MKL_NUM_THREADS"] = str(args.threads)

    import tempfile

    from sandbox.evaluation import results
    from sandbox.evaluation import run as evaluation_run
    from sandbox.evaluation.data import data_fingerprint, load_documents, sample_documents
    from sandbox.worker.pool import WorkerPool
    from sandbox.zoo.discovery import find_experiment, find_run

    run = find_run(args.models_dir, args.run)
    exp = find_experiment(args.models_dir, run.experiment)
    docs = sample_documents(load_documents("bundled"), args.docs, seed=0)
    settings = results.EvalSettings(batch_size=args.batch_size, device=args.device)
    pool = WorkerPool(device=args.device)
    try:
        client = pool.client(exp)
        info = client.request("info", run=run.name)
        common = {"run_fp": run.fingerprint(), "data_fp": data_fingerprint(docs), "use_cache": False}
        with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
            json.dump(docs, f)
        sandbox_s, bare_s, sandbox_cpu, bare_cpu = [], [], [], []
        for _ in range(args.repeats):
            # Warm up right before timing, as the bare child does (the child in between evicts caches).
            evaluation_run.evaluate_run(client, run, docs, settings, **common)
            w0, t0, c0 = process_cpu(client.pid), time.perf_counter(), time.process_time()
            result = evaluation_run.evaluate_run(client, run, docs, settings, **common)
            sandbox_s.append(time.perf_counter() - t0)
            sandbox_cpu.append(time.process_time() - c0 + process_cpu(client.pid) - w0)
            bare = run_bare(exp.root, run.name, run.kind, Path(f.name), int(info["max_seq_len"]), args.batch_size, args.device)
            bare_s.append(bare["seconds"])
            bare_cpu.append(bare["cpu"])
        os.unlink(f.name)
    finally:
        pool.close_all()

    tokens = result.tokens
    if tokens != bare["tokens"] or abs(result.sums.nll.sum() - bare["nll"]) > 1e-3 * max(1.0, bare["nll"]):
        print(f"MISMATCH: sandbox {tokens} tokens, NLL {result.sums.nll.sum():.4f}; bare {bare['tokens']}, {bare['nll']:.4f}")
        return 1
    best_s, best_b = min(sandbox_s), min(bare_s)
    threads = args.threads or "default"
    print(f"{args.run}: {len(docs)} documents, {tokens:,} tokens, {result.windows} windows, "
          f"batch {args.batch_size}, {args.device}, torch threads {threads}")
    print(f"{'':10} {'best s':>8} {'median s':>9} {'tokens/s':>10} {'best CPU s':>11}")
    for name, wall, cpu in (("sandbox", sandbox_s, sandbox_cpu), ("bare", bare_s, bare_cpu)):
        print(f"{name:10} {min(wall):8.3f} {statistics.median(wall):9.3f} {tokens / min(wall):10,.0f} {min(cpu):11.3f}")
    ratio = best_s / best_b
    print(f"CPU-time ratio sandbox (app + worker) / bare: {min(sandbox_cpu) / min(bare_cpu):.3f} (robust to a busy machine)")
    print(f"ratio sandbox/bare (best wall time): {ratio:.3f} (goal <= {GOAL:.2f}) {'ok' if ratio <= GOAL else 'ABOVE GOAL'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
