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

from sandbox.zoo.confine import inside
from sandbox.zoo.discovery import Experiment

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


def forked_from(target: Experiment, experiments: list[Experiment]) -> Experiment | None:
    """The experiment ``target``'s README says it was forked from ("forked from <name>"), if any."""
    readme = target.root / "README.md"
    if not readme.is_file() or not inside(readme, target.root.parent.resolve()):
        return None  # a README linked out of the models directory is not read
    try:
        text = readme.read_text(encoding="utf-8", errors="replace").lower()
    except OSError:
        return None
    for exp in experiments:
        if exp.name != target.name and re.search(rf"forked from\W+{re.escape(exp.name.lower())}\b", text):
            return exp
    return None


def _descendants(target: Experiment, experiments: list[Experiment]) -> set[str]:
    """Names of the experiments forked from ``target``, directly or through other forks."""
    parent = {e.name: p.name for e in experiments if (p := forked_from(e, experiments)) is not None}
    out: set[str] = set()
    frontier = {target.name}
    while frontier:
        frontier = {child for child, par in parent.items() if par in frontier and child not in out}
        frontier.discard(target.name)
        out |= frontier
    return out


def default_base(target: Experiment, experiments: list[Experiment]) -> Experiment | None:
    """The base to diff ``target`` against: the fork is the change, its template the base.

    The experiment its README names ("forked from <name>") if any; else the most similar
    other one that is not a fork of it (a template is never shown as a change on top of
    its own fork); else, when only its forks are there, the most similar of those.
    """
    others = [e for e in experiments if e.name != target.name]
    if not others:
        return None
    parent = forked_from(target, experiments)
    if parent is not None:
        return parent
    forks = _descendants(target, experiments)
    candidates = [e for e in others if e.name not in forks] or others
    return max(candidates, key=lambda e: similarity(target, e))


def default_target(experiments: list[Experiment]) -> Experiment | None:
    """The experiment "What changed" opens on: the first one forked from another one of the
    zoo (its change is what a visitor wants to see), else the last one."""
    for exp in experiments:
        if forked_from(exp, experiments) is not None:
            return exp
    return experiments[-1] if experiments else None


def base_reason(target: Experiment, base: Experiment, experiments: list[Experiment]) -> str:
    """Why ``base`` is the base of ``target``'s diff, in a few words (shown beside the diff)."""
    parent = forked_from(target, experiments)
    if parent is not None and parent.name == base.name:
        return f"its README says it was forked from {base.name}"
    if base.name in _descendants(target, experiments):
        return f"reversed: {base.name} was forked from {target.name}, so its changes show as removals"
    guess = default_base(target, experiments)
    if guess is not None and guess.name == base.name:
        return "the most similar code"
    return "picked"
