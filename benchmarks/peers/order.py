"""Multi-objective order of a rung: non-dominated sorting, then crowding distance within a layer (boundary
points first), as NSGA-II selects and as nas's Pareto-ASHA ranks a rung."""

from __future__ import annotations

import moocore
import numpy as np


def crowding(loss: np.ndarray) -> np.ndarray:
    """NSGA-II crowding distance of each row of one layer (``n × m`` losses); boundary rows get ``inf``."""
    n, m = loss.shape
    dist = np.zeros(n)
    if n <= 2:
        return np.full(n, np.inf)
    for j in range(m):
        order = np.argsort(loss[:, j], kind="stable")
        col = loss[order, j]
        span = col[-1] - col[0]
        dist[order[0]] = dist[order[-1]] = np.inf
        if span > 0:
            dist[order[1:-1]] += (col[2:] - col[:-2]) / span
    return dist


def top(loss: np.ndarray, k: int) -> list[int]:
    """Indices of the best ``k`` rows of ``loss`` (``n × m``, minimized), best first."""
    if k <= 0 or len(loss) == 0:
        return []
    ranks = moocore.pareto_rank(loss)
    out: list[int] = []
    for r in range(int(ranks.max()) + 1):
        layer = np.flatnonzero(ranks == r)
        out.extend(layer[np.argsort(-crowding(loss[layer]), kind="stable")].tolist())
        if len(out) >= k:
            break
    return out[:k]
