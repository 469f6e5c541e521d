"""The bill and the record of one peer's run on a table: the same billing for every method.

Billing (full-training equivalents): an evaluation at the low fidelity costs ``low_epochs / full_epochs`` (12 of
200 epochs: 0.06); a full training costs 1, and so does a promotion from the low fidelity, because in NB201 a
12-epoch schedule is a separate run (its learning rate anneals to zero by epoch 12), so nothing carries over.
A repeated architecture (one asked again at a fidelity it was already evaluated at, or at the low fidelity after a
full training) costs nothing with ``repeats_paid=False`` (a search keeps its results) and the full price with
``repeats_paid=True`` (it trains again).

The record is a trajectory of :class:`Point` (evaluations, full trainings, compute, hypervolume of the fully
trained cells), one per full training; the hypervolume uses moocore, as :func:`nas.pareto.hypervolume` does,
counting only points strictly better than the reference in both objectives.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import moocore
import numpy as np

from benchmarks.peers.table import PeerTable


@dataclass(frozen=True)
class Point:
    """After one evaluation: evaluations started (any fidelity), full trainings, compute, hypervolume."""

    evaluations: int
    full: int
    compute: float
    hypervolume: float


@dataclass
class Ledger:
    """Bills evaluations on ``table``, answers them from it, and keeps the trajectory (see the module docstring).

    ``reference``: (accuracy, cost) hypervolume reference. ``max_compute``: :attr:`exhausted` once spent reaches it.
    """

    table: PeerTable
    reference: tuple[float, float]
    max_compute: float
    repeats_paid: bool = False
    evaluations: int = 0
    full: int = 0
    spent: float = 0.0
    repeats: int = 0
    trajectory: list[Point] = field(default_factory=list)
    _low_seen: set[int] = field(default_factory=set)
    _full_seen: set[int] = field(default_factory=set)
    _front: np.ndarray = field(default_factory=lambda: np.empty((0, 2)))
    _hv: float = 0.0

    @property
    def low_cost(self) -> float:
        return self.table.low_epochs / self.table.full_epochs

    @property
    def exhausted(self) -> bool:
        return self.spent >= self.max_compute - 1e-12

    @property
    def hypervolume(self) -> float:
        return self._hv

    def low(self, row: int) -> float:
        """Evaluate ``row`` at the low fidelity; its low-fidelity accuracy."""
        repeat = row in self._low_seen or row in self._full_seen
        self._bill(self.low_cost, repeat)
        self._low_seen.add(row)
        self._record()
        return float(self.table.low_accuracy[row])

    def full_training(self, row: int) -> float:
        """Train ``row`` in full (a new run, or a promotion: the same price); its full-fidelity accuracy."""
        repeat = row in self._full_seen
        self._bill(1.0, repeat)
        if not repeat:
            self._full_seen.add(row)
            self.full += 1
            self._add(row)
        self._record()
        return float(self.table.accuracy[row])

    def _bill(self, cost: float, repeat: bool) -> None:
        self.evaluations += 1
        self.repeats += repeat
        if self.repeats_paid or not repeat:
            self.spent += cost

    def _add(self, row: int) -> None:
        loss = np.array([-self.table.accuracy[row], self.table.cost[row]])
        ref = np.array([-self.reference[0], self.reference[1]])
        if not (loss < ref).all():
            return
        if len(self._front) and (self._front <= loss).all(axis=1).any():
            return  # weakly dominated: the hypervolume cannot grow
        keep = ~((loss <= self._front).all(axis=1))
        self._front = np.vstack([self._front[keep], loss])
        self._hv = float(moocore.hypervolume(self._front, ref=ref))

    def _record(self) -> None:
        self.trajectory.append(Point(self.evaluations, self.full, self.spent, self._hv))


def true_hypervolume(table: PeerTable, reference: tuple[float, float]) -> float:
    """The hypervolume of the whole table's (accuracy, cost) front under ``reference``."""
    loss = np.column_stack([-table.accuracy, table.cost])
    ref = np.array([-reference[0], reference[1]])
    keep = (loss < ref).all(axis=1)
    return float(moocore.hypervolume(loss[keep], ref=ref)) if keep.any() else 0.0
