"""Evaluation through the workers: exact numbers on known logits, windows, batching, cache."""

from __future__ import annotations

import json
import math
import os
import re
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch
import toyzoo

from sandbox.evaluation import cache, details, metrics, results, tables
from sandbox.evaluation import report as evaluation_report
from sandbox.evaluation import run as evaluation_run
from sandbox.evaluation import windows as evaluation_windows
from sandbox.worker.pool import WorkerPool
from sandbox.zoo.discovery import find_experiment

# -- a fixture experiment whose logits are known -----------------------------------------------

FIXED_CONFIG = """
from dataclasses import dataclass


@dataclass
class ModelConfig:
    vocab_len: int = 7
    max_seq_len: int = 8
    tokenizer: str = "abcd"
    device: str = "cpu"
"""

# The same logits at every position, whatever the input: the run's weights are those logits.
FIXED_MODEL = """
import torch
from torch import nn


class Model(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.logits = nn.Parameter(torch.zeros(cfg.vocab_len))

    def forward(self, input_ids, targets=None):
        return self.logits.expand(*input_ids.shape, -1), None
"""

# "a" "b" "c" "d" are ids 0..3, then bos 4, eos 5, pad 6; anything else becomes "a".
FIXED_TOKENIZER = """
class Tokenizer:
    bos_id, eos_id, pad_id = 4, 5, 6

    def encode(self, text, bos=True, eos=False, pad=None):
        return ([4] if bos else []) + ["abcd".index(c) if c in "abcd" else 0 for c in text]

    def decode(self, ids):
        return "".join("abcd"[i] for i in ids if 0 <= i < 4)


def get_tokenizer(size):
    return Tokenizer()
"""

# p(a) = 1/2, p(b) = 1/4, p(c) = p(d) = 1/8, specials ~0.
PEAKED = torch.log(torch.tensor([4.0, 2.0, 1.0, 1.0, 0.0, 0.0, 0.0])).clamp(min=-1e4)
# Sure of the bos token, which never comes: about 80 nats a token, a perplexity near 1e35.
AWFUL = torch.tensor([0.0, 0.0, 0.0, 0.0, 80.0, 0.0, 0.0])


def make_fixed(models: Path) -> Path:
    root = models / "fixed"
    for rel, text in {
        "config.py": FIXED_CONFIG,
        "modules/__init__.py": "",
        "modules/model.py": FIXED_MODEL,
        "tokenizers/abcd/tokenizer.py": FIXED_TOKENIZER,
    }.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(textwrap.dedent(text).lstrip(), encoding="utf-8")
    for run, logits in (("peaked", PEAKED), ("uniform", torch.zeros(7)), ("awful", AWFUL)):
        d = root / "trained" / run
        d.mkdir(parents=True)
        torch.save({"logits": logits}, d / "model.pth")
        (d / "model_config.json").write_text(json.dumps({"vocab_len": 7, "max_seq_len": 8, "tokenizer": "abcd"}))
    return root


@pytest.fixture(scope="module")
def zoo(tmp_path_factory) -> Path:
    models = tmp_path_factory.mktemp("eval_models")
    make_fixed(models)
    root = toyzoo.make_toy_a(models, runs=("run1", "bundled"))
    toyzoo.say_trained_on_bundled(root / "trained" / "bundled", 1.5)  # its log is not of these weights
    toyzoo.add_untrained_run(root, "random_init")
    toyzoo.make_toy_b(models)
    toyzoo.make_toy_pieces(models)
    return models


@pytest.fixture(scope="module")
def mpool():
    """One CPU pool for the module: each worker starts once."""
    p = WorkerPool(max_workers=4, device="cpu", timeout=60)
    yield p
    p.close_all()


def run_eval(pool, zoo, run_ids, docs, **kw) -> evaluation_report.Report:
    settings = results.EvalSettings(**kw)
    return evaluation_run.evaluate(pool, run_ids, docs, settings, models_dir=zoo, use_cache=False)


# Mixed-length stories; several are longer than the toys' contexts (64 and 48 tokens).
DOCS = [
    "the cat sat on the mat.",
    "once upon a time a little fox ran to the river, and the river was cold! " * 3,
    "hi",
    "what a day. " * 12,
    "a bee, a tree, a sea and a key? yes.",
]


# -- windows -----------------------------------------------------------------------------------


def lm_eval_rolling_windows(token_list, prefix_token, max_seq_len, context_len):
    """lm-evaluation-harness's get_rolling_token_windows + make_disjoint_window, restated."""
    pred_len = max_seq_len - context_len + 1
    first = min(max_seq_len, len(token_list))
    out = [([prefix_token] + token_list[: first - 1], token_list[:first])]
    predicted = first
    while predicted < len(token_list):
        m = min(len(token_list) - predicted, pred_len)
        end = predicted + m
        out.append((token_list[end - max_seq_len - 1 : end - 1], token_list[end - m : end]))
        predicted += m
    return out


@pytest.mark.parametrize("n", [1, 5, 8, 9, 16, 17, 40])
@pytest.mark.parametrize("overlap", [0, 1, 3, 7])
def test_windows_score_every_target_exactly_once(n, overlap) -> None:
    ids = [-1] + list(range(100, 100 + n))  # bos, then n targets
    windows = evaluation_windows.make_windows([ids], max_len=8, overlap=overlap)
    scored = [t for inp, tgt, f in zip(windows.inputs, windows.targets, windows.first, strict=True) for t in tgt[f:]]
    assert scored == ids[1:]
    assert windows.scored == n
    assert all(1 <= len(w) <= 8 and len(w) == len(t) for w, t in zip(windows.inputs, windows.targets, strict=True))
    for inp, tgt in zip(windows.inputs, windows.targets, strict=True):
        assert inp[1:] == tgt[:-1]  # teacher forcing: each input predicts the next id
    if overlap:
        # Same inputs and scored targets as lm-evaluation-harness with context_len = overlap + 1.
        ref = lm_eval_rolling_windows(ids[1:], -1, 8, overlap + 1)
        mine = [(inp, tgt[f:]) for inp, tgt, f in zip(windows.inputs, windows.targets, windows.first, strict=True)]
        assert mine == ref
    else:
        # Disjoint: a later window's first input is the previous window's last target.
        assert all(windows.first == 0)
        for prev, nxt in zip(windows.targets, windows.inputs[1:], strict=False):
            assert nxt[0] == prev[-1]


# -- exact numbers -----------------------------------------------------------------------------


def test_fixed_logits_give_hand_computed_numbers(mpool, zoo) -> None:
    # "abcd" -> targets a, b, c, d with p = 1/2, 1/4, 1/8, 1/8: 1 + 2 + 3 + 3 = 9 bits over
    # 4 bytes. Ranks 0, 1, 2, 2 (c and d tie; only strictly larger logits count).
    # "dd" + 9 x "a" is 11 targets: longer than max_seq_len 8, so two windows.
    docs = ["abcd", "dd" + "a" * 9]
    report = run_eval(mpool, zoo, ["fixed/peaked"], docs, kmax=4)
    result = report.results[0]
    assert result.ok, result.error
    np.testing.assert_array_equal(result.sums.tokens, [4, 11])
    np.testing.assert_allclose(result.sums.nll, [9 * math.log(2), (2 * 3 + 9) * math.log(2)], rtol=1e-6)
    np.testing.assert_array_equal(result.sums.hits, [[1, 2, 4, 4], [9, 9, 11, 11]])
    m = metrics.metrics(result.sums, [1, 2, 3])
    assert m["top1"] == pytest.approx(10 / 15)
    assert m["top2"] == pytest.approx(11 / 15)
    assert m["top3"] == pytest.approx(1.0)
    assert m["loss"] == pytest.approx(24 * math.log(2) / 15, rel=1e-6)
    assert m["perplexity"] == pytest.approx(2 ** (24 / 15), rel=1e-6)
    assert m["bits_per_byte"] == pytest.approx(24 / 15, rel=1e-6)  # 24 bits, 4 + 11 bytes
    assert result.changed_chars == 0
    # Per position (4 + 8 + 3 targets): the second window of document 2 starts again at 0.
    np.testing.assert_array_equal(result.positions["count"], [3, 3, 3, 2, 1, 1, 1, 1])


def test_uniform_model_loss_is_ln_vocab(mpool, zoo) -> None:
    report = run_eval(mpool, zoo, ["fixed/uniform"], ["abcdabcd", "dcba" * 5])
    m = metrics.metrics(report.results[0].sums, [1])
    assert m["loss"] == pytest.approx(math.log(7), rel=1e-6, abs=0)  # 7 = width of the logits
    assert m["perplexity"] == pytest.approx(7.0, rel=1e-6)
    assert m["top1"] == 1.0  # all logits tie: no entry is strictly larger than the target's


def test_lossy_round_trip_is_measured(mpool, zoo) -> None:
    report = run_eval(mpool, zoo, ["fixed/peaked"], ["abxd", "aaaa"])
    result = report.results[0]
    assert (result.changed_chars, result.n_chars) == (1, 8)
    row = report.summary([1]).iloc[0]
    assert row["roundtrip_changed"] == pytest.approx(1 / 8)


def test_every_token_scored_once_on_real_toys(mpool, zoo) -> None:
    for overlap in (0, 16):
        report = run_eval(mpool, zoo, ["toy_a/run1", "toy_b/cached"], DOCS, overlap=overlap)
        for result in report.results:
            assert result.ok, result.error
            exp = find_experiment(zoo, result.run_id.split("/")[0])
            ids = mpool.client(exp).request("encode", run=result.run_id.split("/")[1], texts=DOCS)
            assert result.tokens == sum(map(len, ids)) - len(DOCS)
            np.testing.assert_array_equal(result.sums.tokens, [len(i) - 1 for i in ids])
            assert result.positions["count"].sum() == result.tokens


def test_colliding_experiments_together_equal_each_alone(zoo) -> None:
    runs = ["toy_a/run1", "toy_b/cached"]
    alone = {}
    for run_id in runs:
        pool = WorkerPool(device="cpu")
        try:
            alone[run_id] = run_eval(pool, zoo, [run_id], DOCS).results[0]
        finally:
            pool.close_all()
    pool = WorkerPool(device="cpu")
    try:
        together = run_eval(pool, zoo, runs, DOCS)
    finally:
        pool.close_all()
    for result in together.results:
        np.testing.assert_array_equal(result.sums.nll, alone[result.run_id].sums.nll)
        np.testing.assert_array_equal(result.sums.hits, alone[result.run_id].sums.hits)
    a, b = together.results
    assert not np.allclose(a.sums.nll, b.sums.nll)  # two different models, really


def test_batched_documents_equal_each_document_alone(mpool, zoo) -> None:
    """Very different lengths in one evaluation (batch 8) = each document evaluated alone."""
    docs = ["ab", "the quick brown fox jumps over the lazy dog. " * 4, "hello there.", "x" * 63]
    together = run_eval(mpool, zoo, ["toy_a/run1"], docs, batch_size=8).results[0]
    for i, doc in enumerate(docs):
        alone = run_eval(mpool, zoo, ["toy_a/run1"], [doc], batch_size=1).results[0]
        np.testing.assert_allclose(together.sums.nll[i], alone.sums.nll[0], rtol=1e-5)
        np.testing.assert_array_equal(together.sums.hits[i], alone.sums.hits[0])
    # A naive padded batch (right-padded with the pad id, pad targets counted) gets another answer.
    client = mpool.client(find_experiment(zoo, "toy_a"))
    info = client.request("info", run="run1")
    ids = client.request("encode", run="run1", texts=[docs[0], docs[2]])
    width = max(map(len, ids))
    padded = [i + [info["pad_id"]] * (width - len(i)) for i in ids]
    items = client.request("score", run="run1", windows=[p[:-1] for p in padded], targets=[p[1:] for p in padded])
    naive_loss = np.concatenate([it["nll"].ravel() for it in items]).mean()
    honest = run_eval(mpool, zoo, ["toy_a/run1"], [docs[0], docs[2]]).results[0]
    assert abs(naive_loss - metrics.metrics(honest.sums, [1])["loss"]) > 0.05


def test_worker_error_gives_an_error_row_and_the_others_go_on(mpool, zoo, tmp_path) -> None:
    broken = toyzoo.copy_experiment(zoo / "toy_a", tmp_path, "broken")
    toyzoo.make_toy_b(tmp_path)
    (broken / "modules/model.py").write_text("def oops(:\n")
    report = evaluation_run.evaluate(mpool, ["broken/run1", "toy_b/cached", "missing/run"], DOCS[:2], results.EvalSettings(),
                         models_dir=tmp_path, use_cache=False)
    errors = {r.run_id: r.error for r in report.results}
    assert "syntax error on line 1" in errors["broken/run1"]["message"]
    assert errors["toy_b/cached"] is None
    assert "no run called 'missing/run'" in errors["missing/run"]["message"]
    table = report.summary([1, 5])
    assert list(table["run"]) == ["broken/run1", "toy_b/cached", "missing/run"]
    assert np.isfinite(table.set_index("run").loc["toy_b/cached", ["top1", "loss", "bits_per_byte"]].astype(float)).all()


def test_cancel_flag_stops_and_the_worker_stays_usable(mpool, zoo) -> None:
    seen = []
    with pytest.raises(results.EvaluationCancelled):
        evaluation_run.evaluate(mpool, ["toy_b/cached"], DOCS * 4, results.EvalSettings(), models_dir=zoo, use_cache=False,
                    progress=lambda run, done, total: seen.append((done, total)), cancel=lambda: len(seen) > 2)
    assert seen[-1][0] < seen[-1][1]  # it stopped before the end
    again = run_eval(mpool, zoo, ["toy_b/cached"], DOCS)
    assert again.results[0].ok


def test_cache_makes_a_repeat_free_and_a_failed_write_only_warns(mpool, zoo, tmp_path) -> None:
    settings = results.EvalSettings(kmax=5)
    first = evaluation_run.evaluate(mpool, ["fixed/peaked"], ["abcd"], settings, models_dir=zoo, cache_root=tmp_path)
    assert not first.results[0].cached and not first.results[0].warnings
    assert len(list(tmp_path.glob("*.json"))) == 1
    calls = []
    second = evaluation_run.evaluate(mpool, ["fixed/peaked"], ["abcd"], settings, models_dir=zoo, cache_root=tmp_path,
                         progress=lambda *a: calls.append(a))
    assert second.results[0].cached
    np.testing.assert_array_equal(second.results[0].sums.nll, first.results[0].sums.nll)
    # Other data or other settings: another key.
    third = evaluation_run.evaluate(mpool, ["fixed/peaked"], ["abcd"], results.EvalSettings(kmax=4), models_dir=zoo, cache_root=tmp_path)
    assert not third.results[0].cached
    # A cache folder that cannot be written (here: a file is in its way).
    blocker = tmp_path / "blocker"
    blocker.write_text("")
    failed = evaluation_run.evaluate(mpool, ["fixed/peaked"], ["abcd"], settings, models_dir=zoo, cache_root=blocker / "eval")
    assert failed.results[0].ok
    assert "could not be cached" in failed.results[0].warnings[0]


def test_exports_and_tables(mpool, zoo) -> None:
    report = run_eval(mpool, zoo, ["fixed/peaked", "fixed/uniform"], ["abcd", "dcba"], kmax=3)
    payload = json.loads(report.to_json([1, 3], n_resamples=50))
    assert [row["run"] for row in payload["summary"]] == ["fixed/peaked", "fixed/uniform"]
    assert payload["data"]["documents"] == 2 and payload["data"]["bytes"] == 8
    csv = report.summary([1, 3], n_resamples=50).to_csv(index=False)
    assert csv.splitlines()[0].startswith("run,check,bits_per_byte,bits_per_byte_lo,bits_per_byte_hi,loss")
    by_k = tables.accuracy_by_k(report.results, n_resamples=50)
    assert list(by_k[by_k["run"] == "fixed/uniform"]["accuracy"]) == [1.0, 1.0, 1.0]
    pos = tables.by_position(report.results, [1])
    assert set(pos["position"]) == {0, 1, 2, 3}
    # The whole comparison as one picture: the table's cells and both charts, rendered.
    from sandbox.evaluation import views
    from sandbox.figures import export

    table = tables.summary_text(report.summary([1, 3], n_resamples=50), [1, 3])
    figure = views.comparison_figure(table, "Evaluation", by_k, pos)
    spec = export.inline_spec(figure)
    assert len(spec["vconcat"]) == 3
    assert export.to_png(figure, scale=1).startswith(b"\x89PNG")


def test_huge_perplexity_is_written_in_scientific_notation(mpool, zoo) -> None:
    from sandbox.cli.common import text_table

    report = run_eval(mpool, zoo, ["fixed/awful", "fixed/peaked"], ["abcd", "dcba"], kmax=1)
    summary = report.summary([1], n_resamples=50)
    assert summary["perplexity"].iloc[0] > 1e30  # the case that printed as a 36-digit number
    text = tables.summary_text(summary, [1])
    huge, small = text["perplexity"]
    assert "e+" in huge and len(huge) < 40, huge
    assert re.fullmatch(r"\d\.\d{4} \[\d\.\d{4}, \d\.\d{4}\]", small), small  # ordinary: fixed point
    printed = text_table(text.to_dict("records"), list(text.columns))
    # No column is widened by a number (the table grew a "check" column; each cell stays short).
    assert all(len(str(cell)) < 40 for row in text.to_dict("records") for cell in row.values()), printed
    assert "000000000" not in printed


def test_document_details_line_up_with_the_text(mpool, zoo) -> None:
    client = mpool.client(find_experiment(zoo, "fixed"))
    d = details.document_details(client, "peaked", "abcdda", max_len=4, top_n=3, n_positions=4)
    np.testing.assert_allclose(d["nll"], np.log([2, 4, 8, 8, 8, 2]), rtol=1e-6)
    assert d["top_pieces"][0][:2] == ["a", "b"] and d["top_pieces"][0][2] in {"c", "d"}  # c, d tie
    np.testing.assert_allclose(d["top_probs"][0], [0.5, 0.25, 0.125], rtol=1e-6)
    assert d["pieces"][1:] == list("abcdda")
    np.testing.assert_allclose(d["char_nll"], d["nll"])  # one character per token


class FakeClient:
    """A worker stand-in with a tokenizer that maps "é" to "e" and can misreport pieces."""

    def __init__(self, pieces_lie: bool = False):
        self.pieces_lie = pieces_lie
        self.calls: list[str] = []

    def request(self, op: str, run: str, ids: list[int]):
        self.calls.append(op)
        if op == "decode":
            return "".join(chr(i) for i in ids)
        return ["?" if self.pieces_lie else chr(i) for i in ids]


def test_roundtrip_changes_takes_the_fewest_requests_that_are_exact() -> None:
    docs = ["café", "olé!", "ok"]
    ids = [[0] + [ord(c if c != "é" else "e") for c in d] for d in docs]
    lossless = [[0] + [ord(c) for c in d] for d in docs]
    client = FakeClient()
    assert evaluation_run.roundtrip_changes(client, "r", docs, lossless) == 0 and client.calls == ["decode"]
    client = FakeClient()
    assert evaluation_run.roundtrip_changes(client, "r", docs, ids) == 2 and client.calls == ["decode", "pieces"]
    client = FakeClient(pieces_lie=True)  # pieces that do not rebuild the text: decode each document
    assert evaluation_run.roundtrip_changes(client, "r", docs, ids) == 2
    assert client.calls == ["decode", "pieces", "decode", "decode", "decode"]


# -- comparisons on equal terms, paired verdicts, sanity flags ---------------------------------


def test_common_evaluation_pairs_only_results_on_the_same_text_and_settings(mpool, zoo, tmp_path) -> None:
    runs = ["fixed/peaked", "fixed/uniform"]
    settings = results.EvalSettings(kmax=2)
    evaluation_run.evaluate(mpool, runs[:1], ["abcd"], settings, models_dir=zoo, cache_root=tmp_path, data_label="notes.txt")
    evaluation_run.evaluate(mpool, runs[1:], ["dcba", "ab"], settings, models_dir=zoo, cache_root=tmp_path, data_label="other.txt")
    assert cache.common_evaluation(zoo, runs, root=tmp_path) is None  # each has results, on different texts
    assert cache.evaluated_texts(zoo, runs, root=tmp_path) == {
        "fixed/peaked": ["1 document of notes.txt"], "fixed/uniform": ["2 documents of other.txt"]}
    # Same text, other settings: still not comparable.
    evaluation_run.evaluate(mpool, runs[:1], ["dcba", "ab"], results.EvalSettings(kmax=1), models_dir=zoo, cache_root=tmp_path,
                data_label="other.txt")
    assert cache.common_evaluation(zoo, runs, root=tmp_path) is None
    evaluation_run.evaluate(mpool, runs[:1], ["dcba", "ab"], settings, models_dir=zoo, cache_root=tmp_path, data_label="other.txt")
    shared = cache.common_evaluation(zoo, runs, root=tmp_path)
    assert shared is not None and [r.run_id for r in shared.results] == runs
    assert shared.data["source"] == "other.txt" and shared.data["documents"] == 2
    assert shared.settings == settings and all(r.cached for r in shared.results)
    # 3 of "a b c d" by hand: peaked puts 1/2, 1/4, 1/8, 1/8 on them; 6 bytes of text.
    bits = {r.run_id: r.sums.nll.sum() / math.log(2) for r in shared.results}
    assert bits["fixed/peaked"] == pytest.approx(3 + 3 + 2 + 1 + 1 + 2)  # d c b a, a b
    # New weights for one run: its cached results no longer count.
    weights = zoo / "fixed/trained/uniform/model.pth"
    stat = weights.stat()
    os.utime(weights, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
    try:
        assert cache.common_evaluation(zoo, runs, root=tmp_path) is None
    finally:
        os.utime(weights, ns=(stat.st_atime_ns, stat.st_mtime_ns))


def test_paired_differences_in_the_report_and_its_json(mpool, zoo) -> None:
    docs = ["abcd", "aab", "dcba", "aaaa"]
    report = run_eval(mpool, zoo, ["fixed/peaked", "fixed/uniform"], docs, kmax=3)
    assert report.same_tokens()  # one tokenizer: every metric compares
    rows = {r["metric"]: r for r in report.paired([1], n_resamples=200)}
    by_hand = {r.run_id: r.sums.nll.sum() / math.log(2) / 15 for r in report.results}  # 15 bytes
    bpb = rows["bits_per_byte"]
    assert bpb["reference"] == "fixed/peaked" and bpb["run"] == "fixed/uniform"
    assert bpb["difference"] == pytest.approx(by_hand["fixed/uniform"] - by_hand["fixed/peaked"])
    assert bpb["lo"] <= bpb["difference"] <= bpb["hi"] and bpb["comparable"] and rows["loss"]["comparable"]
    # Uniform is worse on all 4 documents, but 4 documents cannot make that clear at 95 %
    # (a sign test's p is 1/8): the studentized interval says so where the percentile one did not.
    assert bpb["verdict"].startswith("fixed/uniform vs fixed/peaked: no clear difference in bits per byte")
    assert bpb["lo"] < 0 < bpb["hi"]
    other = {r["metric"]: r for r in report.paired([1], "fixed/uniform", n_resamples=200)}
    assert other["bits_per_byte"]["difference"] == pytest.approx(-bpb["difference"])
    payload = json.loads(report.to_json([1], n_resamples=200))
    assert payload["reference"] == "fixed/peaked"
    assert {(r["run"], r["metric"]) for r in payload["paired"]} >= {("fixed/uniform", "bits_per_byte")}
    assert payload["notes"] == [report.small_sample_note()]  # 4 documents: intervals mean little
    assert "Intervals from 4 documents mean little" in payload["notes"][0]


def test_verdict_sentences() -> None:
    assert evaluation_report.verdict("B", "A", "bits_per_byte", -0.036, -0.050, -0.021) == "B is better than A by 0.036 bits/byte [0.021, 0.050]"
    assert evaluation_report.verdict("B", "A", "bits_per_byte", 0.036, 0.021, 0.050) == "A is better than B by 0.036 bits/byte [0.021, 0.050]"
    assert evaluation_report.verdict("B", "A", "loss", 0.01, -0.02, 0.03).startswith("B vs A: no clear difference in loss")
    assert evaluation_report.verdict("B", "A", "top1", 0.012, 0.004, 0.020) == "B is better than A by 1.2 points of top-1 accuracy [0.4, 2.0]"
    assert evaluation_report.verdict("B", "A", "tokens_per_byte", 0.1, 0.05, 0.2) is None
    assert evaluation_report.verdict("B", "A", "loss", math.nan, math.nan, math.nan) is None


def test_per_token_and_per_byte_rankings_disagree_across_tokenizers(mpool, zoo) -> None:
    from sandbox.evaluation.data import load_documents, sample_documents

    docs = sample_documents(load_documents("bundled"), 30, seed=0)
    report = run_eval(mpool, zoo, ["toy_a/run1", "toy_pieces/run1"], docs, kmax=1)
    table = report.summary([1], n_resamples=200).set_index("run")
    # Pieces: more text per token, so a higher loss per token but fewer bits per byte.
    assert table.loc["toy_pieces/run1", "loss"] > table.loc["toy_a/run1", "loss"]
    assert table.loc["toy_pieces/run1", "bits_per_byte"] < table.loc["toy_a/run1", "bits_per_byte"]
    assert not report.same_tokens()
    assert any("not comparable across tokenizers" in n for n in report.notes())
    rows = {r["metric"]: r for r in report.paired([1], n_resamples=300)}
    assert not rows["loss"]["comparable"] and rows["loss"]["verdict"] is None
    assert rows["bits_per_byte"]["comparable"]
    assert rows["bits_per_byte"]["verdict"].startswith("toy_pieces/run1 is better than toy_a/run1 by")
    assert report.small_sample_note() is None  # 30 documents


def test_sanity_flags_untrained_weights_and_a_log_that_does_not_match(mpool, zoo, tmp_path, monkeypatch) -> None:
    from sandbox.evaluation.data import BUNDLED_LABEL, load_documents
    from sandbox.zoo import sanity
    from sandbox.zoo.discovery import find_run

    monkeypatch.setenv("SANDBOX_CACHE_DIR", str(tmp_path))
    docs = load_documents("bundled")[:5]
    runs = ["toy_a/run1", "toy_a/bundled", "toy_a/random_init"]
    report = evaluation_run.evaluate(mpool, runs, docs, results.EvalSettings(kmax=1), models_dir=zoo, use_cache=False,
                         data_label=BUNDLED_LABEL)
    flags = {r.run_id: r.flags for r in report.results}
    assert flags["toy_a/run1"] == []  # a bigram model: below ln 36, no claim about its data
    untrained = report.result("toy_a/random_init")
    assert untrained.sums.nll.sum() / untrained.sums.tokens.sum() > math.log(36)
    assert len(flags["toy_a/random_init"]) == 1 and sanity.UNTRAINED in flags["toy_a/random_init"][0]
    assert "ln 36 = 3.58" in flags["toy_a/random_init"][0]
    # toy_a/bundled says it trained on the bundled corpus; its log ends at 1.5, its weights score ~2.5.
    assert len(flags["toy_a/bundled"]) == 1 and sanity.MISMATCH in flags["toy_a/bundled"][0]
    table = report.summary([1], n_resamples=50).set_index("run")
    assert list(table["check"]) == ["", "suspect", "suspect"]
    assert json.loads(report.to_json([1], n_resamples=50))["flags"] == {k: v for k, v in flags.items() if v}
    # Verdicts on the bundled corpus are recorded for the pages' default choice.
    all_runs = [find_run(zoo, r) for r in runs]
    assert sanity.flagged_run_ids(all_runs) == {"toy_a/bundled", "toy_a/random_init"}
    # On other text: the worse-than-uniform flag is shown, the log gap is not checked, nothing recorded.
    monkeypatch.setenv("SANDBOX_CACHE_DIR", str(tmp_path / "other"))
    other = evaluation_run.evaluate(mpool, runs, docs, results.EvalSettings(kmax=1), models_dir=zoo, use_cache=False,
                        data_label="notes.txt")
    assert [len(r.flags) for r in other.results] == [0, 0, 1]
    assert "on notes.txt" in other.result("toy_a/random_init").flags[0]
    assert sanity.flagged_run_ids(all_runs) == set()


def test_cli_eval_carries_the_paired_verdict_and_the_flags(zoo, capsys, monkeypatch, tmp_path) -> None:
    from sandbox import cli
    from sandbox.zoo import sanity

    monkeypatch.setenv("SANDBOX_CACHE_DIR", str(tmp_path))
    argv = ["eval", "--models-dir", str(zoo), "--runs", "toy_a/run1", "toy_pieces/run1", "toy_a/random_init",
            "--docs", "30", "--k", "1", "--device", "cpu"]
    assert cli.main([*argv, "--json"]) == 0
    payload = json.loads(capsys.readouterr().out)
    assert payload["reference"] == "toy_a/run1" and payload["data"]["source"] == "bundled corpus, validation split"
    paired = {(r["run"], r["metric"]): r for r in payload["paired"]}
    bpb = paired[("toy_pieces/run1", "bits_per_byte")]
    assert bpb["lo"] <= bpb["difference"] <= bpb["hi"] < 0 and bpb["comparable"]
    assert bpb["verdict"].startswith("toy_pieces/run1 is better than toy_a/run1 by")
    assert paired[("toy_pieces/run1", "loss")]["comparable"] is False and paired[("toy_pieces/run1", "loss")]["verdict"] is None
    assert paired[("toy_a/random_init", "loss")]["comparable"] is True  # same tokenizer as the reference
    assert list(payload["flags"]) == ["toy_a/random_init"] and sanity.UNTRAINED in payload["flags"]["toy_a/random_init"][0]
    assert [row["check"] for row in payload["summary"]] == ["", "", "suspect"]
    # The text output: the table, then the verdict lines, notes and flags.
    assert cli.main([*argv, "--reference", "toy_pieces/run1"]) == 0
    text = capsys.readouterr().out
    assert "Paired differences against toy_pieces/run1" in text
    assert "  toy_pieces/run1 is better than toy_a/run1 by" in text
    assert "note: Loss, perplexity and top-k accuracy are per token" in text
    assert "suspect: toy_a/random_init: loss" in text
    assert cli.main([*argv, "--reference", "nope/x"]) == 2
    assert "is not one of --runs" in capsys.readouterr().err
