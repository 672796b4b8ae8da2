"""sandbox.zoo.logs, logparse, logread: header normalization, every bad-log case, the cache."""

from __future__ import annotations

import os
from pathlib import Path

import logzoo  # noqa: E402
import numpy as np
import pytest

from sandbox.zoo import (
    logparse,
    logread,
    logs,  # noqa: E402
)

V1_HEADER = "Step,Time Elapsed,Tokens Per Second,Train Loss,Validation Loss,Perplexity,Learning Rate,Norm"
V2_HEADER = "Step,Learning Rate,Train Loss,Validation Loss,Perplexity,Time Elapsed"


@pytest.fixture(autouse=True)
def fresh_cache():
    logread.clear_cache()
    yield
    logread.clear_cache()


def parse(text: str | bytes, label: str = "exp/trained/run/log_data.csv") -> logs.RunLog:
    return logparse.parse_log(text.encode() if isinstance(text, str) else text, label)


def test_header_variant_one_is_normalized():
    log = parse(V1_HEADER + "\n0,1.5,900,5.0,5.1,164.0,0.001,1.2\n10,3.0,950,4.0,4.1,60.3,0.0009,0.9\n")
    assert list(log.columns) == [
        "step", "time elapsed", "tokens/s", "train loss", "validation loss", "perplexity",
        "learning rate", "grad norm",
    ]  # fmt: skip
    assert log.columns["grad norm"].tolist() == [1.2, 0.9]
    assert log.columns["tokens/s"].tolist() == [900, 950]
    assert log.headers["grad norm"] == "Norm"
    assert log.notes == ()


def test_header_variant_two_is_normalized():
    log = parse(V2_HEADER + "\n0,0.001,5.0,5.1,164.0,1.5\n10,0.0009,4.0,4.1,60.3,3.0\n")
    assert set(log.columns) == {
        "step", "learning rate", "train loss", "validation loss", "perplexity", "time elapsed",
    }  # fmt: skip
    assert list(log.columns)[0] == "step"
    assert log.columns["time elapsed"].tolist() == [1.5, 3.0]
    assert log.metrics == ["learning rate", "train loss", "validation loss", "perplexity", "time elapsed"]


def test_shipped_variant_with_tokens_seen_and_unknown_columns_kept():
    frame = logzoo.curve_frame([*logzoo.V1, "Tokens Seen"])
    frame["my_custom_metric"] = np.arange(len(frame)) * 2.0
    log = parse(frame.to_csv(index=False))
    assert log.columns["tokens seen"].tolist() == frame["Tokens Seen"].tolist()
    assert log.columns["my_custom_metric"].tolist() == frame["my_custom_metric"].tolist()
    assert logs.metric_names([log])[:2] == ["train loss", "validation loss"]
    assert logs.metric_names([log])[-1] == "my_custom_metric"


@pytest.mark.parametrize(
    ("header", "canonical"),
    [
        ("Norm", "grad norm"), ("Grad Norm", "grad norm"), ("grad_norm", "grad norm"),
        ("val_loss", "validation loss"), ("Validation Loss", "validation loss"),
        ("Tokens Per Second", "tokens/s"), ("tokens/s", "tokens/s"), ("Time Elapsed", "time elapsed"),
        ("TRAIN LOSS", "train loss"), ("lr", "learning rate"), ("Tokens Seen", "tokens seen"),
        ("iter", "step"), ("ppl", "perplexity"), ("accuracy", None), ("Notes", None),
    ],
)  # fmt: skip
def test_canonical_names_match_aliases_case_insensitively(header, canonical):
    assert logs.canonical_name(header) == canonical


def test_empty_file():
    log = parse(b"")
    assert log.rows == 0
    assert any("exp/trained/run/log_data.csv is empty" in n for n in log.notes)


def test_header_only():
    log = parse(V2_HEADER + "\n")
    assert log.rows == 0
    assert "train loss" in log.metrics
    assert any("header but no rows" in n for n in log.notes)


def test_partial_last_line_is_skipped_and_said():
    log = parse(V2_HEADER + "\n0,0.001,5.0,5.1,164.0,1.5\n10,0.001,4.0,4.1,60.3,3.0\n20,0.001,3.")
    assert log.columns["step"].tolist() == [0, 10]
    assert any("last line" in n and "incomplete" in n for n in log.notes)
    complete = parse(V2_HEADER + "\n0,0.001,5.0,5.1,164.0,1.5\n")
    assert not any("incomplete" in n for n in complete.notes)


def test_non_numeric_cells_are_left_out_and_named():
    log = parse("Step,Train Loss,Comment\n0,5.0,start\n10,abc,ok\n20,3.0,fine\n")
    assert np.isnan(log.columns["train loss"][1])
    assert log.columns["train loss"][[0, 2]].tolist() == [5.0, 3.0]
    assert "train loss" not in log.nonfinite  # text is not a diverged value
    assert any("'Train Loss'" in n and "'abc'" in n and "log_data.csv" in n for n in log.notes)
    assert "Comment" not in log.columns
    assert any("'Comment'" in n and "not numeric" in n for n in log.notes)


def test_nan_and_inf_are_kept_flagged_and_said():
    log = parse("Step,Train Loss,Validation Loss\n0,5,5\n10,nan,\n20,inf,4\n30,-Infinity,\n40,4,3.9\n")
    train = log.columns["train loss"]
    assert np.isnan(train[1]) and train[2] == np.inf and train[3] == -np.inf
    assert log.nonfinite["train loss"].tolist() == [False, True, True, True, False]
    assert "validation loss" not in log.nonfinite  # empty cells: not logged, not diverged
    assert any("'Train Loss'" in n and "first at step 10" in n and "diverged" in n for n in log.notes)
    val = log.columns["validation loss"]
    assert np.isnan(val[[1, 3]]).all() and val[[0, 2, 4]].tolist() == [5, 4, 3.9]  # empty cells: not logged


def test_duplicated_steps_last_one_wins_and_is_said():
    log = parse("Step,Train Loss\n0,5\n10,4\n20,3\n10,3.9\n20,2.9\n30,2.5\n")
    assert log.columns["step"].tolist() == [0, 10, 20, 30]
    assert log.columns["train loss"].tolist() == [5, 3.9, 2.9, 2.5]
    assert any("2 step(s) more than once" in n and "resumed" in n for n in log.notes)


def test_rows_with_the_wrong_number_of_fields_are_skipped():
    log = parse("Step,Train Loss\n0,5\n10,4,extra\n20\n30,2.5\n")
    assert log.columns["step"].tolist() == [0, 30]
    assert any("2 line(s)" in n and "wrong number of fields" in n for n in log.notes)


def test_log_without_a_step_column_uses_row_numbers():
    log = parse("loss\n3\n2\n")
    assert log.columns["step"].tolist() == [0, 1]
    assert any("no Step column" in n for n in log.notes)


@pytest.mark.parametrize(
    "data",
    [b"\x00\xff\xfe garbage", b",,,\n,,,\n", b'a,b\n1,"unterminated\n', b"Step,Loss\n1,\xff\xfe\n", b"\n\n\n"],
)
def test_garbage_never_raises(data):
    log = parse(data)
    assert isinstance(log, logs.RunLog)
    assert log.rows == len(log.columns["step"])


def test_the_broken_fixture_log_says_everything():
    log = parse(logzoo.broken_log())
    joined = " ".join(log.notes)
    for phrase in ("incomplete", "'oops'", "more than once", "diverged"):
        assert phrase in joined
    assert log.columns["step"].tolist() == sorted(set(log.columns["step"].tolist()))
    assert log.columns["train loss"][log.columns["step"] == 100].tolist() == [9.0]


def test_read_log_is_cached_until_the_file_changes(tmp_path):
    path = tmp_path / "exp" / "trained" / "run" / "log_data.csv"
    path.parent.mkdir(parents=True)
    path.write_text(V2_HEADER + "\n0,0.001,5.0,5.1,164.0,1.5\n")
    first = logread.read_log(path)
    assert logread.read_log(path) is first  # unchanged: no second parse
    with path.open("a") as f:
        f.write("10,0.001,4.0,4.1,60.3,3.0\n")
    second = logread.read_log(path)
    assert second is not first
    assert second.columns["step"].tolist() == [0, 10]
    assert second.label == "exp/trained/run/log_data.csv"
    st = path.stat()
    assert second.stamp == (st.st_size, st.st_mtime_ns)


def test_read_log_of_a_missing_file_is_a_note(tmp_path):
    log = logread.read_log(tmp_path / "nope" / "trained" / "r" / "log_data.csv")
    assert log.rows == 0
    assert log.notes and "does not exist" in log.notes[0]


def test_read_logs_keeps_the_order_and_reads_each_file(tmp_path):
    paths = {}
    for i in range(5):
        path = tmp_path / f"r{i}.csv"
        path.write_text(logzoo.curve_frame(logzoo.V2, rows=10 + i).to_csv(index=False))
        paths[f"e/r{i}"] = path
    result = logread.read_logs(paths)
    assert list(result) == list(paths)
    assert [log.rows for log in result.values()] == [10, 11, 12, 13, 14]
    os.utime(paths["e/r0"], ns=(1, 1))  # a changed mtime alone is a new version
    assert logread.read_logs(paths)["e/r0"] is not result["e/r0"]


def test_last_finite_skips_a_diverged_tail():
    log = logparse.parse_log(b"Step,Train Loss,Validation Loss\n1,3.0,3.1\n2,2.5,nan\n3,inf,nan\n")
    assert log.last_finite(logs.TRAIN_LOSS) == 2.5
    assert log.last_finite(logs.VAL_LOSS) == 3.1
    assert log.last_finite(logs.TOKENS_SEEN) is None


# -- binary and undecodable logs (issue 12, item 9) ---------------------------------------------


def _binary_logs() -> dict[str, bytes]:
    import gzip
    import random

    rng = random.Random(0)
    csv = b"Step,Train Loss\n1,2.0\n2,1.5\n"
    return {
        "gzip": gzip.compress(csv),
        "random bytes": bytes(rng.randrange(256) for _ in range(3000)),
        "utf-16": csv.decode().encode("utf-16"),
        "png": b"\x89PNG\r\n\x1a\n" + bytes(rng.randrange(256) for _ in range(500)),
        "nul bytes": csv.replace(b"\n2,", b"\n\x00\x00,"),
        "header not utf-8": "Step,Train Loss,Notiz\xe4\n1,2.0,a\n".encode("latin-1"),
    }


@pytest.mark.parametrize("kind", list(_binary_logs()))
def test_a_binary_log_is_one_sentence_and_no_raw_bytes(kind: str, capfd: pytest.CaptureFixture) -> None:
    log = parse(_binary_logs()[kind])
    assert log.notes == ("exp/trained/run/log_data.csv is not a text CSV file.",)
    assert log.error == log.notes[0]
    assert log.rows == 0 and log.metrics == []
    assert capfd.readouterr().err == "", "nothing is printed to stderr"


def test_one_undecodable_cell_keeps_the_rest_of_the_log(capfd: pytest.CaptureFixture) -> None:
    data = "Step,Train Loss,Note\n1,2.0,café\n2,1.5,ok\n".encode("latin-1") + b"3,\xff\xfe,1,2\n4,1.2,ok\n"
    log = parse(data)
    assert log.rows == 3 and log.error is None
    assert list(log.columns[logs.TRAIN_LOSS]) == [2.0, 1.5, 1.2]
    assert any("wrong number of fields" in note for note in log.notes)
    assert capfd.readouterr().err == "", "a bad row with undecodable bytes prints nothing"


def test_cli_list_calls_a_run_with_a_binary_log_broken(tmp_path: Path, capfd: pytest.CaptureFixture) -> None:
    from sandbox import cli

    logzoo.add_run(tmp_path, "exp", "bin", _binary_logs()["random bytes"])
    logzoo.add_run(tmp_path, "exp", "good", logzoo.curve_frame(logzoo.V2).to_csv(index=False))
    assert cli.main(["list", "--models-dir", str(tmp_path), "--json"]) == 0
    import json

    out = capfd.readouterr()
    rows = {row["run"]: row for row in json.loads(out.out)["runs"]}
    assert out.err == ""
    assert "trained/bin/log_data.csv is not a text CSV file." in rows["bin"]["problems"]
    assert rows["bin"]["status"] == "broken"
    assert not any("log_data" in p for p in rows["good"]["problems"])


def test_cli_list_says_an_invalid_json_once(tmp_path: Path, capfd: pytest.CaptureFixture) -> None:
    from sandbox import cli

    run_dir = logzoo.add_run(tmp_path, "exp", "r", None)
    (run_dir / "model_config.json").write_text("{not json")
    cli.main(["list", "--models-dir", str(tmp_path)])
    out = capfd.readouterr().out
    assert out.count("model_config.json is not valid JSON") == 1, out
def test_tensor_reprs_read_as_numbers():
    """`tensor(0.0100)` in a log (a learning rate logged from a tensor) is the number 0.01."""
    text, lrs = logzoo.tensor_repr_log()
    log = parse(text)
    assert "learning rate" in log.columns, log.notes
    values = log.columns["learning rate"]
    np.testing.assert_array_equal(np.isnan(values), np.isnan(lrs))
    np.testing.assert_allclose(values[:-1], lrs[:-1])
    assert log.nonfinite["learning rate"].tolist() == [False] * (len(lrs) - 1) + [True]
    assert not [n for n in log.notes if "learning rate" in n.lower() and "not numbers" in n], log.notes
    # Anything else wrapped in a call is still text, not a number.
    odd = parse("Step,Loss\n0,os.system(1)\n1,2.0\n2,3.0\n")
    assert np.isnan(odd.columns["train loss"][0]) and odd.columns["train loss"][1:].tolist() == [2.0, 3.0]
