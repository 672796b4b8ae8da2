"""Evaluation text: the bundled corpus, local files, uploads, Hugging Face data sets.

Every source gives a plain ``list[str]`` of documents. Supported formats:

- ``.txt``: documents separated by blank lines;
- ``.jsonl``: one JSON object per line with a ``"text"`` field;
- ``.parquet``: a ``text`` column;
- ``"bundled"``: the generated corpus of :mod:`sandbox.corpus.stories`;
- ``"hf:<dataset>[:<config>]:<split>"``: only when the optional ``datasets`` package is
  installed (it downloads; nothing in the sandbox needs it).

Problems raise :class:`DataSourceError` with one plain sentence that names the file, fit
to show in the app as is. Local files are offered from a data folder chosen by the person
who starts the app (``SANDBOX_DATA_DIR``); requests pick from :func:`data_files` and never
build paths, and a file that is a link out of that folder is refused (and reported).

Every source is read under the limits of `sandbox.evaluation.formats`, checked while it is
read. Files and uploads are parsed once per content: the documents are kept by the sha256
of the bytes (data files: by size and mtime first).
"""

from __future__ import annotations

import hashlib
import os
import random
import threading
from collections import OrderedDict
from pathlib import Path

from sandbox.corpus.stories import BUNDLED_SEED, bundled_split
from sandbox.evaluation.formats import (
    FORMATS,
    LIMITS,
    MB,
    PARQUET_BATCH_ROWS,
    Budget,
    DataSourceError,
    Limits,
    format_size,
    parse_documents,
)
from sandbox.zoo.confine import OutsideError, confine

BUNDLED_LABEL = "bundled corpus, validation split"  # how results on it name their text


UPLOAD_MAX_BYTES = 5 * MB  # what the Evaluation page accepts as an upload
DEFAULT_MAX_BYTES = 10 * MB  # an upload, unless the caller gives its own cap


# Parsed documents by content: (sha256, name, limits) -> documents, or the refusal's sentence.
_PARSED: OrderedDict[tuple, list[str] | str] = OrderedDict()
_STAMPS: dict[tuple, str] = {}  # (resolved path, size, mtime_ns) -> sha256 of its bytes
_PARSED_LOCK = threading.Lock()
_PARSED_SIZE = 6


def _lookup(key: tuple) -> list[str] | str | None:
    with _PARSED_LOCK:
        hit = _PARSED.get(key)
        if hit is not None:
            _PARSED.move_to_end(key)
    return hit


def _parse_once(data: bytes, name: str, limits: Limits, digest: str | None = None) -> list[str]:
    """`parse_documents`, remembered by the bytes' sha256: a rerun of a page does not parse again.

    The same list is returned to every caller: treat it as read-only. A refusal is
    remembered too, so a bomb is not unpacked again on every rerun.
    """
    key = (digest or hashlib.sha256(data).hexdigest(), name, limits)
    hit = _lookup(key)
    if hit is None:
        try:
            hit = parse_documents(data, name, limits)
        except DataSourceError as exc:
            hit = str(exc)
        with _PARSED_LOCK:
            _PARSED[key] = hit
            while len(_PARSED) > _PARSED_SIZE:
                _PARSED.popitem(last=False)
    return _result(hit)


def _result(hit: list[str] | str) -> list[str]:
    if isinstance(hit, str):
        raise DataSourceError(hit)
    return hit


def clear_cache() -> None:
    """Forget every parsed source (tests)."""
    with _PARSED_LOCK:
        _PARSED.clear()
        _STAMPS.clear()


# --- sources --------------------------------------------------------------------------


def _too_large(name: str, size: int, limit: int) -> DataSourceError:
    return DataSourceError(f"{name} is too large ({format_size(size)}; the limit is {format_size(limit)}).")


def _load_hf(spec: str, limits: Limits) -> list[str]:
    """``hf:<dataset>[:<config>]:<split>`` through the optional ``datasets`` package."""
    parts = spec.split(":")[1:]
    if len(parts) not in (2, 3) or not all(parts):
        raise DataSourceError(
            f"{spec} is not a valid Hugging Face source: write hf:<dataset>[:<config>]:<split>.")
    dataset, config, split = (parts[0], None, parts[1]) if len(parts) == 2 else parts
    try:
        import datasets
    except ImportError:
        raise DataSourceError(
            f"{spec} needs the optional datasets package, which is not installed.") from None
    try:
        ds = datasets.load_dataset(dataset, config, split=split)
    except Exception as exc:  # network, missing data set, bad split: all one message
        raise DataSourceError(f"{spec} could not be loaded ({type(exc).__name__}: {exc}).") from exc
    if "text" not in ds.column_names:
        raise DataSourceError(
            f'{spec} has no "text" column (columns: {", ".join(ds.column_names)}).')
    budget = Budget(spec, limits)
    budget.check_documents(ds.num_rows)
    texts = (text for batch in ds.iter(batch_size=PARQUET_BATCH_ROWS) for text in batch["text"])
    return budget.take(text for text in texts if isinstance(text, str))


def load_documents(source: str = "bundled", *, split: str = "validation", seed: int = BUNDLED_SEED,
                   limits: Limits = LIMITS, within: Path | None = None) -> list[str]:
    """Documents of ``source``: ``"bundled"``, a .txt/.jsonl/.parquet path, or ``hf:...``.

    ``split`` and ``seed`` apply to the bundled corpus only (a file is one split; an
    ``hf:`` source names its own split). Files and Hugging Face data are read under
    ``limits``. With ``within`` (the data folder), a path that lies outside it once links
    are resolved is refused.
    """
    if source == "bundled":
        try:
            return bundled_split(split, seed=seed)
        except ValueError as exc:
            raise DataSourceError(f"The bundled corpus has no such split: {exc}.") from None
    if source.startswith("hf:"):
        return _load_hf(source, limits)
    path = Path(source).expanduser()
    if path.suffix.lower() not in FORMATS:
        raise DataSourceError(
            f"{path.name} has an unsupported format: use {', '.join(FORMATS)}, "
            "'bundled' or hf:<dataset>[:<config>]:<split>.")
    if within is not None:
        try:
            confine(path, within, path.name, "the data folder")
        except OutsideError as exc:
            raise DataSourceError(str(exc)) from None
    if not path.is_file():
        raise DataSourceError(f"{path.name} does not exist (looked for {path}).")
    try:
        st = path.stat()
        if st.st_size > limits.max_bytes:  # refused before a byte of it is read
            raise _too_large(path.name, st.st_size, limits.max_bytes)
        stamp = (str(path.resolve()), st.st_size, st.st_mtime_ns)
        with _PARSED_LOCK:
            digest = _STAMPS.get(stamp)
        if digest is not None:  # unchanged since it was read: no need to read it again
            hit = _lookup((digest, path.name, limits))
            if hit is not None:
                return _result(hit)
        data = path.read_bytes()
    except OSError as exc:
        raise DataSourceError(f"{path.name} cannot be read ({exc.strerror}).") from None
    digest = hashlib.sha256(data).hexdigest()
    with _PARSED_LOCK:
        if len(_STAMPS) > 256:  # old versions of files: forget them all now and then
            _STAMPS.clear()
        _STAMPS[stamp] = digest
    return _parse_once(data, path.name, limits, digest)


def documents_from_bytes(data: bytes, filename: str, max_bytes: int = DEFAULT_MAX_BYTES,
                         limits: Limits = LIMITS) -> list[str]:
    """Documents of an uploaded file (format from ``filename``), at most ``max_bytes``.

    Parsed once per content (sha256 of ``data``): the same list comes back for the same
    bytes, so treat it as read-only.
    """
    name = Path(filename).name or "the uploaded file"  # never trust a client's path
    if len(data) > max_bytes:
        raise _too_large(name, len(data), max_bytes)
    return _parse_once(data, name, limits)


def sample_documents(docs: list[str], n: int | None, seed: int) -> list[str]:
    """A deterministic subset of ``n`` documents in their original order (None: all)."""
    if n is None or n >= len(docs):
        return list(docs)
    if n < 0:
        raise ValueError(f"n must be >= 0, not {n}")
    keep = sorted(random.Random(seed).sample(range(len(docs)), n))
    return [docs[i] for i in keep]


def scan_data_folder(data_dir: Path) -> tuple[list[Path], list[str]]:
    """The .txt/.jsonl/.parquet files under ``data_dir`` (sorted; hidden entries skipped), and
    a sentence for each file left out because it is a link out of the folder.

    A missing folder simply has no files. Symbolic links to folders are not followed.
    """
    data_dir = Path(data_dir)
    if not data_dir.is_dir():
        return [], []
    base = data_dir.resolve()
    found, refused = [], []
    for dirpath, dirnames, filenames in os.walk(data_dir):
        dirnames[:] = [d for d in dirnames if not d.startswith(".")]
        for fname in filenames:
            path = Path(dirpath) / fname
            if fname.startswith(".") or path.suffix.lower() not in FORMATS or not path.is_file():
                continue
            rel = path.relative_to(data_dir).as_posix()
            try:
                confine(path, base, rel, "the data folder")
            except OutsideError as exc:
                refused.append(str(exc))
                continue
            found.append(path)
    return sorted(found, key=lambda p: p.relative_to(data_dir).as_posix()), sorted(refused)


def data_fingerprint(docs: list[str]) -> str:
    """Short sha1 of the documents (each length-prefixed, so boundaries count)."""
    h = hashlib.sha1()
    for doc in docs:
        raw = doc.encode("utf-8", errors="surrogatepass")
        h.update(f"{len(raw)}:".encode())
        h.update(raw)
    return h.hexdigest()[:16]
