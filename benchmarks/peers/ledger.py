"""The bill and the record of one peer's run on a table: the same billing for every method.

Billing (full-training equivalents): an evaluation at the low fidelity costs ``low_epochs / full_epochs`` (12 of
200 epochs: 0.06); a full training costs 1, and so does a promotion from the low fidelity, because in NB201 a
12-epoch schedule is a separate run (its learning rate anneals to zero by epoch 12), so nothing carries over.
A repeated architecture (one asked again at a fidelity it was already evaluated at, or at the low fidelity after a
full training) costs nothing with ``repeats_paid=False`` (a search keeps its results) and the full price with
``repeats_paid=True`` (it trains again).

The record is a trajectory of :class:`Point` (evaluations, full trainings, compute, hypervolume of the fully
trained cells), one per evaluation; the hypervolume uses moocore, as :func:`nas.pareto.hypervolume` does,
counting only points strictly better than the reference in both objectives. The ledger also keeps its events
(row, full or low, repeat or not): a peer's decisions depend on neither the reference nor the billing mode, so
:func:`score` replays one run under any reference and either mode.
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
    events: list[tuple[int, bool, bool]] = field(default_factory=list)
    _low_seen: set[int] = field(default_factory=set)
    _full_seen: set[int] = field(default_factory=set)
    _front: Front | None = None

    def __post_init__(self) -> None:
        self._front = Front(self.reference)

    @property
    def low_cost(self) -> float:
        return self.table.low_epochs / self.table.full_epochs

    @property
    def exhausted(self) -> bool:
        return self.spent >= self.max_compute - 1e-12

    @property
    def hypervolume(self) -> float:
        assert self._front is not None
        return self._front.hypervolume

    def low(self, row: int) -> float:
        """Evaluate ``row`` at the low fidelity; its low-fidelity accuracy."""
        repeat = row in self._low_seen or row in self._full_seen
        self._bill(self.low_cost, repeat)
        self.events.append((row, False, repeat))
        self._low_seen.add(row)
        self._record()
        return float(self.table.low_accuracy[row])

    def full_training(self, row: int) -> float:
        """Train ``row`` in full (a new run, or a promotion: the same price); its full-fidelity accuracy."""
        repeat = row in self._full_seen
        self._bill(1.0, repeat)
        self.events.append((row, True, repeat))
        if not repeat:
            assert self._front is not None
            self._full_seen.add(row)
            self.full += 1
            self._front.add(float(self.table.accuracy[row]), float(self.table.cost[row]))
        self._record()
        return float(self.table.accuracy[row])

    def _bill(self, cost: float, repeat: bool) -> None:
        self.evaluations += 1
        self.repeats += repeat
        if self.repeats_paid or not repeat:
            self.spent += cost

    def _record(self) -> None:
        self.trajectory.append(Point(self.evaluations, self.full, self.spent, self.hypervolume))


class Front:
    """The non-dominated (accuracy max, cost min) points added so far and their hypervolume under ``reference``."""

    def __init__(self, reference: tuple[float, float]) -> None:
        self.ref = np.array([-reference[0], reference[1]])
        self.points = np.empty((0, 2))
        self.hypervolume = 0.0

    def add(self, accuracy: float, cost: float) -> None:
        loss = np.array([-accuracy, cost])
        if not (loss < self.ref).all():
            return
        if len(self.points) and (self.points <= loss).all(axis=1).any():
            return  # weakly dominated: the hypervolume cannot grow
        keep = ~((loss <= self.points).all(axis=1))
        self.points = np.vstack([self.points[keep], loss])
        self.hypervolume = float(moocore.hypervolume(self.points, ref=self.ref))


def score(events: list[tuple[int, bool, bool]], table: PeerTable, reference: tuple[float, float], *,
          repeats_paid: bool, max_compute: float) -> list[Point]:
    """The trajectory of a run's ``events`` under ``reference`` and a billing mode, cut where the compute first
    reaches ``max_compute`` (the evaluation that crosses it included, as a live run would)."""
    front, out = Front(reference), []
    spent, full, low_cost = 0.0, 0, table.low_epochs / table.full_epochs
    for n, (row, is_full, repeat) in enumerate(events, start=1):
        if spent >= max_compute - 1e-12:
            break
        if repeats_paid or not repeat:
            spent += 1.0 if is_full else low_cost
        if is_full and not repeat:
            full += 1
            front.add(float(table.accuracy[row]), float(table.cost[row]))
        out.append(Point(n, full, spent, front.hypervolume))
    return out


def true_hypervolume(table: PeerTable, reference: tuple[float, float]) -> float:
    """The hypervolume of the whole table's (accuracy, cost) front under ``reference``."""
    loss = np.column_stack([-table.accuracy, table.cost])
    ref = np.array([-reference[0], reference[1]])
    keep = (loss < ref).all(axis=1)
    return float(moocore.hypervolume(loss[keep], ref=ref)) if keep.any() else 0.0
