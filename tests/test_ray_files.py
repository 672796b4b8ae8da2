"""The Ray backend's parts that need no cluster: what travels, the fingerprints, the settings,
the pool chosen and the sentence without Ray."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest
import toyzoo

from sandbox.settings import ray_address
from sandbox.worker.backends import make_pool, pool_label
from sandbox.worker.pool import WorkerPool
from sandbox.worker.ray import INSTALL_SENTENCE, RaySettings, RayUnavailable
from sandbox.worker.ray.files import content_fingerprint, fingerprint_here, manifest, stage

DOCS = [
    "once upon a time a little fox ran to the river, and the river was cold! " * 3,
    "the cat sat on the mat. the dog ran far away, and nobody saw it again. " * 3,
]


@pytest.fixture
def zoo(tmp_path: Path) -> Path:
    return toyzoo.make_pair(tmp_path / "models")


# -- what travels ----------------------------------------------------------------------------------


def test_only_what_a_worker_reads_travels_and_no_link_out(zoo: Path, tmp_path: Path) -> None:
    root = zoo / "toy_a"
    secret = tmp_path / "secret.txt"
    secret.write_text("not for the cluster")
    (root / "notes.lnk").symlink_to(secret)  # a link out of the models directory
    (root / "trained/run1/optimizer.pt").write_bytes(b"x" * 1000)  # a checkpoint: never read
    (root / ".git").mkdir()
    (root / ".git/HEAD").write_text("ref")
    (root / "trained/run2/model_copy.pth").symlink_to(root / "trained/run1/model.pth")  # inside: fine, not read
    (root / "modules/__pycache__").mkdir()
    (root / "modules/__pycache__/model.cpython-311.pyc").write_bytes(b"\0")
    m = manifest(root)
    listed = {e.rel for e in m.entries}
    assert listed == {
        "config.py", "modules/__init__.py", "modules/layers.py", "modules/model.py",
        "tokenizers/char/tokenizer.py", "tokenizers/char/models/33.model",
        "trained/run1/model.pth", "trained/run1/model_config.json",
        "trained/run2/model.pth", "trained/run2/model_config.json",
    }  # fmt: skip
    assert m.left_out == ("notes.lnk",)
    staged = stage(m, "toy_a")
    try:
        shipped = {p.relative_to(staged / "toy_a").as_posix() for p in (staged / "toy_a").rglob("*") if p.is_file()}
        assert shipped == listed
        assert (staged / "toy_a/config.py").read_text() == (root / "config.py").read_text()
    finally:
        import shutil

        shutil.rmtree(staged)


def test_the_fingerprint_follows_content_not_modification_times(zoo: Path, tmp_path: Path) -> None:
    import shutil

    root = zoo / "toy_a"
    before = content_fingerprint(manifest(root))
    copy = tmp_path / "elsewhere" / "toy_a"
    shutil.copytree(root, copy)  # new mtimes, same bytes: the copy Ray unpacks on a node
    for path in copy.rglob("*"):
        os.utime(path, (1, 1))
    assert content_fingerprint(manifest(copy)) == before
    # What the actor checks: the app's files, found in its copy by content.
    rels = [e.rel for e in manifest(root).entries]
    assert fingerprint_here(copy, rels) == before
    (copy / "tokenizers/char/cache.bin").write_bytes(b"written by the experiment once it ran")
    assert fingerprint_here(copy, rels) == before, "a file the app did not send is not checked"
    (copy / "modules/layers.py").write_text("# another version\n")
    assert fingerprint_here(copy, rels) not in (before, None)
    (copy / "modules/layers.py").unlink()
    assert fingerprint_here(copy, rels) is None
    weights = root / "trained/run1/model.pth"
    weights.write_bytes((root / "trained/run2/model.pth").read_bytes())
    assert content_fingerprint(manifest(root)) != before
    stamp = manifest(root).stamp
    (root / "trained/run1/log_data.csv").write_text("Step\n1\n")  # a log growing while a run trains
    assert manifest(root).stamp == stamp, "a log is not something a worker reads"


# -- settings and the pool -------------------------------------------------------------------------


def test_make_pool_is_local_without_an_address(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SANDBOX_RAY_ADDRESS", raising=False)
    assert ray_address() is None
    pool = make_pool(ray_address(), device="cpu", max_workers=2)
    assert type(pool) is WorkerPool and pool.max_workers == 2
    assert pool_label(pool) == "workers: local processes on the app's machine"


def test_asking_for_ray_without_it_is_one_sentence(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "ray", None)  # as if not installed: import ray raises ImportError
    monkeypatch.setenv("SANDBOX_RAY_ADDRESS", "auto")
    with pytest.raises(RayUnavailable) as caught:
        make_pool(ray_address())
    assert str(caught.value) == INSTALL_SENTENCE
    assert INSTALL_SENTENCE == "Ray workers need the optional ray package: pip install -r requirements-ray.txt."


def test_ray_settings_from_the_environment(monkeypatch: pytest.MonkeyPatch, caplog) -> None:
    pytest.importorskip("ray")
    monkeypatch.setenv("SANDBOX_RAY_ADDRESS", "10.1.2.3:6379")
    monkeypatch.setenv("SANDBOX_RAY_SHARED_FS", "1")
    monkeypatch.setenv("SANDBOX_RAY_GPUS_PER_ACTOR", "0.5")
    monkeypatch.setenv("SANDBOX_RAY_MAX_UPLOAD_MB", "lots")
    pool = make_pool(ray_address(), device="cpu")  # nothing connects until a worker is needed
    from sandbox.worker.ray.pool import RayWorkerPool

    assert isinstance(pool, RayWorkerPool)
    assert pool.settings == RaySettings("10.1.2.3:6379", shared_fs=True, gpus_per_actor=0.5, max_upload_mb=200.0)
    assert "SANDBOX_RAY_MAX_UPLOAD_MB must be a number above 0, not 'lots'" in caplog.text
    assert pool_label(pool) == "workers: Ray cluster at 10.1.2.3:6379"
    assert ray_address("auto") == "auto", "an address given beats the environment"


def test_an_actor_asks_for_a_gpu_only_when_the_cluster_has_one(monkeypatch: pytest.MonkeyPatch) -> None:
    from sandbox.worker.ray.settings import actor_resources

    monkeypatch.delenv("SANDBOX_DEVICE", raising=False)
    settings = RaySettings("auto", gpus_per_actor=0.5, cpus_per_actor=2.0)
    assert actor_resources(settings, None, cluster_gpus=4.0) == {"num_cpus": 2.0, "num_gpus": 0.5}
    assert actor_resources(settings, "cuda:1", cluster_gpus=4.0) == {"num_cpus": 2.0, "num_gpus": 0.5}
    assert actor_resources(settings, None, cluster_gpus=0) == {"num_cpus": 2.0}
    assert actor_resources(settings, "cpu", cluster_gpus=4.0) == {"num_cpus": 2.0}
    monkeypatch.setenv("SANDBOX_DEVICE", "cpu")  # the override applies wherever the workers run
    assert actor_resources(settings, None, cluster_gpus=4.0) == {"num_cpus": 2.0}


def test_an_address_where_nothing_listens_is_one_sentence_at_once() -> None:
    pytest.importorskip("ray")
    import socket

    from sandbox.worker.ray.connect import connect

    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(RayUnavailable, match=rf"^The app could not join the Ray cluster at 127\.0\.0\.1:{port}: nothing answers there"):
        connect(f"127.0.0.1:{port}")


def test_on_a_cluster_each_node_picks_its_device_unless_one_is_asked_for(monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("ray")
    from sandbox.worker.backends import AUTO_DEVICE, workers_device

    monkeypatch.delenv("SANDBOX_DEVICE", raising=False)
    assert workers_device("auto") == AUTO_DEVICE == "auto"
    assert workers_device("auto", "cuda:1") == "cuda:1"
    monkeypatch.setenv("SANDBOX_DEVICE", "cpu")
    assert workers_device("10.0.0.1:6379") == "cpu"
    assert make_pool("auto", device=AUTO_DEVICE).device is None, "the pool asks for no device: each worker picks"
    assert make_pool("auto", device="cpu").device == "cpu"
    with pytest.raises(ValueError, match="unknown device 'tpu'"):
        workers_device("auto", "tpu")


def test_the_cli_asked_for_ray_without_it_says_one_sentence(monkeypatch: pytest.MonkeyPatch, capsys, zoo: Path) -> None:
    from sandbox import cli

    monkeypatch.setitem(sys.modules, "ray", None)  # as if not installed
    argv = ["--ray", "auto", "eval", "--models-dir", str(zoo), "--runs", "toy_a/run1", "--docs", "1"]
    assert cli.main(argv) == 2
    assert capsys.readouterr().err == f"error: {INSTALL_SENTENCE}\n"
    monkeypatch.setenv("SANDBOX_RAY_ADDRESS", "auto")  # the same from the environment
    assert cli.main(argv[2:]) == 2
    assert capsys.readouterr().err == f"error: {INSTALL_SENTENCE}\n"


def test_the_app_takes_its_cluster_from_its_own_arguments_else_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    from sandbox.settings import parse_app_ray

    monkeypatch.delenv("SANDBOX_RAY_ADDRESS", raising=False)
    assert parse_app_ray(["--models-dir", "m", "--server.port", "1"]) is None
    assert parse_app_ray(["--models-dir", "m", "--ray", "gpu-box:6379"]) == "gpu-box:6379"
    monkeypatch.setenv("SANDBOX_RAY_ADDRESS", " auto ")
    assert parse_app_ray([]) == "auto"
    assert parse_app_ray(["--ray", "10.0.0.2:6379"]) == "10.0.0.2:6379", "the app's argument beats the environment"
    monkeypatch.setenv("SANDBOX_RAY_ADDRESS", "  ")
    assert parse_app_ray([]) is None
