"""Smoothing of a loss curve: TensorBoard's debiased exponential moving average.

In whole-array numpy steps rather than a loop over values or a pandas call per series: the
Loss curves page smooths 500 runs on every change of the slider.
"""

from __future__ import annotations

import functools

import numpy as np


def smooth(values: np.ndarray, weight: float) -> np.ndarray:
    """TensorBoard's debiased exponential moving average of one series.

    ``last = last*w + (1-w)*v; n += 1; smoothed = last / (1 - w**n)``, skipping non-finite
    values (they are returned unchanged and do not advance ``n``). That is exactly pandas'
    ``ewm(alpha=1-w, adjust=True, ignore_na=True)`` on the finite values, computed here with
    whole-array numpy steps (`_ema`): 500 runs are smoothed on every change of the slider.
    """
    values = np.asarray(values, dtype=float)
    if weight <= 0 or values.size == 0:
        return values.copy()
    finite = np.isfinite(values)
    if finite.all():
        return _ema(values, weight)
    out = values.copy()
    out[finite] = _ema(values[finite], weight)
    return out


_EXPONENT_SPAN = 100.0  # within a block, weights run from 1 to 10**-100: far from overflow


def _ema(x: np.ndarray, w: float) -> np.ndarray:
    """The debiased EMA of finite ``x``, without a Python loop over its values.

    ``num[t] = w*num[t-1] + x[t]`` is ``w**t * cumsum(x[j] * w**-j)``. ``w**-j`` would
    overflow on a long series, so the series is cut into blocks over which it spans at most
    10**100; a block then starts from the previous block's last ``num``, whose own carry has
    decayed by ``w**block`` (≤ 1e-100) and is below double precision. The debiasing
    denominator ``1 + w + … + w**t`` is a closed form.
    """
    n = x.size
    if n == 0 or not 0 < w < 1:
        return x.copy()
    block = max(1, min(n, int(_EXPONENT_SPAN * np.log(10) / -np.log(w))))
    blocks = -(-n // block)
    padded = np.zeros(blocks * block)
    padded[:n] = x
    rows = padded.reshape(blocks, block)
    up, down, debias = _powers(w, block, _rounded_up(n))
    num = np.cumsum(rows * up, axis=1) * down  # each block as if it started from zero
    if blocks > 1:  # plus the carry: the previous block's last value, decayed by w**(k+1)
        num[1:] += np.outer(num[:-1, -1], down * w)
    return num.ravel()[:n] * ((1 - w) / debias[:n])


def _rounded_up(n: int) -> int:
    """``n`` rounded up to a power of two: series of similar lengths share `_powers`."""
    return 1 << max(0, n - 1).bit_length()


@functools.lru_cache(maxsize=16)
def _powers(w: float, block: int, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``w**-k`` and ``w**k`` for k < block, and ``1 - w**(t+1)`` for t < n (read-only).

    Kept: 500 runs smoothed with one weight share them. Powers as ``exp(k log w)``
    (numpy's float ``**`` is about 20× slower); ``expm1`` keeps ``1 - w**(t+1)`` precise.
    """
    k = np.arange(block, dtype=float) * np.log(w)
    debias = -np.expm1(np.arange(1, n + 1, dtype=float) * np.log(w))
    arrays = (np.exp(-k), np.exp(k), debias)
    for array in arrays:
        array.flags.writeable = False
    return arrays
