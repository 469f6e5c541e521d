"""Hypervolume gains of many candidate points at once, and the k-th non-dominated layer as a bar to clear.

``hv_gains`` is the hypervolume each candidate row would add to a set of rows, alone; two objectives are
computed exactly and vectorized (the staircase), more go through :func:`nas.pareto.hypervolume` per candidate.
Against :func:`layer_front` with ``layers`` = m, a positive gain means "would enter the first m non-dominated
layers": the surrogate uses it to aim at the top few per cost, not only the single best (a low-fidelity rank is
noisy, so the full-fidelity best is often 2nd or 3rd at the rung).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from nas.config.objectives import Direction, sign
from nas.pareto import hypervolume, losses, pareto_ranks


def layer_front(
    rows: Sequence[Mapping[str, float]], objectives: Sequence[tuple[str, Direction]], layers: int
) -> list[Mapping[str, float]]:
    """The rows outside the first ``layers - 1`` non-dominated layers (their front is the ``layers``-th layer);
    all rows for ``layers`` <= 1."""
    if layers <= 1 or not rows:
        return list(rows)
    return [r for r, k in zip(rows, pareto_ranks(rows, objectives), strict=True) if k >= layers - 1]


def hv_gains(
    rows: Sequence[Mapping[str, float]] | np.ndarray,
    candidates: Sequence[Mapping[str, float]] | np.ndarray,
    objectives: Sequence[tuple[str, Direction]],
    reference: Mapping[str, float],
) -> np.ndarray:
    """The hypervolume each candidate alone adds to ``rows`` (>= 0; NaN objectives add 0). ``candidates``: rows,
    or an array ``n × len(objectives)`` of objective values in ``objectives`` order. With two objectives ``rows``
    may also be an array of their losses (e.g. their :func:`staircase`, the same gains)."""
    cand = candidates if isinstance(candidates, np.ndarray) else _values(candidates, objectives)
    signs = np.array([sign(d) for _, d in objectives], dtype=float)
    c = cand * signs
    ref = np.array([sign(d) * float(reference[n]) for n, d in objectives])
    ok = np.all(np.isfinite(c), axis=1)
    out = np.zeros(len(c))
    if len(objectives) != 2:
        assert not isinstance(rows, np.ndarray), "losses are taken for two objectives only"
        base = hypervolume(list(rows), objectives, reference) if rows else 0.0
        for i in np.flatnonzero(ok):
            row = {n: float(cand[i, j]) for j, (n, _) in enumerate(objectives)}
            out[i] = max(0.0, hypervolume([*rows, row], objectives, reference) - base)
        return out
    pts = rows if isinstance(rows, np.ndarray) else losses(rows, objectives)
    pts = pts[np.all(np.isfinite(pts), axis=1) & np.all(pts < ref, axis=1)]
    front = staircase(pts)
    xs, ys = front[:, 0], front[:, 1]
    bx = np.concatenate([[-np.inf], xs, [ref[0]]])
    by = np.concatenate([[ref[1]], ys])
    lo = np.maximum(bx[:-1][None, :], c[ok, 0][:, None])
    width = np.clip(bx[1:][None, :] - lo, 0.0, None)
    height = np.clip(by[None, :] - c[ok, 1][:, None], 0.0, None)
    out[ok] = (width * height).sum(axis=1)
    return out


def _values(rows: Sequence[Mapping[str, float]], objectives: Sequence[tuple[str, Direction]]) -> np.ndarray:
    return np.array([[float(r.get(n, np.nan)) for n, _ in objectives] for r in rows], dtype=float).reshape(
        len(rows), len(objectives))


def staircase(pts: np.ndarray) -> np.ndarray:
    """The non-dominated points of a ``n × 2`` loss array (both minimized; rows with a non-finite value dropped),
    duplicates dropped, by the first objective ascending: ``k × 2``. A point in it is below every earlier one."""
    pts = np.asarray(pts, dtype=float).reshape(-1, 2)
    pts = pts[np.all(np.isfinite(pts), axis=1)]
    if not len(pts):
        return np.zeros((0, 2))
    p = pts[np.lexsort((pts[:, 1], pts[:, 0]))]
    lowest_before = np.minimum.accumulate(np.concatenate([[np.inf], p[:-1, 1]]))
    return p[p[:, 1] < lowest_before]
