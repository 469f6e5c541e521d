"""The plateau stop: quit when more compute stops buying hypervolume (Thompson et al. 2020's warning).

After each finished evaluation the search adds (compute spent so far, hypervolume so far). The rule compares the
last point with the one ``window`` evaluations earlier: the gain is the relative hypervolume increase
``(hv_now - hv_then) / hv_now`` per unit of compute, the unit being the mean compute of one evaluation so far
(so the rate is scale-free: "fraction of the front's hypervolume bought per average trial"). When the rate falls
below ``threshold`` after at least ``min_evaluations``, the search stops and records why.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class PlateauRule:
    """``window`` evaluations; ``threshold`` relative hypervolume gain per evaluation-equivalent of compute.

    Defaults: a window of 10, a threshold of 0.002 (under 2% over ten average trials means a plateau), checked
    only after 20 evaluations.
    """

    window: int = 10
    threshold: float = 0.002
    min_evaluations: int = 20
    points: list[tuple[float, float]] = field(default_factory=list, init=False)

    def __post_init__(self) -> None:
        if self.window < 1:
            raise ValueError(f"window must be >= 1, got {self.window}")
        if self.threshold < 0:
            raise ValueError(f"threshold must be >= 0, got {self.threshold}")
        self.min_evaluations = max(self.min_evaluations, self.window + 1)

    def add(self, compute: float, hypervolume: float) -> None:
        """One finished evaluation: cumulative ``compute`` (any unit, non-decreasing) and the hypervolume now."""
        self.points.append((float(compute), float(hypervolume)))

    def rate(self) -> float | None:
        """Relative hypervolume gain per evaluation-equivalent of compute over the window; None if too early."""
        if len(self.points) <= self.window:
            return None
        c_now, hv_now = self.points[-1]
        c_then, hv_then = self.points[-1 - self.window]
        if hv_now <= 0:
            return None  # nothing on the front yet: no plateau to speak of
        unit = c_now / len(self.points)
        spent = (c_now - c_then) / unit if unit > 0 else float(self.window)
        gain = (hv_now - hv_then) / hv_now
        return gain / spent if spent > 0 else float("inf")

    def reason(self) -> str | None:
        """Why the search should stop now, or None."""
        if len(self.points) < self.min_evaluations:
            return None
        r = self.rate()
        if r is None or r >= self.threshold:
            return None
        c_now, hv_now = self.points[-1]
        c_then, hv_then = self.points[-1 - self.window]
        gain = (hv_now - hv_then) / hv_now
        return (f"plateau: hypervolume rose {100 * gain:.3g}% over the last {self.window} evaluations "
                f"({r:.3g} of the front per evaluation-equivalent of compute < threshold {self.threshold:g})")
