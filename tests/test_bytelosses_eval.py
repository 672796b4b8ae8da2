"""Per-byte losses kept with every evaluation: they add up to the run's total loss (nats) and
line up with the bytes of the text, for byte-level BPE, piece and lossy character tokenizers."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import toyzoo

from sandbox.evaluation import bytelosses, cache, results
from sandbox.evaluation import run as evaluation_run
from sandbox.settings import PROJECT_ROOT
from sandbox.worker.scoring import token_byte_lengths
from sandbox.zoo.discovery import find_experiment

# Non-ASCII on purpose: byte-level BPE splits "☕" and "é" over tokens, and the toy tokenizers
# (lossy) turn them into spaces.
DOCS = [
    "Once upon a time, a little fox found a red ball. The fox said hello.",
    "Café ☕ time: the girl and her friend went to the park, and they played all day.",
    "Ünïcødé ☃ snowmen 🎉 and digits 1234 — the end.",
]


class ByteTokenizer:
    """Byte-level: one token per UTF-8 byte, decoded as bytes with U+FFFD for a partial character."""

    def decode(self, ids):
        return bytes(ids).decode("utf-8", errors="replace")


def test_token_byte_lengths_give_a_split_character_to_the_token_that_completes_it():
    ids = list("a☕b".encode())  # a, three bytes of ☕, b
    lengths, decoded = token_byte_lengths(ByteTokenizer(), ids)
    assert decoded == "a☕b"
    assert lengths == [1, 0, 0, 3, 1]
    assert sum(lengths) == len(decoded.encode())


@pytest.fixture(scope="module")
def zoo(tmp_path_factory) -> Path:
    models = tmp_path_factory.mktemp("byte_zoo")
    toyzoo.make_toy_a(models)  # characters, lossy
    toyzoo.make_toy_pieces(models)  # greedy pieces, lossy
    return models


def _check(report, docs):
    for result in report.results:
        assert result.ok, result.error
        per_doc = result.document_byte_losses()
        assert per_doc is not None, result.run_id
        for d, (text, values) in enumerate(zip(docs, per_doc, strict=True)):
            assert values.size == len(text.encode("utf-8")), (result.run_id, d)  # one value per byte
            assert math.isclose(float(np.nansum(values, dtype=np.float64)), float(result.sums.nll[d]), rel_tol=1e-5)


def test_per_byte_losses_of_lossy_tokenizers_sum_to_the_total_loss(zoo, pool, tmp_path):
    report = evaluation_run.evaluate(pool, ["toy_a/run1", "toy_pieces/run1"], DOCS, results.EvalSettings(),
                                     models_dir=zoo, cache_root=tmp_path)  # fmt: skip
    _check(report, DOCS)
    # The character tokenizer turns characters outside its alphabet into spaces: some of their
    # bytes may have no value (NaN, dropped by the decoding), every character it keeps has one;
    # the sums above still hold.
    for d, text in enumerate(DOCS):
        per_char = bytelosses.bytes_to_chars(text, report.results[0].document_byte_losses()[d])
        kept = np.array([c in toyzoo.ALPHABET for c in text])
        assert np.isfinite(per_char[kept]).all()
    # Kept in the cache entry, compact, and read back the same.
    again = evaluation_run.evaluate(pool, ["toy_a/run1"], DOCS, results.EvalSettings(), models_dir=zoo, cache_root=tmp_path)
    assert again.results[0].cached
    np.testing.assert_allclose(np.concatenate(again.results[0].document_byte_losses()), np.concatenate(report.results[0].document_byte_losses()))
    stored = next(tmp_path.glob("*.json")).read_text(encoding="utf-8")
    assert len(stored) < 8 * sum(len(d.encode()) for d in DOCS) + 4000


def test_per_byte_losses_of_byte_level_bpe_sum_to_the_total_loss_and_split_characters_are_kept(pool, tmp_path):
    models = PROJECT_ROOT / "models"
    report = evaluation_run.evaluate(pool, ["template/gpt2_atto"], DOCS, results.EvalSettings(), models_dir=models,
                                     cache_root=tmp_path)  # fmt: skip
    _check(report, DOCS)
    values = report.results[0].document_byte_losses()[2]
    assert np.isfinite(values).all()  # lossless: every byte has its share
    # The case that needs care happened: a token holding part of a character (alone, U+FFFD).
    client = pool.client(find_experiment(models, "template"))
    ids = client.request("encode", run="gpt2_atto", texts=[DOCS[2]], bos=False)[0]
    assert any("\ufffd" in p for p in client.request("pieces", run="gpt2_atto", ids=ids))


def test_an_older_cache_entry_without_byte_losses_is_made_again(zoo, pool, tmp_path):
    settings = results.EvalSettings()
    first = evaluation_run.evaluate(pool, ["toy_a/run1"], DOCS[:1], settings, models_dir=zoo, cache_root=tmp_path)
    path = next(tmp_path.glob("*.json"))
    entry = first.results[0]
    entry.byte_losses = None
    cache.save_cached(path.stem, entry, tmp_path)
    assert cache.load_cached(path.stem, tmp_path).document_byte_losses() is None
    second = evaluation_run.evaluate(pool, ["toy_a/run1"], DOCS[:1], settings, models_dir=zoo, cache_root=tmp_path)
    assert not second.results[0].cached
    assert second.results[0].document_byte_losses() is not None


def test_packed_documents_are_cut_apart_by_their_bytes():
    a, b = np.array([1.0, 2.0]), np.array([3.0, 4.0, 5.0])
    packed = bytelosses.pack_documents([a, b])
    back = bytelosses.unpack_documents(packed, [2, 3])
    assert [x.tolist() for x in back] == [[1.0, 2.0], [3.0, 4.0, 5.0]]
    with pytest.raises(ValueError, match="per-byte losses"):
        bytelosses.unpack_documents(packed, [2, 2])
