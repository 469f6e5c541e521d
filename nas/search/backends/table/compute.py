"""Simulated compute of a tabular search, in full-training equivalents.

Training an architecture from epoch ``a`` to epoch ``b`` costs ``(b - a) / full_epochs``: a full training
counts 1, a trial stopped at a 12-epoch rung of a 200-epoch training 12/200 = 0.06, and one that goes on from
there 0.06 + 0.94 = 1 in total. Looking up a cost or a proxy score costs nothing (0). Simulated training FLOPs
(for ``budget.train_tflops``) are 3 × forward MFLOPs × 1e6 × training samples × epochs trained.
"""

from __future__ import annotations

import math
from collections.abc import Hashable
from dataclasses import dataclass, field

from nas.profile import training_flops


@dataclass
class SimulatedCompute:
    """Epochs trained so far per trial and the running totals; ``train`` charges an extension of a training."""

    full_epochs: int
    train_samples: int = 0
    spent: float = 0.0
    train_flops: float = 0.0
    epochs: dict[Hashable, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.full_epochs < 1:
            raise ValueError(f"full_epochs must be >= 1, got {self.full_epochs}")

    def train(self, key: Hashable, to_epochs: int, mflops: float = math.nan) -> float:
        """Train ``key`` on to ``to_epochs`` (from where it stopped, 0 at first); returns the cost added (in
        full trainings). ``mflops`` (forward, per sample) feeds the simulated FLOPs when finite."""
        done = self.epochs.get(key, 0)
        if not done <= to_epochs <= self.full_epochs:
            raise ValueError(f"cannot train {key!r} from epoch {done} to {to_epochs} (full: {self.full_epochs})")
        self.epochs[key] = to_epochs
        cost = (to_epochs - done) / self.full_epochs
        self.spent += cost
        if math.isfinite(mflops) and self.train_samples:
            self.train_flops += training_flops(mflops * 1e6, self.train_samples * (to_epochs - done))
        return cost
