"""Figures of several seeds' trajectories: compute to reach each fraction of the true hypervolume, median and
quartiles over seeds, seeds reaching it, final hypervolume. A seed that never reached a target counts as
infinite, so a median is None when at least half the seeds did not get there (a quartile likewise)."""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from typing import Any, Protocol

TARGETS = (0.95, 0.99, 1.0)


class _Point(Protocol):
    compute: float
    hypervolume: float


def first_reaching(trajectory: Sequence[_Point], true_hv: float, fraction: float) -> float:
    """Compute spent when the hypervolume first reached ``fraction`` of ``true_hv`` (inf if never)."""
    goal = fraction * true_hv * (1 - 1e-9)
    return next((p.compute for p in trajectory if p.hypervolume >= goal), math.inf)


def median_iqr(values: Sequence[float]) -> tuple[float | None, float | None, float | None]:
    """(median, 25th, 75th percentile), inclusive quartiles; None for an infinite figure."""
    xs = sorted(values)
    if not xs:
        return None, None, None
    med = statistics.median(xs)
    q1, q3 = (xs[0], xs[0]) if len(xs) == 1 else statistics.quantiles(
        [x if math.isfinite(x) else 1e300 for x in xs], n=4, method="inclusive")[::2]
    return tuple(None if not math.isfinite(v) or v >= 1e299 else float(v) for v in (med, q1, q3))  # type: ignore[return-value]


def figures(trajectories: Sequence[Sequence[_Point]], true_hv: float) -> dict[str, Any]:
    """Per target ``hv95``/``hv99``/``hv100``: median, q1, q3 of the compute and the seeds reaching it; and the
    final hypervolume (fraction of the true one) per seed and its median."""
    out: dict[str, Any] = {"seeds": len(trajectories)}
    for f in TARGETS:
        spent = [first_reaching(t, true_hv, f) for t in trajectories]
        med, q1, q3 = median_iqr(spent)
        out[f"hv{round(100 * f)}"] = {"median": med, "q1": q1, "q3": q3,
                                      "reached": sum(math.isfinite(s) for s in spent)}
    finals = [(t[-1].hypervolume / true_hv if t and true_hv > 0 else 0.0) for t in trajectories]
    out["final_hv"] = finals
    out["final_hv_median"] = statistics.median(finals) if finals else None
    out["compute_spent_median"] = statistics.median(t[-1].compute for t in trajectories) if trajectories else None
    return out


def cell(fig: dict[str, Any], target: str) -> str:
    """``median [q1, q3]`` (``-`` when the median is infinite, ``>`` for an infinite quartile)."""
    t = fig[target]
    if t["median"] is None:
        return "-"
    return f"{t['median']:.1f} [{t['q1']:.1f}, {'>' if t['q3'] is None else format(t['q3'], '.1f')}]"
