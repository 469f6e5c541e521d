"""The one feasibility rule: a profiled architecture is feasible when it breaks no hard constraint.

Hard constraints are ``constraints`` (bounds on profile metrics) and ``budget.trial_tflops`` (a cap on one full
training's FLOPs). Both are checked on the profile BEFORE any training. :func:`violations` is used for every
proposal, for the surrogate's candidates, for proxy-prior seeding and by :func:`check_feasible`, the pre-flight
refusal of constraints that no architecture of the space meets.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any

from nas.config.experiment import Experiment
from nas.config.objectives import float32_size_mb
from nas.errors import ConfigError
from nas.profile import Profile
from nas.space import Space

#: seeds of the random architectures :func:`check_feasible` profiles start here (apart from other probes' seeds)
FEASIBILITY_SEED_BASE = 20_000


def metric_value(profile: Profile, name: str) -> float:
    """Metric ``name`` of a profile, in its unit; ``size_mb`` is the float32 weights (the trial measures the real
    file size after training/compression). Raises ValueError for a metric the profile did not measure."""
    if name == "size_mb":
        return float32_size_mb(profile.params)
    value = getattr(profile, name)
    if value is None:
        raise ValueError(f"metric {name!r} is not measurable here (profiling returned None)")
    return float(value)


def violations(exp: Experiment, profile: Profile, train_flops: float) -> dict[str, float]:
    """Each hard constraint's violation (0: met, > 0: broken, in the metric's unit): every ``constraints``
    metric, and ``trial_tflops`` when ``budget.trial_tflops`` caps it (``train_flops``: one full training)."""
    out = {c.metric: c.violation(metric_value(profile, c.metric)) for c in exp.constraints}
    cap = exp.budget.trial_tflops
    if cap is not None:
        out["trial_tflops"] = max(0.0, train_flops / 1e12 - cap)
    return out


def is_feasible(broken: Mapping[str, float]) -> bool:
    """Whether no violation of :func:`violations` is positive."""
    return not any(v > 0 for v in broken.values())


def check_feasible(exp: Experiment, space: Space, profile: Callable[[Mapping[str, Any]], Profile],
                   train_flops: Callable[[Profile], float], samples: int = 64, max_seconds: float = 20.0) -> None:
    """Refuse hard constraints that no architecture of the space meets, before anything is written or trained:
    profile up to ``samples`` seeded random architectures (at most ``max_seconds``) and raise ConfigError when
    none is feasible. Unbuildable samples are a trial-time failure, not a constraint problem: skipped."""
    if not exp.constraints and exp.budget.trial_tflops is None:
        return
    start, tried, closest = time.perf_counter(), 0, {}
    for i in range(samples):
        try:
            prof = profile(space.sample_random(FEASIBILITY_SEED_BASE + i))
        except Exception:
            continue
        tried += 1
        broken = violations(exp, prof, train_flops(prof))
        if is_feasible(broken):
            return
        values = {c.metric: metric_value(prof, c.metric) for c in exp.constraints}
        if "trial_tflops" in broken:
            values["trial_tflops"] = train_flops(prof) / 1e12
        for m, v in values.items():
            closest[m] = min(closest.get(m, v), v)
        if time.perf_counter() - start > max_seconds:
            break
    if tried == 0:
        return
    field = "constraints" if exp.constraints else "budget/trial_tflops"
    raise ConfigError(
        exp.source, field,
        f"none of {tried} random architectures of {space.source} meets the hard constraints "
        f"(smallest values seen: {', '.join(f'{m}={v:.4g}' for m, v in closest.items())})",
        "loosen the bounds in `constraints` (or `budget.trial_tflops`) or give the space smaller architectures",
    )
