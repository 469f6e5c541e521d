"""The surrogate's proposal for the next trial slot (``surrogate.enabled``).

It learns the lowest-fidelity accuracy the search observes for every trained architecture (the first rung's
under early stopping, else the full one) from the architecture's encoding. Per slot it draws ``candidates``
random architectures, looks up or profiles their costs (free: nothing trains), predicts each one's accuracy as
mean + ``kappa`` × the ensemble's spread, and proposes the one whose point adds the most hypervolume to the
``layers``-th non-dominated layer of what it has seen (see :mod:`nas.surrogate.acquire`). Architectures already
trained are never proposed again.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from nas.config.experiment import SurrogateConfig
from nas.config.objectives import Direction
from nas.pareto import reference_point
from nas.space import Space
from nas.surrogate.acquire import hv_gains, layer_front
from nas.surrogate.encode import Encoder
from nas.surrogate.model import ForestSurrogate
from nas.surrogate.pool import RandomPool


def arch_id(params: Mapping[str, Any]) -> str:
    """An architecture's identity: its params as sorted JSON."""
    return json.dumps(dict(params), sort_keys=True, default=str)


class SurrogateProposer:
    """``costs_of(params)`` returns the candidate's cost objectives (a dict), or None when it is infeasible
    (unbuildable, or breaking a hard constraint). ``objectives``: (metric, direction), ``accuracy`` among them."""

    def __init__(
        self,
        space: Space,
        config: SurrogateConfig,
        objectives: Sequence[tuple[str, Direction]],
        accuracy: str,
        reference: Mapping[str, float] | None,
        costs_of: Callable[[Mapping[str, Any]], Mapping[str, float] | None],
        seed: int,
    ) -> None:
        self.cfg, self.objectives, self.accuracy = config, list(objectives), accuracy
        self.reference = dict(reference or {})
        self.costs_of = costs_of
        self.encoder = Encoder(space.dimensions())
        self.pool = RandomPool(space, seed)
        self.model = ForestSurrogate(seed)
        self.rows: list[dict[str, float]] = []
        self.x: list[np.ndarray] = []  # encodings of ``rows``, in the same order
        self.seen: set[str] = set()
        self._fitted_at = -1

    def observe(self, params: Mapping[str, Any], accuracy: float, costs: Mapping[str, float]) -> None:
        """An architecture trained to the surrogate's fidelity reached ``accuracy`` (NaN: a failure, unlearned)."""
        self.seen.add(arch_id(params))
        if not math.isfinite(accuracy):
            return
        self.x.append(self.encoder.encode(params))
        self.rows.append({**{k: float(v) for k, v in costs.items()}, self.accuracy: float(accuracy)})

    def mark(self, params: Mapping[str, Any]) -> None:
        """``params`` is being trained: never propose it again."""
        self.seen.add(arch_id(params))

    def ready(self) -> bool:
        return len(self.rows) >= self.cfg.warmup

    def propose(self) -> dict[str, Any] | None:
        """The next architecture to train, or None (still warming up, or no feasible unseen candidate)."""
        if not self.ready():
            return None
        n = len(self.rows)
        accuracies = np.array([r[self.accuracy] for r in self.rows])
        if not self.model.fitted or n - self._fitted_at >= self.cfg.refit_every:
            self.model.fit(np.stack(self.x), accuracies)
            self._fitted_at = n
        cands, costs, drawn = [], [], set()
        for p in self.pool.draw(self.cfg.candidates):
            key = arch_id(p)
            if key in self.seen or key in drawn:
                continue
            drawn.add(key)
            c = self.costs_of(p)
            if c is not None:
                cands.append(p)
                costs.append(c)
        if not cands:
            return None
        mean, std = self.model.predict(self.encoder.encode_many(cands))
        optimistic = mean + self.cfg.kappa * std
        values = np.array([[optimistic[i] if name == self.accuracy else float(costs[i][name])
                            for name, _ in self.objectives] for i in range(len(cands))])
        drawn_rows = [{**c, self.accuracy: 0.0} for c in costs]
        seen = {n: [r[n] for r in self.rows + drawn_rows] for n, _ in self.objectives if n != self.accuracy}
        ref = {**reference_point(self.objectives, seen, given=self.reference),
               self.accuracy: float(accuracies.min()) - 1e-9}
        bar = layer_front(self.rows, self.objectives, self.cfg.layers)
        gains = hv_gains(bar, values, self.objectives, ref)
        best = int(np.argmax(gains)) if gains.max() > 0 else int(np.argmax(optimistic))
        return cands[best]
