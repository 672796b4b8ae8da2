"""The synthetic lab: a sweep of runs written like real ones (both headers, diverging, growing)."""

from __future__ import annotations

import numpy as np

from sandbox.cli import main as cli_main
from sandbox.zoo import discovery, logread, logs, synthetic


def test_a_lab_has_a_sweep_both_headers_and_each_kind_of_misbehaviour(tmp_path):
    planned = synthetic.write_lab(tmp_path, runs=120, rows=60)
    runs = {run.id: run for run in discovery.all_runs(tmp_path)}
    assert sorted(runs) == sorted(p.id for p in planned)
    assert {p.header for p in planned} == {tuple(synthetic.V1), tuple(synthetic.V2)}
    for key in ("dim", "n_layers", "tokenizer"):
        assert len({p.model_config[key] for p in planned}) > 1, key
    assert len({p.train_config["learning_rate"] for p in planned}) > 1
    by_kind = {kind: [p for p in planned if getattr(p, kind)] for kind in ("diverges", "spikes", "growing")}
    assert all(by_kind.values()), by_kind
    for p in by_kind["diverges"]:
        log = runs[p.id].log()
        assert log.nonfinite[logs.TRAIN_LOSS].any() and log.nonfinite[logs.VAL_LOSS].any()
    for p in by_kind["spikes"]:
        assert np.nanmax(runs[p.id].log().columns[logs.TRAIN_LOSS]) == 65.0
    for p in by_kind["growing"]:
        log = runs[p.id].log()
        assert any("incomplete" in note for note in log.notes)
        assert log.rows < 60
    calm = next(p for p in planned if not (p.diverges or p.spikes or p.growing))
    log = runs[calm.id].log()
    assert log.rows == 60 and not log.notes
    assert log.columns[logs.VAL_LOSS][-1] < log.columns[logs.VAL_LOSS][0]  # it learns


def test_the_same_call_writes_the_same_bytes(tmp_path):
    synthetic.write_lab(tmp_path / "a", runs=3, rows=20)
    synthetic.write_lab(tmp_path / "b", runs=3, rows=20)
    for run in synthetic.plan(3):
        rel = run.id.replace("/", "/trained/") + "/log_data.csv"
        assert (tmp_path / "a" / rel).read_bytes() == (tmp_path / "b" / rel).read_bytes()


def test_the_synth_lab_command(tmp_path, capsys):
    logread.clear_cache()
    assert cli_main(["synth-lab", "--out", str(tmp_path), "--runs", "4", "--rows", "10"]) == 0
    assert "4 runs" in capsys.readouterr().out
    assert len(discovery.all_runs(tmp_path)) == 4
    assert cli_main(["synth-lab", "--out", str(tmp_path), "--runs", "0"]) == 2
    assert "--runs" in capsys.readouterr().err
