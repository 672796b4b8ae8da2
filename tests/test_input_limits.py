"""Limits on all input: data files and uploads are capped while they are read.

The issue's decompression bomb is rebuilt here: a ~100 KB Parquet file holding one
1,000-character string 1,000,000 times (dictionary-encoded, zstd). Unlimited, it became a
million documents and gigabytes of memory; now it is refused from its metadata, and files
whose metadata looks harmless are refused while they are streamed, long before they are
unpacked. Every refusal is one sentence that names the limit.
"""

from __future__ import annotations

import json
import time

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from sandbox.evaluation import data, formats
from sandbox.evaluation.formats import DataSourceError, Limits


def write_bomb(path, rows: int, chars: int = 1000) -> int:
    """One ``chars``-long string repeated ``rows`` times, dictionary-encoded, zstd (as in the issue).

    Built from a DictionaryArray, so the test itself never holds the unpacked text.
    """
    column = pa.DictionaryArray.from_arrays(pa.array(np.zeros(rows, dtype=np.int32)), pa.array(["x" * chars]))
    pq.write_table(pa.table({"text": column}), path, compression="zstd", use_dictionary=True)
    return path.stat().st_size


@pytest.fixture
def arrow_pool():
    """Arrow's allocations during the test, counted apart from the rest of the process."""
    before = pa.default_memory_pool()
    proxy = pa.proxy_memory_pool(before)
    pa.set_memory_pool(proxy)
    try:
        yield proxy
    finally:
        pa.set_memory_pool(before)


def test_the_decompression_bomb_of_the_issue_is_refused_from_its_metadata(tmp_path, arrow_pool) -> None:
    path = tmp_path / "bomb.parquet"
    size = write_bomb(path, 1_000_000)
    assert size < 300_000  # a small file: the byte cap alone does not catch it
    with pytest.raises(DataSourceError) as info:
        data.load_documents(str(path))
    message = str(info.value)
    assert "bomb.parquet" in message and f"{formats.LIMITS.max_documents:,}" in message
    assert message.count(". ") == 0 and message.endswith(".")
    assert arrow_pool.max_memory() < 20_000_000, "the text was unpacked before it was refused"


def test_the_bomb_as_an_upload_is_refused_too(tmp_path, arrow_pool) -> None:
    path = tmp_path / "bomb.parquet"
    write_bomb(path, 1_000_000)
    with pytest.raises(DataSourceError, match=r"up\.parquet .*100,000 documents"):
        data.documents_from_bytes(path.read_bytes(), "up.parquet", max_bytes=5_000_000)
    assert arrow_pool.max_memory() < 20_000_000


def test_a_bomb_under_the_row_limit_is_stopped_while_streaming(tmp_path, arrow_pool) -> None:
    """Few enough rows for the metadata check, but more text than allowed once unpacked."""
    path = tmp_path / "quiet.parquet"
    write_bomb(path, 90_000)  # 90 MB of text once unpacked; the metadata says a few kB
    limits = Limits(max_chars=2_000_000)
    with pytest.raises(DataSourceError, match=r"quiet\.parquet .*more than 2,000,000 characters"):
        data.load_documents(str(path), limits=limits)
    assert arrow_pool.max_memory() < 20_000_000, "the whole column was read before the check"


def test_a_dictionary_bomb_is_refused_before_its_rows_are_unpacked(tmp_path, arrow_pool) -> None:
    """Reliability II, 2: one long string in the dictionary and a few rows pointing at it.

    The metadata counts the string once, so the file passes the checks made before reading;
    unpacked row by row it is ``rows`` times the string (the issue's 768-byte file grew the
    app by 6.4 GB in one batch). Each batch's size is counted from the dictionary's lengths
    before it is unpacked: refused with one sentence, having held little more than the
    dictionary itself.
    """
    limits = formats.LIMITS
    chars = limits.max_unpacked_bytes // 8  # the dictionary passes every check made up front
    rows = 2 * limits.max_unpacked_bytes // chars  # unpacked: twice the limit, in one batch
    path = tmp_path / "dict.parquet"
    size = write_bomb(path, rows, chars)
    assert size < limits.max_bytes and rows < limits.max_documents
    with pytest.raises(DataSourceError) as info:
        data.load_documents(str(path))
    assert str(info.value) == f"dict.parquet unpacks to more than {formats.format_size(limits.max_unpacked_bytes)} of text, the most a data source may hold."
    assert arrow_pool.max_memory() < 4 * chars, "rows were unpacked before they were counted"


def test_unpacked_size_from_parquet_metadata(tmp_path) -> None:
    path = tmp_path / "wide.parquet"
    pq.write_table(pa.table({"text": ["y" * 5000] * 200}), path, compression="zstd", use_dictionary=False)
    with pytest.raises(DataSourceError, match=r"wide\.parquet unpacks to more than 100 kB of text, the most"):
        data.load_documents(str(path), limits=Limits(max_unpacked_bytes=100_000))
    assert len(data.load_documents(str(path))) == 200


def test_only_the_text_column_is_read(tmp_path, arrow_pool) -> None:
    """Another column may be a bomb of its own: it is never unpacked."""
    rows = 200_000
    big = pa.DictionaryArray.from_arrays(pa.array(np.zeros(rows, dtype=np.int32)), pa.array(["z" * 2000]))
    text = pa.array(["doc"] * rows)
    path = tmp_path / "side.parquet"
    pq.write_table(pa.table({"junk": big, "text": text}), path, compression="zstd")
    docs = data.load_documents(str(path), limits=Limits(max_documents=rows))
    assert len(docs) == rows
    assert arrow_pool.max_memory() < 50_000_000


@pytest.mark.parametrize(
    ("name", "body"),
    [
        ("many.txt", "\n\n".join(["d"] * 1001)),
        ("many.jsonl", "\n".join(json.dumps({"text": "d"}) for _ in range(1001))),
    ],
)
def test_document_count_is_capped_for_text_formats(tmp_path, name: str, body: str) -> None:
    path = tmp_path / name
    path.write_text(body)
    with pytest.raises(DataSourceError, match=rf"{name} .*more than 1,000 documents"):
        data.load_documents(str(path), limits=Limits(max_documents=1000))
    assert len(data.load_documents(str(path), limits=Limits(max_documents=1001))) == 1001


def test_character_cap_for_text(tmp_path) -> None:
    path = tmp_path / "long.txt"
    path.write_text("ab" * 600)
    with pytest.raises(DataSourceError, match=r"long\.txt .*more than 1,000 characters"):
        data.load_documents(str(path), limits=Limits(max_chars=1000))


def test_byte_cap_for_data_files_is_checked_before_reading(tmp_path, monkeypatch) -> None:
    path = tmp_path / "huge.txt"
    path.write_text("x" * 2000)

    def no_reading(*args, **kwargs):
        raise AssertionError("a file over the byte cap was read")

    monkeypatch.setattr(type(path), "read_bytes", no_reading)
    with pytest.raises(DataSourceError, match=r"huge\.txt is too large \(2 kB; the limit is 1 kB\)\."):
        data.load_documents(str(path), limits=Limits(max_bytes=1000))


def test_every_limit_is_in_the_readme() -> None:
    from sandbox.settings import PROJECT_ROOT

    readme = (PROJECT_ROOT / "README.md").read_text(encoding="utf-8")
    limits = formats.LIMITS
    for text in (formats.format_size(data.UPLOAD_MAX_BYTES), formats.format_size(limits.max_bytes), formats.format_size(limits.max_unpacked_bytes),
                 f"{limits.max_documents:,}", f"{limits.max_chars:,}"):
        assert text in readme, text


@pytest.mark.parametrize(
    ("n", "shown"),
    [(0, "0 bytes"), (999, "999 bytes"), (1000, "1 kB"), (105_000, "105 kB"), (5_000_000, "5 MB"),
     (5 * 1024 * 1024, "5.24 MB"), (999_999, "1 MB"), (2_500_000_000, "2.5 GB")],
)
def test_one_size_formatter(n: int, shown: str) -> None:
    assert formats.format_size(n) == shown


def test_upload_limit_message_and_label_agree() -> None:
    """The label said 5 MB while the error said 5.2 MB: both come from format_size now."""
    limit = 5_000_000
    with pytest.raises(DataSourceError) as info:
        data.documents_from_bytes(b"x" * (limit + 1), "big.txt", max_bytes=limit)
    assert str(info.value) == f"big.txt is too large (5 MB; the limit is {formats.format_size(limit)})."


def test_the_upload_label_names_the_limit_as_the_error_does(app_at, toy_models) -> None:
    at = app_at(toy_models).run()
    at.switch_page("pages/evaluation.py").run()
    at.radio(key="ev_source").set_value("Upload a file").run()
    assert not at.exception
    (uploader,) = at.get("file_uploader")
    assert f"at most {formats.format_size(data.UPLOAD_MAX_BYTES)})" in uploader.proto.label
    assert formats.format_size(data.UPLOAD_MAX_BYTES) == "5 MB"


# -- parsed once per content -----------------------------------------------------------------


def test_an_upload_is_parsed_once_per_content(tmp_path, monkeypatch) -> None:
    body = "\n\n".join(f"doc {i}" for i in range(500)).encode()
    first = data.documents_from_bytes(body, "a.txt")
    calls = []
    real = formats.parse_documents
    monkeypatch.setattr(data, "parse_documents", lambda *a, **k: calls.append(a) or real(*a, **k))
    again = data.documents_from_bytes(bytes(body), "a.txt")  # equal bytes, another object
    assert again is first and calls == []
    changed = data.documents_from_bytes(body + b"\n\nmore", "a.txt")
    assert changed[-1] == "more" and len(calls) == 1


def test_a_refused_upload_is_not_parsed_again(tmp_path, monkeypatch) -> None:
    path = tmp_path / "bomb.parquet"
    write_bomb(path, 200_000)
    body = path.read_bytes()
    with pytest.raises(DataSourceError) as first:
        data.documents_from_bytes(body, "b.parquet")
    calls = []
    real = formats.parse_documents
    monkeypatch.setattr(data, "parse_documents", lambda *a, **k: calls.append(a) or real(*a, **k))
    with pytest.raises(DataSourceError) as again:
        data.documents_from_bytes(body, "b.parquet")
    assert str(again.value) == str(first.value) and calls == []


def test_a_data_file_is_parsed_again_only_when_it_changes(tmp_path, monkeypatch) -> None:
    path = tmp_path / "s.txt"
    path.write_text("one\n\ntwo")
    first = data.load_documents(str(path))
    assert data.load_documents(str(path)) is first
    path.write_text("one\n\ntwo\n\nthree")
    stamp = time.time_ns() + 10_000_000
    import os

    os.utime(path, ns=(stamp, stamp))
    assert data.load_documents(str(path)) == ["one", "two", "three"]


class FakeDataset:
    """What `sandbox.evaluation.data` uses of a Hugging Face ``datasets.Dataset`` (no download in tests)."""

    def __init__(self, texts: list) -> None:
        self.texts, self.column_names, self.num_rows = texts, ["text"], len(texts)
        self.rows_read = 0

    def iter(self, batch_size: int):
        for start in range(0, len(self.texts), batch_size):
            batch = self.texts[start:start + batch_size]
            self.rows_read += len(batch)
            yield {"text": batch}


def test_hugging_face_sources_are_capped_too(monkeypatch) -> None:
    import sys
    import types

    datasets = types.ModuleType("datasets")
    loaded = {}
    datasets.load_dataset = lambda name, config, split: loaded.setdefault(name, FakeDataset(
        ["d"] * 5 if name == "small" else ["x" * 1000] * 5000))
    monkeypatch.setitem(sys.modules, "datasets", datasets)
    assert data.load_documents("hf:small:train") == ["d"] * 5
    with pytest.raises(DataSourceError, match=r"hf:big:train holds more than 100,000 characters"):
        data.load_documents("hf:big:train", limits=Limits(max_chars=100_000))
    assert loaded["big"].rows_read < 1000, "read until the limit, not to the end"
    with pytest.raises(DataSourceError, match=r"hf:big:train holds more than 10 documents"):
        data.load_documents("hf:big:train", limits=Limits(max_documents=10))
