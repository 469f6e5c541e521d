"""Architecture params -> a fixed-length numeric vector, for a surrogate model.

Categorical dimensions are one-hot; numeric ones are scaled to [0, 1] (log scale where the dimension is log).
A dimension absent from a params dict (an unused branch, a repeat index beyond the sampled count) encodes as all
zeros plus a 1 in its "absent" slot, so conditional spaces encode without guessing.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from nas.space.dims import Dimension, same_choice


class Encoder:
    """Encodes params of one space's ``dimensions`` (``Space.dimensions()``); ``width`` columns."""

    def __init__(self, dimensions: Sequence[Dimension]) -> None:
        self.dimensions = list(dimensions)
        self._offsets: list[int] = []
        self._index: list[dict[Any, int]] = []  # hashable choice -> position, a fast path before same_choice
        width = 0
        for d in self.dimensions:
            self._offsets.append(width)
            self._index.append(_hashable_index(d.choices or ()) if d.kind == "categorical" else {})
            width += (len(d.choices or ()) if d.kind == "categorical" else 1) + 1  # + the "absent" slot
        self.width = width

    def encode(self, params: Mapping[str, Any]) -> np.ndarray:
        """One row of ``width`` floats."""
        row = np.zeros(self.width)
        for d, off, index in zip(self.dimensions, self._offsets, self._index, strict=True):
            n = len(d.choices or ()) if d.kind == "categorical" else 1
            if d.name not in params:
                row[off + n] = 1.0
                continue
            v = params[d.name]
            if d.kind == "categorical":
                idx = _lookup(index, v)
                if idx is None:
                    idx = next((i for i, c in enumerate(d.choices or ()) if same_choice(v, c)), None)
                if idx is None:
                    row[off + n] = 1.0
                else:
                    row[off + idx] = 1.0
            else:
                row[off] = _scaled(d, float(v))
        return row


def _hashable_index(choices: Sequence[Any]) -> dict[Any, int]:
    out: dict[Any, int] = {}
    for i, c in enumerate(choices):
        if isinstance(c, str):  # only strings: 1 == True == 1.0 must go through same_choice
            out.setdefault(c, i)
    return out


def _lookup(index: Mapping[Any, int], v: Any) -> int | None:
    return index.get(v) if isinstance(v, str) else None


def _scaled(d: Dimension, v: float) -> float:
    lo, hi = float(d.low if d.low is not None else v), float(d.high if d.high is not None else v)
    if d.log and lo > 0 and v > 0:
        lo, hi, v = math.log(lo), math.log(hi), math.log(v)
    return 0.0 if hi <= lo else (v - lo) / (hi - lo)
