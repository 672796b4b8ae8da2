"""TensorBoard event files, read by TensorBoard's own reader into a table of scalars.

A TensorBoard *run* is a folder holding ``events.out.tfevents.*`` files (one per writer: a
resumed run adds a file). `tensorboard.backend.event_processing.event_accumulator` reads all
of a folder's files in order, keeping every scalar (``size_guidance`` 0); scalars written as
tensors (TensorFlow 2's ``tf.summary.scalar``) are read from its tensors. Each tag is one
column under its own name (``train/loss``), which `sandbox.zoo.logs.canonical_name` maps like
a CSV header; a step logged twice keeps the last value. TensorBoard imports no torch.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pyarrow as pa

PREFIX = "events.out.tfevents."


def is_event_file(path: Path) -> bool:
    return path.name.startswith(PREFIX)


def event_files(folder: Path) -> list[Path]:
    """The event files directly in ``folder``, in the order TensorBoard reads them (by name)."""
    try:
        return sorted((p for p in folder.iterdir() if is_event_file(p) and p.is_file()), key=lambda p: p.name)
    except OSError:
        return []


def stamp(folder: Path) -> tuple[int, int] | None:
    """(total size, newest mtime_ns) of the folder's event files: changes whenever any grows."""
    size, newest = 0, -1
    for path in event_files(folder):
        try:
            st = path.stat()
        except OSError:
            continue
        size += st.st_size
        newest = max(newest, st.st_mtime_ns)
    return (size, newest) if newest >= 0 else None


def scalars_table(folder: Path) -> tuple[pa.Table, list[str]]:
    """``(table, notes)``: a ``step`` column and one column per scalar tag of ``folder``'s event
    files; raises ``ValueError`` with one sentence when TensorBoard is not installed."""
    try:
        from tensorboard.backend.event_processing import event_accumulator as ea
        from tensorboard.util import tensor_util
    except ImportError:
        raise ValueError("it is a TensorBoard log, and the tensorboard package is not installed "
                         "(.venv/bin/pip install -r requirements.txt)") from None
    guidance = {ea.SCALARS: 0, ea.TENSORS: 0, ea.HISTOGRAMS: 1, ea.IMAGES: 1, ea.AUDIO: 1,
                ea.COMPRESSED_HISTOGRAMS: 1}
    acc = ea.EventAccumulator(os.fspath(folder), size_guidance=guidance)
    acc.Reload()
    series: dict[str, dict[float, float]] = {}
    tags = acc.Tags()
    for tag in tags.get(ea.SCALARS, []):
        series[tag] = {float(e.step): float(e.value) for e in acc.Scalars(tag)}
    notes = []
    for tag in tags.get(ea.TENSORS, []):
        if tag in series or acc.SummaryMetadata(tag).plugin_data.plugin_name != "scalars":
            continue
        values = {}
        for event in acc.Tensors(tag):
            array = tensor_util.make_ndarray(event.tensor_proto)
            if array.size == 1:
                values[float(event.step)] = float(array.reshape(-1)[0])
        if values:
            series[tag] = values
    if not series:
        notes.append("it holds no scalars (only other summaries, or nothing yet)")
    steps = sorted({s for values in series.values() for s in values})
    columns = {"step": pa.array(steps, pa.float64())}
    for tag, values in series.items():
        columns[tag] = pa.array(np.array([values.get(s, np.nan) for s in steps], dtype=float), pa.float64(),
                                mask=np.array([s not in values for s in steps], dtype=bool))
    return pa.table(columns), notes
