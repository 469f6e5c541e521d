"""Pareto fronts, hypervolume, the rank order (fronts, then crowding distance) and selection queries over plain
rows (dicts of metric -> value) or loss matrices.

Directions are given per objective; internally every objective is turned into a loss to minimize
(``sign * value``) and handed to moocore, the reference implementation of these algorithms.
"""

from __future__ import annotations

import math
import operator
import re
from collections.abc import Container, Iterable, Mapping, Sequence
from typing import Any

import moocore
import numpy as np

from nas.config.objectives import Direction, sign


def losses(rows: Sequence[Mapping[str, Any]], objectives: Sequence[tuple[str, Direction]]) -> np.ndarray:
    """``len(rows) × len(objectives)``, every column turned into a loss (to be minimized)."""
    return np.array([[sign(d) * float(r[name]) for name, d in objectives] for r in rows], dtype=float).reshape(
        len(rows), len(objectives)
    )


def pareto_mask(rows: Sequence[Mapping[str, Any]], objectives: Sequence[tuple[str, Direction]]) -> list[bool]:
    """True for each row not dominated by another (ties kept). Rows with a non-finite objective are never on it."""
    if not rows:
        return []
    loss = losses(rows, objectives)
    finite = np.isfinite(loss).all(axis=1)
    mask = np.zeros(len(rows), dtype=bool)
    if finite.any():
        mask[finite] = moocore.is_nondominated(loss[finite], keep_weakly=True)
    return mask.tolist()


def pareto_ranks(rows: Sequence[Mapping[str, Any]], objectives: Sequence[tuple[str, Direction]]) -> list[int]:
    """Non-dominated sorting rank of each row: 0 for the front, 1 for the next layer, ..."""
    if not rows:
        return []
    return [int(r) for r in moocore.pareto_rank(losses(rows, objectives))]


def hypervolume(
    rows: Sequence[Mapping[str, Any]],
    objectives: Sequence[tuple[str, Direction]],
    reference: Mapping[str, float],
) -> float:
    """Hypervolume dominated by ``rows`` and bounded by ``reference`` (a value per objective, in its own unit).

    Rows that do not strictly improve on the reference in every objective add nothing. The unit is the product of
    the objectives' units, so compare hypervolumes only under the same reference.
    """
    ref = np.array([sign(d) * float(reference[name]) for name, d in objectives])
    if not rows:
        return 0.0
    loss = losses(rows, objectives)
    keep = np.isfinite(loss).all(axis=1) & (loss < ref).all(axis=1)
    if not keep.any():
        return 0.0
    return float(moocore.hypervolume(loss[keep], ref=ref))


def hypervolume_curve(
    steps: Iterable[tuple[float, Mapping[str, Any] | None]],
    objectives: Sequence[tuple[str, Direction]],
    reference: Mapping[str, float],
    *,
    start: float = 0.0,
    at: Container[int] | None = None,
) -> list[tuple[float, float]]:
    """The hypervolume-vs-compute curve: ``(cumulative cost, hypervolume of the rows so far)`` after each step.

    A step is ``(its cost, its row)``, the row None when the step adds no point (stopped, failed); costs accumulate
    from ``start``, in the caller's unit. ``at``: the step indices to evaluate at (default every step). Only the
    front is kept between steps, so the cost per step is that of the front, not of the history.
    """
    spent, front, out = start, [], []
    for i, (cost, row) in enumerate(steps):
        spent += cost
        if row is not None:
            candidates = [*front, row]
            front = [r for r, keep in zip(candidates, pareto_mask(candidates, objectives), strict=True) if keep]
        if at is None or i in at:
            out.append((spent, hypervolume(front, objectives, reference)))
    return out


#: headroom past the largest value seen of a minimized cost: sampled values (a few architectures) need more
#: than values covering the whole space (a table's column)
SAMPLED_MARGIN, EXHAUSTIVE_MARGIN = 1.1, 1.01


def reference_point(
    objectives: Sequence[tuple[str, Direction]],
    seen: Mapping[str, Sequence[float]],
    *,
    given: Mapping[str, float] | None = None,
    margin: float = SAMPLED_MARGIN,
) -> dict[str, float]:
    """The hypervolume reference point, the one rule of the project.

    Per objective: ``given`` where set (a configured reference, a constraint's bound); else, from the values
    ``seen`` of it (costs: known before training), ``margin`` × the largest for a minimized metric and the
    smallest / ``margin`` for a maximized one; else (no values: a trained metric such as accuracy) 0 for a
    maximized metric and 1 for a minimized one (a fraction, e.g. an error rate).
    """
    given = given or {}
    out: dict[str, float] = {}
    for name, d in objectives:
        values = [float(v) for v in seen.get(name, ()) if math.isfinite(float(v))]
        if name in given:
            out[name] = float(given[name])
        elif values:
            out[name] = margin * max(values) if d == "minimize" else min(values) / margin
        else:
            out[name] = 0.0 if d == "maximize" else 1.0
    return out


_OPS = {"<=": operator.le, ">=": operator.ge, "<": operator.lt, ">": operator.gt, "==": operator.eq, "!=": operator.ne}
_COND = re.compile(r"^\s*([A-Za-z_][\w./]*)\s*(<=|>=|==|!=|<|>)\s*([-+0-9.eE]+)\s*$")


def parse_where(expr: str) -> list[tuple[str, str, float]]:
    """Parse ``"mflops<=5, params<1e5"`` (``,`` or ``and`` between conditions) into (metric, op, number) triples."""
    parts = [p for p in re.split(r",|\band\b", expr) if p.strip()]
    out = []
    for part in parts:
        m = _COND.match(part)
        if not m:
            raise ValueError(f"cannot read condition {part.strip()!r}; write e.g. 'mflops<=5' or 'val_accuracy>=0.9'")
        try:
            out.append((m.group(1), m.group(2), float(m.group(3))))
        except ValueError:
            raise ValueError(f"{m.group(3)!r} in {part.strip()!r} is not a number") from None
    return out


def select(
    rows: Sequence[Mapping[str, Any]], *, where: str | None = None, best: str | None = None, direction: Direction = "maximize"
) -> list[Mapping[str, Any]]:
    """Rows meeting every condition of ``where``, sorted best first by ``best`` (ties keep input order)."""
    conds = parse_where(where) if where else []
    for metric, _, _ in conds:
        if rows and metric not in rows[0]:
            raise ValueError(f"unknown metric {metric!r} in --where; known: {', '.join(sorted(rows[0]))}")
    kept = [r for r in rows if all(_OPS[op](float(r[m]), v) for m, op, v in conds)]
    if best:
        if kept and best not in kept[0]:
            raise ValueError(f"unknown metric {best!r} for --best; known: {', '.join(sorted(kept[0]))}")
        s = sign(direction)
        kept.sort(key=lambda r: s * float(r[best]) if math.isfinite(float(r[best])) else math.inf)
    return kept


def front_order(losses: np.ndarray) -> list[int]:
    """Row indices best first: non-dominated front, then crowding distance (larger first), then index.

    ``losses`` is ``n × m``, every column to be minimized.
    """
    n = len(losses)
    if n == 0:
        return []
    finite = np.where(np.isfinite(losses), losses, np.nan)
    # inf (a NaN accuracy) goes beyond every finite value so it is dominated, never a boundary point
    fill = np.nanmax(np.abs(finite), axis=0, initial=0.0) * 2 + 1
    clean = np.where(np.isfinite(losses), losses, fill)
    ranks = [int(r) for r in moocore.pareto_rank(clean)]
    out: list[int] = []
    for front in sorted(set(ranks)):
        members = [i for i in range(n) if ranks[i] == front]
        crowd = crowding_distance(clean[members])
        out.extend(m for _, m in sorted(zip(-crowd, members, strict=True)))
    return out


def crowding_distance(points: np.ndarray) -> np.ndarray:
    """NSGA-II crowding distance of each point within its front (inf at each objective's extremes)."""
    n, m = points.shape
    dist = np.zeros(n)
    if n <= 2:
        return np.full(n, np.inf)
    for j in range(m):
        idx = np.argsort(points[:, j], kind="stable")
        span = points[idx[-1], j] - points[idx[0], j]
        dist[idx[0]] = dist[idx[-1]] = np.inf
        if span > 0:
            dist[idx[1:-1]] += (points[idx[2:], j] - points[idx[:-2], j]) / span
    return dist
