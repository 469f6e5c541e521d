"""Promotion by expected hypervolume improvement: which trial stopped at the rung deserves a full training.

``early_stopping.method: pareto-promote``. Every new trial trains only to the (single) rung. A trial stopped there
is later *promoted* (trained in full) when it is the one whose full-fidelity point is expected to add the most
hypervolume to the front of fully trained trials, and full trainings have used less than ``full_share`` of the
compute so far. This is ASHA's promotion variant (Li et al. 2020: decide late, when the rung has more evidence)
with a multi-objective, model-based choice instead of a fixed top-1/eta cut.

The model: a Gaussian process maps (rung accuracy, log costs) to full-fidelity accuracy, fitted on the promoted
trials. The costs matter: on NAS-Bench-201 the gap between 12- and 200-epoch accuracy differs by up to 4 points
between FLOPs levels, so one global rung->full map (an isotonic fit) promotes the wrong trials. Its predictive
spread enters as 8 normal quantiles (EHVI, Emmerich et al. 2006). Until ``min_pairs`` trials are promoted, the
rung's own non-dominated order (:func:`nas.pareto.front_order`) chooses.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy.stats import norm
from sklearn.exceptions import ConvergenceWarning
from sklearn.gaussian_process import GaussianProcessRegressor
from sklearn.gaussian_process.kernels import RBF, ConstantKernel, WhiteKernel

from nas.config.objectives import Direction
from nas.pareto import front_order, losses, pareto_ranks
from nas.surrogate.acquire import hv_gains

QUANTILES = norm.ppf((np.arange(8) + 0.5) / 8)


@dataclass
class Promoter:
    """``objectives``: (metric, direction) pairs, ``accuracy`` among them (maximized, the only one that changes
    between the rung and full training). ``reference``: the hypervolume reference of the full front.
    ``layers`` > 0: only trials within the rung's first ``layers`` non-dominated layers are promoted (and the
    rung's order picks when the model expects no gain anywhere). ``min_rung``: no promotion before that many
    trials reached the rung."""

    objectives: Sequence[tuple[str, Direction]]
    accuracy: str
    reference: Mapping[str, float]
    full_share: float = 0.5
    min_pairs: int = 8
    layers: int = 3
    min_rung: int = 0
    stopped: dict[Hashable, dict[str, float]] = field(default_factory=dict, init=False)
    params: dict[Hashable, dict[str, Any]] = field(default_factory=dict, init=False)
    pairs: dict[Hashable, tuple[dict[str, float], float]] = field(default_factory=dict, init=False)
    promoting: dict[Hashable, dict[str, float]] = field(default_factory=dict, init=False)
    _gp: Any = field(default=None, init=False)
    _gp_n: int = field(default=-1, init=False)
    _scale: tuple[np.ndarray, np.ndarray] = field(
        default_factory=lambda: (np.zeros(0), np.ones(0)), init=False)  # features' mean, sd

    def __post_init__(self) -> None:
        if not 0 < self.full_share < 1:
            raise ValueError(f"full_share must be in (0, 1), got {self.full_share}")
        self.costs = [n for n, _ in self.objectives if n != self.accuracy]

    def add_stopped(self, key: Hashable, rung_row: Mapping[str, float], params: Mapping[str, Any]) -> None:
        """A trial stopped at the rung: ``rung_row`` holds its rung accuracy (under ``accuracy``) and costs."""
        self.stopped[key] = {n: float(rung_row[n]) for n, _ in self.objectives}
        self.params[key] = dict(params)

    def start(self, key: Hashable) -> None:
        """``key`` (returned by :meth:`pick`) is being promoted: it is not picked again."""
        self.promoting[key] = self.stopped.pop(key)

    def abandon(self, key: Hashable) -> None:
        """The promotion of ``key`` failed: it is forgotten (not picked again)."""
        self.promoting.pop(key, None)

    def add_promoted(self, key: Hashable, full_accuracy: float) -> None:
        """``key`` was trained in full and reached ``full_accuracy``."""
        row = self.promoting.pop(key) if key in self.promoting else self.stopped.pop(key)
        if math.isfinite(full_accuracy):
            self.pairs[key] = (row, float(full_accuracy))

    def wants(self, spent: float, spent_full: float) -> bool:
        """Whether full trainings may take the next slot: they have used under ``full_share`` of ``spent``."""
        rung = len(self.stopped) + len(self.pairs) + len(self.promoting)
        return bool(self.stopped) and rung >= self.min_rung and spent_full < self.full_share * spent

    def pick(self, front: Sequence[Mapping[str, float]]) -> Hashable | None:
        """The stopped trial to promote now, given the fully trained rows ``front``; None when none is expected
        to add hypervolume."""
        keys = [k for k, r in self.stopped.items() if math.isfinite(r[self.accuracy])]
        if keys and self.layers > 0:  # only trials within the first `layers` non-dominated layers at the rung
            rows = [self.stopped[k] for k in keys] + [row for row, _ in self.pairs.values()]
            ranks = pareto_ranks(rows, self.objectives)
            keys = [k for k, rank in zip(keys, ranks, strict=False) if rank < self.layers]
        if not keys:
            return None
        if len(self.pairs) < self.min_pairs:
            return self._first_in_order(keys)
        mean, std = self._predict([self.stopped[k] for k in keys])
        acc_col = [n for n, _ in self.objectives].index(self.accuracy)
        q = len(QUANTILES)
        cand = np.repeat(np.array([[self.stopped[k][n] for n, _ in self.objectives] for k in keys]), q, axis=0)
        cand[:, acc_col] = (mean[:, None] + std[:, None] * QUANTILES[None, :]).ravel()
        gains = hv_gains(list(front), cand, self.objectives, self.reference).reshape(len(keys), q).mean(axis=1)
        best = int(np.argmax(gains))
        if gains[best] > 0:
            return keys[best]
        # no expected gain anywhere: with the layer filter, the rung's own order still says who is next (a model
        # that has collapsed must not stall promotions); without it, nothing is worth a full training
        return self._first_in_order(keys) if self.layers > 0 else None

    def _first_in_order(self, keys: Sequence[Hashable]) -> Hashable:
        return keys[front_order(losses([self.stopped[k] for k in keys], self.objectives))[0]]

    def _features(self, rows: Sequence[Mapping[str, float]]) -> np.ndarray:
        cols = [[r[self.accuracy] for r in rows]]
        for c in self.costs:
            v = np.array([r[c] for r in rows], dtype=float)
            cols.append(np.log(v) if np.all(v > 0) else v)
        return np.array(cols, dtype=float).T

    def _predict(self, rows: Sequence[Mapping[str, float]]) -> tuple[np.ndarray, np.ndarray]:
        """The GP's mean and std of full accuracy for ``rows``; refitted when promotions were added."""
        pairs = list(self.pairs.values())
        if self._gp_n != len(pairs):
            x = self._features([r for r, _ in pairs])
            self._scale = (x.mean(axis=0), x.std(axis=0) + 1e-9)
            kernel = (ConstantKernel(1.0, (1e-2, 1e2)) * RBF(np.ones(x.shape[1]), (1e-2, 1e2))
                      + WhiteKernel(0.1, (1e-4, 1.0)))
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", ConvergenceWarning)
                self._gp = GaussianProcessRegressor(kernel, normalize_y=True, random_state=0).fit(
                    (x - self._scale[0]) / self._scale[1], np.array([a for _, a in pairs]))
            self._gp_n = len(pairs)
        mean, std = self._gp.predict((self._features(rows) - self._scale[0]) / self._scale[1], return_std=True)
        return np.asarray(mean), np.asarray(std)
