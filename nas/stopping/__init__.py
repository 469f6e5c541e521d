"""Rules that make a search cheap: stop a trial early, or stop the whole search.

- :class:`ParetoASHA`: asynchronous successive halving on the non-dominated rank of (accuracy so far, costs).
- :class:`PlateauRule`: stop when hypervolume gained per unit of compute over a trailing window falls too low.
- :class:`BudgetRule`: stop at a total budget in training FLOPs, device-hours or wall time.

Plain Python (numpy/moocore): :class:`nas.search.loop.SearchLoop` drives these same objects whichever backend
runs the trials (Ray Tune, or a benchmark table). :class:`nas.stopping.promote.Promoter` decides pareto-promote.
"""

from nas.stopping.asha import ParetoASHA, default_rungs, experiment_rungs
from nas.stopping.budget import BudgetRule, Spent
from nas.stopping.plateau import PlateauRule

__all__ = ["BudgetRule", "ParetoASHA", "PlateauRule", "Spent", "default_rungs", "experiment_rungs"]
