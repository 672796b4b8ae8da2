"""More sources: nanochat checkouts, TensorBoard logdirs and Lightning's metrics.csv.

nanochat runs are found, loaded by the checkout's own ``build_model`` in a worker and scored to
the same bits per byte as a direct evaluation written here with nanochat's conventions
(`sourcezoo.direct_nanochat`); logs-only runs have curves and final losses and no model.
"""

from __future__ import annotations

import importlib.util
import sys

import numpy as np
import pytest
import sourcezoo
import toyzoo

from sandbox.evaluation import metrics, results
from sandbox.evaluation import run as evaluation_run
from sandbox.worker.pool import WorkerPool
from sandbox.zoo import accounting, discovery, doctor, logformats, logparse
from sandbox.zoo.logs import TRAIN_LOSS, VAL_LOSS

TEXT = (
    "the little fox ran to the river, and the river was cold. she said hello to the old owl!\n"
    "a bee, a tree, a sea and a key? yes. what a day it was, what a day.\n"
)


@pytest.fixture(scope="module")
def zoo(tmp_path_factory):
    models = tmp_path_factory.mktemp("sources")
    toyzoo.make_toy_a(models)
    sourcezoo.make_nanochat(models)
    sourcezoo.make_tensorboard(models)
    sourcezoo.make_lightning(models)
    return models


def test_each_source_is_found_as_its_kind(zoo) -> None:
    found = {e.name: e for e in discovery.discover(zoo)}
    assert found["nanochat"].kind == "nanochat"
    assert [r.name for r in found["nanochat"].runs] == ["d1", "d2"]
    assert found["tb_lab"].kind == "logs" and [r.name for r in found["tb_lab"].runs] == ["runA", "runB"]
    assert found["pl_lab"].kind == "logs" and [r.name for r in found["pl_lab"].runs] == ["version_0"]
    assert found["toy_a"].kind == "template"
    assert all(r.has_model for r in found["nanochat"].runs + found["toy_a"].runs)
    assert not any(r.has_model for r in found["tb_lab"].runs + found["pl_lab"].runs)


def test_nanochat_run_is_its_latest_step_with_configs_read_without_torch(zoo) -> None:
    run = discovery.find_run(zoo, "nanochat/d2")
    assert run.weights.name == "model_000040.pt" and run.model_config_path.name == "meta_000040.json"
    cfg = run.model_config()
    assert cfg["n_layer"] == 2 and cfg["sequence_len"] == 64 and cfg["window_pattern"] == "SL"
    train = run.train_config()
    assert train["step"] == 40 and train["batch_size"] == 8
    # tokens per step are its total_batch_size: batch × accumulation × context, as the sandbox counts
    last_logged_step = run.log().columns["step"][-1]
    assert accounting.tokens_seen(run)[0] == last_logged_step * train["total_batch_size"]
    old = discovery.find_run(zoo, "nanochat/d1")
    assert old.model_config()["window_pattern"] == "L"  # patched as its checkpoint manager does
    assert not [f for f in doctor.static_findings(discovery.find_experiment(zoo, "nanochat")) if f.severity == "error"]


def test_nanochat_training_log_is_read(zoo) -> None:
    log = discovery.find_run(zoo, "nanochat/d2").log()
    assert log.error is None and log.rows == 40
    assert np.isfinite(log.columns[TRAIN_LOSS]).all()
    assert np.isfinite(log.columns["validation bpb"]).sum() == 4  # steps 0, 10, 20, 30
    assert log.columns["tokens/s"][0] == 41234  # "41,234" as nanochat prints it
    assert log.columns["iteration time (ms)"][0] == pytest.approx(12.34)


def test_nanochat_printed_lines_are_told_from_nanogpts() -> None:
    nano = b"step 00001/00010 (10.00%) | loss: 4.5 | dt: 3.0ms\nStep 00001 | Validation bpb: 1.5\n"
    assert logformats.sniff(nano) == logformats.PRINTED
    table = logformats.printed_table(nano.decode())
    assert table.column("train loss").to_pylist() == [4.5] and table.column("validation bpb").to_pylist() == [1.5]


def _evaluate(pool, models, run_id, text=TEXT):
    report = evaluation_run.evaluate(pool, [run_id], [text], results.EvalSettings(kmax=5), models_dir=models,
                                     use_cache=False)
    result = report.results[0]
    assert result.ok, result.error
    return result, metrics.metrics(result.sums, [1, 5])


@pytest.mark.parametrize("tag", ["d2", "d1"])
def test_nanochat_bits_per_byte_equal_its_own_convention(module_pool, zoo, tag) -> None:
    text = TEXT
    direct = sourcezoo.direct_nanochat(zoo / "nanochat", tag, text)
    while direct["window_remainder"] == 1:  # nanochat's loss path refuses a one-token window
        text = text[:-2] + "\n"
        direct = sourcezoo.direct_nanochat(zoo / "nanochat", tag, text)
    result, figures = _evaluate(module_pool, zoo, f"nanochat/{tag}", text)
    assert direct["bytes"] == len(text.encode("utf-8"))
    assert result.tokens == direct["tokens"]
    assert figures["bits_per_byte"] == pytest.approx(direct["bits_per_byte"], abs=1e-4)
    assert "<|bos|>" in result.info["start"]
    assert result.changed_chars == 0
    if tag == "d2":  # trained, so well below uniform guessing
        assert figures["loss"] < np.log(result.info["vocab_size"]) - 0.3


def test_nanochat_notes_name_its_torch_pin_and_a_missing_training_package(module_pool, zoo) -> None:
    info = module_pool.client(discovery.find_experiment(zoo, "nanochat")).request("info", run="d2")
    notes = " ".join(info["notes"])
    assert "torch==2.9.1" in notes
    if importlib.util.find_spec("rustbpe") is None:
        assert "rustbpe" in notes and "not installed" in notes
    assert info["max_seq_len"] == 64
    assert info["loaded_by"] == "nanochat's checkpoint_manager.build_model (step 40)"


def test_nanochat_single_position_is_given_twice() -> None:
    torch = pytest.importorskip("torch")
    from sandbox.worker.kinds.nanochat import full_logits

    class Refuses(torch.nn.Module):
        def forward(self, ids):
            assert ids.shape[1] > 1
            return torch.nn.functional.one_hot(ids, 7).float().cumsum(1)

    ids = torch.tensor([[3], [5]])
    out = full_logits(Refuses(), ids)
    assert out.shape == (2, 1, 7) and out[0, 0].argmax() == 3 and out[1, 0].argmax() == 5


def test_tensorboard_run_has_curves_and_final_losses(zoo) -> None:
    log = discovery.find_run(zoo, "tb_lab/runA").log()
    assert log.error is None
    assert log.columns["step"].tolist() == list(range(20))  # both event files of the resumed run
    assert log.columns[TRAIN_LOSS].tolist() == pytest.approx([sourcezoo.tensorboard_loss("runA", s) for s in range(20)])
    assert np.isfinite(log.columns[VAL_LOSS]).sum() == 4
    assert log.last_finite(VAL_LOSS) == pytest.approx(sourcezoo.tensorboard_loss("runA", 19) + 0.1)
    assert "learning rate" in log.columns
    other = discovery.find_run(zoo, "tb_lab/runB").log()
    assert other.last_finite(TRAIN_LOSS) == pytest.approx(sourcezoo.tensorboard_loss("runB", 9))


def test_tensorboard_reading_imports_no_torch(zoo) -> None:
    import subprocess

    code = ("import sys; from sandbox.zoo import discovery; "
            f"log = discovery.find_run({str(zoo)!r}, 'tb_lab/runB').log(); "
            "assert log.rows == 10, log.notes; assert 'torch' not in sys.modules, 'torch imported'")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]


def test_lightning_metrics_rows_of_one_step_are_merged(zoo) -> None:
    run = discovery.find_run(zoo, "pl_lab/version_0")
    log = run.log()
    assert log.error is None and not any("more than once" in n for n in log.notes)
    steps = log.columns["step"].tolist()
    assert steps == sorted(set(steps)) and 29.0 in steps
    at = steps.index(29.0)
    # the train row and the validation row of step 29 are one row
    assert np.isfinite(log.columns[TRAIN_LOSS][at]) and np.isfinite(log.columns[VAL_LOSS][at])
    assert np.isfinite(log.columns[VAL_LOSS]).sum() == 3
    assert "train_loss_epoch" in log.columns
    assert run.train_config() == {"lr": 0.001, "batch_size": 16}


def test_a_column_logged_twice_for_a_step_keeps_the_last_and_says_so() -> None:
    log = logparse.parse_log(b"step,loss,val_loss\n0,5,\n10,4,\n10,,3.5\n10,3.9,\n", "metrics.csv")
    assert log.columns["step"].tolist() == [0, 10]
    assert log.columns[TRAIN_LOSS].tolist() == [5, 3.9] and log.columns[VAL_LOSS][1] == 3.5
    assert any("1 step(s) more than once" in n for n in log.notes)


def test_logs_only_runs_have_no_model_in_one_sentence(module_pool, zoo) -> None:
    report = evaluation_run.evaluate(module_pool, ["tb_lab/runA"], [TEXT], results.EvalSettings(), models_dir=zoo,
                                     use_cache=False)
    assert not report.results[0].ok
    assert "has only training logs (no model to load)" in report.results[0].error["message"]


def test_logs_only_runs_are_in_the_runs_table_with_final_losses(zoo) -> None:
    from sandbox.curves import runtable

    runs = [discovery.find_run(zoo, rid) for rid in ("tb_lab/runA", "tb_lab/runB", "pl_lab/version_0")]
    table = runtable.runs_table(runs).set_index("run")
    for run in runs:
        log = run.log()
        assert table.loc[run.id, "final val loss"] == pytest.approx(log.last_finite(VAL_LOSS))
        assert table.loc[run.id, "status"] == "ok"
    assert table.loc["tb_lab/runA", "final val loss"] == pytest.approx(sourcezoo.tensorboard_loss("runA", 19) + 0.1)


def test_a_trainer_folder_without_trainer_state_reads_its_tensorboard_runs(tmp_path) -> None:
    from torch.utils.tensorboard import SummaryWriter

    folder = tmp_path / "hf_run"
    folder.mkdir()
    (folder / "config.json").write_text('{"model_type": "gpt2"}')
    (folder / "model.safetensors").write_bytes(b"")
    writer = SummaryWriter(log_dir=str(folder / "runs" / "Dec08_03-41-00_host"))
    for step in range(2, 12, 2):
        writer.add_scalar("train/loss", 4.0 - step / 10, step)
        writer.add_scalar("train/grad_norm", 1.0, step)
    writer.add_scalar("eval/loss", 3.5, 10)
    writer.close()
    run = discovery.find_run(tmp_path, "hf_run/final")
    log = run.log()
    assert run.log_path.parent.name == "Dec08_03-41-00_host"
    assert log.columns["step"].tolist() == [2, 4, 6, 8, 10]
    assert log.last_finite(TRAIN_LOSS) == pytest.approx(3.0) and log.last_finite(VAL_LOSS) == 3.5
    assert "grad norm" in log.columns


def test_scalars_written_as_tensors_are_read(tmp_path) -> None:
    """TensorFlow 2's tf.summary.scalar writes tensors with the scalars plugin: written here by
    tensorboard's own event writer."""
    import time

    from tensorboard.compat.proto.event_pb2 import Event
    from tensorboard.compat.proto.summary_pb2 import Summary, SummaryMetadata
    from tensorboard.summary.writer.event_file_writer import EventFileWriter
    from tensorboard.util import tensor_util

    folder = tmp_path / "keras_logs" / "train"
    writer = EventFileWriter(str(folder))
    meta = SummaryMetadata(plugin_data=SummaryMetadata.PluginData(plugin_name="scalars"))
    for step in range(5):
        value = Summary.Value(tag="epoch_loss", tensor=tensor_util.make_tensor_proto(2.0 - step / 10), metadata=meta)
        writer.add_event(Event(step=step, wall_time=time.time(), summary=Summary(value=[value])))
    writer.close()
    run = discovery.find_run(tmp_path, "keras_logs/train")
    log = run.log()
    assert log.error is None and log.columns["step"].tolist() == [0, 1, 2, 3, 4]
    assert log.columns["epoch_loss"].tolist() == pytest.approx([2.0 - s / 10 for s in range(5)])


def test_nanochat_phases_are_runs_named_after_their_tag(tmp_path) -> None:
    root = tmp_path / "chat"
    (root / "nanochat").mkdir(parents=True)
    for name in ("gpt.py", "checkpoint_manager.py"):
        (root / "nanochat" / name).write_text("")
    for phase, steps in (("base", (100, 2000)), ("chatsft", (50,)), ("mid", ())):
        folder = root / "base_dir" / f"{phase}_checkpoints" / "d20"
        folder.mkdir(parents=True)
        for step in steps:
            (folder / f"model_{step:06d}.pt").write_bytes(b"")
            (folder / f"meta_{step:06d}.json").write_text('{"model_config": {"vocab_size": 65536}}')
    exp = discovery.find_experiment(tmp_path, "chat")
    assert exp.kind == "nanochat"
    assert [r.name for r in exp.runs] == ["d20", "sft-d20"]  # a tag with no saved step is no run
    assert exp.runs[0].weights.name == "model_002000.pt"
    errors = [f for f in doctor.static_findings(exp) if f.severity == "error"]
    assert [f.file for f in errors] == ["base_dir/tokenizer/tokenizer.pkl"]


def test_a_package_nanochat_imports_that_is_missing_is_named(tmp_path) -> None:
    models = tmp_path / "models"
    root = sourcezoo.make_nanochat(models)
    gpt = root / "nanochat" / "gpt.py"
    gpt.write_text("import sandbox_test_absent_package\n" + gpt.read_text())
    pool = WorkerPool(max_workers=1, device="cpu", timeout=120)
    try:
        with pytest.raises(Exception) as caught:
            pool.client(discovery.find_experiment(models, "nanochat")).request("info", run="d2")
    finally:
        pool.close_all()
    assert "imports sandbox_test_absent_package, which is not installed" in str(caught.value)
    assert "pip install sandbox_test_absent_package" in caught.value.hint
