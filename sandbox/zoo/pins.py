"""Which torch an experiment asks for, read from its requirement files, against the one here.

An experiment pinned to another torch (``torch==2.1.0`` in its ``requirements.txt``, a range
in its ``pyproject.toml``) still loads with the torch the sandbox runs: its numbers may then
differ from what its own environment gives, and the doctor says so instead of staying silent.
Read as text (``packaging`` parses the requirement; nothing is installed or imported).
"""

from __future__ import annotations

import tomllib
from importlib import metadata
from pathlib import Path

from packaging.requirements import InvalidRequirement, Requirement
from packaging.version import InvalidVersion, Version

FILES = ("requirements.txt", "requirements-dev.txt", "requirements_dev.txt", "pyproject.toml")


def installed_torch() -> str | None:
    """The version of the installed torch (from its metadata: torch is not imported)."""
    try:
        return metadata.version("torch")
    except metadata.PackageNotFoundError:
        return None


def _requirements(path: Path) -> list[str]:
    text = path.read_text(encoding="utf-8", errors="replace")[:1_000_000]
    if path.suffix == ".toml":
        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError:
            return []
        deps = data.get("project", {}).get("dependencies", [])
        return [d for d in deps if isinstance(d, str)]
    return [line.split("#", 1)[0].strip() for line in text.splitlines()]


def torch_pin(root: Path) -> tuple[str, str] | None:
    """``(file, sentence)`` when a requirement file of the experiment asks for a torch that is
    not the installed one; None when none does (or none names torch with a version)."""
    here = installed_torch()
    if here is None:
        return None
    for name in FILES:
        path = root / name
        if not path.is_file():
            continue
        for line in _requirements(path):
            try:
                req = Requirement(line)
            except InvalidRequirement:
                continue
            if req.name.lower() != "torch" or not str(req.specifier):
                continue
            try:
                fits = req.specifier.contains(Version(here), prereleases=True)
            except InvalidVersion:
                continue
            if not fits:
                return name, (
                    f"{name} asks for torch{req.specifier}, and the sandbox runs torch {here}: the "
                    "experiment loads with it, but its numbers may differ from those of its own environment."
                )
    return None
