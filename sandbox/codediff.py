"""What an experiment changed: a file-by-file diff of its code against a base experiment.

Read-only and confined to the models directory: experiments are looked up by name among
those discovered, and every file compared must resolve inside the models directory (a
symbolic link pointing elsewhere is reported with the status OUTSIDE, not followed).
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass
from pathlib import Path

from sandbox.discovery import Experiment, inside

# The code that defines a model: its config, its modules, its tokenizer code.
PATTERNS = ("config.py", "modules/**/*.py", "tokenizers/**/*.py")


@dataclass(frozen=True)
class FileDiff:
    """One file's comparison between a base experiment (a) and another (b)."""

    path: str
    status: str  # "changed", "unchanged", "only in base", "only in other", "not readable", OUTSIDE
    diff: str = ""  # unified diff text when changed
    added: int = 0
    removed: int = 0


OUTSIDE = "outside the models directory"  # the status of a file that is a link out of it


def _all_code_files(exp: Experiment) -> dict[str, Path]:
    files = {}
    for pattern in PATTERNS:
        for path in exp.root.glob(pattern):
            if path.is_file() and "__pycache__" not in path.parts:
                files[path.relative_to(exp.root).as_posix()] = path
    return dict(sorted(files.items()))


def code_files(exp: Experiment) -> dict[str, Path]:
    """Relative path -> file for the experiment's model code (inside the models directory only)."""
    base = exp.root.parent.resolve()
    return {rel: p for rel, p in _all_code_files(exp).items() if inside(p, base)}


def linked_code_files(exp: Experiment) -> list[str]:
    """Model-code files of ``exp`` (relative paths) that are links out of the models directory:
    never read, reported by the code diff and the doctor."""
    return sorted(set(_all_code_files(exp)) - set(code_files(exp)))


def _read(path: Path) -> list[str] | None:
    try:
        return path.read_text(encoding="utf-8").splitlines(keepends=True)
    except (OSError, UnicodeDecodeError):
        return None


def diff_experiments(base: Experiment, other: Experiment, context: int = 3) -> list[FileDiff]:
    """Every model-code file of either experiment, with a unified diff where it changed."""
    a, b = code_files(base), code_files(other)
    refused = set(linked_code_files(base)) | set(linked_code_files(other))
    out = []
    for rel in sorted(set(a) | set(b) | refused):
        if rel in refused:
            out.append(FileDiff(rel, OUTSIDE))
            continue
        if rel not in b:
            out.append(FileDiff(rel, "only in base", removed=len(_read(a[rel]) or [])))
            continue
        if rel not in a:
            out.append(FileDiff(rel, "only in other", added=len(_read(b[rel]) or [])))
            continue
        la, lb = _read(a[rel]), _read(b[rel])
        if la is None or lb is None:
            out.append(FileDiff(rel, "not readable"))
        elif la == lb:
            out.append(FileDiff(rel, "unchanged"))
        else:
            lines = list(
                difflib.unified_diff(la, lb, f"{base.name}/{rel}", f"{other.name}/{rel}", n=context)
            )
            added = sum(1 for ln in lines if ln.startswith("+") and not ln.startswith("+++"))
            removed = sum(1 for ln in lines if ln.startswith("-") and not ln.startswith("---"))
            out.append(FileDiff(rel, "changed", "".join(lines), added, removed))
    return out


def similarity(a: Experiment, b: Experiment) -> float:
    """Share of identical model-code lines between two experiments (0..1)."""
    fa, fb = code_files(a), code_files(b)
    total = same = 0
    for rel in set(fa) | set(fb):
        la = _read(fa[rel]) if rel in fa else []
        lb = _read(fb[rel]) if rel in fb else []
        la, lb = la or [], lb or []
        matcher = difflib.SequenceMatcher(None, la, lb, autojunk=False)
        same += 2 * sum(block.size for block in matcher.get_matching_blocks())
        total += len(la) + len(lb)
    return same / total if total else 0.0


def default_base(target: Experiment, experiments: list[Experiment]) -> Experiment | None:
    """The experiment ``target`` was most likely forked from.

    The one its README names ("forked from <name>") if any, else the most similar other one.
    """
    others = [e for e in experiments if e.name != target.name]
    if not others:
        return None
    readme = target.root / "README.md"
    if readme.is_file() and inside(readme, target.root.parent.resolve()):
        text = readme.read_text(encoding="utf-8", errors="replace").lower()
        for exp in others:
            if re.search(rf"forked from\W+{re.escape(exp.name.lower())}\b", text):
                return exp
    return max(others, key=lambda e: similarity(target, e))
