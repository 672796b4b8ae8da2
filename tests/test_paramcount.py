"""One parameter count (the model's own, tied weights once, buffers excluded) and one status
per run, the same in the runs table, the doctor, `params`, `list` and evaluation results."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import toyzoo

from sandbox import cli
from sandbox.evaluation import results
from sandbox.evaluation import run as evaluation_run
from sandbox.evaluation.checkup import check_experiment
from sandbox.zoo import accounting, catalog
from sandbox.zoo.discovery import find_experiment, find_run

ROOT = toyzoo.Path(toyzoo.__file__).resolve().parent.parent


@pytest.fixture
def zoo(tmp_path, monkeypatch):
    """toy_c (buffers in its state_dict, tied head) and toy_a, with a cache of their own."""
    monkeypatch.setenv("SANDBOX_CACHE_DIR", str(tmp_path / "cache"))
    models = tmp_path / "models"
    toyzoo.make_toy_buffers(models)
    toyzoo.make_toy_a(models)
    return models


def _row(models, run_id: str) -> dict:
    return next(r for r in catalog.runs_table(models) if r["run_id"] == run_id)


def test_the_fixture_reproduces_the_overcount():
    """The toy's weights file holds more numbers than the model has parameters (the bug's cause)."""
    assert toyzoo.TOY_C_STATE_TENSORS > toyzoo.TOY_C_PARAMETERS + 4000


def test_buffers_and_tied_weights_are_counted_as_the_model_has_them(zoo, pool):
    # Before any worker has loaded the run, the table says it does not know (no estimate).
    before = _row(zoo, "toy_c/run1")
    assert before["parameters"] is None and before["checked"] == catalog.CHECKED_FILES
    findings, infos = check_experiment(find_experiment(zoo, "toy_c"), pool)
    assert not [f for f in findings if f.severity == "error"], findings
    assert infos["run1"]["n_params"] == toyzoo.TOY_C_PARAMETERS
    assert infos["run1"]["params"]["total"] == toyzoo.TOY_C_PARAMETERS
    client = pool.client(find_experiment(zoo, "toy_c"))
    assert client.request("params", run="run1")["total"] == toyzoo.TOY_C_PARAMETERS
    after = _row(zoo, "toy_c/run1")
    assert after["parameters"] == toyzoo.TOY_C_PARAMETERS and after["checked"] == catalog.CHECKED_LOADED
    assert _row(zoo, "toy_a/run1")["parameters"] is None  # not loaded: still unknown


def test_new_weights_make_the_count_unknown_again(zoo, pool):
    run = find_run(zoo, "toy_c/run1")
    check_experiment(find_experiment(zoo, "toy_c"), pool)
    assert accounting.count_parameters(run) == toyzoo.TOY_C_PARAMETERS
    os.utime(run.weights, ns=(1, 1))  # retrained (another mtime): the old count is not reused
    assert accounting.count_parameters(run) is None and _row(zoo, "toy_c/run1")["checked"] == catalog.CHECKED_FILES


def test_an_evaluation_counts_the_parameters_too(zoo, pool):
    report = evaluation_run.evaluate(
        pool, ["toy_c/run1"], ["hello world. a toy text."], results.EvalSettings(kmax=1, device="cpu"),
        models_dir=zoo, cache_root=zoo.parent / "evalcache",
    )  # fmt: skip
    assert report.results[0].ok, report.results[0].error
    assert report.summary([1])["parameters"].tolist() == [toyzoo.TOY_C_PARAMETERS]
    assert accounting.count_parameters(find_run(zoo, "toy_c/run1")) == toyzoo.TOY_C_PARAMETERS


def _cli(models, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "SANDBOX_DEVICE": "cpu"}
    return subprocess.run(
        [sys.executable, "-m", "sandbox", *args, "--models-dir", str(models)],
        capture_output=True, text=True, cwd=ROOT, env=env, timeout=300,
    )  # fmt: skip


def test_list_params_and_doctor_show_one_number(zoo):
    listed = _cli(zoo, "list", "--json")
    assert listed.returncode == 0, listed.stderr
    runs = {r["run_id"]: r for r in json.loads(listed.stdout)["runs"]}
    assert runs["toy_c/run1"]["parameters"] is None  # not loaded: unknown, not the file's 4,952
    plain = _cli(zoo, "list")
    assert "are counted when a worker loads them" in plain.stdout
    loaded = _cli(zoo, "list", "--load", "--json")
    assert loaded.returncode == 0, loaded.stderr
    runs = {r["run_id"]: r for r in json.loads(loaded.stdout)["runs"]}
    assert runs["toy_c/run1"]["parameters"] == toyzoo.TOY_C_PARAMETERS
    assert runs["toy_c/run1"]["checked"] == catalog.CHECKED_LOADED
    params = _cli(zoo, "params", "--run", "toy_c/run1", "--json")
    assert json.loads(params.stdout)["params"]["total"] == toyzoo.TOY_C_PARAMETERS
    checked = _cli(zoo, "doctor")
    assert f"run1: loads, {toyzoo.TOY_C_PARAMETERS:,} parameters" in checked.stdout


def _forward_raises(root):
    path = root / "modules/model.py"
    path.write_text(path.read_text().replace("        faults()\n", "        raise RuntimeError('boom')\n"))


def test_list_and_table_give_a_run_one_status(zoo, pool, capsys):
    """A run that only fails when loaded: `list` and the table agree before and after the load."""
    _forward_raises(toyzoo.copy_experiment(zoo / "toy_a", zoo, "toy_broken"))

    def listed() -> dict:
        capsys.readouterr()
        assert cli.main(["list", "--json", "--models-dir", str(zoo)]) == 0
        return {r["run_id"]: r for r in json.loads(capsys.readouterr().out)["runs"]}

    assert listed()["toy_broken/run1"]["status"] == _row(zoo, "toy_broken/run1")["status"] == "ok"
    check_experiment(find_experiment(zoo, "toy_broken"), pool)  # the full check, as the page's button
    row = _row(zoo, "toy_broken/run1")
    assert listed()["toy_broken/run1"]["status"] == row["status"] == "broken"
    assert row["checked"] == catalog.CHECKED_FAILED
    assert any("model(input_ids) raised RuntimeError: boom" in p for p in row["problems"])
    assert catalog.run_status({"problems": []}) == "ok"


def test_a_stored_breakdown_is_the_one_the_table_shows(zoo):
    run = find_run(zoo, "toy_a/run1")
    assert accounting.remember_loaded(run, {"params": {"total": 7, "embedding": 1, "non_embedding": 6, "parts": {}}})
    assert not accounting.remember_loaded(run, {"n_params": 9})  # an info without a breakdown stores nothing
    assert _row(zoo, "toy_a/run1")["parameters"] == 7
