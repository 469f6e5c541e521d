"""An NB201-shaped table for the peers: one row per cell, the full- and low-fidelity accuracy and one cost.

Accuracies are fractions (the CSV's percentages × ``accuracy_scale``). Architectures are addressed by their six
edge ops (``EDGES``, each one of ``OPS``), as a sampler proposes them; :meth:`PeerTable.row` maps them to a row.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from nas.builders.nb201 import EDGES, OPS, arch_to_params, params_to_arch

__all__ = ["EDGES", "OPS", "PeerTable"]


@dataclass(frozen=True)
class PeerTable:
    """Columns as arrays (row order of the CSV). ``accuracy`` and ``low_accuracy`` are fractions; ``cost`` is in
    its column's unit (minimized). ``low_epochs`` / ``full_epochs`` name the two fidelities."""

    source: str
    archs: tuple[str, ...]
    accuracy: np.ndarray
    low_accuracy: np.ndarray
    cost: np.ndarray
    rows: dict[str, int]
    low_epochs: int = 12
    full_epochs: int = 200

    @classmethod
    def load(cls, path: str | Path, *, accuracy_column: str, low_column: str, cost_column: str,
             arch_column: str = "arch_str", accuracy_scale: float = 0.01) -> PeerTable:
        df = pd.read_csv(path)
        archs = tuple(str(a) for a in df[arch_column])
        return cls(source=str(path), archs=archs,
                   accuracy=df[accuracy_column].to_numpy(float) * accuracy_scale,
                   low_accuracy=df[low_column].to_numpy(float) * accuracy_scale,
                   cost=df[cost_column].to_numpy(float), rows={a: i for i, a in enumerate(archs)})

    def __len__(self) -> int:
        return len(self.archs)

    def row(self, params: Mapping[str, str]) -> int:
        """The row of the cell whose six edges are ``params`` (``edge_j_i`` -> op)."""
        return self.rows[params_to_arch(params)]

    def params(self, row: int) -> dict[str, str]:
        """The six edge ops of ``row``."""
        return dict(arch_to_params(self.archs[row]))
