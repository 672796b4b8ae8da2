"""A real single-node Ray cluster on 127.0.0.1 for the tests, and proof that it left nothing.

`start_head` runs ``ray start --head --block`` in its own process group with bounded CPUs, no
GPUs, no dashboard, no usage stats, token authentication on (a fresh random token, given to
the head and to this process by environment: nothing is written to ~/.ray) and its own temp
folder, so every process it starts can be found again by that folder in its command line.
``RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0`` keeps Ray from looking up a routable address: the
node is 127.0.0.1 and nothing listens or connects beyond it.
"""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

DRIVER_ENV = {
    "RAY_USAGE_STATS_ENABLED": "0",
    "RAY_AUTH_MODE": "token",
}
MARKER_ENV = "SANDBOX_TEST_RAY_HEAD"
TOKEN = secrets.token_hex(16)  # this test process's token (set before Ray is imported)


@dataclass
class Head:
    address: str
    token: str
    temp: Path
    proc: subprocess.Popen
    log: Path


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def processes_of(marker: str) -> list[str]:
    """The processes on this machine that carry ``marker`` in their environment or command line.

    A head started here carries its own marker (`MARKER_ENV`) and passes its environment down
    to everything it starts: its daemons, the Ray workers hosting actors (which Ray renames,
    "ray::ExperimentActor", and starts in sessions of their own) and the experiments' worker
    processes those start.
    """
    found = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit() or int(pid) == os.getpid():
            continue
        try:
            cmd = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            env = Path(f"/proc/{pid}/environ").read_bytes()
        except OSError:
            continue
        if marker in cmd or f"{MARKER_ENV}={marker}".encode() in env:
            found.append(f"{pid}: {cmd[:200]}")
    return found


def loopback_driver():
    """Make this process, as a Ray driver, keep 127.0.0.1 as the head's address (Ray otherwise
    swaps a loopback address for the machine's routable one, where this head does not listen).
    Returns the function that undoes it."""
    from ray._private import ray_constants

    before = ray_constants.ENABLE_RAY_CLUSTER
    ray_constants.ENABLE_RAY_CLUSTER = False

    def undo() -> None:
        ray_constants.ENABLE_RAY_CLUSTER = before

    return undo


def start_head(num_cpus: int = 2, token: str = TOKEN) -> Head:
    """Start the head; returns once its GCS port accepts connections."""
    temp = Path(tempfile.mkdtemp(prefix="sbray-", dir="/tmp"))  # short: Ray's socket paths must fit
    port = _free_port()
    env = {**os.environ, **DRIVER_ENV, "RAY_AUTH_TOKEN": token, "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0",
           MARKER_ENV: str(temp)}  # fmt: skip
    log = temp / "head.log"
    cmd = [
        str(Path(sys.executable).with_name("ray")), "start", "--head", "--block",
        f"--port={port}", "--node-ip-address=127.0.0.1", f"--num-cpus={num_cpus}", "--num-gpus=0",
        "--include-dashboard=false", "--disable-usage-stats", f"--temp-dir={temp}",
    ]  # fmt: skip
    with open(log, "wb") as out:
        proc = subprocess.Popen(cmd, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"ray start exited with {proc.returncode}:\n{log.read_text()[-3000:]}")
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0 and "will now block" in log.read_text():
                return Head(f"127.0.0.1:{port}", token, temp, proc, log)
        time.sleep(0.2)
    stop_head(Head(f"127.0.0.1:{port}", token, temp, proc, log))
    raise RuntimeError("ray start did not come up within 120 s")


def stop_head(head: Head, wait: float = 60.0) -> list[str]:
    """Stop the head (SIGTERM: it stops every process it started) and return the command lines
    of any process of its cluster still running afterwards (after up to ``wait`` seconds)."""
    if head.proc.poll() is None:
        head.proc.send_signal(signal.SIGTERM)
        try:
            head.proc.wait(wait)
        except subprocess.TimeoutExpired:
            os.killpg(head.proc.pid, signal.SIGKILL)  # its own process group: only what it started
            head.proc.wait(10)
    deadline = time.monotonic() + 15
    while (left := processes_of(str(head.temp))) and time.monotonic() < deadline:
        time.sleep(0.2)
    if not left:
        shutil.rmtree(head.temp, ignore_errors=True)
    return left
