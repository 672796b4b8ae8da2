"""What the sandbox remembers about a run, kept per run fingerprint under the cache folder.

A record is a small JSON file named by the run id and its fingerprint (the experiment's
code, the run's model_config.json and weights: `Run.fingerprint`), in one folder per kind:
the parameter breakdown a worker counted (``params``), what the last load of the run found
(``loads``), a sanity verdict on the bundled corpus (``sanity``). A record is found only
while the run is as it was when it was written: nothing is ever read from a record of older
code or weights. Writes are atomic (a temporary file renamed over the record), and a cache
that cannot be written is not an error: the caller gets False and shows what it has.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any

from sandbox.settings import cache_dir
from sandbox.zoo.discovery import Run


def record_path(kind: str, run: Run) -> Path:
    """The file of ``run``'s record of ``kind`` for the run as it is now."""
    key = hashlib.sha1(f"{run.id}|{run.fingerprint()}".encode()).hexdigest()[:20]
    return cache_dir() / kind / f"{key}.json"


def read_record(kind: str, run: Run) -> Any | None:
    """The record of ``kind`` for the run as it is now; None when there is none (or it
    cannot be read)."""
    try:
        return json.loads(record_path(kind, run).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def write_record(kind: str, run: Run, data: Any) -> bool:
    """Remember ``data`` (JSON-able) for the run as it is now; False (and nothing else) when
    it cannot be written."""
    try:
        write_json_atomic(record_path(kind, run), data)
    except (OSError, TypeError, ValueError):
        return False
    return True


def write_json_atomic(path: Path, data: Any) -> None:
    """Write ``data`` as JSON to ``path`` through a temporary file in the same folder, so a
    reader never sees half a file and two writers never share a temporary file. Raises
    OSError (the disk) or TypeError/ValueError (data that is not JSON); nothing is left
    behind either way."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=".json")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(data, f)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
