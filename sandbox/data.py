"""Evaluation text: the bundled corpus, local files, uploads, Hugging Face data sets.

Every source gives a plain ``list[str]`` of documents. Supported formats:

- ``.txt``: documents separated by blank lines;
- ``.jsonl``: one JSON object per line with a ``"text"`` field;
- ``.parquet``: a ``text`` column;
- ``"bundled"``: the generated corpus of :mod:`sandbox.corpus`;
- ``"hf:<dataset>[:<config>]:<split>"``: only when the optional ``datasets`` package is
  installed (it downloads; nothing in the sandbox needs it).

Problems raise :class:`DataSourceError` with one plain sentence that names the file, fit
to show in the app as is. Local files are offered from a data folder chosen by the person
who starts the app (``SANDBOX_DATA_DIR``); requests pick from :func:`data_files` and never
build paths.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import random
import re
from pathlib import Path

from sandbox.corpus import bundled_split
from sandbox.settings import PROJECT_ROOT

FORMATS = (".txt", ".jsonl", ".parquet")
BUNDLED_SEED = 1337  # the bundled corpus the sandbox's own zoo is trained on
BUNDLED_LABEL = "bundled corpus, validation split"  # how results on it name their text
DEFAULT_MAX_BYTES = 10 * 1024 * 1024
_BLANK_LINES = re.compile(r"\n[ \t]*\n\s*")  # one or more blank lines end a document


class DataSourceError(ValueError):
    """A data source that cannot be read; the message is one plain sentence."""


# --- parsing --------------------------------------------------------------------------


def _decode(data: bytes, name: str) -> str:
    try:
        return data.decode("utf-8-sig")  # tolerate the BOM that some editors write
    except UnicodeDecodeError as exc:
        raise DataSourceError(
            f"{name} is not UTF-8 text (undecodable byte at position {exc.start})."
        ) from None


def _parse_txt(text: str, name: str) -> list[str]:
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    return [doc.strip() for doc in _BLANK_LINES.split(text) if doc.strip()]


def _parse_jsonl(text: str, name: str) -> list[str]:
    docs = []
    for lineno, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            raise DataSourceError(f"{name} has bad JSON on line {lineno} ({exc.msg}).") from None
        if not isinstance(obj, dict) or "text" not in obj:
            raise DataSourceError(f'{name} has no "text" field on line {lineno}.')
        if not isinstance(obj["text"], str):
            raise DataSourceError(f'{name} has a "text" field that is not a string on line {lineno}.')
        if obj["text"].strip():
            docs.append(obj["text"])
    return docs


def _parse_parquet(source: Path | bytes, name: str) -> list[str]:
    import pandas as pd  # heavy: imported only when a Parquet file is read

    try:
        frame = pd.read_parquet(io.BytesIO(source) if isinstance(source, bytes) else source)
    except Exception as exc:  # pyarrow raises many types for a corrupt or foreign file
        raise DataSourceError(f"{name} is not a readable Parquet file ({type(exc).__name__}).") from exc
    if "text" not in frame.columns:
        cols = ", ".join(map(str, frame.columns)) or "none"
        raise DataSourceError(f'{name} has no "text" column (columns: {cols}).')
    docs = []
    for value in frame["text"].dropna():
        if not isinstance(value, str):
            raise DataSourceError(f'{name} has a "text" column that does not hold strings.')
        if value.strip():
            docs.append(value)
    return docs


def _parse(data: bytes, name: str, path: Path | None = None) -> list[str]:
    """Documents of a file's bytes, by the file's extension."""
    suffix = Path(name).suffix.lower()
    if suffix not in FORMATS:
        raise DataSourceError(
            f"{name} has an unsupported format: use {', '.join(FORMATS)}.")
    if not data.strip():
        raise DataSourceError(f"{name} is empty.")
    if suffix == ".parquet":
        docs = _parse_parquet(path if path is not None else data, name)
    elif suffix == ".jsonl":
        docs = _parse_jsonl(_decode(data, name), name)
    else:
        docs = _parse_txt(_decode(data, name), name)
    if not docs:
        raise DataSourceError(f"{name} holds no documents (all of them are empty).")
    return docs


# --- sources --------------------------------------------------------------------------


def _load_hf(spec: str) -> list[str]:
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
    return [t for t in ds["text"] if isinstance(t, str) and t.strip()]


def load_documents(source: str = "bundled", *, split: str = "validation",
                   seed: int = BUNDLED_SEED) -> list[str]:
    """Documents of ``source``: ``"bundled"``, a .txt/.jsonl/.parquet path, or ``hf:...``.

    ``split`` and ``seed`` apply to the bundled corpus only (a file is one split; an
    ``hf:`` source names its own split).
    """
    if source == "bundled":
        try:
            return bundled_split(split, seed=seed)
        except ValueError as exc:
            raise DataSourceError(f"The bundled corpus has no such split: {exc}.") from None
    if source.startswith("hf:"):
        return _load_hf(source)
    path = Path(source).expanduser()
    if path.suffix.lower() not in FORMATS:
        raise DataSourceError(
            f"{path.name} has an unsupported format: use {', '.join(FORMATS)}, "
            "'bundled' or hf:<dataset>[:<config>]:<split>.")
    if not path.is_file():
        raise DataSourceError(f"{path.name} does not exist (looked for {path}).")
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise DataSourceError(f"{path.name} cannot be read ({exc.strerror}).") from None
    return _parse(data, path.name, path)


def documents_from_bytes(data: bytes, filename: str, max_bytes: int = DEFAULT_MAX_BYTES) -> list[str]:
    """Documents of an uploaded file (format from ``filename``), at most ``max_bytes``."""
    name = Path(filename).name or "the uploaded file"  # never trust a client's path
    if len(data) > max_bytes:
        raise DataSourceError(
            f"{name} is too large ({len(data) / 1e6:.1f} MB; the limit is "
            f"{max_bytes / 1e6:.1f} MB).")
    return _parse(data, name)


def sample_documents(docs: list[str], n: int | None, seed: int) -> list[str]:
    """A deterministic subset of ``n`` documents in their original order (None: all)."""
    if n is None or n >= len(docs):
        return list(docs)
    if n < 0:
        raise ValueError(f"n must be >= 0, not {n}")
    keep = sorted(random.Random(seed).sample(range(len(docs)), n))
    return [docs[i] for i in keep]


def default_data_dir(override: str | os.PathLike | None = None) -> Path:
    """The data folder: ``override``, else ``$SANDBOX_DATA_DIR``, else ``<project>/data``."""
    chosen = override or os.environ.get("SANDBOX_DATA_DIR") or PROJECT_ROOT / "data"
    return Path(chosen).expanduser().resolve()


def data_files(data_dir: Path) -> list[Path]:
    """The .txt/.jsonl/.parquet files under ``data_dir`` (sorted; hidden entries skipped).

    A missing folder simply has no files. Symbolic links to folders are not followed.
    """
    data_dir = Path(data_dir)
    if not data_dir.is_dir():
        return []
    found = []
    for dirpath, dirnames, filenames in os.walk(data_dir):
        dirnames[:] = [d for d in dirnames if not d.startswith(".")]
        for fname in filenames:
            path = Path(dirpath) / fname
            if (not fname.startswith(".") and path.suffix.lower() in FORMATS
                    and path.is_file()):
                found.append(path)
    return sorted(found, key=lambda p: p.relative_to(data_dir).as_posix())


def data_fingerprint(docs: list[str]) -> str:
    """Short sha1 of the documents (each length-prefixed, so boundaries count)."""
    h = hashlib.sha1()
    for doc in docs:
        raw = doc.encode("utf-8", errors="surrogatepass")
        h.update(f"{len(raw)}:".encode())
        h.update(raw)
    return h.hexdigest()[:16]
