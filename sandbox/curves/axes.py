"""X axes of the loss curves: a small table. A new axis (e.g. "training FLOPs") is one more entry."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from sandbox.zoo import logs
from sandbox.zoo.accounting import tokens_per_step
from sandbox.zoo.discovery import Run


def _flops_per_token(run: Run) -> tuple[float | None, str]:
    """Estimated training FLOPs per token (see `sandbox.zoo.accounting.flops_per_token`)."""
    from sandbox.zoo.accounting import flops_per_token

    return flops_per_token(run)


@dataclass(frozen=True)
class XAxis:
    """One choice of x axis.

    ``column`` is the log column holding logged values; where a run does not log
    it, ``per_step`` (if any) gives a per-step multiplier from the run's configs, so that
    x = step × multiplier, labelled as computed. An axis with a ``base`` is another axis
    scaled per run: x = the base axis' x, row by row, × ``per_base(run)``. Runs with
    neither are listed, not faked.

    ``needs`` names what a row must have to be placed (for the note on rows left out);
    ``estimate`` says every value is an estimate, which the title already says, so it is
    not labelled "computed" again; ``format`` is the tick label format (d3): long numbers
    get SI or scientific labels that fit under a tick.
    """

    key: str
    title: str
    column: str
    per_step: Callable[[Run], tuple[float | None, str]] | None = None
    base: str | None = None
    per_base: Callable[[Run], tuple[float | None, str]] | None = None
    needs: str = ""
    estimate: bool = False
    format: str | None = None


X_AXES: dict[str, XAxis] = {
    axis.key: axis
    for axis in (
        XAxis("step", "Step", logs.STEP, needs="step"),
        XAxis("time", "Wall-clock time (s)", logs.TIME_ELAPSED, needs="time elapsed"),
        XAxis("tokens", "Tokens seen", logs.TOKENS_SEEN, per_step=tokens_per_step, needs="tokens seen", format="~s"),
        XAxis(
            "flops", "Training FLOPs (estimated)", "training flops", base="tokens", per_base=_flops_per_token,
            needs="tokens seen", estimate=True, format=".2~e",
        ),  # fmt: skip
    )
}
