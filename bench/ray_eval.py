"""The cost of Ray on one node: evaluating 4 runs of 2 experiments through Ray actors vs the local pool.

Both sides evaluate the same runs on the same documents with `evaluate_parallel` (one thread
per experiment, each experiment's runs one after another on its worker), in this process:
the local side through `sandbox.worker.pool.WorkerPool` (a worker process per experiment), the
Ray side through `sandbox.worker.ray.pool.RayWorkerPool` on a single-node Ray cluster started here
(127.0.0.1, 2 CPUs, one CPU per actor, no dashboard, no usage stats, token authentication
with a throw-away token). The runs: the shipped zoo's 3 runs of 2 experiments, plus a 4th
made by copying ``kv_variant/gqa_atto`` in a temporary models folder.

Workers and actors are started, and every run loaded, before timing; then the two sides
alternate ``--repeats`` times and the best time of each is compared (the machine may be
shared; the best run is the least disturbed). Both get the same number of torch threads
(``--threads``, default 1). The per-run NLL of both must agree (1e-6), or the comparison is
void. Goal: Ray / local <= 1.3. Also printed: the time to start a worker (cold), each way.

    python bench/ray_eval.py [--docs 40] [--repeats 3] [--threads 1]
"""

from __future__ import annotations

import argparse
import os
import secrets
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

GOAL = 1.3


def make_zoo(models: Path) -> list[str]:
    """The shipped experiments in ``models`` plus a copy of one run: 4 runs of 2 experiments."""
    for name in ("template", "kv_variant"):
        shutil.copytree(ROOT / "models" / name, models / name, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(models / "kv_variant/trained/gqa_atto", models / "kv_variant/trained/gqa_atto_copy")
    return ["template/gpt2_atto", "template/llama_atto", "kv_variant/gqa_atto", "kv_variant/gqa_atto_copy"]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--docs", type=int, default=40)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1, help="torch threads in every worker (0: default)")
    parser.add_argument("--batch-size", type=int, default=8)
    args = parser.parse_args()
    try:
        import importlib.util

        if importlib.util.find_spec("ray") is None:
            raise ImportError
    except ImportError:
        print("ray_eval: skipped, ray is not installed (pip install -r requirements-ray.txt)")
        return 0
    if args.threads > 0:  # inherited by the local workers, the Ray node and its actors' workers
        os.environ["OMP_NUM_THREADS"] = os.environ["MKL_NUM_THREADS"] = str(args.threads)
    # Set before Ray is imported: no usage stats, a throw-away token (nothing written to ~/.ray),
    # and the node on 127.0.0.1 (Ray otherwise looks up the machine's routable address).
    os.environ.update(
        RAY_USAGE_STATS_ENABLED="0", RAY_AUTH_MODE="token", RAY_AUTH_TOKEN=secrets.token_hex(16),
        RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER="0", SANDBOX_RAY_CPUS_PER_ACTOR="1",
    )  # fmt: skip
    import numpy as np
    import ray

    from sandbox.evaluation.data import load_documents, sample_documents
    from sandbox.evaluation.parallel import evaluate_parallel
    from sandbox.evaluation.report import Report
    from sandbox.evaluation.results import EvalSettings
    from sandbox.worker.backends import make_pool
    from sandbox.worker.pool import WorkerPool
    from sandbox.zoo.discovery import find_experiment

    work = Path(tempfile.mkdtemp(prefix="ray-eval-"))
    models = work / "models"
    run_ids = make_zoo(models)
    docs = sample_documents(load_documents("bundled"), args.docs, seed=0)
    settings = EvalSettings(batch_size=args.batch_size, device="cpu")
    os.environ["SANDBOX_CACHE_DIR"] = str(work / "cache")

    t0 = time.perf_counter()
    ray.init(address="local", num_cpus=2, num_gpus=0, include_dashboard=False, log_to_driver=False,
             _temp_dir=str(work / "ray"), logging_level="WARNING")  # fmt: skip
    cluster_s = time.perf_counter() - t0
    local = WorkerPool(max_workers=4, device="cpu", timeout=600)
    remote = make_pool("auto", max_workers=4, device="cpu", timeout=600)
    try:
        starts: dict[str, list[float]] = {"local": [], "ray": []}
        for name in ("template", "kv_variant"):
            for side, pool in (("local", local), ("ray", remote)):
                t0 = time.perf_counter()
                pool.client(find_experiment(models, name)).request("ping")
                starts[side].append(time.perf_counter() - t0)

        def once(pool) -> tuple[float, Report]:
            t0 = time.perf_counter()
            report = evaluate_parallel(pool, run_ids, docs, settings, models_dir=models, use_cache=False)
            return time.perf_counter() - t0, report

        once(local), once(remote)  # load every run on both sides
        times: dict[str, list[float]] = {"local": [], "ray": []}
        for _ in range(args.repeats):
            for side, pool in (("local", local), ("ray", remote)):
                seconds, report = once(pool)
                times[side].append(seconds)
                if side == "local":
                    local_report = report
                else:
                    ray_report = report
    finally:
        remote.close_all()
        local.close_all()
        ray.shutdown()
        shutil.rmtree(work, ignore_errors=True)

    for a, b in zip(local_report.results, ray_report.results, strict=True):
        if not (a.ok and b.ok) or abs(float(a.sums.nll.sum()) - float(b.sums.nll.sum())) > 1e-6 * max(1.0, float(a.sums.nll.sum())):
            print(f"MISMATCH on {a.run_id}: local {a.error or a.sums.nll.sum()}, Ray {b.error or b.sums.nll.sum()}")
            return 1
        if not np.array_equal(a.sums.hits, b.sums.hits):
            print(f"MISMATCH on {a.run_id}: top-k hits differ")
            return 1
    tokens = sum(r.tokens for r in local_report.results)
    threads = args.threads or "default"
    print(f"{len(run_ids)} runs of 2 experiments, {len(docs)} documents, {tokens:,} tokens scored, batch "
          f"{args.batch_size}, cpu, torch threads {threads}; numbers equal on both sides")  # fmt: skip
    print(f"{'':8} {'best s':>8} {'median s':>9} {'tokens/s':>10} {'worker start s':>15}")
    for side in ("local", "ray"):
        best, median = min(times[side]), statistics.median(times[side])
        print(f"{side:8} {best:8.3f} {median:9.3f} {tokens / best:10,.0f} {statistics.mean(starts[side]):15.2f}")
    print(f"Ray cluster start (ray.init, once per app): {cluster_s:.1f} s")
    ratio = min(times["ray"]) / min(times["local"])
    print(f"ratio Ray/local (best wall time): {ratio:.3f} (goal <= {GOAL:.2f}) {'ok' if ratio <= GOAL else 'ABOVE GOAL'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
