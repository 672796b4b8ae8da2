"""Text from outside made safe once, where it enters (Reliability II, 5 and 8).

A JSON escape can carry half a surrogate pair ("\\ud800"), which no UTF-8 encoder takes: it
stopped the CLI with a traceback and covered a page with an exception box. A worker's error
message can carry terminal escapes, which the CLI printed raw. Both are cleaned where the
text is read (`sandbox.text.encodable`, `terminal_safe`), so every later step can print it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import toyzoo

from sandbox.evaluation import formats
from sandbox.settings import PROJECT_ROOT
from sandbox.text import encodable, terminal_safe
from sandbox.worker.protocol import error_from_reply

LONE = "\ud800"
ESCAPES = "\x1b[31m\x1b]0;owned\x07\x1b[2J"


def cli(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "sandbox", *args], capture_output=True, timeout=300, cwd=PROJECT_ROOT,
                          env=env)  # fmt: skip


def test_the_cleaners_replace_surrogates_and_drop_escapes() -> None:
    assert encodable(f"a{LONE}b") == "a\ufffdb" and encodable("😀 ok") == "😀 ok"
    assert terminal_safe(f"red{ESCAPES} text\tand\nmore{LONE}") == "red text\tand\nmore\ufffd"


def test_a_lone_surrogate_in_a_jsonl_text_is_replaced_where_it_is_read() -> None:
    body = "\n".join(json.dumps({"text": t}) for t in (f"the cat {LONE} sat", "the dog ran")).encode()
    docs = formats.parse_documents(body, "odd.jsonl")
    assert docs == ["the cat \ufffd sat", "the dog ran"]
    assert all(doc.encode("utf-8") for doc in docs)


def test_the_cli_evaluates_a_jsonl_file_with_a_lone_surrogate(toy_models: Path, tmp_path: Path) -> None:
    data = tmp_path / "odd.jsonl"
    data.write_text("\n".join(json.dumps({"text": t}) for t in (f"the cat {LONE} sat on the mat", "the dog ran far")))
    env = {**os.environ, "SANDBOX_CACHE_DIR": str(tmp_path / "cache")}
    out = cli("eval", "--runs", "toy_a/run1", "--data", str(data), "--models-dir", str(toy_models), "--json", env=env)
    assert out.returncode == 0, out.stderr.decode(errors="replace")
    assert b"Traceback" not in out.stderr
    (run,) = json.loads(out.stdout)["runs"]
    assert run["run_id"] == "toy_a/run1" and not run["error"], "the evaluation ran"


def test_a_worker_error_is_made_safe_when_its_reply_is_read() -> None:
    exc = error_from_reply({"sentence": f"ValueError: bad {LONE} window{ESCAPES}", "hint": f"fix{ESCAPES} it",
                            "traceback": f"Traceback ...\nValueError: bad {LONE}"})  # fmt: skip
    assert str(exc) == "ValueError: bad \ufffd window" and exc.hint == "fix it"
    assert exc.detail.encode("utf-8") and "\x1b" not in exc.detail


@pytest.fixture
def odd_zoo(tmp_path: Path) -> Path:
    """toy_a whose forward raises an error with half a surrogate pair and terminal escapes."""
    models = toyzoo.make_pair(tmp_path / "models")
    model = models / "toy_a/modules/model.py"
    source = model.read_text()
    raise_it = f"        if input_ids.shape[1] > 4:\n            raise ValueError({f'no {LONE} window {ESCAPES}here'!r})\n"
    model.write_text(source.replace("        faults()\n", "        faults()\n" + raise_it, 1))
    return models


def test_the_cli_prints_a_worker_error_with_a_lone_surrogate_as_one_clean_sentence(odd_zoo: Path) -> None:
    out = cli("generate", "--run", "toy_a/run1", "--prompt", "the cat sat on the mat", "--models-dir", str(odd_zoo))
    err = out.stderr.decode("utf-8")  # strict: a lone surrogate would not have been printed at all
    assert out.returncode != 0 and "Traceback" not in err
    assert "no \ufffd window here" in err and "\x1b" not in err


def test_a_page_shows_a_worker_error_with_a_lone_surrogate_without_an_exception_box(app_at, odd_zoo: Path) -> None:
    at = app_at(odd_zoo).run()
    at.switch_page("pages/playground.py").run()
    at.multiselect(key="pg_runs").set_value(["toy_a/run1", "toy_b/cached"]).run()
    at.text_area(key="pg_prompt").set_value("the cat sat on the mat")
    at.button(key="pg_go").click().run()
    assert not at.exception, [e.value for e in at.exception]
    assert any("no \ufffd window here" in e.value for e in at.error)
