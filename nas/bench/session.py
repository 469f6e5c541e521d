"""``nas bench``: the search loop over the table backend, for several seeds, read against the table's yardsticks.

:func:`search_table` runs ONE seed through the same :class:`~nas.search.loop.SearchLoop`, controller and stopping
rules as ``nas search``, on :class:`~nas.search.backends.table.TableBackend` (metrics looked up, no training)
with an in-memory sink (no MLflow). The search never sees the test column, nor the accuracy of an architecture
it has not paid for; the front's test accuracies are looked up afterwards, for reporting.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from nas.bench.summary import aggregate, run_figures
from nas.bench.targets import Point, reference, true_hypervolume
from nas.config.experiment import Experiment
from nas.config.objectives import METRICS
from nas.errors import ConfigError
from nas.search.backends.table import BenchTable, TableBackend, arch_key, load_table
from nas.search.controller import Controller
from nas.search.loop import Limits, SearchLoop
from nas.search.sink import MemorySink
from nas.space import load_space


@dataclass
class BenchRun:
    """One seed's search: its trajectory (one :class:`Point` per finished trial), why it stopped, its front
    (``arch``, objectives, ``test_accuracy`` for reporting), the table architecture of every trial trained (in
    trial order; a promotion trains its architecture again), and counts. ``events``: every trial in order as
    (architecture, trained in full, answered from a known result instead of trained), what a bill under other
    rules (repeats paid) replays."""

    seed: int
    trajectory: list[Point] = field(default_factory=list)
    stop_reason: str = ""
    front: list[dict[str, Any]] = field(default_factory=list)
    screened: int = 0
    stopped_early: int = 0
    repeats: int = 0
    promoted: int = 0
    correlations: dict[str, float] = field(default_factory=dict)
    failed: int = 0
    proxy: str = ""
    wall_s: float = 0.0
    archs: list[str] = field(default_factory=list)
    events: list[tuple[str, bool, bool]] = field(default_factory=list)

    @property
    def last(self) -> Point:
        return self.trajectory[-1] if self.trajectory else Point(0, 0, 0.0, 0.0)


def search_table(
    exp: Experiment,
    table: BenchTable,
    *,
    seed: int | None = None,
    max_evaluations: int | None = None,
    max_compute: float | None = None,
    until_hypervolume: float | None = None,
    reuse: bool = True,
) -> BenchRun:
    """Search ``table`` as ``exp`` says, with ``seed`` (default ``search.seed``).

    Stops at the first of: ``max_evaluations`` trials (default ``search.trials``; re-proposals answered from
    known results and screened-out candidates are not trials), ``max_compute`` full-training equivalents, the
    experiment's budget and plateau rules, or a hypervolume of at least ``until_hypervolume``.

    ``reuse``: a trial whose result is known is not trained again (the controller's rule, as in ``nas search``).
    False: every proposal trains, as a plain Optuna loop does (the peers of benchmarks/nb201_search.py).
    """
    t0 = time.perf_counter()
    if seed is not None:
        exp = exp.with_overrides(seed=seed)
    space = load_space(exp.space)
    key = arch_key(exp, space.builder)
    _check_rungs(exp, table)
    ref = reference(exp, table)
    acc = next(o.name for o in exp.objectives if METRICS[o.name].source == "train")
    scorer = (lambda p: table.scores(key(p))) if exp.bench.proxy_columns else None
    controller = Controller(
        exp, space, input_shape=tuple(space.input_shape or (1,)), num_classes=space.num_classes or 1,
        train_samples_per_trial=exp.bench.train_samples * table.full_epochs,
        profiler=lambda p: table.profile(key(p)), scorer=scorer, reference=ref, reuse=reuse,
    )
    controller.seed_prior()
    backend = TableBackend(table, key, acc, train_samples=exp.bench.train_samples)
    loop = SearchLoop(exp, space, controller, MemorySink(), ref, backend=backend,
                      limits=Limits(max_evaluations, max_compute, until_hypervolume),
                      artifact_every_s=math.inf, progress_every_s=math.inf)
    loop.run()
    s = loop.state
    cost = next((n for n, _ in loop.objectives if n != acc), acc)
    front = [{"arch": key(r.params), "trial": r.number, **{n: r.metrics[n] for n, _ in loop.objectives},
              "test_accuracy": table.test_accuracy(key(r.params))} for r in loop.front()[0]]
    return BenchRun(
        seed=exp.search.seed, trajectory=list(loop.curve),
        stop_reason=s.stop_reason or f"{loop.proposed} trials (the limit)",
        front=sorted(front, key=lambda r: r[cost]), screened=controller.stats.screened_out, stopped_early=s.pruned,
        repeats=controller.stats.repeats, promoted=s.promoted, failed=s.failed,
        correlations=controller.proxy_correlations() if scorer is not None else {},
        proxy=controller.active_proxy() if scorer is not None else "", wall_s=time.perf_counter() - t0,
        archs=[key(r.params) for _, r in sorted(loop.records.items()) if r.status in ("complete", "pruned")],
        events=_events(loop, controller, key, exp.early_stopping.method == "pareto-promote"),
    )


def _events(loop: SearchLoop, controller: Controller, key: Callable[[Mapping[str, Any]], str],
            at_rung: bool) -> list[tuple[str, bool, bool]]:
    """The trials trained (complete: in full; stopped: at the rung) and those answered from known results, in
    trial order: the table backend runs one trial at a time, so trial numbers are the order they were paid. An
    answered trial is at the fidelity it would have trained to: the rung when every new trial stops there
    (``at_rung``: pareto-promote), else its known twin's."""
    trained = {n: (key(r.params), r.status == "complete", False) for n, r in loop.records.items()
               if r.status in ("complete", "pruned")}
    answered = {n: (key(p), full and not at_rung, True) for n, p, full in controller.answered}
    return [ev for _, ev in sorted({**trained, **answered}.items())]


def _check_rungs(exp: Experiment, table: BenchTable) -> None:
    es = exp.early_stopping
    missing = [r for r in (es.rungs or []) if r not in table.fidelities] if es.method != "none" else []
    if missing:
        raise ConfigError(exp.source, "early_stopping/rungs",
                          f"the table has no accuracy after {', '.join(map(str, missing))} epochs",
                          f"use rungs among the table's accuracy columns: {table.fidelities[:-1]}")


@dataclass
class BenchResult:
    """Runs of one experiment on one table; ``true_hypervolume`` is the whole table's under ``reference``."""

    experiment: Experiment
    table: BenchTable
    reference: dict[str, float]
    true_hypervolume: float
    runs: list[BenchRun] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready: the setting, one entry per run, and the medians/quartiles per hypervolume target."""
        return {
            "experiment": self.experiment.source, "table": self.table.source,
            "objectives": {o.name: o.direction for o in self.experiment.objectives},
            "columns": {**{o.name: self.table.config.cost_columns.get(o.name) for o in self.experiment.objectives},
                        "accuracy": self.table.config.accuracy_columns},
            "reference": self.reference, "true_hypervolume": self.true_hypervolume,
            "runs": [run_figures(r, self.true_hypervolume) for r in self.runs],
            "summary": aggregate(self.runs, self.true_hypervolume),
        }


def bench_experiment(exp: Experiment, seeds: int = 1, table: BenchTable | None = None, **kwargs: Any) -> BenchResult:
    """Run ``exp`` on its table for seeds ``search.seed`` .. ``search.seed + seeds - 1``; ``kwargs`` go to
    :func:`search_table` (``max_evaluations``, ``max_compute``, ``until_hypervolume``, ``reuse``)."""
    if seeds < 1:
        raise ConfigError("--seeds", "", f"must be >= 1, got {seeds}", "pass --seeds 10")
    table = table or load_table(exp)
    ref = reference(exp, table)
    result = BenchResult(exp, table, ref, true_hypervolume(exp, table, ref))
    for i in range(seeds):
        result.runs.append(search_table(exp, table, seed=exp.search.seed + i, **kwargs))
    return result
