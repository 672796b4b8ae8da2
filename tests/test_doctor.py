"""The doctor: one deliberately broken experiment per contract rule, each with its sentence."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import torch
import toyzoo

from sandbox.evaluation.checkup import check_experiment
from sandbox.zoo.discovery import find_experiment

ROOT = toyzoo.Path(toyzoo.__file__).resolve().parent.parent


def _break_syntax(root):
    (root / "config.py").write_text((root / "config.py").read_text() + "\ndef broken(:\n")


def _drop_weights(root):
    (root / "trained/run1/model.pth").unlink()


def _mismatch_weights(root):
    path = root / "trained/run1/model.pth"
    state = torch.load(path, weights_only=True)
    state["lm_head.weight"] = state.pop("head.weight")
    torch.save(state, path)


def _drop_tokenizer_data(root):
    (root / "tokenizers/char/models/33.model").unlink()


def _unknown_key(root):
    path = root / "trained/run1/model_config.json"
    cfg = json.loads(path.read_text())
    cfg["n_experts"] = 8
    path.write_text(json.dumps(cfg))


def _specials_outside(root):
    path = root / "tokenizers/char/tokenizer.py"
    path.write_text(path.read_text().replace("CharTokenizer(alphabet, size - 3)", "CharTokenizer(alphabet, size)"))


def _forward_raises(root):
    path = root / "modules/model.py"
    path.write_text(path.read_text().replace("        faults()\n", "        raise RuntimeError('boom')\n"))


def _wrong_shape(root):
    path = root / "modules/model.py"
    path.write_text(path.read_text().replace("            return logits, None", "            return logits[:, -1], None"))


def _pickled_object(root):
    torch.save({"head.weight": torch.nn.Linear(2, 2)}, root / "trained/run1/model.pth")


CASES = [
    ("syntax error", _break_syntax, "config", "config.py has a syntax error on line"),
    ("missing weights", _drop_weights, "weights", "trained/run1/model.pth is missing"),
    (
        "state-dict mismatch",
        _mismatch_weights,
        "weights",
        "does not match Model(cfg) (missing keys: head.weight; unexpected keys: lm_head.weight)",
    ),
    ("tokenizer data", _drop_tokenizer_data, "tokenizer data", "tokenizer data file tokenizers/char/models/33.model is missing"),
    ("unknown config key", _unknown_key, "config", "does not define: n_experts"),
    ("special ids", _specials_outside, "special ids", "bos_id (36) lies outside the model's embedding (36 rows)"),
    ("forward raises", _forward_raises, "forward", "model(input_ids) raised RuntimeError: boom"),
    ("wrong shape", _wrong_shape, "forward", "returned logits of shape (1, 36)"),
    ("not plain tensors", _pickled_object, "weights", "cannot be loaded as plain tensors"),
]


@pytest.mark.parametrize(("label", "breaker", "rule", "sentence"), CASES, ids=[c[0] for c in CASES])
def test_each_broken_rule_gives_its_sentence(tmp_path, pool, label, breaker, rule, sentence):
    root = toyzoo.make_toy_a(tmp_path, name="broken")
    breaker(root)
    findings, _ = check_experiment(find_experiment(tmp_path, "broken"), pool)
    errors = [f for f in findings if f.severity == "error"]
    assert errors, f"{label}: no finding"
    assert any(f.rule == rule and sentence in f.sentence for f in errors), [f.sentence for f in errors]
    assert all(f.hint for f in errors), "every finding carries a fix hint"


def test_healthy_experiments_have_no_errors(toy_models, pool):
    for name in ("toy_a", "toy_b"):
        findings, infos = check_experiment(find_experiment(toy_models, name), pool)
        assert not [f for f in findings if f.severity == "error"], findings
        assert infos
    b_findings, _ = check_experiment(find_experiment(toy_models, "toy_b"), pool)
    assert [f.rule for f in b_findings] == ["special ids"]  # pad outside: a warning, not an error


def test_quick_mode_runs_no_worker(tmp_path, pool):
    root = toyzoo.make_toy_a(tmp_path, name="broken")
    _unknown_key(root)
    findings, infos = check_experiment(find_experiment(tmp_path, "broken"), pool, quick=True)
    assert any("n_experts" in f.sentence for f in findings)
    assert infos == {} and pool.live_workers() == 0


def test_cli_doctor_exit_status(tmp_path, toy_models):
    ok = subprocess.run(
        [sys.executable, "-m", "sandbox", "doctor", "--models-dir", str(toy_models)],
        capture_output=True, text=True, cwd=ROOT, timeout=300,
    )
    assert ok.returncode == 0, ok.stdout + ok.stderr
    root = toyzoo.make_toy_a(tmp_path, name="broken")
    _drop_weights(root)
    bad = subprocess.run(
        [sys.executable, "-m", "sandbox", "doctor", "--models-dir", str(tmp_path), "--quick"],
        capture_output=True, text=True, cwd=ROOT, timeout=300,
    )
    assert bad.returncode == 1
    assert "trained/run1/model.pth is missing" in bad.stdout


def test_untrained_weights_and_a_mismatched_log_are_suspect(tmp_path, pool, monkeypatch):
    import math

    from sandbox.zoo import catalog, sanity

    monkeypatch.setenv("SANDBOX_CACHE_DIR", str(tmp_path / "cache"))
    models = tmp_path / "models"
    root = toyzoo.make_toy_a(models, runs=("run1", "bundled"))
    toyzoo.add_untrained_run(root, "random_init")
    toyzoo.say_trained_on_bundled(root / "trained" / "bundled", 1.5)  # its weights score ~2.5
    findings, infos = check_experiment(find_experiment(models, "toy_a"), pool)
    assert not [f for f in findings if f.severity == "error"], findings
    by_run = {f.run: f for f in findings}
    assert set(by_run) == {"random_init", "bundled"}
    untrained = by_run["random_init"]
    assert (untrained.rule, untrained.severity) == ("sanity", "warning") and untrained.hint
    assert sanity.UNTRAINED in untrained.sentence and "on the doctor's probe text" in untrained.sentence
    assert sanity.MISMATCH in by_run["bundled"].sentence
    assert infos["run1"]["probe_loss"] < math.log(36) < infos["random_init"]["probe_loss"]
    rows = {r["run"]: r for r in catalog.runs_table(models, {"toy_a": ([f.as_dict() for f in findings], {})})}
    assert {name: r["status"] for name, r in rows.items()} == {"run1": "ok", "bundled": "suspect", "random_init": "suspect"}
    assert sanity.UNTRAINED in rows["random_init"]["problems"][0]
    # The verdicts were recorded: a static-only table (no forward pass) still says suspect.
    quick = {r["run"]: r["status"] for r in catalog.runs_table(models, {})}
    assert quick == {"run1": "ok", "bundled": "suspect", "random_init": "suspect"}
    # The CLI doctor prints the probe loss and the warning, and does not fail on warnings.
    out = subprocess.run(
        [sys.executable, "-m", "sandbox", "doctor", "--models-dir", str(models), "--device", "cpu"],
        capture_output=True, text=True, cwd=ROOT, timeout=300,
    )
    assert out.returncode == 0, out.stdout + out.stderr
    assert "nats/token on the probe text (uniform: 3.584)" in out.stdout
    assert "[warning] random_init: toy_a/random_init: loss" in out.stdout and sanity.UNTRAINED in out.stdout
def test_a_tokenizer_folder_that_is_not_an_identifier_loads(tmp_path, pool):
    """`bpe_fineweb-edu` is a real folder name: the experiment's own importlib loads it, so do we."""
    toyzoo.make_toy_a(tmp_path, name="hyphen", tokenizer="char_fineweb-edu")
    findings, infos = check_experiment(find_experiment(tmp_path, "hyphen"), pool)
    assert not [f for f in findings if f.severity == "error"], [f.sentence for f in findings]
    assert infos["run1"]["tokenizer"] == "char_fineweb-edu" and infos["run1"]["vocab_size"] == 36


@pytest.mark.parametrize("name", ["", "../char", "char/../../x", ".char", "a..b"])
def test_a_tokenizer_name_that_is_no_folder_is_refused(tmp_path, pool, name):
    root = toyzoo.make_toy_a(tmp_path, name="odd")
    path = root / "trained/run1/model_config.json"
    path.write_text(json.dumps({**json.loads(path.read_text()), "tokenizer": name}))
    findings, _ = check_experiment(find_experiment(tmp_path, "odd"), pool)
    assert [f.rule for f in findings if f.severity == "error"] == ["tokenizer"]
    assert any("names no folder under tokenizers/" in f.sentence for f in findings), [f.sentence for f in findings]
