"""Read training logs from disk, parsed once per (path, size, mtime_ns).

Re-reading an unchanged file costs a stat; changed files are parsed in parallel
(`read_logs`). A log that is a link out of the models directory is not read.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path

from sandbox.zoo import tbread
from sandbox.zoo.logparse import from_table, parse_log
from sandbox.zoo.logs import RunLog


def _label(path: Path, within: Path | None = None) -> str:
    """``<experiment>/trained/<run>/log_data.csv``: the file as the person knows it (relative
    to the models directory when it is given, else the path's last four parts)."""
    if within is not None and path.is_relative_to(within):
        return path.relative_to(within).as_posix()
    return "/".join(path.parts[-4:])


# ---------------------------------------------------------------------------------------
# Cached reading

_CACHE: dict[str, RunLog] = {}
_CACHE_LOCK = threading.Lock()
_POOL: ThreadPoolExecutor | None = None


def file_stamp(path: Path) -> tuple[int, int] | None:
    """(size, mtime_ns) of a file, or None when it cannot be stat'ed: its cache key."""
    try:
        st = path.stat()
    except OSError:
        return None
    return (st.st_size, st.st_mtime_ns)


def read_log(path: Path | str, within: Path | None = None) -> RunLog:
    """The parsed log at ``path``; parsed again only when its size or mtime changed.

    With ``within`` (the models directory), a log that lies outside it once links are
    resolved is not read: the RunLog is empty and its note says why.
    """
    path = Path(path)
    label = _label(path, within)
    if within is not None:
        from sandbox.zoo.confine import OutsideError, confine

        try:
            confine(path, within, label.split("/", 1)[-1])
        except OutsideError as exc:
            return RunLog(path, label, (-1, -1), notes=(str(exc),), error=str(exc))
    if tbread.is_event_file(path):
        return _read_events(path, label.rsplit("/", 1)[0] + "/")
    stamp = file_stamp(path)
    if stamp is None:
        return RunLog(path, label, (-1, -1), notes=(f"{label} does not exist.",))
    key = os.fspath(path)
    with _CACHE_LOCK:
        cached = _CACHE.get(key)
    if cached is not None and cached.stamp == stamp:
        return cached
    try:
        data = path.read_bytes()
    except OSError as exc:
        sentence = f"{label} cannot be read ({exc.strerror or type(exc).__name__})."
        return RunLog(path, label, stamp, notes=(sentence,), error=sentence)
    log = replace(parse_log(data, label), path=path, stamp=stamp)
    with _CACHE_LOCK:
        _CACHE[key] = log
    return log


def _read_events(path: Path, label: str) -> RunLog:
    """The scalars of every event file in ``path``'s folder (a TensorBoard run), read again
    only when one of them changed."""
    stamp = tbread.stamp(path.parent)
    if stamp is None:
        return RunLog(path, label, (-1, -1), notes=(f"{label} holds no TensorBoard event file.",))
    key = os.fspath(path.parent) + "#events"
    with _CACHE_LOCK:
        cached = _CACHE.get(key)
    if cached is not None and cached.stamp == stamp:
        return cached
    try:
        table, found = tbread.scalars_table(path.parent)
    except Exception as exc:  # noqa: BLE001 — a corrupt file is a sentence, never a crash
        sentence = f"{label} cannot be read as TensorBoard events ({exc})."
        return RunLog(path, label, stamp, notes=(sentence,), error=sentence)
    log = replace(from_table(table, label, [f"{label} {note}." for note in found]), path=path, stamp=stamp)
    with _CACHE_LOCK:
        _CACHE[key] = log
    return log


def read_logs(paths: Mapping[str, Path], within: Path | None = None) -> dict[str, RunLog]:
    """``{run id: RunLog}`` for ``{run id: log path}``; changed files are parsed in parallel.

    Arrow parses without holding the GIL, so a few threads overlap the files' parsing.
    ``within``: as for :func:`read_log`.
    """
    global _POOL
    if len(paths) < 2:
        return {rid: read_log(p, within) for rid, p in paths.items()}
    if _POOL is None:
        _POOL = ThreadPoolExecutor(max_workers=min(4, os.cpu_count() or 1))
    return dict(zip(paths, _POOL.map(lambda p: read_log(p, within), paths.values()), strict=True))


def clear_cache() -> None:
    """Forget every parsed log (tests; a models directory that was swapped)."""
    with _CACHE_LOCK:
        _CACHE.clear()
