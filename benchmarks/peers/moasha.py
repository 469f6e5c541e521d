"""Syne Tune's MOASHA (multi-objective asynchronous successive halving) on the table, with its priority fixed.

The bug (Syne Tune 0.16, ``syne_tune/optimizer/schedulers/multiobjective``): ``asha.Bracket.on_result`` treats
what ``MOPriority.__call__`` returns as one priority per recorded trial (lower is better; the new trial is the last
row) and stops the new trial when ``searchsorted(sorted(p), p)[-1] / n > 1 / reduction_factor``.
``NonDominatedPriority`` however returns ``nondominated_sort(...)``: an *ordering*, the indices of the trials
from best to worst. Its last entry is the index of the worst trial, not the new trial's priority, so the decision
is about some other trial: a new trial that dominates every recorded one is stopped whenever the worst trial
happens to sit late in the list. :class:`RankedNonDominatedPriority` inverts the ordering into ranks
(``rank[order[k]] = k``), which is what the bracket expects; nothing else changes.

Driven sequentially (one worker): a suggested cell is evaluated at the 12-epoch fidelity and reported at
``epoch = 12`` with metrics (1 - accuracy, cost), both minimized; on CONTINUE it is trained in full (billed 1: a
separate run in NB201) and reported complete at ``epoch = 200``. With ``grace_period = 12`` and ``max_t = 200``
the only rung that ever sees a result is 12's, so ``reduction_factor`` sets the share continued (1 / rf).
Syne Tune is an optional dependency of the benchmark (``pip install -e .[bench]``).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import numpy as np

from benchmarks.peers.ledger import Ledger
from benchmarks.peers.table import EDGES, OPS


def _priority_class() -> type:
    from syne_tune.optimizer.schedulers.multiobjective.multiobjective_priority import NonDominatedPriority

    class RankedNonDominatedPriority(NonDominatedPriority):
        """``NonDominatedPriority`` returning each trial's rank (0 = best) instead of the sorted indices."""

        def priority_unsafe(self, objectives: np.ndarray) -> np.ndarray:
            order = np.asarray(super().priority_unsafe(objectives), dtype=int)
            ranks = np.empty(len(order), dtype=int)
            ranks[order] = np.arange(len(order))
            return ranks

    return RankedNonDominatedPriority


def scheduler(seed: int, eta: float = 3.0, patched: bool = True) -> Any:
    """A MOASHA over the NB201 cell (six categorical edges), metrics ``error`` and ``cost`` minimized."""
    from syne_tune.config_space import choice
    from syne_tune.optimizer.schedulers.multiobjective.moasha import MOASHA

    priority = _priority_class()() if patched else None
    return MOASHA({e: choice(list(OPS)) for e in EDGES}, metrics=["error", "cost"], do_minimize=True,
                  time_attr="epoch", max_t=200, grace_period=12, reduction_factor=eta,
                  multiobjective_priority=priority, random_seed=seed)


def run(ledger: Ledger, seed: int, *, eta: float = 3.0, patched: bool = True) -> None:
    """Spend ``ledger``'s budget with MOASHA (see the module docstring)."""
    from syne_tune.backend.trial_status import Trial
    from syne_tune.optimizer.scheduler import SchedulerDecision

    np.random.seed(seed)  # Syne Tune draws configurations and brackets from numpy's global generator
    sched = scheduler(seed, eta, patched)
    table = ledger.table
    trial_id = 0
    while not ledger.exhausted:
        config = sched.suggest().config
        trial = Trial(trial_id=trial_id, config=config, creation_time=dt.datetime.now())
        trial_id += 1
        sched.on_trial_add(trial)
        row = table.row(config)
        cost = float(table.cost[row])
        acc = ledger.low(row)
        if sched.on_trial_result(trial, {"epoch": 12, "error": 1 - acc, "cost": cost}) == SchedulerDecision.CONTINUE:
            if ledger.exhausted:
                break
            acc = ledger.full_training(row)
            sched.on_trial_complete(trial, {"epoch": 200, "error": 1 - acc, "cost": cost})
