"""Parsing evaluation text from bytes (.txt, .jsonl, .parquet) under fixed limits.

Every source is read under :class:`Limits` (bytes of the file, text once unpacked,
documents, characters), checked *while* it is read: a Parquet file's row count and
unpacked size come from its metadata before anything is unpacked, then its text column is
streamed in small batches with a running total. A compressed file that would unpack to
gigabytes (a "decompression bomb") is refused with one sentence naming the limit.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from sandbox.text import encodable

FORMATS = (".txt", ".jsonl", ".parquet")


MB = 1_000_000


_BLANK_LINES = re.compile(r"\n[ \t]*\n\s*")  # one or more blank lines end a document
PARQUET_BATCH_ROWS = 512  # rows read at a time, counted before any of them is unpacked


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


class Budget:
    """Running totals of one source while it is read; raises as soon as a limit is passed."""

    def __init__(self, name: str, limits: Limits) -> None:
        self.name, self.limits = name, limits
        self.documents = self.chars = self.unpacked = 0

    def check_documents(self, count: int) -> None:
        """Refuse a source of more than ``max_documents`` documents."""
        if count > self.limits.max_documents:
            raise DataSourceError(
                f"{self.name} holds more than {self.limits.max_documents:,} documents, "
                "the most a data source may hold.")

    def check_unpacked(self, size: int) -> None:
        """Refuse a source whose text unpacks to more than ``max_unpacked_bytes``."""
        if size > self.limits.max_unpacked_bytes:
            raise DataSourceError(
                f"{self.name} unpacks to more than {format_size(self.limits.max_unpacked_bytes)} "
                "of text, the most a data source may hold.")

    def take(self, docs: Iterable[str]) -> list[str]:
        """The non-empty documents of ``docs``, counted against the limits as they come, each
        made `encodable` (a JSON escape can hold half a surrogate pair, which no encoder takes)."""
        kept = []
        for doc in map(encodable, docs):
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


def _parse_txt(text: str, budget: Budget) -> list[str]:
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    return budget.take(doc.strip() for doc in _split_blank_lines(text))


def _split_blank_lines(text: str):
    """The pieces of ``text`` between blank lines, one at a time (never a list of them all)."""
    start = 0
    for match in _BLANK_LINES.finditer(text):
        yield text[start:match.start()]
        start = match.end()
    yield text[start:]


def _parse_jsonl(text: str, budget: Budget) -> list[str]:
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


def _parse_parquet(source: Path | bytes, budget: Budget) -> list[str]:
    """The ``text`` column, streamed: metadata checked first, then small batches counted.

    Only the text column is ever unpacked; the row count and the column's uncompressed size
    are read from the file's metadata before any page is decompressed. The column is read
    as a dictionary where the file stores one, so a batch holds the dictionary and its
    indices, and its unpacked size (each row's string length) is counted before a single
    row is unpacked: a string stored once and referenced by every row counts once per row.
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
        file = pq.ParquetFile(pa.BufferReader(source) if isinstance(source, bytes) else source, read_dictionary=["text"])
        for batch in file.iter_batches(batch_size=PARQUET_BATCH_ROWS, columns=["text"]):
            column = batch.column(0)
            # Metadata understates a dictionary's expansion: count the rows' own lengths first.
            if pa.types.is_dictionary(column.type):
                lengths = pc.take(pc.binary_length(column.dictionary), column.indices)
            else:
                lengths = pc.binary_length(column)
            budget.unpacked += pc.sum(lengths).as_py() or 0
            budget.check_unpacked(budget.unpacked)
            if pa.types.is_dictionary(column.type):
                column = column.dictionary_decode()
            docs += budget.take(v for v in column.to_pylist() if v is not None)
    except DataSourceError:
        raise
    except Exception as exc:  # a page that cannot be decoded half-way through the file
        raise DataSourceError(f"{name} is not a readable Parquet file ({type(exc).__name__}).") from exc
    return docs


def parse_documents(data: bytes, name: str, limits: Limits = LIMITS) -> list[str]:
    """Documents of a file's bytes, by the file's extension, within ``limits``."""
    suffix = Path(name).suffix.lower()
    if suffix not in FORMATS:
        raise DataSourceError(
            f"{name} has an unsupported format: use {', '.join(FORMATS)}.")
    if not data.strip():
        raise DataSourceError(f"{name} is empty.")
    budget = Budget(name, limits)
    if suffix == ".parquet":
        docs = _parse_parquet(data, budget)
    else:
        budget.check_unpacked(len(data))  # plain text: what is stored is what is unpacked
        text = _decode(data, name)
        docs = _parse_jsonl(text, budget) if suffix == ".jsonl" else _parse_txt(text, budget)
    if not docs:
        raise DataSourceError(f"{name} holds no documents (all of them are empty).")
    return docs
