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

Every source is read under :class:`Limits` (bytes of the file, text once unpacked,
documents, characters), checked *while* it is read: a Parquet file's row count and
unpacked size come from its metadata before anything is unpacked, then its text column is
streamed in small batches with a running total. A compressed file that would unpack to
gigabytes (a "decompression bomb") is refused with one sentence naming the limit, and
memory stays bounded. Files and uploads are parsed once per content: the documents are
kept by the sha256 of the bytes (data files: by size and mtime first).
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import re
import threading
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from sandbox.corpus.stories import BUNDLED_SEED, bundled_split
from sandbox.settings import PROJECT_ROOT
from sandbox.zoo.confine import OutsideError, confine

FORMATS = (".txt", ".jsonl", ".parquet")
BUNDLED_LABEL = "bundled corpus, validation split"  # how results on it name their text
MB = 1_000_000
UPLOAD_MAX_BYTES = 5 * MB  # what the Evaluation page accepts as an upload
DEFAULT_MAX_BYTES = 10 * MB  # an upload, unless the caller gives its own cap
_BLANK_LINES = re.compile(r"\n[ \t]*\n\s*")  # one or more blank lines end a document
_PARQUET_BATCH_ROWS = 512  # rows unpacked at a time: the most text held before a check


class DataSourceError(ValueError):
    """A data source that cannot be read; the message is one plain sentence."""


@dataclass(frozen=True)
class Limits:
    """What one data source may hold (README: "Limits on input").

    ``max_bytes`` caps a file as stored (an upload has the page's own, smaller cap);
    ``max_unpacked_bytes`` the UTF-8 text once decompressed (what a small Parquet file can
    blow up to); ``max_documents`` and ``max_chars`` what the evaluation would hold in memory.
    """

    max_bytes: int = 50 * MB
    max_unpacked_bytes: int = 100 * MB
    max_documents: int = 100_000
    max_chars: int = 50_000_000


LIMITS = Limits()


def format_size(n: int) -> str:
    """A byte count as people read it, in decimal units: "999 bytes", "105 kB", "5.24 MB".

    The one formatter for sizes, so that a limit reads the same in a label and in an error.
    """
    if n < 1000:
        return f"{n:,} bytes"
    for unit, scale in (("kB", 1e3), ("MB", 1e6), ("GB", 1e9)):
        if n < scale * 999.5 or unit == "GB":
            return f"{n / scale:.3g} {unit}"
    raise AssertionError("unreachable")


class _Budget:
    """Running totals of one source while it is read; raises as soon as a limit is passed."""

    def __init__(self, name: str, limits: Limits) -> None:
        self.name, self.limits = name, limits
        self.documents = self.chars = self.unpacked = 0

    def check_documents(self, count: int) -> None:
        if count > self.limits.max_documents:
            raise DataSourceError(
                f"{self.name} holds more than {self.limits.max_documents:,} documents, "
                "the most a data source may hold.")

    def check_unpacked(self, size: int) -> None:
        if size > self.limits.max_unpacked_bytes:
            raise DataSourceError(
                f"{self.name} unpacks to more than {format_size(self.limits.max_unpacked_bytes)} "
                "of text, the most a data source may hold.")

    def take(self, docs: Iterable[str]) -> list[str]:
        """The non-empty documents of ``docs``, counted against the limits as they come."""
        kept = []
        for doc in docs:
            self.chars += len(doc)
            if self.chars > self.limits.max_chars:
                raise DataSourceError(
                    f"{self.name} holds more than {self.limits.max_chars:,} characters of text, "
                    "the most a data source may hold.")
            if doc.strip():
                self.documents += 1
                self.check_documents(self.documents)
                kept.append(doc)
        return kept


# --- parsing --------------------------------------------------------------------------


def _decode(data: bytes, name: str) -> str:
    try:
        return data.decode("utf-8-sig")  # tolerate the BOM that some editors write
    except UnicodeDecodeError as exc:
        raise DataSourceError(
            f"{name} is not UTF-8 text (undecodable byte at position {exc.start})."
        ) from None


def _parse_txt(text: str, budget: _Budget) -> list[str]:
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    return budget.take(doc.strip() for doc in _split_blank_lines(text))


def _split_blank_lines(text: str):
    """The pieces of ``text`` between blank lines, one at a time (never a list of them all)."""
    start = 0
    for match in _BLANK_LINES.finditer(text):
        yield text[start:match.start()]
        start = match.end()
    yield text[start:]


def _parse_jsonl(text: str, budget: _Budget) -> list[str]:
    name = budget.name

    def texts():
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
            yield obj["text"]

    return budget.take(texts())


def _parse_parquet(source: Path | bytes, budget: _Budget) -> list[str]:
    """The ``text`` column, streamed: metadata checked first, then small batches counted.

    Only the text column is ever unpacked; the row count and the column's uncompressed size
    are read from the file's metadata before any page is decompressed.
    """
    import pyarrow as pa  # heavy: imported only when a Parquet file is read
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    name = budget.name
    try:
        file = pq.ParquetFile(pa.BufferReader(source) if isinstance(source, bytes) else source)
        schema = file.schema_arrow
    except Exception as exc:  # pyarrow raises many types for a corrupt or foreign file
        raise DataSourceError(f"{name} is not a readable Parquet file ({type(exc).__name__}).") from exc
    if "text" not in schema.names:
        cols = ", ".join(map(str, schema.names)) or "none"
        raise DataSourceError(f'{name} has no "text" column (columns: {cols}).')
    kind = schema.field("text").type
    if pa.types.is_dictionary(kind):
        kind = kind.value_type
    if not (pa.types.is_string(kind) or pa.types.is_large_string(kind)):
        raise DataSourceError(f'{name} has a "text" column that does not hold strings.')
    meta = file.metadata
    budget.check_documents(meta.num_rows)  # every row could be a document: refuse before reading
    leaves = [i for i in range(meta.num_columns) if meta.schema.column(i).path == "text"]
    budget.check_unpacked(sum(
        meta.row_group(g).column(i).total_uncompressed_size for g in range(meta.num_row_groups) for i in leaves
    ))
    docs: list[str] = []
    try:
        for batch in file.iter_batches(batch_size=_PARQUET_BATCH_ROWS, columns=["text"]):
            column = batch.column(0)
            if pa.types.is_dictionary(column.type):
                column = column.dictionary_decode()
            # Metadata can understate a dictionary's expansion: count the real text, per batch.
            budget.unpacked += pc.sum(pc.binary_length(column)).as_py() or 0
            budget.check_unpacked(budget.unpacked)
            docs += budget.take(v for v in column.to_pylist() if v is not None)
    except DataSourceError:
        raise
    except Exception as exc:  # a page that cannot be decoded half-way through the file
        raise DataSourceError(f"{name} is not a readable Parquet file ({type(exc).__name__}).") from exc
    return docs


def _parse(data: bytes, name: str, limits: Limits = LIMITS) -> list[str]:
    """Documents of a file's bytes, by the file's extension, within ``limits``."""
    suffix = Path(name).suffix.lower()
    if suffix not in FORMATS:
        raise DataSourceError(
            f"{name} has an unsupported format: use {', '.join(FORMATS)}.")
    if not data.strip():
        raise DataSourceError(f"{name} is empty.")
    budget = _Budget(name, limits)
    if suffix == ".parquet":
        docs = _parse_parquet(data, budget)
    else:
        budget.check_unpacked(len(data))  # plain text: what is stored is what is unpacked
        text = _decode(data, name)
        docs = _parse_jsonl(text, budget) if suffix == ".jsonl" else _parse_txt(text, budget)
    if not docs:
        raise DataSourceError(f"{name} holds no documents (all of them are empty).")
    return docs


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
    """`_parse`, remembered by the bytes' sha256: a rerun of a page does not parse again.

    The same list is returned to every caller: treat it as read-only. A refusal is
    remembered too, so a bomb is not unpacked again on every rerun.
    """
    key = (digest or hashlib.sha256(data).hexdigest(), name, limits)
    hit = _lookup(key)
    if hit is None:
        try:
            hit = _parse(data, name, limits)
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
    budget = _Budget(spec, limits)
    budget.check_documents(ds.num_rows)
    texts = (text for batch in ds.iter(batch_size=_PARQUET_BATCH_ROWS) for text in batch["text"])
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


def default_data_dir(override: str | os.PathLike | None = None) -> Path:
    """The data folder: ``override``, else ``$SANDBOX_DATA_DIR``, else ``<project>/data``."""
    chosen = override or os.environ.get("SANDBOX_DATA_DIR") or PROJECT_ROOT / "data"
    return Path(chosen).expanduser().resolve()


def data_files(data_dir: Path) -> list[Path]:
    """The .txt/.jsonl/.parquet files under ``data_dir`` (sorted; hidden entries skipped).

    A missing folder simply has no files. Symbolic links to folders are not followed, and
    a file that is a link out of the folder is left out (:func:`refused_data_files` says so).
    """
    return scan_data_folder(data_dir)[0]


def refused_data_files(data_dir: Path) -> list[str]:
    """One sentence per data file left out because it is a link out of ``data_dir``."""
    return scan_data_folder(data_dir)[1]


def scan_data_folder(data_dir: Path) -> tuple[list[Path], list[str]]:
    """(the files :func:`data_files` offers, a sentence for each link out of the folder)."""
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
