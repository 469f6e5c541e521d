"""Random architectures, drawn fast: a pool of candidates for the surrogate to score.

``Space.sample_random`` goes through an Optuna trial (about 1 ms each). When the space is flat (every draw sets
every dimension: no choices, no variable repeats), dimensions are drawn directly with numpy instead, thousands per
millisecond, with the same distributions; otherwise the pool falls back to ``sample_random``.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from nas.space import Space
from nas.space.dims import Dimension


class RandomPool:
    """Draws random params of ``space`` with ``seed`` (deterministic)."""

    def __init__(self, space: Space, seed: int) -> None:
        self.space = space
        self.rng = np.random.default_rng(seed)
        self._seed = seed * 1_000_003
        self.dimensions = space.dimensions()
        names = {d.name for d in self.dimensions}
        self.flat = all(set(space.sample_random(self._seed + i)) == names for i in range(8))
        self._fallback = 8

    def draw(self, n: int) -> list[dict[str, Any]]:
        """``n`` params dicts (duplicates possible)."""
        if not self.flat:
            out = [self.space.sample_random(self._seed + self._fallback + i) for i in range(n)]
            self._fallback += n
            return out
        cols = {d.name: _column(d, n, self.rng) for d in self.dimensions}
        return [{k: v[i] for k, v in cols.items()} for i in range(n)]


def _column(d: Dimension, n: int, rng: np.random.Generator) -> list[Any]:
    if d.kind == "categorical":
        choices = list(d.choices or ())
        return [choices[i] for i in rng.integers(len(choices), size=n)]
    lo, hi = float(d.low), float(d.high)  # type: ignore[arg-type]
    if d.kind == "int" or d.step is not None:
        step = float(d.step or 1)
        k = int(math.floor((hi - lo) / step + 1e-9))
        if d.log and d.kind == "int":  # log-uniform over the integers, then snapped to the grid
            x = np.exp(rng.uniform(math.log(lo), math.log(hi + 1), size=n))
            vals = np.clip(lo + np.floor((x - lo) / step) * step, lo, lo + k * step)
        else:
            vals = lo + rng.integers(k + 1, size=n) * step
        return [int(round(v)) if d.kind == "int" else float(v) for v in vals]
    x = np.exp(rng.uniform(math.log(lo), math.log(hi), size=n)) if d.log else rng.uniform(lo, hi, size=n)
    return [float(v) for v in x]
