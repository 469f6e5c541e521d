"""Per-run and per-method figures of tabular searches: evaluations and compute to reach each hypervolume target.

A target is a fraction of the table's true hypervolume (:data:`nas.bench.targets.TARGETS`: 95, 99, 100%).
Medians and quartiles are over seeds, a run that never reached a target counting as infinite; an infinite
figure is reported as None (JSON null): at least half the runs did not get there within their budget.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from nas.bench.targets import TARGETS, median_iqr, reached

if TYPE_CHECKING:
    from nas.bench.session import BenchRun


def target_name(fraction: float) -> str:
    """``hv95``, ``hv99``, ``hv100`` for 0.95, 0.99, 1.0."""
    return f"hv{round(100 * fraction):d}"


def _finite(x: float) -> float | None:
    return x if math.isfinite(x) else None


def run_figures(run: BenchRun, true_hv: float, targets: Sequence[float] = TARGETS) -> dict[str, Any]:
    """One run as plain values: totals, stop reason, and per target the evaluations/compute to reach it."""
    last = run.last
    out: dict[str, Any] = {
        "seed": run.seed, "evaluations": last.evaluations, "full_trainings": last.full, "compute": last.compute,
        "hv_fraction": last.hypervolume / true_hv if true_hv > 0 else math.nan, "stopped_early": run.stopped_early,
        "screened_out": run.screened, "repeats": run.repeats, "promoted": run.promoted, "stop_reason": run.stop_reason,
        "proxy": run.proxy, "wall_s": run.wall_s,
    }
    for f in targets:
        p = reached(run.trajectory, true_hv, f)
        out[target_name(f)] = None if p is None else {"evaluations": p.evaluations, "compute": p.compute}
    return out


def aggregate(runs: Sequence[BenchRun], true_hv: float, targets: Sequence[float] = TARGETS) -> dict[str, Any]:
    """Per target: median, 25th and 75th percentile of evaluations and of compute over ``runs``, and how many
    runs reached it (None where a figure is infinite)."""
    out: dict[str, Any] = {}
    for f in targets:
        points = [reached(r.trajectory, true_hv, f) for r in runs]
        figures: dict[str, Any] = {"reached": sum(p is not None for p in points), "runs": len(runs)}
        for name, attr in (("evals", "evaluations"), ("compute", "compute")):
            med, q1, q3 = median_iqr([math.inf if p is None else float(getattr(p, attr)) for p in points])
            figures.update({f"{name}_median": _finite(med), f"{name}_q1": _finite(q1), f"{name}_q3": _finite(q3)})
        out[target_name(f)] = figures
    return out
