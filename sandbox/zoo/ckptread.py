"""Read the plain values of a ``torch.save`` checkpoint without torch and without running code.

A nanoGPT ``ckpt.pt`` keeps what the runs table needs (``model_args``, the training
``config``, ``iter_num``) beside the tensors. The app side never imports torch, so the
checkpoint's ``data.pkl`` is read here by an unpickler that builds only plain containers and
numbers: every tensor becomes a `TensorStub` (its shape and dtype; its bytes are never read),
and any other class the pickle names is refused, so reading a checkpoint cannot run code.
Results are kept per (path, size, mtime).
"""

from __future__ import annotations

import collections
import io
import os
import pickle
import threading
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

_PICKLE_LIMIT = 64 * 1024 * 1024  # a data.pkl larger than this is not a checkpoint's metadata


@dataclass(frozen=True)
class TensorStub:
    """A tensor in a checkpoint, as seen without torch: its shape and storage type."""

    shape: tuple[int, ...]
    dtype: str

    @property
    def numel(self) -> int:
        n = 1
        for d in self.shape:
            n *= int(d)
        return n


@dataclass(frozen=True)
class _Storage:
    """A storage's type (``torch.FloatStorage`` -> "float"); also what a storage reads as."""

    dtype: str

    def __call__(self, *_args: Any) -> _Storage:
        return self


def _rebuild_tensor(storage: Any, _offset: Any, size: Any, *_rest: Any) -> TensorStub:
    dtype = storage.dtype if isinstance(storage, _Storage) else "unknown"
    return TensorStub(tuple(int(s) for s in size), dtype)


def _rebuild_parameter(data: Any, *_rest: Any) -> Any:
    return data


_ALLOWED: dict[tuple[str, str], Any] = {
    ("collections", "OrderedDict"): collections.OrderedDict,
    ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor,
    ("torch._utils", "_rebuild_tensor"): _rebuild_tensor,
    ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
    ("torch._utils", "_rebuild_parameter_with_state"): _rebuild_parameter,
}


class _Unpickler(pickle.Unpickler):
    """Plain containers, numbers and text; tensors as stubs; nothing else."""

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in _ALLOWED:
            return _ALLOWED[(module, name)]
        if module == "torch" and name.endswith("Storage"):
            return _Storage(name.removesuffix("Storage").lower() or "untyped")
        if module == "torch" and name in {"device", "Size"}:
            return lambda *a: a[0] if name == "device" else tuple(a[0])
        raise pickle.UnpicklingError(f"{module}.{name} is not read without torch")

    def persistent_load(self, pid: Any) -> Any:
        # ('storage', storage type, key, location, numel): the type was built by find_class.
        kind = pid[1] if isinstance(pid, tuple) and len(pid) > 1 else None
        return kind if isinstance(kind, _Storage) else _Storage("unknown")


_CACHE: dict[str, tuple[tuple[int, int], Any]] = {}
_LOCK = threading.Lock()


def read_checkpoint(path: Path) -> Any:
    """The checkpoint at ``path`` with tensors as `TensorStub`s.

    Raises ``ValueError`` with one sentence (naming only the file's name) when it is not a
    torch.save zip file, or holds objects other than containers, numbers, text and tensors.
    """
    st = os.stat(path)
    stamp = (st.st_size, st.st_mtime_ns)
    key = os.fspath(path)
    with _LOCK:
        cached = _CACHE.get(key)
    if cached is not None and cached[0] == stamp:
        return cached[1]
    name = Path(path).name
    try:
        with zipfile.ZipFile(path) as archive:
            record = next((r for r in archive.infolist() if r.filename.endswith("data.pkl")), None)
            if record is None:
                raise ValueError(f"{name} is not a torch.save file (it has no data.pkl).")
            if record.file_size > _PICKLE_LIMIT:
                raise ValueError(f"{name} holds {record.file_size:,} bytes of pickled objects; too many to read.")
            data = archive.read(record)
    except (zipfile.BadZipFile, OSError, EOFError) as exc:
        raise ValueError(f"{name} is not a complete torch.save file ({type(exc).__name__}).") from None
    try:
        value = _Unpickler(io.BytesIO(data)).load()
    except (pickle.UnpicklingError, EOFError, TypeError, ValueError, AttributeError, IndexError) as exc:
        raise ValueError(f"{name} cannot be read without running its code ({exc}).") from None
    with _LOCK:
        _CACHE[key] = (stamp, value)
    return value


def plain(value: Any) -> Any:
    """``value`` with tensor stubs left out of dicts and lists: what JSON and a table can show."""
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items() if not isinstance(v, TensorStub)}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value if not isinstance(v, TensorStub)]
    return value
