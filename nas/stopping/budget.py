"""Search budgets: stop the whole search at a total in training FLOPs, device-hours or wall time.

Per-trial caps (training TFLOPs, seconds) are checked where the trial runs; this rule looks at the totals the
search has spent and returns the reason to stop, or None. A budget is reached when spending meets it; work in
flight when it is reached is stopped at its next report (the runner's scheduler asks :meth:`BudgetRule.reason`).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Spent:
    """What a search has spent so far: training FLOPs, device-seconds (trial seconds × devices held per
    trial; CPU trials count their CPUs, GPU trials their GPU fraction), wall seconds since it started."""

    train_flops: float = 0.0
    device_seconds: float = 0.0
    wall_seconds: float = 0.0


@dataclass(frozen=True)
class BudgetRule:
    """Totals not to exceed (None = no limit): ``train_tflops`` (TFLOPs), ``device_hours``, ``wall_hours``."""

    train_tflops: float | None = None
    device_hours: float | None = None
    wall_hours: float | None = None

    def __post_init__(self) -> None:
        for name in ("train_tflops", "device_hours", "wall_hours"):
            v = getattr(self, name)
            if v is not None and not v > 0:
                raise ValueError(f"{name} must be > 0, got {v}")

    @property
    def active(self) -> bool:
        return any(v is not None for v in (self.train_tflops, self.device_hours, self.wall_hours))

    def reason(self, spent: Spent) -> str | None:
        """Why the search must stop now (a sentence naming the budget and the amount spent), or None."""
        if self.train_tflops is not None and spent.train_flops / 1e12 >= self.train_tflops:
            return (f"budget: training compute {spent.train_flops / 1e12:.4g} TFLOPs reached "
                    f"budget.train_tflops={self.train_tflops:g}")
        if self.device_hours is not None and spent.device_seconds / 3600 >= self.device_hours:
            return (f"budget: {spent.device_seconds / 3600:.4g} device-hours reached "
                    f"budget.device_hours={self.device_hours:g}")
        if self.wall_hours is not None and spent.wall_seconds / 3600 >= self.wall_hours:
            return f"budget: {spent.wall_seconds / 3600:.4g} h of wall time reached budget.wall_hours={self.wall_hours:g}"
        return None
