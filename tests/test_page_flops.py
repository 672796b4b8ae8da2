"""AppTest: the Loss curves page's training-FLOPs axis and its loss-vs-cost scatters."""

from __future__ import annotations

import json

import toyzoo


def test_flops_axis_and_scaling_scatter(app_at, tmp_path, monkeypatch):
    monkeypatch.setenv("SANDBOX_CACHE_DIR", str(tmp_path / "cache"))
    root = toyzoo.make_toy_a(tmp_path / "models")
    cfg_path = root / "trained/run1/model_config.json"
    cfg_path.write_text(json.dumps(json.loads(cfg_path.read_text()) | {"n_layers": 1}))
    config = root / "config.py"  # give the toy a layer count, as real configs have
    config.write_text(config.read_text().replace("    dim: int = 16\n", "    dim: int = 16\n    n_layers: int = 1\n"))
    toyzoo.make_toy_b(tmp_path / "models")
    at = app_at(tmp_path / "models").run()
    at.switch_page("pages/loss_curves.py").run()
    assert not at.exception
    at.radio(key="lc_x").set_value("flops").run()
    assert not at.exception
    captions = " ".join(c.value for c in at.caption)
    assert "toy_a/run1** computed from its configs" in captions
    infos = " ".join(i.value for i in at.info)
    assert "toy_b/cached" in infos  # no shape / no tokens: listed, not faked
    at.toggle(key="lc_scaling").set_value(True).run()
    assert not at.exception
    assert len(at.get("arrow_vega_lite_chart")) + len(at.get("vega_lite_chart")) >= 3
