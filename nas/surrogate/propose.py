"""The surrogate's proposal for the next trial slot (``surrogate.enabled``).

It learns the lowest-fidelity accuracy the search observes for every trained architecture (the first rung's
under early stopping, else the full one) from the architecture's encoding. Per slot it draws ``candidates``
random architectures, looks up or profiles their costs (free: nothing trains), predicts each one's accuracy as
mean + ``kappa`` × the ensemble's spread, and proposes the one whose point adds the most hypervolume to the
``layers``-th non-dominated layer of what it has seen (see :mod:`nas.surrogate.acquire`). Architectures already
trained, or one the same network as one trained (``canonical``: e.g. isomorphic NB201 cells), are never proposed
again: the search would answer them from the known result, a wasted slot.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Hashable, Mapping, Sequence
from typing import Any

import numpy as np

from nas.config.experiment import SurrogateConfig
from nas.config.objectives import Direction
from nas.pareto import losses, reference_point
from nas.space import Space
from nas.surrogate.acquire import hv_gains, layer_front, staircase
from nas.surrogate.encode import Encoder
from nas.surrogate.model import ForestSurrogate
from nas.surrogate.pool import RandomPool

#: candidates whose costs and encodings are remembered (a categorical space repeats them); beyond, forgotten
CANDIDATE_CACHE = 200_000


def arch_id(params: Mapping[str, Any]) -> Hashable:
    """An architecture's identity: its params as sorted JSON; as the sorted (name, value) pairs when every value is
    a string (the same equality, without serializing: the surrogate asks it of every candidate)."""
    if all(type(v) is str for v in params.values()):
        return tuple(sorted(params.items()))
    return json.dumps(dict(params), sort_keys=True, default=str)


def _remembered(cache: dict[Hashable, Any], key: Hashable, compute: Callable[[], Any]) -> Any:
    """``cache[key]``, computed once; the cache is emptied when it holds :data:`CANDIDATE_CACHE` entries."""
    if key not in cache:
        if len(cache) >= CANDIDATE_CACHE:
            cache.clear()
        cache[key] = compute()
    return cache[key]


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
        canonical: Callable[[Mapping[str, Any]], Mapping[str, Any]] | None = None,
    ) -> None:
        self.cfg, self.objectives, self.accuracy = config, list(objectives), accuracy
        self.reference = dict(reference or {})
        self.costs_of = costs_of
        self.canonical = canonical
        self._ids: dict[Hashable, Hashable] = {}  # arch_id -> the id of its canonical form
        self.encoder = Encoder(space.dimensions())
        self.pool = RandomPool(space, seed)
        self.model = ForestSurrogate(seed)
        self.rows: list[dict[str, float]] = []
        self.x: list[np.ndarray] = []  # encodings of ``rows``, in the same order
        self.seen: set[Hashable] = set()
        self._fitted_at = -1
        self._candidates: dict[Hashable, tuple[Mapping[str, float], np.ndarray] | None] = {}  # costs, encoding
        self._bar: tuple[int, Any] = (-1, None)  # (rows seen, :meth:`_bar_points`)

    def observe(self, params: Mapping[str, Any], accuracy: float, costs: Mapping[str, float]) -> None:
        """An architecture trained to the surrogate's fidelity reached ``accuracy`` (NaN: a failure, unlearned)."""
        self.seen.add(self.identity(params))
        if not math.isfinite(accuracy):
            return
        self.x.append(self.encoder.encode(params))
        self.rows.append({**{k: float(v) for k, v in costs.items()}, self.accuracy: float(accuracy)})

    def mark(self, params: Mapping[str, Any]) -> None:
        """``params`` is being trained: never propose it again."""
        self.seen.add(self.identity(params))

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
        cands, costs, rows_x, drawn = [], [], [], set()
        for p in self.pool.draw(self.cfg.candidates):
            key = arch_id(p)
            same = self._same_network(key, p)
            if same in self.seen or same in drawn:
                continue
            drawn.add(same)
            known = self._candidate(key, p)
            if known is not None:
                cands.append(p)
                costs.append(known[0])
                rows_x.append(known[1])
        if not cands:
            return None
        mean, std = self.model.predict(np.stack(rows_x))
        optimistic = mean + self.cfg.kappa * std
        values = np.array([[optimistic[i] if name == self.accuracy else float(costs[i][name])
                            for name, _ in self.objectives] for i in range(len(cands))])
        unset = [n for n, _ in self.objectives if n != self.accuracy and n not in self.reference]
        seen = {n: [r[n] for r in self.rows] + [c[n] for c in costs] for n in unset}
        ref = {**reference_point(self.objectives, seen, given=self.reference),
               self.accuracy: float(accuracies.min()) - 1e-9}
        gains = hv_gains(self._bar_points(), values, self.objectives, ref)
        best = int(np.argmax(gains)) if gains.max() > 0 else int(np.argmax(optimistic))
        return cands[best]

    def identity(self, params: Mapping[str, Any]) -> Hashable:
        """What "the same architecture" means here: the id of the canonical form of ``params``."""
        return self._same_network(arch_id(params), params)

    def _same_network(self, key: Hashable, params: Mapping[str, Any]) -> Hashable:
        if self.canonical is None:
            return key
        canonical = self.canonical
        return _remembered(self._ids, key, lambda: arch_id(canonical(params)))

    def _candidate(self, key: Hashable, params: Mapping[str, Any]) -> tuple[Mapping[str, float], np.ndarray] | None:
        """A candidate's costs and encoding, None when infeasible; remembered (costs are deterministic)."""
        def measure() -> tuple[Mapping[str, float], np.ndarray] | None:
            c = self.costs_of(params)
            return None if c is None else (c, self.encoder.encode(params))

        return _remembered(self._candidates, key, measure)

    def _bar_points(self) -> np.ndarray | list[dict[str, float]]:
        """The ``layers``-th non-dominated layer of the rows seen (recomputed only when a row was added); with two
        objectives as its staircase of losses, whose hypervolume gains are the same as the layer's rows'."""
        if self._bar[0] != len(self.rows):
            bar = layer_front(self.rows, self.objectives, self.cfg.layers)
            self._bar = (len(self.rows), staircase(losses(bar, self.objectives)) if len(self.objectives) == 2 else bar)
        return self._bar[1]
