"""The sampler registry: ``search.sampler`` names and the seeded Optuna sampler each one builds.

NSGA-II, TPE and GP read each trial's constraint values (``Trial.set_constraint``; feasible when all are <= 0)
and prefer feasible trials. Adding a sampler is one entry in :data:`SAMPLERS`.
"""

from __future__ import annotations

from collections.abc import Callable

import optuna

from nas.config.experiment import Experiment

#: the fewest / most NSGA-II individuals per generation when ``search.population_size`` is not set
MIN_POPULATION, MAX_POPULATION = 8, 50
#: the fewest / most random trials TPE draws before modelling
MIN_TPE_STARTUP, MAX_TPE_STARTUP = 4, 10


def _nsga2(exp: Experiment) -> optuna.samplers.BaseSampler:
    pop = exp.search.population_size or max(MIN_POPULATION, min(MAX_POPULATION, exp.search.trials // 3))
    return optuna.samplers.NSGAIISampler(population_size=pop, seed=exp.search.seed)


def _tpe(exp: Experiment) -> optuna.samplers.BaseSampler:
    return optuna.samplers.TPESampler(
        seed=exp.search.seed, multivariate=True, constant_liar=True,
        n_startup_trials=max(MIN_TPE_STARTUP, min(MAX_TPE_STARTUP, exp.search.trials // 3)),
    )


SAMPLERS: dict[str, Callable[[Experiment], optuna.samplers.BaseSampler]] = {
    "nsga2": _nsga2,
    "tpe": _tpe,
    "gp": lambda exp: optuna.samplers.GPSampler(seed=exp.search.seed),
    "random": lambda exp: optuna.samplers.RandomSampler(seed=exp.search.seed),
}


def make_sampler(exp: Experiment) -> optuna.samplers.BaseSampler:
    """The sampler named by ``search.sampler``, seeded with ``search.seed``."""
    return SAMPLERS[exp.search.sampler](exp)
