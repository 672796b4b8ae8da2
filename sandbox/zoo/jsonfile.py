"""Read a JSON file that must hold an object, with errors that name the file."""

from __future__ import annotations

import json
from pathlib import Path


def read_json_object(path: Path) -> dict:
    """Read a JSON file that must hold an object; errors (``ValueError``) name the file."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ValueError(f"{path.name} is missing") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ValueError(f"{path.name} cannot be read: {exc}") from None
    except json.JSONDecodeError as exc:
        raise ValueError(
            f"{path.name} is not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg})"
        ) from None
    except RecursionError:
        raise ValueError(f"{path.name} is nested too deeply to read") from None
    if not isinstance(data, dict):
        raise ValueError(f"{path.name} must hold a JSON object, not {type(data).__name__}")
    return data
