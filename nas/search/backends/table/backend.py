"""The tabular backend: trials "train" by looking their accuracies up in a benchmark table (``nas bench``).

Each proposed trial is reported at every epoch the table has an accuracy for (below the full training, then
the full training), exactly as a Ray worker reports its epochs; the search loop may stop it at any report. No
Ray, no torch training, one trial at a time. Compute is charged by :class:`SimulatedCompute` in full-training
equivalents: a trial stopped at a 12-of-200-epoch rung costs 0.06.

A promotion (a trial resuming another from its rung checkpoint) is billed what the table's numbers mean:
``resumable=False`` (NAS-Bench-201, whose 12-epoch accuracies come from a separate 12-epoch schedule, not from
the first 12 epochs of the 200-epoch run) makes it a fresh full training costing 1; ``resumable=True`` (a table
whose columns are one run's learning curve) bills only the epochs past the rung.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping
from typing import Any

from nas.profile import training_flops
from nas.search.backends.base import RESUME_EPOCH, Observer, RunnerTimes
from nas.search.backends.table.compute import SimulatedCompute
from nas.search.backends.table.table import BenchTable

#: the metric a table trial reports its compute in (full-training equivalents, cumulative for the trial)
COMPUTE_KEY = "full_trainings"


class TableBackend:
    """Looks up ``accuracy`` (the experiment's trained objective) for each proposed trial in ``table``.

    ``key`` maps a trial's params to the table's architecture string; ``train_samples`` (per epoch) turns
    epochs into simulated training FLOPs, for ``budget.train_tflops``.
    """

    compute_unit = "full trainings"

    def __init__(self, table: BenchTable, key: Callable[[Mapping[str, Any]], str], accuracy: str, *,
                 train_samples: int = 0, resumable: bool = False) -> None:
        self.table, self.key, self.accuracy, self.resumable = table, key, accuracy, resumable
        self.meter = SimulatedCompute(table.full_epochs, train_samples)

    def compute(self, metrics: Mapping[str, float]) -> float:
        """Full-training equivalents the trial with these (final or last) metrics spent."""
        return float(metrics.get(COMPUTE_KEY, 0.0))

    def run(self, observer: Observer, *, max_trials: int) -> RunnerTimes:
        """Run proposed trials one after the other until the observer proposes None or ``max_trials`` ran."""
        times = RunnerTimes()
        for _ in range(max_trials):
            t0 = time.perf_counter()
            spec = observer.propose()
            times.propose_s += time.perf_counter() - t0
            if spec is None:
                break
            t1 = time.perf_counter()
            self._trial(observer, spec.number, spec.params, spec.mflops, spec.extra)
            times.callbacks_s += time.perf_counter() - t1
        return times

    def _trial(self, observer: Observer, number: int, params: Mapping[str, Any], mflops: float,
               extra: Mapping[str, Any]) -> None:
        try:
            arch = self.key(params)
            self.table.row(arch)
        except (KeyError, ValueError) as e:
            observer.on_trial_start(number)
            observer.on_trial_failed(number, f"cannot look this architecture up: {e}")
            return
        start = int(extra.get(RESUME_EPOCH, 0)) if self.resumable else 0
        self.meter.epochs[number] = start
        spent = flops = 0.0
        observer.on_trial_start(number)
        full = self.table.full_epochs
        for epoch in [e for e in self.table.fidelities if start < e]:
            spent += self.meter.train(number, epoch, mflops)
            if math.isfinite(mflops):
                flops = training_flops(mflops * 1e6, self.meter.train_samples * (epoch - start))
            metrics = {"epoch": float(epoch), self.accuracy: self.table.accuracy(arch, epoch),
                       "train_flops": flops, COMPUTE_KEY: spent}
            if epoch == full:
                observer.on_trial_complete(number, metrics, None)
                return
            observer.on_epoch(number, metrics)
            reason = observer.should_stop(number, metrics)
            if reason is not None:
                observer.on_trial_pruned(number, reason, metrics, None)
                return
