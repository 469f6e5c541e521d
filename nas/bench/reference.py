"""The per-dataset accuracy reference of a tabular benchmark: one documented rule instead of a hand-set number.

A hypervolume reference fixed for one dataset (80 % accuracy on CIFAR-10) gives a hypervolume of zero on another
whose best cell is below it (CIFAR-100: 73.5 %). The rule: the reference is the accuracy below which a fixed share
``quantile`` of the table's cells falls (its ``quantile``-quantile, numpy's linear interpolation). The default
share, 0.146, gives 79.98 % on NAS-Bench-201's CIFAR-10 (the old 80 %) and 54.05 % on its CIFAR-100. A benchmark
reports its figures at this reference and at 0, so that nobody can pick the flattering one.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

import numpy as np

from nas.config.experiment import Experiment
from nas.config.objectives import METRICS
from nas.errors import ConfigError

DEFAULT_REFERENCE_QUANTILE = 0.146


def accuracy_reference(accuracies: Sequence[float] | np.ndarray, quantile: float = DEFAULT_REFERENCE_QUANTILE) -> float:
    """The ``quantile``-quantile (``quantile`` in [0, 1); 0: the worst cell) of ``accuracies``, every cell of
    the table, in their unit. Non-finite values are ignored."""
    if not 0.0 <= quantile < 1.0:
        raise ValueError(f"accuracy_reference: quantile must be in [0, 1), got {quantile}")
    values = np.asarray(accuracies, dtype=float)
    values = values[np.isfinite(values)]
    if values.size == 0:
        raise ValueError("accuracy_reference: no finite accuracy to take a quantile of")
    return float(np.quantile(values, quantile))


def with_accuracy_reference(exp: Experiment, accuracies: Sequence[float] | np.ndarray,
                            quantile: float | None = None) -> Experiment:
    """``exp`` with its accuracy objective's ``bench.reference`` set by the rule, from the table's (scaled)
    ``accuracies``: always when ``quantile`` is given, else only where the experiment sets none (then with
    :data:`DEFAULT_REFERENCE_QUANTILE`)."""
    acc = next((o.name for o in exp.objectives if METRICS[o.name].source == "train"), None)
    if acc is None or (quantile is None and acc in exp.bench.reference):
        return exp
    q = DEFAULT_REFERENCE_QUANTILE if quantile is None else quantile
    if not 0.0 <= q < 1.0:
        raise ConfigError("--reference-quantile", "", f"must be in [0, 1), got {q}", "pass e.g. --reference-quantile 0.146")
    value = accuracy_reference(accuracies, q)
    return replace(exp, bench=replace(exp.bench, reference={**exp.bench.reference, acc: value}))
