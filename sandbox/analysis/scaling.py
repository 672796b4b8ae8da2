"""Saturating power laws L = E + A·C^(−α) fitted per group, and the compute multiplier.

The fit (:func:`fit_power_law`) minimises squared residuals of **log L**, the usual choice for
scaling laws (Hoffmann et al. 2022 fit log losses): a residual then means the same relative
error at 4 nats as at 2, and the smallest runs do not dominate. It is deterministic and
needs numpy alone:

1. *Profile over E.* For a fixed floor E < min L the law is a straight line in log-log,
   ``log(L − E) = log A − α·log C``, whose best A and α are a closed-form linear fit. A grid
   of E values (from 0 up to just under the lowest loss, denser near it) gives each E its
   line; the E whose line has the smallest log-L error wins, then a golden-section search
   between its grid neighbours sharpens it.
2. *Polish.* Levenberg–Marquardt on (E, log A, α) from there, with E ≥ 0 and α > 0 kept by
   projection, minimises the log-L error itself (the profile's line minimised the error of
   log(L − E), which is not quite the same thing when the points are noisy).

Intervals come from a seeded bootstrap over the points (resample points with replacement,
refit, percentile interval); with ten points or so, percentile intervals are somewhat too
narrow (about 85 % coverage for a nominal 95 % in simulations). Points taken from whole
training curves (`sandbox.analysis.multiplier.lower_envelope`) are not independent draws, so their intervals are
narrower still; the notes say so where a caller passes ``from_curves=True``.

The **compute multiplier** of a variant against a base at a loss L* (`Multiplier`) is
computed by `sandbox.analysis.multiplier`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

# Below this many points a three-parameter law is not determined.
MIN_POINTS = 3
_GRID = 240  # E values in the profile
_BOOT_GRID = 80  # a coarser profile for each bootstrap refit (LM polishes it anyway)
_GOLDEN = (math.sqrt(5.0) - 1.0) / 2.0


@dataclass(frozen=True)
class PowerLaw:
    """L = E + A·C^(−α). ``log_A`` is kept rather than A: A overflows for FLOP-sized C."""

    E: float
    log_A: float
    alpha: float

    @property
    def A(self) -> float:
        """A itself (inf when it does not fit in a float)."""
        try:
            return math.exp(self.log_A)
        except OverflowError:
            return math.inf

    def loss(self, c: np.ndarray | float) -> np.ndarray:
        """Predicted loss at compute (or parameters) ``c``."""
        c = np.asarray(c, dtype=np.float64)
        with np.errstate(divide="ignore", over="ignore"):
            return self.E + np.exp(self.log_A - self.alpha * np.log(c))

    def compute(self, loss: np.ndarray | float) -> np.ndarray:
        """Compute needed to reach ``loss``: (A / (L − E))^(1/α); inf where L ≤ E (never)."""
        loss = np.asarray(loss, dtype=np.float64)
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            gap = loss - self.E
            out = np.exp((self.log_A - np.log(np.where(gap > 0, gap, np.nan))) / self.alpha)
        return np.where(gap > 0, out, np.inf)

    def formula(self, digits: int = 3) -> str:
        """The law as text, e.g. ``L = 1.82 + 7.1e+03·C^(−0.281)``."""
        return f"L = {self.E:.{digits}g} + {self.A:.{digits}g}·C^(−{self.alpha:.{digits}g})"


@dataclass
class ScalingFit:
    """One group's fit: the law (None when no fit could be made), intervals and notes."""

    group: str
    x: np.ndarray
    y: np.ndarray
    law: PowerLaw | None
    # Percentile intervals of E, A and alpha; (nan, nan) where undefined (notes say why).
    intervals: dict[str, tuple[float, float]] = field(default_factory=dict)
    # Bootstrap refits, rows (E, log_A, alpha); NaN rows where a resample could not be fitted.
    boot: np.ndarray = field(default_factory=lambda: np.empty((0, 3)))
    notes: list[str] = field(default_factory=list)
    rmse_log: float = math.nan  # root mean square residual of log L
    confidence: float = 0.95

    @property
    def n_points(self) -> int:
        return int(self.x.size)

    def to_dict(self) -> dict:
        """Plain JSON-able numbers (NaN/inf as None)."""
        law = self.law
        return {
            "group": self.group,
            "points": self.n_points,
            "E": _num(law.E) if law else None,
            "A": _num(law.A) if law else None,
            "log_A": _num(law.log_A) if law else None,
            "alpha": _num(law.alpha) if law else None,
            "formula": law.formula() if law else None,
            "intervals": {k: [_num(lo), _num(hi)] for k, (lo, hi) in self.intervals.items()},
            "confidence": self.confidence,
            "rmse_log_loss": _num(self.rmse_log),
            "x_range": [_num(self.x.min()), _num(self.x.max())] if self.x.size else None,
            "notes": list(self.notes),
        }


@dataclass
class Multiplier:
    """Compute multiplier of ``variant`` against ``base`` at ``loss`` (None: undefined)."""

    base: str
    variant: str
    loss: float
    value: float | None
    lo: float | None
    hi: float | None
    sentence: str
    notes: list[str] = field(default_factory=list)
    confidence: float = 0.95

    def to_dict(self) -> dict:
        return {
            "base": self.base,
            "variant": self.variant,
            "loss": _num(self.loss),
            "multiplier": _num(self.value),
            "interval": [_num(self.lo), _num(self.hi)],
            "confidence": self.confidence,
            "sentence": self.sentence,
            "notes": list(self.notes),
        }


def _num(value: float | None) -> float | None:
    """A finite float, or None (JSON has no NaN/inf)."""
    if value is None or not math.isfinite(float(value)):
        return None
    return float(value)


# -- the fit ----------------------------------------------------------------------------------


def _clean(x: Sequence[float], y: Sequence[float]) -> tuple[np.ndarray, np.ndarray, int]:
    """Finite points with x > 0 and y > 0, sorted by x; and how many were dropped."""
    x = np.asarray(x, dtype=np.float64).ravel()
    y = np.asarray(y, dtype=np.float64).ravel()
    if x.shape != y.shape:
        raise ValueError(f"x and y differ in length ({x.size} and {y.size})")
    keep = np.isfinite(x) & np.isfinite(y) & (x > 0) & (y > 0)
    order = np.argsort(x[keep], kind="stable")
    return x[keep][order], y[keep][order], int(x.size - keep.sum())


def _profile(u: np.ndarray, ly: np.ndarray, e: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For each floor in ``e``: the closed-form line of log(L − E) on centred log C.

    Returns (a, alpha, sse) per floor, with a the intercept at the centre of u and sse the
    squared error of log L; sse is inf where the line does not fall (alpha ≤ 0).
    """
    y = np.exp(ly)
    with np.errstate(divide="ignore", invalid="ignore"):
        z = np.log(y[None, :] - e[:, None])
    zbar = z.mean(axis=1)
    suu = float(u @ u)
    alpha = -((z - zbar[:, None]) @ u) / suu
    with np.errstate(over="ignore", invalid="ignore"):
        model = e[:, None] + np.exp(zbar[:, None] - alpha[:, None] * u[None, :])
        sse = ((ly[None, :] - np.log(model)) ** 2).sum(axis=1)
    bad = ~np.isfinite(sse) | ~(alpha > 0)
    sse[bad] = np.inf
    return zbar, alpha, sse


def _sse(theta: np.ndarray, u: np.ndarray, ly: np.ndarray) -> float:
    e, a, alpha = theta
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        r = ly - np.log(e + np.exp(a - alpha * u))
    value = float(r @ r)
    return value if math.isfinite(value) else math.inf


def _polish(theta: np.ndarray, u: np.ndarray, ly: np.ndarray, iterations: int = 200) -> np.ndarray:
    """Levenberg–Marquardt on log-L residuals, E ≥ 0 and alpha > 0 kept by projection."""
    lam = 1e-3
    best = _sse(theta, u, ly)
    for _ in range(iterations):
        e, a, alpha = theta
        p = np.exp(a - alpha * u)
        m = e + p
        r = ly - np.log(m)
        # d r / d(E, a, alpha)
        jac = np.column_stack([-1.0 / m, -p / m, p * u / m])
        jtj = jac.T @ jac
        grad = jac.T @ r
        improved = False
        for _ in range(12):
            step = np.linalg.lstsq(jtj + lam * np.diag(np.diag(jtj) + 1e-12), -grad, rcond=None)[0]
            cand = theta + step
            cand[0] = max(cand[0], 0.0)
            cand[2] = max(cand[2], 1e-9)
            value = _sse(cand, u, ly)
            if value < best:
                done = best - value <= 1e-14 * max(best, 1e-300) or np.allclose(cand, theta, rtol=1e-12, atol=1e-14)
                theta, best, lam = cand, value, max(lam / 3.0, 1e-12)
                improved = True
                break
            lam *= 4.0
        if not improved or done:
            break
    return theta


def _fit_once(u: np.ndarray, ly: np.ndarray, grid: int, golden: int = 60) -> np.ndarray | None:
    """(E, a, alpha) with a the log-amplitude at the centre of u, or None if nothing falls.

    ``golden``: golden-section steps on the floor before the polish (fewer in the bootstrap,
    where the polish does the fine work from a coarse start).
    """
    ymin = float(np.exp(ly.min()))
    # Floors from 0 up to just under the lowest loss, log-spaced in their distance to it.
    e = ymin * (1.0 - np.geomspace(1.0, 1e-7, grid))
    zbar, alpha, sse = _profile(u, ly, e)
    k = int(np.argmin(sse))
    if not math.isfinite(sse[k]):
        return None
    lo, hi = e[max(k - 1, 0)], e[min(k + 1, grid - 1)]

    def objective(value: float) -> float:
        return float(_profile(u, ly, np.array([value]))[2][0])

    # Golden-section search between the best floor's neighbours.
    c, d = hi - _GOLDEN * (hi - lo), lo + _GOLDEN * (hi - lo)
    fc, fd = objective(c), objective(d)
    for _ in range(golden):
        if fc < fd:
            hi, d, fd = d, c, fc
            c = hi - _GOLDEN * (hi - lo)
            fc = objective(c)
        else:
            lo, c, fc = c, d, fd
            d = lo + _GOLDEN * (hi - lo)
            fd = objective(d)
    candidates = [(sse[k], e[k]), (fc, c), (fd, d)]
    _, e_best = min(candidates)
    zb, al, _ = _profile(u, ly, np.array([e_best]))
    return _polish(np.array([e_best, zb[0], al[0]]), u, ly)


def fit_power_law(
    x: Sequence[float],
    y: Sequence[float],
    *,
    group: str = "",
    n_boot: int = 1000,
    seed: int = 0,
    confidence: float = 0.95,
    from_curves: bool = False,
) -> ScalingFit:
    """Fit L = E + A·x^(−α) to points (x = compute or parameters, y = loss), with intervals.

    Points with a non-finite or non-positive value are left out (a note counts them).
    Under three points no fit is made and the notes say why; with exactly three the law
    goes through the points and the intervals are left undefined (explained in the notes);
    from four on, a seeded bootstrap over the points gives percentile intervals of E, A
    and α. ``from_curves`` marks points taken from training curves (see module docstring).
    """
    label = f"group {group}" if group else "these points"
    xs, ys, dropped = _clean(x, y)
    fit = ScalingFit(group=group, x=xs, y=ys, law=None, confidence=confidence)
    nan2 = (math.nan, math.nan)
    fit.intervals = {"E": nan2, "A": nan2, "alpha": nan2}
    if dropped:
        fit.notes.append(f"{dropped} point(s) left out of {label}: a loss or x that is missing, zero or negative.")
    distinct = np.unique(xs).size
    if distinct < MIN_POINTS:
        fit.notes.append(
            f"Only {distinct} point(s) at distinct x in {label}: a saturating power law has three "
            "parameters (E, A, α), so it needs at least three; no fit is made."
        )
        return fit
    lx = np.log(xs)
    centre = float(lx.mean())
    u, ly = lx - centre, np.log(ys)
    theta = _fit_once(u, ly, _GRID)
    if theta is None:
        fit.notes.append(f"The loss of {label} does not fall as x grows: no decreasing power law fits.")
        return fit
    fit.law = _law(theta, centre)
    fit.rmse_log = math.sqrt(_sse(theta, u, ly) / xs.size)
    if fit.law.E <= 1e-9 * ys.min():
        fit.notes.append(f"The floor E of {label} sits at 0: the points show no floor yet (a pure power law fits).")
    if distinct == MIN_POINTS:
        fit.notes.append(
            f"Exactly three points in {label} for three parameters: the law passes through them, "
            "so nothing is left to measure its uncertainty by and no interval is given. Add runs for intervals."
        )
        return fit
    fit.boot = _bootstrap(xs, ys, n_boot, seed)
    ok = np.isfinite(fit.boot).all(axis=1)
    if ok.sum() < max(10, 0.5 * n_boot):
        fit.notes.append(
            f"Only {int(ok.sum())} of {n_boot} bootstrap resamples of {label} could be fitted: no interval is given."
        )
        return fit
    rows = fit.boot[ok]
    fit.intervals = {
        "E": _percentile(rows[:, 0], confidence),
        "A": tuple(float(np.exp(v)) if math.isfinite(v) else v for v in _percentile(rows[:, 1], confidence)),
        "alpha": _percentile(rows[:, 2], confidence),
    }
    if from_curves:
        fit.notes.append(
            "Points come from whole training curves, which are not independent draws: "
            "the intervals are narrower than the true uncertainty."
        )
    return fit


def _law(theta: np.ndarray, centre: float) -> PowerLaw:
    e, a, alpha = (float(v) for v in theta)
    # a is the log-amplitude at the centre of log x: log A = a + alpha * centre.
    return PowerLaw(E=e, log_A=a + alpha * centre, alpha=alpha)


def _bootstrap(xs: np.ndarray, ys: np.ndarray, n_boot: int, seed: int) -> np.ndarray:
    """Refits on point resamples: rows (E, log_A, alpha), NaN where one could not be made."""
    rng = np.random.default_rng(seed)
    n = xs.size
    out = np.full((n_boot, 3), np.nan)
    for b in range(n_boot):
        idx = rng.integers(0, n, n)
        if np.unique(xs[idx]).size < MIN_POINTS:
            continue
        lx = np.log(xs[idx])
        centre = float(lx.mean())
        theta = _fit_once(lx - centre, np.log(ys[idx]), _BOOT_GRID, golden=8)
        if theta is not None:
            law = _law(theta, centre)
            out[b] = (law.E, law.log_A, law.alpha)
    return out


def _percentile(values: np.ndarray, confidence: float) -> tuple[float, float]:
    tail = (1.0 - confidence) / 2.0
    lo, hi = np.quantile(values, [tail, 1.0 - tail], method="inverted_cdf")
    return float(lo), float(hi)


def fit_groups(
    points: pd.DataFrame,
    *,
    x: str,
    y: str,
    group: str,
    n_boot: int = 1000,
    seed: int = 0,
    confidence: float = 0.95,
    from_curves: bool = False,
) -> dict[str, ScalingFit]:
    """One :func:`fit_power_law` per value of column ``group`` (in order of appearance)."""
    out = {}
    for name, rows in points.groupby(group, sort=False):
        key = str(name)
        out[key] = fit_power_law(
            rows[x].to_numpy(), rows[y].to_numpy(), group=key, n_boot=n_boot, seed=seed,
            confidence=confidence, from_curves=from_curves,
        )  # fmt: skip
    return out


def fits_frame(fits: Mapping[str, ScalingFit]) -> pd.DataFrame:
    """One row per group: points, E, A, α with intervals, log-loss RMSE, notes (for tables)."""
    rows = []
    for fit in fits.values():
        d = fit.to_dict()
        rows.append({
            "group": d["group"], "points": d["points"], "E": d["E"], "E lo": d["intervals"]["E"][0],
            "E hi": d["intervals"]["E"][1], "A": d["A"], "alpha": d["alpha"],
            "alpha lo": d["intervals"]["alpha"][0], "alpha hi": d["intervals"]["alpha"][1],
            "rmse log loss": d["rmse_log_loss"], "notes": " ".join(d["notes"]),
        })  # fmt: skip
    return pd.DataFrame(rows)
