"""Successive halving with promotion: a multi-fidelity, model-free baseline (asynchronous, as ASHA promotes).

Each step either promotes or starts: with ``n`` architectures evaluated at the low fidelity, the best
``floor(n / eta)`` of them by (low-fidelity accuracy, cost) in multi-objective order (:mod:`benchmarks.peers.order`)
are promotable, and the first of them not yet promoted is trained in full; if there is none, a new cell is drawn
uniformly at random and evaluated at the low fidelity. Knob: ``eta`` (chosen on seeds 0-9).
"""

from __future__ import annotations

import numpy as np

from benchmarks.peers.ledger import Ledger
from nas.pareto import front_order


def run(ledger: Ledger, seed: int, *, eta: float = 3.0) -> None:
    """Spend ``ledger``'s budget (see the module docstring)."""
    rng = np.random.default_rng(seed)
    table = ledger.table
    rows: list[int] = []          # rung 0, in order of arrival (one entry per distinct cell)
    seen: set[int] = set()
    promoted: set[int] = set()
    loss: list[tuple[float, float]] = []
    while not ledger.exhausted:
        k = int(len(rows) // eta)
        pick = next((rows[i] for i in front_order(np.array(loss))[:k] if rows[i] not in promoted), None) if k else None
        if pick is not None:
            promoted.add(pick)
            ledger.full_training(pick)
            continue
        row = int(rng.integers(len(table)))
        acc = ledger.low(row)
        if row not in seen:
            seen.add(row)
            rows.append(row)
            loss.append((-acc, float(table.cost[row])))
