"""The yardsticks of a tabular search: the reference point, the table's true hypervolume, and how much a search
spent before its front reached a fraction of it.

The hypervolume of a search is that of its fully evaluated architectures (full-fidelity accuracy against the
costs); the true hypervolume is that of the whole table under the same reference, so 1.0 means the search found
the table's whole front (or points tied with it).
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence

from nas.config.experiment import Experiment
from nas.config.objectives import METRICS
from nas.pareto import EXHAUSTIVE_MARGIN, hypervolume, reference_point
from nas.search.backends.table import BenchTable
from nas.search.loop import Point

TARGETS = (0.95, 0.99, 1.0)


def reference(exp: Experiment, table: BenchTable) -> dict[str, float]:
    """``bench.reference`` where given; else :func:`nas.pareto.reference_point` over each cost's whole column
    (0 for an accuracy; 1.01 × the largest value of a minimized cost). Costs are free lookups: this peeks at
    nothing a search would pay for."""
    objectives = [(o.name, o.direction) for o in exp.objectives]
    seen = {o.name: table.values(o.name).tolist() for o in exp.objectives if METRICS[o.name].source != "train"}
    return reference_point(objectives, seen, given=exp.bench.reference, margin=EXHAUSTIVE_MARGIN)


def table_rows(exp: Experiment, table: BenchTable) -> list[dict[str, float]]:
    """Every architecture's objective row (full-fidelity accuracy and costs)."""
    cols = {o.name: table.values(o.name) for o in exp.objectives}
    return [{k: float(v[i]) for k, v in cols.items()} for i in range(len(table))]


def true_hypervolume(exp: Experiment, table: BenchTable, ref: dict[str, float] | None = None) -> float:
    """The hypervolume of the whole table's front under ``ref`` (default :func:`reference`)."""
    objectives = [(o.name, o.direction) for o in exp.objectives]
    return hypervolume(table_rows(exp, table), objectives, ref or reference(exp, table))


def reached(trajectory: Sequence[Point], true_hv: float, fraction: float, rtol: float = 1e-9) -> Point | None:
    """The first point whose hypervolume is at least ``fraction`` of ``true_hv`` (None if never)."""
    goal = fraction * true_hv * (1 - rtol)
    return next((p for p in trajectory if p.hypervolume >= goal), None)


def median_iqr(values: Sequence[float]) -> tuple[float, float, float]:
    """(median, 25th, 75th percentile); ``inf`` stands for a run that never got there, so the median is
    infinite when at least half the runs did not (inclusive quartiles, as ``statistics.quantiles``)."""
    if not values:
        return math.inf, math.inf, math.inf
    xs = sorted(values)
    med = statistics.median(xs)  # (x + inf) / 2 is inf: half the runs missing makes the median infinite
    if len(xs) == 1:
        return med, xs[0], xs[0]
    finite = [x if math.isfinite(x) else 1e300 for x in xs]
    q1, _, q3 = statistics.quantiles(finite, n=4, method="inclusive")
    return med, (q1 if q1 < 1e299 else math.inf), (q3 if q3 < 1e299 else math.inf)
