"""Full-fidelity peers: plain Optuna loops, every proposal a full training (billed 1; a repeat per the ledger).

``random`` (RandomSampler), ``nsga2`` (NSGAIISampler, population ``population``), ``tpe``
(TPESampler(multivariate=True), 10 start-up trials) and ``gp`` (GPSampler, 10 start-up trials; its cost per
trial grows with the number of trials, hence its smaller default budget). Objectives: accuracy max, cost min.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from functools import partial
from typing import Any

import optuna

from benchmarks.peers.ledger import Ledger
from benchmarks.peers.table import EDGES, OPS

SAMPLERS: dict[str, Callable[..., optuna.samplers.BaseSampler]] = {
    "random": lambda seed, **_: optuna.samplers.RandomSampler(seed=seed),
    "nsga2": lambda seed, population=50, **_: optuna.samplers.NSGAIISampler(seed=seed, population_size=population),
    "tpe": lambda seed, **_: optuna.samplers.TPESampler(seed=seed, multivariate=True),
    "gp": lambda seed, **_: optuna.samplers.GPSampler(seed=seed),
}


def run(ledger: Ledger, seed: int, *, sampler: str, max_trials: int | None = None, **knobs: Any) -> None:
    """Spend ``ledger``'s budget (or ``max_trials``) with ``sampler``'s plain ask-and-tell loop."""
    optuna.logging.set_verbosity(logging.WARNING)
    study = optuna.create_study(directions=["maximize", "minimize"], sampler=SAMPLERS[sampler](seed, **knobs))
    table = ledger.table
    n = 0
    while not ledger.exhausted and (max_trials is None or n < max_trials):
        trial = study.ask()
        row = table.row({e: trial.suggest_categorical(e, OPS) for e in EDGES})
        acc = ledger.full_training(row)
        study.tell(trial, [acc, float(table.cost[row])])
        n += 1


def runner(sampler: str) -> Callable[..., None]:
    return partial(run, sampler=sampler)
