"""The architecture holds: torch only behind the worker boundary, short modules, documented
packages, experiments that stand alone, no sys.path patches.

The import contracts (layers, the worker boundary, no Streamlit in the library, no cycles)
are `lint-imports`'s (pyproject.toml); these tests check what a contract cannot: what a
real app process has imported after it ran every page.
"""

from __future__ import annotations

import ast
import json
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import toyzoo

from sandbox.settings import PROJECT_ROOT

SANDBOX = PROJECT_ROOT / "sandbox"
# The worker side: modules only a worker process imports (they import torch).
WORKER_SIDE = {
    f"sandbox.worker.{name}"
    for name in ("__main__", "server", "scheduler", "host", "loaded", "failures", "scoring", "generation", "sampling", "params", "device",
                 "kinds", "kinds.template", "kinds.nanogpt", "kinds.nanochat", "kinds.huggingface", "kinds.adapter",
                 "kinds.logs", "kinds.wrap")
}
MAX_LINES = 400  # "no module over ~400 lines": a little slack, never a second module's worth
SLACK = 20


def _module_name(path: Path) -> str:
    parts = path.relative_to(PROJECT_ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _app_side_modules() -> list[str]:
    """Every module of the sandbox but the worker side, and `pages.common`."""
    names = sorted(_module_name(p) for p in SANDBOX.rglob("*.py"))
    return [n for n in names if n not in WORKER_SIDE and n != "sandbox.__main__"] + ["pages.common"]


def _modules_the_pages_import() -> set[str]:
    """Every `sandbox` module named by an import in the entry script or a page, lazy ones too."""
    found = set()
    for path in [PROJECT_ROOT / "streamlit_app.py", *sorted((PROJECT_ROOT / "pages").glob("*.py"))]:
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("sandbox"):
                found.add(node.module)
                found.update(f"{node.module}.{a.name}" for a in node.names if (SANDBOX.parent / f"{node.module}.{a.name}".replace(".", "/")).with_suffix(".py").is_file())
            elif isinstance(node, ast.Import):
                found.update(a.name for a in node.names if a.name.startswith("sandbox"))
    return found


def _python(code: str, **kw) -> subprocess.CompletedProcess:
    """``code`` in a fresh interpreter (nothing of this test process is imported there)."""
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=PROJECT_ROOT, timeout=600, **kw)


def test_the_pages_import_only_app_side_modules():
    imported = _modules_the_pages_import()
    assert imported, "the pages' imports were not found"
    assert not imported & WORKER_SIDE, imported & WORKER_SIDE


def test_importing_every_app_side_module_imports_no_torch():
    modules = _app_side_modules() + sorted(_modules_the_pages_import())
    code = f"import importlib, sys\nfor m in {modules!r}:\n    importlib.import_module(m)\nprint(json.dumps(sorted(m for m in sys.modules if m == 'torch' or m.startswith('torch.'))))"
    out = _python("import json\n" + code)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout) == [], "torch was imported in the app process"


def test_the_app_process_runs_every_page_and_the_cli_without_torch(tmp_path):
    """A real app session in a fresh process: the entry script, then every page, then the CLI's
    `list` in the same process; torch is never imported (workers are other processes)."""
    models = tmp_path / "models"
    toyzoo.make_toy_a(models)
    toyzoo.make_toy_b(models)
    script = textwrap.dedent(
        f"""
        import json, sys
        from streamlit.testing.v1 import AppTest
        at = AppTest.from_file("streamlit_app.py", default_timeout=300)
        at.run()
        problems = [str(e.value) for e in at.exception]
        for page in ("pages/models.py", "pages/loss_curves.py", "pages/evaluation.py", "pages/playground.py", "pages/arena.py"):
            at.switch_page(page).run()
            problems += [f"{{page}}: {{e.value}}" for e in at.exception]
        from sandbox import cli
        cli.main(["list", "--models-dir", {str(models)!r}])
        print(json.dumps({{"torch": "torch" in sys.modules, "problems": problems}}))
        """
    )
    env = {**os.environ, "SANDBOX_MODELS_DIR": str(models), "SANDBOX_CACHE_DIR": str(tmp_path / "cache")}
    out = _python(script, env=env)
    assert out.returncode == 0, out.stderr[-3000:]
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["problems"] == []
    assert result["torch"] is False, "the app process imported torch"


def test_no_module_is_long_and_every_package_says_what_it_owns():
    long = {str(p.relative_to(PROJECT_ROOT)): n for p in SANDBOX.rglob("*.py") if (n := len(p.read_text(encoding="utf-8").splitlines())) > MAX_LINES + SLACK}
    assert long == {}
    for init in SANDBOX.rglob("__init__.py"):
        doc = ast.get_docstring(ast.parse(init.read_text(encoding="utf-8")))
        assert doc and len(doc) > 200, f"{init.relative_to(PROJECT_ROOT)} needs a paragraph on what it owns"
        if init.parent != SANDBOX:
            assert "import" in doc, f"{init.relative_to(PROJECT_ROOT)} must say what it may import"


def test_no_sys_path_patches_and_the_experiments_do_not_import_the_sandbox():
    patched = [
        f"{p.relative_to(PROJECT_ROOT)}:{i}"
        for folder in ("tests", "bench", "models", "pages")
        for p in (PROJECT_ROOT / folder).rglob("*.py")
        for i, line in enumerate(p.read_text(encoding="utf-8").splitlines(), start=1)
        if re.search(r"sys\.path\.(insert|append)\(", line) and "re.search" not in line
    ]
    assert patched == []
    sandbox_imports = [
        f"{p.relative_to(PROJECT_ROOT)}:{i}"
        for p in (PROJECT_ROOT / "models").rglob("*.py")
        for i, line in enumerate(p.read_text(encoding="utf-8").splitlines(), start=1)
        if re.match(r"\s*(from|import)\s+sandbox\b", line)
    ]
    assert sandbox_imports == []


def test_the_readme_layout_names_every_package_and_module_of_the_tree():
    readme = (PROJECT_ROOT / "README.md").read_text(encoding="utf-8")
    layout = readme.split("## Layout", 1)[1].split("```", 2)[1]
    packages = sorted(p.parent.name for p in SANDBOX.glob("*/__init__.py"))
    modules = sorted(p.name for p in SANDBOX.glob("*.py") if p.stem not in ("__init__", "__main__"))
    assert [p for p in packages if f"  {p}/" not in layout] == []
    assert [m for m in modules if m not in layout] == []
    assert all(f"{name}/" in layout for name in ("pages", "sandbox", "models", "tests", "bench"))
