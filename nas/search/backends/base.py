"""What a backend is: the place trials run (Ray Tune workers, or a tabular benchmark's lookups).

A backend asks the :class:`Observer` (the search loop) for each next trial and reports everything that happens
to it, from the driver's thread: start, each epoch's metrics (where the observer may stop the trial), and the
end (complete, pruned by the observer, or failed). The loop, the controller, the stopping rules and the
bookkeeping are the same whatever the backend; only where the epochs come from differs (Syne Tune's simulator
behind the same interface is the model).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol

from nas.training.trial import RESUME_EPOCH, RESUME_FROM, SNAPSHOT_AT, TrialSpec

__all__ = ["RESUME_EPOCH", "RESUME_FROM", "SNAPSHOT_AT", "Backend", "Observer", "RunnerTimes", "train_tflops"]


def train_tflops(metrics: Mapping[str, float]) -> float:
    """A trial's compute as a training backend reports it: its training FLOPs (``train_flops``), in TFLOPs."""
    return float(metrics.get("train_flops", 0.0)) / 1e12


class Observer(Protocol):
    """What the search loop implements to hear about trials (all calls come from the driver thread)."""

    def propose(self) -> TrialSpec | None: ...
    def on_trial_start(self, number: int) -> None: ...
    def on_epoch(self, number: int, metrics: dict[str, float]) -> None: ...
    def should_stop(self, number: int, metrics: dict[str, float]) -> str | None: ...
    def on_trial_complete(self, number: int, final: dict[str, float], checkpoint_dir: str | None) -> None: ...
    def on_trial_pruned(self, number: int, reason: str, metrics: dict[str, float],
                        checkpoint_dir: str | None) -> None: ...
    def on_trial_failed(self, number: int, reason: str) -> None: ...
    def on_trial_node(self, number: int, node: dict[str, str]) -> None: ...


@dataclass
class RunnerTimes:
    """Seconds the driver spent in each part of the machinery (for the ledger)."""

    propose_s: float = 0.0
    callbacks_s: float = 0.0
    ray_init_s: float = 0.0


class Backend(Protocol):
    """Runs the trials an observer proposes until it proposes None (or ``max_trials`` have run).

    ``compute_unit`` names the unit of :meth:`compute`, the compute one trial's metrics say it spent: what
    hypervolume-vs-compute curves, the plateau rule and ``max_compute`` are measured in.
    """

    compute_unit: str

    def run(self, observer: Observer, *, max_trials: int) -> RunnerTimes: ...

    def compute(self, metrics: dict[str, float]) -> float: ...
