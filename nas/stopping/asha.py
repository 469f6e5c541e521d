"""Pareto-aware asynchronous successive halving (ASHA, Li et al. 2020, with a multi-objective rank).

Rungs are resource levels (epochs). When a trial reaches a rung, its metrics there (accuracy so far, and its
costs, which are known before training) join the rung's record. It continues if its position in the rung's total
order is within the top ``ceil(n / eta)`` of the ``n`` trials recorded at that rung so far, otherwise it stops.
The order is non-dominated sorting (front 0 first), ties within a front broken by crowding distance (NSGA-II:
boundary points first, then the most isolated), so the cheapest and the most accurate trials both survive, as in
Syne Tune's multi-objective ASHA. Asynchronous: a decision uses only the trials that reached the rung before it;
no trial ever waits for others.
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from nas.config.objectives import Direction, sign
from nas.pareto import front_order


def default_rungs(max_resource: int, eta: float = 3.0, min_resource: int = 1) -> tuple[int, ...]:
    """Rung levels ``floor(max_resource / eta**k)`` down to ``min_resource`` (ascending, ``max_resource`` itself
    excluded). ``default_rungs(9, 3)`` is ``(1, 3)``: trials are judged after 1 and 3 epochs, survivors train 9.
    """
    if eta <= 1:
        raise ValueError(f"eta must be > 1, got {eta}")
    levels: set[int] = set()
    r = max_resource / eta
    while math.floor(r + 1e-9) >= min_resource:
        levels.add(math.floor(r + 1e-9))
        r /= eta
    return tuple(sorted(levels - {max_resource}))


def experiment_rungs(method: str, rungs: Sequence[int] | None, epochs: int, eta: float) -> tuple[int, ...]:
    """The rungs an experiment's early stopping judges trials at: ``rungs`` as given, else
    :func:`default_rungs`; none without early stopping (``method`` none) or when ``epochs`` is too short."""
    if method == "none":
        return ()
    return tuple(rungs) if rungs else default_rungs(epochs, eta)


@dataclass
class RungDecision:
    """One decision: ``proceed`` False means stop the trial; ``position`` is its 0-based place of ``n``."""

    rung: float
    proceed: bool
    position: int
    n: int
    keep: int


@dataclass
class ParetoASHA:
    """Decides at each rung whether a trial goes on (see the module docstring).

    ``objectives`` are (metric, direction) pairs; ``on_result`` needs every one of them in ``metrics``.
    ``grace`` trials at each rung always proceed (too few to rank). Not thread-safe.
    """

    rungs: Sequence[float]
    objectives: Sequence[tuple[str, Direction]]
    eta: float = 3.0
    grace: int = 1
    recorded: dict[float, dict[Hashable, list[float]]] = field(default_factory=dict, init=False)
    decisions: list[tuple[Hashable, RungDecision]] = field(default_factory=list, init=False)

    def __post_init__(self) -> None:
        if self.eta <= 1:
            raise ValueError(f"eta must be > 1, got {self.eta}")
        if not self.rungs or any(r <= 0 for r in self.rungs):
            raise ValueError(f"rungs must be positive resource levels, got {list(self.rungs)}")
        self.rungs = tuple(sorted(float(r) for r in self.rungs))
        self.recorded = {r: {} for r in self.rungs}

    def on_result(self, key: Hashable, resource: float, metrics: Mapping[str, float]) -> bool:
        """Record ``key``'s result at ``resource`` (epochs done); False means stop it now.

        A result that reaches no new rung proceeds. A trial reaching several rungs at once is judged at the
        highest. Non-finite accuracies rank last.
        """
        reached = [r for r in self.rungs if r <= resource + 1e-9 and key not in self.recorded[r]]
        if not reached:
            return True
        rung = reached[-1]
        point = [sign(d) * float(metrics[name]) for name, d in self.objectives]
        point = [v if math.isfinite(v) else math.inf for v in point]
        for r in reached:
            self.recorded[r][key] = point
        decision = self._decide(rung, key)
        self.decisions.append((key, decision))
        return decision.proceed

    def _decide(self, rung: float, key: Hashable) -> RungDecision:
        record = self.recorded[rung]
        n = len(record)
        keep = max(1, math.ceil(n / self.eta))
        if n <= self.grace:
            return RungDecision(rung, True, 0, n, keep)
        keys = list(record)
        position = front_order(np.array([record[k] for k in keys])).index(keys.index(key))
        return RungDecision(rung, position < keep, position, n, keep)

    def stopped_at(self, key: Hashable) -> float | None:
        """The rung at which ``key`` was stopped, or None."""
        for k, d in self.decisions:
            if k == key and not d.proceed:
                return d.rung
        return None
