"""Five (and ten) sessions at once: each evaluates and generates on the shipped runs.

A LAN sandbox is used by several people at the same time, and they share one worker per
experiment (`pages.common.worker_pool`; the Playground adds lane pools for two runs of one
experiment). This bench runs N sessions at once and checks that all of them complete
without an error, that nothing deadlocks, and that the number of live workers stays within
the app's one cap on all pools together (`pages.common.MAX_WORKERS`); it prints the wall time of N sessions at once against one session alone.

Every phase is repeated (``--repeats``, alternating one session alone with N at once, so
that a change in the machine's load touches both) and the medians are compared. A session
does enough work (`DOCS_PER_SESSION` documents, `NEW_TOKENS` tokens per run) that one alone
takes a second or more: a baseline of a tenth of a second swung the ratio from 2.7x to 109x.
Goals (issue 15): N = 5 at once within 3x the wall time of one alone (throughput at least
1.67x), no session more than 2x the fastest, no error; every N without error and within the
worker cap.

Two ways to simulate a session (``--mode``):

- ``threads``: a thread per session does what the Evaluation and Playground pages do, with
  the same library calls and pools built by the app's own factories: the Playground's
  columns stream (`sandbox.playground.multistream`) while the session's evaluation runs. A monitor
  samples ``live_workers()`` of every pool and ``waiting`` (queue length) of every worker.
- ``browser``: one `streamlit run` server and N browser sessions (headless Debian Chromium),
  each with an Evaluation tab and a Playground tab; all buttons are pressed, then every tab
  is awaited. A monitor counts the server's worker processes.

Before timing, one untimed session starts the workers and loads the runs (cold starts are
bench/worker_start.py's business). Every session evaluates other documents (another sample
seed), so no result comes from the evaluation cache.

    python bench/concurrency.py [--sessions 5 10] [--repeats 3] [--mode threads|browser|both] [--models-dir D]
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
import sys
import threading
import time
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

from sandbox.evaluation import data, results  # noqa: E402
from sandbox.evaluation import run as evaluation_run  # noqa: E402
from sandbox.playground.settings import SamplingSettings  # noqa: E402
from sandbox.zoo.discovery import discover, find_experiment, find_run  # noqa: E402

PROMPT = "Once upon a time, a little fox"
NEW_TOKENS = 96
DOCS_PER_SESSION = 20
GOAL_WALL = 3.0  # N = 5 at once: at most this times the wall time of one session alone
GOAL_SPREAD = 2.0  # the slowest session of a phase: at most this times the fastest
SESSION_TIMEOUT = 600.0  # a session still running after this is reported as a deadlock


def pick_runs(models_dir: Path) -> list[str]:
    """Two trained runs, from two experiments when there are two."""
    runs = [run.id for exp in discover(models_dir) for run in exp.runs if run.weights.is_file()]
    firsts = list(dict.fromkeys(r.split("/")[0] for r in runs))
    picked = [next(r for r in runs if r.startswith(e + "/")) for e in firsts][:2]
    picked += [r for r in runs if r not in picked][: 2 - len(picked)]
    return picked


def sampling(seed: int) -> SamplingSettings:
    return SamplingSettings(
        temperature=0.8, top_k=0, top_p=0.95, min_p=0.0, max_new_tokens=NEW_TOKENS, seed=seed, stop_at_eos=False
    )


@dataclass
class Phase:
    """One timed phase: how many sessions, how long, what went wrong."""

    sessions: int
    seconds: float = 0.0
    errors: list[str] = field(default_factory=list)
    session_seconds: list[float] = field(default_factory=list)  # each session's own wall time
    cpu: float = float("nan")  # CPU seconds of the workers and this process (threads mode)

    @property
    def spread(self) -> float:
        """The slowest session's time over the fastest's (1.0 for one session)."""
        times = [t for t in self.session_seconds if t > 0]
        return max(times) / min(times) if times else float("nan")


# -- threads: the pages' library calls, in-process ------------------------------------------------


class PoolMonitor(threading.Thread):
    """Samples every pool's live workers and every worker's queue length until stopped."""

    def __init__(self, pools: dict[int, object]):
        super().__init__(daemon=True, name="pool-monitor")
        self.pools = pools
        self.stop_event = threading.Event()
        self.max_live: dict[int, int] = dict.fromkeys(pools, 0)
        self.max_total = 0
        self.max_waiting = 0
        self.samples = 0

    def run(self) -> None:
        while not self.stop_event.wait(0.02):
            total = 0
            for lane, pool in self.pools.items():
                with pool._lock:  # the pool's own lock: a consistent list of its clients
                    clients = list(pool._clients.values())
                live = sum(c.alive for c in clients)
                self.max_live[lane] = max(self.max_live[lane], live)
                total += live
                self.max_waiting = max([self.max_waiting, *(c.waiting for c in clients)])
            self.max_total = max(self.max_total, total)
            self.samples += 1


def thread_session(index: int, seed: int, pools: dict[int, object], models_dir: Path, runs: list[str],
                   docs: list[str], phase: Phase, t0: float) -> None:
    """One session: the Playground's columns stream while the Evaluation runs."""
    from sandbox.playground.columns import ColumnState, assign_lanes, column_events
    from sandbox.playground.multistream import MultiStream

    errors = phase.errors
    session = f"bench-session-{seed}"  # as the pages pass Streamlit's session id
    settings = sampling(seed)
    jobs, columns = {}, {}
    for run_id, lane in zip(runs, assign_lanes(runs), strict=True):
        run = find_run(models_dir, run_id)
        client = pools[lane].client(find_experiment(models_dir, run.experiment), session=session).for_session(session)
        jobs[run_id] = partial(column_events, client, run.name, PROMPT, settings)
        columns[run_id] = ColumnState(run_id, settings, started_at=time.perf_counter())
    with MultiStream(jobs) as streams:
        report = evaluation_run.evaluate(
            pools[0], runs, docs, results.EvalSettings(kmax=5), models_dir=models_dir, use_cache=False, session=session
        )
        for message in streams.drain(timeout=SESSION_TIMEOUT):
            columns[message.key].apply(message)
        if not streams.finished:
            errors.append(f"session {index}: a Playground column never ended")
    phase.session_seconds[index] = time.perf_counter() - t0
    for result in report.results:
        if not result.ok:
            errors.append(f"session {index}: evaluation of {result.run_id}: {result.error}")
    for run_id, column in columns.items():
        if column.status != "done" or column.n_tokens != NEW_TOKENS:
            errors.append(f"session {index}: generation of {run_id}: {column.status} {column.error}")


def cpu_seconds(pools: dict) -> dict[int, float]:
    """CPU seconds used so far by each live worker of ``pools`` and by this process (pid 0).

    On a machine others are using, wall time measures them too; CPU time says what the
    work itself cost (Linux schedstat: nanoseconds)."""
    used = {0: time.process_time()}
    for pool in pools.values():
        with pool._lock:
            pids = [c.pid for c in pool._clients.values() if c.alive and c.pid]
        for pid in pids:
            try:
                with open(f"/proc/{pid}/schedstat", encoding="ascii") as f:
                    used[pid] = int(f.read().split()[0]) / 1e9
            except (OSError, ValueError, IndexError):
                continue  # the worker stopped meanwhile
    return used


def run_threads(n: int, seeds: list[int], pools: dict, models_dir: Path, runs: list[str], corpus: list[str]) -> Phase:
    phase = Phase(n, session_seconds=[0.0] * n)
    before = cpu_seconds(pools)
    threads = []
    docs = [data.sample_documents(corpus, DOCS_PER_SESSION, seed) for seed in seeds]
    t0 = time.perf_counter()
    for i in range(n):
        args = (i, seeds[i], pools, models_dir, runs, docs[i], phase, t0)
        threads.append(threading.Thread(target=thread_session, args=args, name=f"session-{i}"))
        threads[-1].start()
    deadline = time.monotonic() + SESSION_TIMEOUT
    for thread in threads:
        thread.join(max(0.0, deadline - time.monotonic()))
    phase.seconds = time.perf_counter() - t0
    after = cpu_seconds(pools)
    phase.cpu = sum(used - before.get(pid, 0.0) for pid, used in after.items())
    stuck = [t.name for t in threads if t.is_alive()]
    if stuck:
        phase.errors.append(f"deadlock: {', '.join(stuck)} still running after {SESSION_TIMEOUT:.0f} s")
    return phase


def from_file(name: str, relative: str):
    """A module of the checkout loaded from its file: the app's `pages/` and the tests' browser
    driver sit beside the package, not in what `pip install` makes importable."""
    import importlib.util

    spec = importlib.util.spec_from_file_location(name, ROOT / relative)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses of the module look themselves up here
    spec.loader.exec_module(module)
    return module


def app_common():
    """The app's own pages/common.py (its pool factories and worker cap)."""
    return from_file("pages.common", "pages/common.py")


def phase_plan(sessions: list[int], repeats: int) -> list[tuple[int, list[int]]]:
    """(sessions, seeds) of each timed phase: per repeat one alone, then each N at once;
    every session of every phase evaluates other documents (its own seed)."""
    plan = []
    for r in range(repeats):
        for n in [1, *sessions]:
            plan.append((n, [100_000 * (r + 1) + 1000 * n + i for i in range(n)]))
    return plan


def bench_threads(sessions: list[int], repeats: int, models_dir: Path, runs: list[str]) -> tuple[list[Phase], list[str]]:
    from sandbox.urlstate.playground import MAX_RUNS

    common = app_common()

    # The app's own pools (process-wide, `pages.common.SHARED`): same limits as the app.
    pools = {0: common.worker_pool()}
    pools.update({lane: common.lane_pool(lane) for lane in range(1, MAX_RUNS)})
    corpus = data.load_documents("bundled")
    monitor = PoolMonitor(pools)
    monitor.start()
    try:
        # Warm-up, untimed: one session starts the workers and loads the runs; then the most
        # sessions at once start the replicas the pool adds under load (a replica loading
        # its runs inside the first timed phase made that phase 2-4x slower than the rest).
        run_threads(1, [1], pools, models_dir, runs, corpus)
        run_threads(max(sessions), [2 + i for i in range(max(sessions))], pools, models_dir, runs, corpus)
        phases = [run_threads(n, seeds, pools, models_dir, runs, corpus) for n, seeds in phase_plan(sessions, repeats)]
    finally:
        monitor.stop_event.set()
        monitor.join(5)
        for pool in pools.values():
            pool.close_all()
    notes = [
        f"live workers, most seen at once: {monitor.max_total} in all (limit {common.MAX_WORKERS}); "
        + ", ".join(f"{'main' if lane == 0 else f'lane {lane}'} {monitor.max_live[lane]}" for lane in pools),
        f"longest queue on one worker (waiting requests): {monitor.max_waiting}",
    ]
    if monitor.max_total > common.MAX_WORKERS:
        phases[-1].errors.append(f"{monitor.max_total} live workers, over the limit of {common.MAX_WORKERS}")
    if monitor.samples == 0:
        phases[-1].errors.append("the pool monitor took no sample")
    return phases, notes


# -- browser: N sessions against one server -------------------------------------------------------


class ProcessMonitor(threading.Thread):
    """Counts the worker processes (``-m sandbox.worker``) under a server process."""

    def __init__(self, server_pid: int):
        super().__init__(daemon=True, name="process-monitor")
        self.server_pid = server_pid
        self.stop_event = threading.Event()
        self.max_workers = 0

    def workers(self) -> int:
        parents, commands = {}, {}
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            try:
                with open(f"/proc/{entry}/stat", encoding="utf-8") as f:
                    parents[int(entry)] = int(f.read().rsplit(")", 1)[1].split()[1])
                with open(f"/proc/{entry}/cmdline", "rb") as f:
                    commands[int(entry)] = f.read().replace(b"\0", b" ")
            except (OSError, IndexError, ValueError):
                continue  # the process ended while it was being read
        count = 0
        for pid, command in commands.items():
            if b"sandbox.worker" not in command:
                continue
            parent = parents.get(pid)
            while parent and parent != self.server_pid:
                parent = parents.get(parent)
            count += parent == self.server_pid
        return count

    def run(self) -> None:
        while not self.stop_event.wait(0.2):
            self.max_workers = max(self.max_workers, self.workers())


def bench_browser(sessions: list[int], repeats: int, models_dir: Path, runs: list[str]) -> tuple[list[Phase], list[str]]:
    from playwright.sync_api import expect, sync_playwright

    common = app_common()
    drv = from_file("appdriver", "tests/browser/appdriver.py")

    limit = common.MAX_WORKERS  # one cap on the main pool and the Playground lanes together
    cache = Path(os.environ.get("TMPDIR", "/tmp")) / f"concurrency-bench-cache-{os.getpid()}"
    server = drv.start_server(
        app_args=["--models-dir", str(models_dir)],
        env={"SANDBOX_TOKEN": None, "SANDBOX_MODELS_DIR": None, "SANDBOX_CACHE_DIR": str(cache)},
        log_name="concurrency-bench-server",
    )
    monitor = ProcessMonitor(server.proc.pid)
    monitor.start()
    try:
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=str(drv.CHROMIUM), args=drv.CHROMIUM_ARGS)
            tabs = []  # (evaluation tab, playground tab) per session
            for _ in range(max(sessions)):
                context = browser.new_context(viewport={"width": 1400, "height": 1000})
                context.set_default_timeout(SESSION_TIMEOUT * 1000)
                tabs.append((context.new_page(), context.new_page()))
            drv.open_page(tabs[0][0], server.url())  # the app's own navigation from the start

            def done(tab, heading: bool) -> bool:
                """The tab's script has finished and shows its result (no waiting)."""
                if tab.locator(drv.APP_DONE).count() == 0:
                    return False
                if heading:
                    return drv.main(tab).get_by_role("heading", name="Results").count() > 0
                return "Done." in drv.main(tab).inner_text()

            def phase(count: int, seeds: list[int]) -> Phase:
                result = Phase(count, session_seconds=[0.0] * count)
                for i in range(count):
                    query = {"runs": runs, "docs": str(DOCS_PER_SESSION), "seed": str(seeds[i]), "k": ["1", "5"]}
                    drv.open_page(tabs[i][0], server.url("evaluation", query))
                    query = {"run": runs, "n": str(NEW_TOKENS), "seed": str(seeds[i]), "eos": "0"}
                    drv.open_page(tabs[i][1], server.url("playground", query))
                t0 = time.perf_counter()
                for evaluation, playground in tabs[:count]:
                    evaluation.get_by_role("button", name="Run", exact=True).click()
                    playground.get_by_role("button", name="Generate").click()
                # Each session's own time: when both its tabs are first seen finished.
                pending = set(range(count))
                time.sleep(0.5)  # the clicks' reruns start
                while pending and time.perf_counter() - t0 < SESSION_TIMEOUT:
                    for i in sorted(pending):
                        if done(tabs[i][0], heading=True) and done(tabs[i][1], heading=False):
                            result.session_seconds[i] = time.perf_counter() - t0
                            pending.discard(i)
                    time.sleep(0.1)
                result.seconds = time.perf_counter() - t0
                for i, (evaluation, playground) in enumerate(tabs[:count]):
                    drv.settle(evaluation, timeout_ms=int(SESSION_TIMEOUT * 1000))
                    drv.settle(playground, timeout_ms=int(SESSION_TIMEOUT * 1000))
                    expect(drv.main(evaluation).get_by_role("heading", name="Results")).to_be_visible()
                    expect(drv.main(playground)).to_contain_text("Done.")
                    for tab in (evaluation, playground):
                        result.errors += [f"session {i}: {p}" for p in drv.problems(tab)]
                    headers, rows = drv.table_rows(drv.main(evaluation).get_by_test_id("stDataFrame").first)
                    if [row[0] for row in rows] != runs:
                        result.errors.append(f"session {i}: results for {[row[0] for row in rows]}")
                    text = drv.main(playground).inner_text()
                    if text.count(f"{NEW_TOKENS} tokens") < len(runs):
                        result.errors.append(f"session {i}: not every column wrote {NEW_TOKENS} tokens")
                return result

            phase(1, [1])  # warm-up, untimed: workers started, runs loaded
            phase(min(sessions), [2 + i for i in range(min(sessions))])  # and the replicas added under load
            phases = [phase(n, seeds) for n, seeds in phase_plan(sessions, repeats)]
            browser.close()
    finally:
        monitor.stop_event.set()
        monitor.join(5)
        server.stop()
    notes = [f"worker processes of the server, most seen at once: {monitor.max_workers} (limit {limit})"]
    if monitor.max_workers > limit:
        phases[-1].errors.append(f"{monitor.max_workers} worker processes, over the limit of {limit}")
    return phases, notes


# -- report ---------------------------------------------------------------------------------


def report(mode: str, runs: list[str], phases: list[Phase], notes: list[str]) -> bool:
    """Print one mode's medians and goals; True when every goal is met."""
    counts = sorted({p.sessions for p in phases})
    by_n = {n: [p for p in phases if p.sessions == n] for n in counts}
    alone = statistics.median(p.seconds for p in by_n[1])
    load = os.getloadavg()
    print(f"\n[{mode}] runs: {', '.join(runs)}; each session evaluates {DOCS_PER_SESSION} documents "
          f"and generates {NEW_TOKENS} tokens per run at the same time; medians of {len(by_n[1])} repeats; "
          f"load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} at the end")
    print(f"  {'sessions':>8} {'wall s':>8} {'x alone':>8} {'throughput':>10} {'slowest/fastest':>15} {'errors':>7} {'CPU s':>7}  each repeat's wall s")
    ok = True
    for n in counts:
        wall = statistics.median(p.seconds for p in by_n[n])
        spread = statistics.median(p.spread for p in by_n[n])
        errors = sum(len(p.errors) for p in by_n[n])
        ratio = wall / alone if alone else float("nan")
        cpu = statistics.median(p.cpu for p in by_n[n])
        print(f"  {n:8d} {wall:8.2f} {ratio:8.2f} {n / ratio:9.2f}x {spread:15.2f} {errors:7d} {cpu:7.2f}  "
              + " ".join(f"{p.seconds:.2f}" for p in by_n[n]))
        if n > 1 and not math.isnan(cpu):  # threads mode measures CPU time: what the work cost bounds the wall time
            floor = cpu / (os.cpu_count() or 1) / alone
            print(f"  {'':8} the CPU time of {n} sessions spread over all {os.cpu_count()} cores would still take "
                  f"{floor:.2f}x one alone ({cpu / statistics.median(p.cpu for p in by_n[1]):.1f}x its CPU time)")
        if n == 5:
            met = ratio <= GOAL_WALL and spread <= GOAL_SPREAD and not errors
            print(f"  goal for 5 at once: <= {GOAL_WALL}x the wall time, slowest <= {GOAL_SPREAD}x the fastest, "
                  f"0 errors: {'met' if met else 'NOT met'}")
            ok &= met
    for note in notes:
        print(f"  {note}")
    for phase in phases:
        for error in phase.errors:
            print(f"  ERROR ({phase.sessions} sessions) {error}")
            ok = False
    return ok


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sessions", type=int, nargs="+", default=[5, 10], help="sessions at once (each N is a phase)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--mode", choices=("threads", "browser", "both"), default="both")
    parser.add_argument("--models-dir", type=Path, default=ROOT / "models")
    args = parser.parse_args()
    models_dir = args.models_dir.resolve()
    runs = pick_runs(models_dir)
    if len(runs) < 2:
        print(f"needs two trained runs under {models_dir}; found {runs}")
        return 1
    ok = True
    if args.mode in ("threads", "both"):
        ok &= report("threads", runs, *bench_threads(args.sessions, args.repeats, models_dir, runs))
    if args.mode in ("browser", "both"):
        chromium = from_file("appdriver", "tests/browser/appdriver.py").CHROMIUM
        if not chromium.exists():
            print(f"\n[browser] skipped: {chromium} is missing (apt-get install chromium)")
        else:
            ok &= report("browser", runs, *bench_browser(args.sessions, args.repeats, models_dir, runs))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
