"""Experiments from other codebases: nanoGPT, an early templateGPT, Hugging Face, an adapter.

Each kind is found, its configs and logs read without torch, and its runs evaluated through
the workers to the same bits per byte and top-k as a direct evaluation written here with that
codebase's own conventions (`kindzoo.direct_*`).
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import kindzoo
import numpy as np
import pytest
import toyzoo

from sandbox.evaluation import metrics, results
from sandbox.evaluation import run as evaluation_run
from sandbox.settings import PROJECT_ROOT
from sandbox.worker.pool import WorkerPool
from sandbox.zoo import ckptread, discovery, doctor
from sandbox.zoo.logs import TRAIN_LOSS, VAL_LOSS

HAS_TRANSFORMERS = importlib.util.find_spec("transformers") is not None
TEXT = (
    "the little fox ran to the river, and the river was cold. she said hello to the old owl!\n"
    "a bee, a tree, a sea and a key? yes. what a day it was, what a day.\n"
)


@pytest.fixture(scope="module")
def mixed(tmp_path_factory) -> Path:
    """A models folder with one experiment of each kind beside a contract toy."""
    models = tmp_path_factory.mktemp("mixed")
    toyzoo.make_toy_a(models)
    kindzoo.make_nanogpt(models)
    kindzoo.make_old_template(models)
    kindzoo.make_adapter(models)
    if HAS_TRANSFORMERS:
        kindzoo.make_huggingface(models)
    return models


def test_each_folder_is_found_as_its_kind_with_its_runs(mixed) -> None:
    found = {e.name: e for e in discovery.discover(mixed)}
    assert found["toy_a"].kind == "template"
    assert found["nanogpt"].kind == "nanogpt"
    assert [r.name for r in found["nanogpt"].runs] == ["out-char", "out-compiled"]
    assert found["tgpt_old"].kind == "template"
    assert found["own_code"].kind == "adapter"
    assert [r.name for r in found["own_code"].runs] == ["bigram", "bigram_smooth"]
    if HAS_TRANSFORMERS:
        assert found["hf_gpt2"].kind == "huggingface"
        assert [r.name for r in found["hf_gpt2"].runs] == ["final"]


def test_nanogpt_configs_come_from_the_checkpoint_without_torch(mixed) -> None:
    run = discovery.find_run(mixed, "nanogpt/out-char")
    assert run.model_config() == {
        "n_layer": 2, "n_head": 2, "n_embd": 32, "block_size": 32, "bias": True, "vocab_size": run.model_config()["vocab_size"],
        "dropout": 0.0,
    }
    train = run.train_config()
    assert train["dataset"] == "tiny_char" and train["batch_size"] == 8 and train["iter_num"] == 60


def test_checkpoint_reader_runs_no_code(tmp_path) -> None:
    import torch

    class Evil:
        def __reduce__(self):
            return (shutil.rmtree, (str(tmp_path / "victim"),))

    (tmp_path / "victim").mkdir()
    torch.save({"model_args": {"n_layer": 1}, "payload": Evil()}, tmp_path / "ckpt.pt")
    with pytest.raises(ValueError, match="cannot be read without running its code"):
        ckptread.read_checkpoint(tmp_path / "ckpt.pt")
    assert (tmp_path / "victim").is_dir()


def test_logs_of_each_codebase_are_read(mixed) -> None:
    nano = discovery.find_run(mixed, "nanogpt/out-char").log()
    assert nano.rows == 60 and nano.error is None
    assert np.isfinite(nano.columns[TRAIN_LOSS]).all()
    assert np.isfinite(nano.columns[VAL_LOSS]).sum() == 3  # the evaluations at steps 0, 20, 40
    own = discovery.find_run(mixed, "own_code/bigram").log()
    assert own.last_finite(VAL_LOSS) == 2.5
    if HAS_TRANSFORMERS:
        hf = discovery.find_run(mixed, "hf_gpt2/final").log()
        assert hf.error is None and hf.rows >= 6
        assert np.isfinite(hf.columns[TRAIN_LOSS]).sum() == 6  # logging_steps=2 of 12 steps
        assert np.isfinite(hf.columns[VAL_LOSS]).sum() == 2  # eval_steps=6
        assert hf.label == "hf_gpt2/checkpoint-12/trainer_state.json"


def _evaluate(pool, models, run_id):
    report = evaluation_run.evaluate(pool, [run_id], [TEXT], results.EvalSettings(kmax=5), models_dir=models, use_cache=False)
    result = report.results[0]
    assert result.ok, result.error
    figures = metrics.metrics(result.sums, [1, 5])
    return result, figures


@pytest.mark.parametrize("run", ["out-char", "out-compiled"])
def test_nanogpt_scores_equal_its_own_model_scored_directly(module_pool, mixed, run) -> None:
    result, figures = _evaluate(module_pool, mixed, f"nanogpt/{run}")
    direct = kindzoo.direct_nanogpt(mixed / "nanogpt", run, TEXT)
    assert result.tokens == direct["tokens"] == len(TEXT)
    assert figures["bits_per_byte"] == pytest.approx(direct["bits_per_byte"], abs=1e-4)
    assert figures["top1"] == pytest.approx(direct["top1"], abs=1e-9)
    assert figures["top5"] == pytest.approx(direct["top5"], abs=1e-9)
    assert "newline" in result.info["start"]
    # The model learnt something: far below uniform guessing over its vocabulary.
    assert figures["loss"] < np.log(result.info["vocab_size"]) - 0.3


def test_adapter_scores_equal_its_own_functions_called_directly(module_pool, mixed) -> None:
    for run in ("bigram", "bigram_smooth"):
        _, figures = _evaluate(module_pool, mixed, f"own_code/{run}")
        direct = kindzoo.direct_adapter(mixed / "own_code", run, TEXT)
        assert figures["bits_per_byte"] == pytest.approx(direct["bits_per_byte"], abs=1e-4)
        assert figures["top5"] == pytest.approx(direct["top5"], abs=1e-9)


def test_early_template_version_loads_by_its_own_tools_load_model(module_pool, mixed) -> None:
    client = module_pool.client(discovery.find_experiment(mixed, "tgpt_old"))
    info = client.request("info", run="r1")
    assert info["loaded_by"] == "tools.load_model"
    assert any("sandbox_test_missing_training_package" in note for note in info["notes"])
    # Its forward needs cache_len=0 (None crashes it), as its own comparison code passes.
    result, figures = _evaluate(module_pool, mixed, "tgpt_old/r1")
    assert result.tokens == len(TEXT) and np.isfinite(figures["bits_per_byte"])


def test_without_its_own_loader_the_early_version_is_one_sentence(module_pool, tmp_path) -> None:
    """The contract alone cannot load it (no tokenizer in its config): the sentence says so
    and that tools.load_model failed too."""
    root = kindzoo.make_old_template(tmp_path)
    (root / "tools.py").write_text((root / "tools.py").read_text().replace("def load_model", "def _load_model_off"))
    (root / "tools.py").write_text((root / "tools.py").read_text().replace("_load_model_off", "load_model").replace(
        "tokenizer = get_tokenizer(cfg.vocab_len - 3)", "raise RuntimeError('broken on purpose')"))
    client = module_pool.client(discovery.find_experiment(tmp_path, "tgpt_old"))
    with pytest.raises(Exception) as caught:
        client.request("info", run="r1")
    assert "tokenizer" in str(caught.value)
    assert "tools.load_model failed as well" in caught.value.hint


@pytest.mark.skipif(not HAS_TRANSFORMERS, reason="transformers is not installed")
def test_huggingface_scores_equal_transformers_directly(module_pool, mixed) -> None:
    result, figures = _evaluate(module_pool, mixed, "hf_gpt2/final")
    direct = kindzoo.direct_huggingface(mixed / "hf_gpt2", TEXT)
    assert result.tokens == direct["tokens"]
    assert figures["bits_per_byte"] == pytest.approx(direct["bits_per_byte"], abs=1e-4)
    assert figures["top1"] == pytest.approx(direct["top1"], abs=1e-9)
    assert "<|endoftext|>" in result.info["start"]
    assert result.changed_chars == 0  # byte-level BPE gives the text back


def test_one_parameter_count_for_every_kind(module_pool, mixed) -> None:
    """Unique tensors, buffers out, a tied head once: nanoGPT's own count plus its position
    embedding (which its get_num_params leaves out)."""
    import torch

    info = module_pool.client(discovery.find_experiment(mixed, "nanogpt")).request("info", run="out-char")
    ckpt = torch.load(mixed / "nanogpt" / "out-char" / "ckpt.pt", weights_only=True)
    unique = {k: v for k, v in ckpt["model"].items() if k != "lm_head.weight"}  # tied to wte
    assert info["n_params"] == sum(v.numel() for v in unique.values())


def test_a_broken_checkpoint_is_one_sentence_and_the_others_still_load(module_pool, tmp_path) -> None:
    models = tmp_path / "models"
    kindzoo.make_nanogpt(models, steps=2)
    toyzoo.make_toy_a(models)
    ckpt = models / "nanogpt" / "out-char" / "ckpt.pt"
    ckpt.write_bytes(ckpt.read_bytes()[:100])
    findings = doctor.static_findings(discovery.find_experiment(models, "nanogpt"))
    broken = [f for f in findings if f.run == "out-char"]
    assert len(broken) == 1 and broken[0].file == "out-char/ckpt.pt"
    assert broken[0].sentence.startswith("out-char/ckpt.pt is not a complete torch.save file")
    assert str(models) not in broken[0].sentence
    report = evaluation_run.evaluate(module_pool, ["nanogpt/out-char", "nanogpt/out-compiled", "toy_a/run1"], [TEXT],
                                     results.EvalSettings(), models_dir=models, use_cache=False)
    ok = {r.run_id: r.ok for r in report.results}
    assert ok == {"nanogpt/out-char": False, "nanogpt/out-compiled": True, "toy_a/run1": True}
    assert "out-char/ckpt.pt" in report.results[0].error["message"]


def test_a_missing_package_is_named_with_how_to_install_it(module_pool, tmp_path) -> None:
    models = tmp_path / "models"
    root = kindzoo.make_nanogpt(models, steps=2)
    (root / "model.py").write_text("import sandbox_test_absent_package\n" + (root / "model.py").read_text())
    with pytest.raises(Exception) as caught:
        module_pool.client(discovery.find_experiment(models, "nanogpt")).request("info", run="out-char")
    assert "sandbox_test_absent_package" in str(caught.value) and "model.py" in str(caught.value)
    assert "pip install sandbox_test_absent_package" in caught.value.hint


def test_gpt2_bpe_without_its_files_is_one_sentence_and_nothing_is_downloaded(module_pool, tmp_path, monkeypatch) -> None:
    models = tmp_path / "models"
    root = kindzoo.make_nanogpt(models, steps=2)
    shutil.rmtree(root / "data")
    monkeypatch.setenv("TIKTOKEN_CACHE_DIR", str(tmp_path / "empty-cache"))
    pool = WorkerPool(max_workers=1, device="cpu", timeout=60)
    try:
        with pytest.raises(Exception) as caught:
            pool.client(discovery.find_experiment(models, "nanogpt")).request("info", run="out-char")
    finally:
        pool.close_all()
    assert "GPT-2 BPE" in str(caught.value) and "downloads nothing" in str(caught.value)
    assert "TIKTOKEN_CACHE_DIR" in caught.value.hint
    assert not (tmp_path / "empty-cache").exists()


def test_adapter_without_logits_is_named_by_the_doctor(tmp_path) -> None:
    root = kindzoo.make_adapter(tmp_path)
    (root / "sandbox_adapter.py").write_text((root / "sandbox_adapter.py").read_text().replace("def logits(", "def _logits("))
    findings = doctor.static_findings(discovery.find_experiment(tmp_path, "own_code"))
    assert [f.sentence for f in findings if f.severity == "error"] == ["sandbox_adapter.py defines no function logits()."]


def test_a_vocabulary_linked_outside_the_models_directory_is_not_read(module_pool, tmp_path) -> None:
    models = tmp_path / "models"
    root = kindzoo.make_nanogpt(models, steps=2)
    meta = root / "data" / "tiny_char" / "meta.pkl"
    outside = tmp_path / "elsewhere.pkl"
    meta.rename(outside)
    meta.symlink_to(outside)
    with pytest.raises(Exception) as caught:
        module_pool.client(discovery.find_experiment(models, "nanogpt")).request("info", run="out-char")
    assert "data/tiny_char/meta.pkl is a link to a file outside the models directory" in str(caught.value)
    assert str(tmp_path) not in str(caught.value)


def test_a_config_json_of_another_codebase_is_not_taken_for_hugging_face(tmp_path) -> None:
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "config.json").write_text('{"lr": 0.1}')
    assert discovery.discover(tmp_path) == []


def test_an_experiment_pinned_to_another_torch_is_said_to_be(tmp_path) -> None:
    from sandbox.zoo.pins import installed_torch

    root = kindzoo.make_adapter(tmp_path)
    (root / "requirements.txt").write_text("numpy\ntorch==1.13.1  # the lab's cluster\n")
    findings = doctor.static_findings(discovery.find_experiment(tmp_path, "own_code"))
    pinned = [f for f in findings if f.rule == "dependencies"]
    assert len(pinned) == 1 and pinned[0].severity == "warning" and pinned[0].file == "requirements.txt"
    assert "torch==1.13.1" in pinned[0].sentence and installed_torch() in pinned[0].sentence
    # A range the installed torch is in, and a bare name, say nothing.
    (root / "requirements.txt").write_text("torch>=2.0\n")
    (root / "pyproject.toml").write_text('[project]\nname = "x"\ndependencies = ["torch"]\n')
    assert not [f for f in doctor.static_findings(discovery.find_experiment(tmp_path, "own_code")) if f.rule == "dependencies"]
    (root / "requirements.txt").unlink()
    (root / "pyproject.toml").write_text('[project]\nname = "x"\ndependencies = ["torch<2.0"]\n')
    found = [f for f in doctor.static_findings(discovery.find_experiment(tmp_path, "own_code")) if f.rule == "dependencies"]
    assert [f.file for f in found] == ["pyproject.toml"]


def _cli(*args: str, models: Path, cache: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "SANDBOX_CACHE_DIR": str(cache)}
    return subprocess.run([sys.executable, "-m", "sandbox", *args, "--models-dir", str(models)],
                          capture_output=True, text=True, timeout=600, cwd=PROJECT_ROOT, env=env)


def test_the_commands_work_on_every_kind(mixed, tmp_path) -> None:
    runs = ["nanogpt/out-char", "own_code/bigram", "tgpt_old/r1"] + (["hf_gpt2/final"] if HAS_TRANSFORMERS else [])
    listed = _cli("list", models=mixed, cache=tmp_path)
    assert listed.returncode == 0, listed.stderr
    for kind in ("nanoGPT", "your own adapter", "templateGPT") + (("Hugging Face",) if HAS_TRANSFORMERS else ()):
        assert kind in listed.stdout
    doctor_out = _cli("doctor", models=mixed, cache=tmp_path)
    assert doctor_out.returncode == 0, doctor_out.stderr
    assert "Traceback" not in doctor_out.stdout + doctor_out.stderr
    evaluated = _cli("eval", "--runs", *runs, "--docs", "3", "--json", models=mixed, cache=tmp_path)
    assert evaluated.returncode == 0, evaluated.stderr
    summary = {row["run"]: row for row in json.loads(evaluated.stdout)["summary"]}
    assert set(summary) == set(runs) and all(np.isfinite(row["bits_per_byte"]) for row in summary.values())
    compared = _cli("compare", "--runs", runs[0], runs[-1], "--docs", "3", models=mixed, cache=tmp_path)
    assert compared.returncode == 0, compared.stderr
    assert f"{runs[-1]} − {runs[0]}, bits per byte" in compared.stdout
    for run in runs:
        generated = _cli("generate", "--run", run, "--prompt", "the fox", "--max-new-tokens", "8", "--temperature", "0",
                         models=mixed, cache=tmp_path)
        assert generated.returncode == 0 and f"{run}: " in generated.stderr, generated.stderr
