"""Cold start and warm latency of the experiment workers, per shipped run.

Cold = spawn the worker process + import torch and the experiment's code + load the run
(config, tokenizer, weights, one probe forward): the wait before a run's first answer.
Warm = one small request (encode + score of a window of up to 64 tokens) to a worker that has the run
loaded. Goal from the issue: cold <= 3 s on this machine's CPU.

    python bench/worker_start.py [--models-dir D] [--repeats N]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time

from sandbox.worker.client import WorkerClient  # noqa: E402
from sandbox.zoo.discovery import discover  # noqa: E402

GOAL_COLD_S = 3.0
# Kinds whose library is imported on start take longer: transformers alone takes seconds.
GOAL_BY_KIND = {"huggingface": 5.0}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models-dir", default=None)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    runs = [(exp, run) for exp in discover(args.models_dir) for run in exp.runs]
    if not runs:
        print("no runs found")
        return 1
    print(f"{'run':32} {'cold s (median)':>16} {'warm ms (median)':>17} {'cold/goal':>10}")
    worst = 0.0  # the largest cold/goal ratio
    for exp, run in runs:
        colds, warms = [], []
        for _ in range(args.repeats):
            client = WorkerClient(exp.root, args.device)
            t0 = time.perf_counter()
            info = client.request("info", run=run.name)
            colds.append(time.perf_counter() - t0)
            text = "Once upon a time there was a little fox. " * 8
            ids = client.request("encode", run=run.name, texts=[text])[0][: min(65, info["max_seq_len"] + 1)]
            for _ in range(10):
                t0 = time.perf_counter()
                client.request("score", run=run.name, windows=[ids[:-1]], targets=[ids[1:]])
                warms.append(time.perf_counter() - t0)
            client.close()
        cold, warm = statistics.median(colds), statistics.median(warms)
        goal = GOAL_BY_KIND.get(run.kind, GOAL_COLD_S)
        worst = max(worst, cold / goal)
        print(f"{run.id:32} {cold:16.2f} {warm * 1000:17.1f} {cold / goal:10.2f}")
    print(f"worst cold start against its goal ({GOAL_COLD_S:.0f} s; {GOAL_BY_KIND}): ratio {worst:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
