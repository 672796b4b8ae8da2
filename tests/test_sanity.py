"""Sanity rules without workers: the uniform bound, the log gap, recorded verdicts, default picks."""

from __future__ import annotations

import json
import math
import os

import toyzoo

from sandbox.urlstate import evaluation, playground
from sandbox.urlstate.parse import default_runs
from sandbox.zoo import sanity
from sandbox.zoo.discovery import find_run


def test_worse_than_uniform_is_strictly_above_ln_vocab():
    assert sanity.uniform_loss(8192) == math.log(8192)
    assert sanity.worse_than_uniform(60.6, 8192)  # the random-init run of the issue
    assert not sanity.worse_than_uniform(1.72, 8192)
    assert not sanity.worse_than_uniform(math.log(7), 7)  # exactly uniform is not worse
    assert sanity.worse_than_uniform(math.log(7) + 0.01, 7)
    assert sanity.worse_than_uniform(math.inf, 7)
    assert not sanity.worse_than_uniform(math.nan, 7) and not sanity.worse_than_uniform(None, 7)
    assert not sanity.worse_than_uniform(5.0, None)
    sentence = sanity.uniform_sentence("x/y", 60.6, 8192, "on the bundled corpus")
    assert sentence == ("x/y: loss 60.60 nats/token on the bundled corpus is worse than uniform guessing over its "
                        "8,192 outputs (ln 8,192 = 9.01): weights look untrained or do not match the code.")


def test_log_gap_rule():
    assert sanity.gap_sentence("r", 1.50, 1.46) is None  # the shipped zoo: a few per cent
    assert sanity.gap_sentence("r", 1.80, 1.46) is None  # 23 %: within the limit
    above = sanity.gap_sentence("r", 2.90, 2.02)
    assert above and "44% above its logged final validation loss 2.020" in above and sanity.MISMATCH in above
    below = sanity.gap_sentence("r", 1.0, 2.0)
    assert below and "50% below" in below
    assert sanity.gap_sentence("r", 2.9, None) is None


def test_trained_on_bundled_reads_the_train_config(tmp_path):
    root = toyzoo.make_toy_a(tmp_path)
    run = find_run(tmp_path, "toy_a/run1")
    assert not sanity.trained_on_bundled(run)
    toyzoo.say_trained_on_bundled(root / "trained/run1")
    assert sanity.trained_on_bundled(run)
    run.train_config_path.write_text(json.dumps({"corpus_seed": 7}))  # another corpus
    assert not sanity.trained_on_bundled(run)
    run.train_config_path.write_text("{not json")
    assert not sanity.trained_on_bundled(run)
    # The gap is only checked on the bundled corpus for runs that say they trained on it.
    run.train_config_path.unlink()
    assert sanity.check(run, 2.9, 36, on_bundled=True, where="here") == []
    toyzoo.say_trained_on_bundled(root / "trained/run1")
    assert len(sanity.check(run, 2.9, 36, on_bundled=True, where="here")) == 1
    assert sanity.check(run, 2.9, 36, on_bundled=False, where="here") == []
    assert len(sanity.check(run, 9.0, 36, on_bundled=False, where="here")) == 1


def test_recorded_verdicts_follow_the_weights(tmp_path, monkeypatch):
    monkeypatch.setenv("SANDBOX_CACHE_DIR", str(tmp_path / "cache"))
    toyzoo.make_toy_a(tmp_path / "models", runs=("run1", "run2"))
    run1, run2 = find_run(tmp_path / "models", "toy_a/run1"), find_run(tmp_path / "models", "toy_a/run2")
    assert sanity.recorded_flags(run1) == []
    assert sanity.record(run1, ["bad"], 9.0, "doctor") and sanity.record(run2, [], 1.0, "doctor")
    assert sanity.recorded_flags(run1) == ["bad"] and sanity.flagged_run_ids([run1, run2]) == {"toy_a/run1"}
    stat = run1.weights.stat()
    os.utime(run1.weights, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))  # new weights saved
    assert sanity.recorded_flags(run1) == []  # new weights: the old verdict does not apply
    # A cache that cannot be written loses the record, nothing else.
    (tmp_path / "cache" / "sanity").rename(tmp_path / "cache" / "moved")
    (tmp_path / "cache" / "sanity").write_text("a file in the way")
    assert sanity.record(run2, ["x"], 9.0, "doctor") is False
    assert sanity.recorded_flags(run2) == []


def test_default_choices_skip_flagged_runs():
    runs = ["a/untrained", "a/run1", "b/run1", "c/run1"]
    assert default_runs(runs, 2) == ["a/untrained", "b/run1"]
    assert default_runs(runs, 2, skip={"a/untrained"}) == ["a/run1", "b/run1"]
    assert default_runs(runs, 2, skip=set(runs)) == []
    sel, _ = evaluation.from_query({}, runs, flagged={"a/untrained"})
    assert sel.runs == ["a/run1", "b/run1"]
    state, _ = playground.from_query({}, runs, flagged={"a/untrained", "b/run1"})
    assert state.runs == ["a/run1", "c/run1"]
    # A link that names a flagged run gets it: only the default leaves it out.
    sel, warnings = evaluation.from_query({"runs": ["a/untrained"]}, runs, flagged={"a/untrained"})
    assert sel.runs == ["a/untrained"] and warnings == []
