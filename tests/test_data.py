"""Data sources: each format, each error, sampling, the data folder, fingerprints."""

from __future__ import annotations

import builtins
import json

import pandas as pd
import pytest

from sandbox import settings
from sandbox.corpus.stories import bundled_split
from sandbox.evaluation import data
from sandbox.evaluation.formats import DataSourceError


def write(path, text: str):
    path.write_text(text, encoding="utf-8")
    return path


# --- formats --------------------------------------------------------------------------


def test_bundled_is_the_corpus_split() -> None:
    assert data.load_documents("bundled") == bundled_split("validation")
    assert data.load_documents("bundled", split="train") == bundled_split("train")


def test_bundled_unknown_split() -> None:
    with pytest.raises(DataSourceError, match="no such split"):
        data.load_documents("bundled", split="test")


def test_txt_documents_split_on_blank_lines(tmp_path) -> None:
    path = write(tmp_path / "s.txt", "First doc\nstill first.\n\n\nSecond  \n \t\nThird\r\n\r\nFourth\n")
    assert data.load_documents(str(path)) == [
        "First doc\nstill first.", "Second", "Third", "Fourth"]


def test_txt_with_bom_and_unicode(tmp_path) -> None:
    path = tmp_path / "u.txt"
    path.write_bytes("\ufeffZoë went to the café — 🌟".encode())
    assert data.load_documents(str(path)) == ["Zoë went to the café — 🌟"]


def test_jsonl_text_field(tmp_path) -> None:
    lines = [json.dumps({"text": "one", "id": 1}), "", json.dumps({"text": "two\n\nlines"}),
             json.dumps({"text": "   "})]
    path = write(tmp_path / "s.jsonl", "\n".join(lines) + "\n")
    assert data.load_documents(str(path)) == ["one", "two\n\nlines"]


def test_parquet_text_column(tmp_path) -> None:
    path = tmp_path / "s.parquet"
    pd.DataFrame({"text": ["alpha", None, "beta", ""], "n": [1, 2, 3, 4]}).to_parquet(path)
    assert data.load_documents(str(path)) == ["alpha", "beta"]


def test_documents_from_bytes_each_format(tmp_path) -> None:
    assert data.documents_from_bytes(b"a\n\nb", "up.txt") == ["a", "b"]
    assert data.documents_from_bytes(b'{"text": "x"}\n', "up.JSONL") == ["x"]
    path = tmp_path / "p.parquet"
    pd.DataFrame({"text": ["p1", "p2"]}).to_parquet(path)
    assert data.documents_from_bytes(path.read_bytes(), "p.parquet") == ["p1", "p2"]


# --- errors ---------------------------------------------------------------------------


def test_missing_file_names_it(tmp_path) -> None:
    with pytest.raises(DataSourceError, match=r"nope\.txt does not exist"):
        data.load_documents(str(tmp_path / "nope.txt"))


def test_unsupported_extension(tmp_path) -> None:
    path = write(tmp_path / "s.csv", "a,b\n")
    with pytest.raises(DataSourceError, match=r"s\.csv has an unsupported format"):
        data.load_documents(str(path))
    with pytest.raises(DataSourceError, match="unsupported format"):
        data.documents_from_bytes(b"x", "notes.md")


def test_bad_json_names_the_line(tmp_path) -> None:
    path = write(tmp_path / "bad.jsonl", '{"text": "ok"}\n\n{"text": oops}\n')
    with pytest.raises(DataSourceError, match=r"bad\.jsonl has bad JSON on line 3"):
        data.load_documents(str(path))


def test_jsonl_without_text_field(tmp_path) -> None:
    path = write(tmp_path / "t.jsonl", '{"text": "ok"}\n{"body": "no"}\n')
    with pytest.raises(DataSourceError, match=r'no "text" field on line 2'):
        data.load_documents(str(path))
    path = write(tmp_path / "l.jsonl", '["a list"]\n')
    with pytest.raises(DataSourceError, match=r'no "text" field on line 1'):
        data.load_documents(str(path))
    path = write(tmp_path / "n.jsonl", '{"text": 3}\n')
    with pytest.raises(DataSourceError, match="not a string on line 1"):
        data.load_documents(str(path))


def test_parquet_without_text_column(tmp_path) -> None:
    path = tmp_path / "c.parquet"
    pd.DataFrame({"body": ["x"], "id": [1]}).to_parquet(path)
    with pytest.raises(DataSourceError, match=r'c\.parquet has no "text" column \(columns: body, id\)'):
        data.load_documents(str(path))


def test_parquet_text_column_of_numbers(tmp_path) -> None:
    path = tmp_path / "n.parquet"
    pd.DataFrame({"text": [1, 2]}).to_parquet(path)
    with pytest.raises(DataSourceError, match="does not hold strings"):
        data.load_documents(str(path))


def test_corrupt_parquet(tmp_path) -> None:
    path = tmp_path / "broken.parquet"
    path.write_bytes(b"PAR1 this is not really parquet")
    with pytest.raises(DataSourceError, match=r"broken\.parquet is not a readable Parquet file"):
        data.load_documents(str(path))


@pytest.mark.parametrize("name", ["e.txt", "e.jsonl", "e.parquet"])
def test_empty_file(tmp_path, name) -> None:
    path = tmp_path / name
    path.write_bytes(b"  \n\n ")
    with pytest.raises(DataSourceError, match=rf"{name} is empty"):
        data.load_documents(str(path))


def test_file_with_only_empty_documents(tmp_path) -> None:
    path = write(tmp_path / "blank.jsonl", '{"text": ""}\n{"text": " "}\n')
    with pytest.raises(DataSourceError, match=r"blank\.jsonl holds no documents"):
        data.load_documents(str(path))


def test_not_utf8(tmp_path) -> None:
    path = tmp_path / "latin.txt"
    path.write_bytes("café".encode("latin-1"))
    with pytest.raises(DataSourceError, match=r"latin\.txt is not UTF-8 text .*position 3"):
        data.load_documents(str(path))
    with pytest.raises(DataSourceError, match=r"up\.jsonl is not UTF-8"):
        data.documents_from_bytes(b'{"text": "\xff"}', "up.jsonl")


def test_upload_size_limit() -> None:
    with pytest.raises(DataSourceError, match=r"big\.txt is too large \(100 bytes; the limit is 10 bytes\)"):
        data.documents_from_bytes(b"x" * 100, "big.txt", max_bytes=10)
    assert data.documents_from_bytes(b"x" * 10, "ok.txt", max_bytes=10) == ["x" * 10]


def test_upload_name_never_keeps_a_path() -> None:
    with pytest.raises(DataSourceError) as info:
        data.documents_from_bytes(b"", "../../etc/secret.txt")
    assert str(info.value) == "secret.txt is empty."


def test_error_is_a_value_error_with_one_sentence(tmp_path) -> None:
    with pytest.raises(ValueError) as info:
        data.load_documents(str(tmp_path / "gone.jsonl"))
    message = str(info.value)
    assert message.endswith(".") and "\n" not in message and "Traceback" not in message


# --- Hugging Face (never downloads in tests) ------------------------------------------


def test_hf_without_datasets_package(monkeypatch) -> None:
    real_import = builtins.__import__

    def no_datasets(name, *args, **kwargs):
        if name == "datasets":
            raise ImportError("no datasets here")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_datasets)
    with pytest.raises(DataSourceError, match="needs the optional datasets package"):
        data.load_documents("hf:roneneldan/TinyStories:validation")


@pytest.mark.parametrize("spec", ["hf:", "hf:only", "hf:a:b:c:d", "hf:name::split"])
def test_hf_bad_spec(spec) -> None:
    with pytest.raises(DataSourceError, match="not a valid Hugging Face source"):
        data.load_documents(spec)


# --- sampling, folder, fingerprint ----------------------------------------------------


def test_sample_documents_is_deterministic_and_order_stable() -> None:
    docs = [f"doc {i}" for i in range(100)]
    a = data.sample_documents(docs, 10, seed=1)
    assert a == data.sample_documents(docs, 10, seed=1)
    assert a != data.sample_documents(docs, 10, seed=2)
    assert len(a) == 10 and len(set(a)) == 10
    assert a == sorted(a, key=docs.index)  # original order kept
    assert data.sample_documents(docs, None, seed=1) == docs
    assert data.sample_documents(docs, 500, seed=1) == docs
    assert data.sample_documents(docs, 0, seed=1) == []
    with pytest.raises(ValueError):
        data.sample_documents(docs, -1, seed=1)


def test_data_files_lists_supported_files_only(tmp_path) -> None:
    for rel in ["b.txt", "a.jsonl", "sub/c.parquet", "sub/notes.md", ".hidden.txt",
                ".git/x.txt", "d.TXT"]:
        path = tmp_path / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("x")
    (tmp_path / "folder.txt").mkdir()  # a folder with a data-like name is not a file
    found = [p.relative_to(tmp_path).as_posix() for p in data.scan_data_folder(tmp_path)[0]]
    assert found == ["a.jsonl", "b.txt", "d.TXT", "sub/c.parquet"]
    assert data.scan_data_folder(tmp_path / "missing") == ([], [])


def test_default_data_dir(monkeypatch, tmp_path) -> None:
    monkeypatch.delenv("SANDBOX_DATA_DIR", raising=False)
    assert settings.data_dir() == (settings.PROJECT_ROOT / "data").resolve()
    monkeypatch.setenv("SANDBOX_DATA_DIR", str(tmp_path))
    assert settings.data_dir() == tmp_path.resolve()
    assert settings.data_dir(tmp_path / "x") == (tmp_path / "x").resolve()


def test_an_installed_copy_uses_the_current_directory_and_the_user_cache(monkeypatch, tmp_path) -> None:
    """Outside a source checkout the defaults follow the current directory and XDG; the
    environment variables still choose any folder."""
    for name in ("SANDBOX_MODELS_DIR", "SANDBOX_DATA_DIR", "SANDBOX_CACHE_DIR"):
        monkeypatch.delenv(name, raising=False)
    assert settings.in_checkout()  # the tests run from the checkout
    assert settings.models_dir() == (settings.PROJECT_ROOT / "models").resolve()
    assert settings.cache_dir() == settings.PROJECT_ROOT / ".cache"
    monkeypatch.setattr(settings, "in_checkout", lambda: False)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert settings.models_dir() == (tmp_path / "models").resolve()
    assert settings.data_dir() == (tmp_path / "data").resolve()
    assert settings.cache_dir() == tmp_path / "xdg" / "micro-gpt-sandbox" and settings.cache_dir().is_dir()
    monkeypatch.setenv("SANDBOX_CACHE_DIR", str(tmp_path / "c"))
    monkeypatch.setenv("SANDBOX_MODELS_DIR", str(tmp_path / "m"))
    assert settings.cache_dir() == tmp_path / "c" and settings.models_dir() == (tmp_path / "m").resolve()


def test_data_fingerprint() -> None:
    fp = data.data_fingerprint(["a", "b"])
    assert fp == data.data_fingerprint(["a", "b"])
    assert fp != data.data_fingerprint(["b", "a"])
    assert fp != data.data_fingerprint(["ab"])  # document boundaries count
    assert fp != data.data_fingerprint(["a", "b", ""])
    assert len(fp) == 16 and int(fp, 16) >= 0
