"""The tabular search loop: the real controller and stopping rules, with metrics looked up instead of trained.

Per trial slot: :meth:`Controller.propose` (the experiment's sampler; with ``proxy.use: screen`` it draws
``proxy.candidates`` architectures, scores them with the table's proxy columns and keeps one; the others cost
nothing), then the kept architecture "trains": at each Pareto-ASHA rung its accuracy at that many epochs is
looked up and :class:`ParetoASHA` decides whether it goes on (stopped: told to Optuna as pruned); a survivor's
full-fidelity accuracy is looked up and told. Compute is charged by :class:`SimulatedCompute`. After every
finished evaluation the hypervolume of the fully evaluated architectures is recorded; :class:`PlateauRule`
and :class:`BudgetRule` (simulated training FLOPs, real wall time) may end the search. In process: no Ray, no
MLflow. The search never sees the test column, nor the accuracy of an architecture it has not paid for.

With ``early_stopping.method: pareto-promote`` every new architecture stops at the one rung, and a slot may
instead go to a *promotion*: :class:`Promoter` picks a stopped architecture, which is trained in full as a new
trial, billed a whole training (it restarts from scratch, as a real search would without checkpoints). With
``surrogate.enabled`` the controller learns the rung accuracies (:meth:`Controller.observe_rung`).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from nas.bench.compute import SimulatedCompute
from nas.bench.table import BenchTable, arch_key
from nas.bench.targets import Point, reference
from nas.config.experiment import Experiment
from nas.config.objectives import METRICS
from nas.pareto import hypervolume, pareto_mask
from nas.search.controller.core import Candidate, Controller
from nas.space import load_space
from nas.stopping import BudgetRule, ParetoASHA, PlateauRule, Spent
from nas.stopping.promote import Promoter

log = logging.getLogger(__name__)

MAX_FAILURES_IN_A_ROW = 100
MAX_REPEATS_IN_A_ROW = 2000


@dataclass
class BenchRun:
    """One seed's search: its trajectory (one :class:`Point` per finished evaluation), why it stopped, its
    front (``arch``, objectives, ``test_accuracy`` for reporting), and counts."""

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

    @property
    def last(self) -> Point:
        return self.trajectory[-1] if self.trajectory else Point(0, 0, 0.0, 0.0)


class _Front:
    """The fully evaluated architectures on the front so far, and their hypervolume."""

    def __init__(self, objectives: list[tuple[str, Any]], ref: Mapping[str, float]) -> None:
        self.objectives, self.ref = objectives, dict(ref)
        self.rows: list[dict[str, Any]] = []
        self.hypervolume = 0.0

    def add(self, row: dict[str, Any]) -> None:
        rows = [*self.rows, row]
        mask = pareto_mask(rows, self.objectives)
        if not mask[-1]:
            return
        self.rows = [r for r, m in zip(rows, mask, strict=True) if m]
        self.hypervolume = hypervolume(self.rows, self.objectives, self.ref)


def run_bench(
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

    Stops at the first of: ``max_evaluations`` trainings started (default ``search.trials``; screened-out
    candidates are not trainings), ``max_compute`` full-training equivalents, the experiment's budget and
    plateau rules, or (a measuring convenience that does not steer the search) a hypervolume of at least
    ``until_hypervolume``.

    ``reuse``: an architecture proposed again is not trained again: the controller is told the result it got
    the first time (full metrics, or stopped at the same rung), free. False: every proposal trains, as a plain
    Optuna loop does.
    """
    t0 = time.perf_counter()
    exp = exp.with_overrides(seed=seed)
    space = load_space(exp.space)
    key = arch_key(exp, space.builder)
    ref = reference(exp, table)
    scorer: Callable[[Mapping[str, Any]], dict[str, float]] | None = None
    if exp.bench.proxy_columns:
        scorer = lambda p: table.scores(key(p))  # noqa: E731
    controller = Controller(
        exp, space, input_shape=tuple(space.input_shape or (1,)), num_classes=space.num_classes or 1,
        train_samples_per_trial=exp.bench.train_samples * table.full_epochs,
        profiler=lambda p: table.profile(key(p)), scorer=scorer, reference=ref,
    )
    controller.seed_prior()
    objectives = [(o.name, o.direction) for o in exp.objectives]
    acc_name = next(o.name for o in exp.objectives if METRICS[o.name].source == "train")
    es = exp.early_stopping
    asha = ParetoASHA(es.rungs or [], objectives, eta=es.eta, grace=es.grace) if es.method == "pareto-asha" else None
    promoter = Promoter(objectives, acc_name, ref, es.full_share, es.min_pairs, layers=es.promote_layers,
                        min_rung=es.promote_after) if es.method == "pareto-promote" else None
    rungs = [r for r in (es.rungs or []) if r < table.full_epochs] if (asha or promoter) else []
    spent_full = 0.0
    pl = exp.plateau
    plateau = PlateauRule(pl.window, pl.threshold, pl.min_trials) if pl.enabled else None
    b = exp.budget
    budget = BudgetRule(b.train_tflops, b.device_hours, b.wall_hours)
    meter = SimulatedCompute(table.full_epochs, exp.bench.train_samples)
    front = _Front(objectives, ref)
    run = BenchRun(seed=exp.search.seed)
    limit = max_evaluations if max_evaluations is not None else exp.search.trials
    evaluations = full = failures = repeats = 0
    seen: dict[str, dict[str, float] | int] = {}  # arch -> its full metrics, or the rung it was stopped at

    def stop_reason() -> str | None:
        if evaluations >= limit:
            return f"{evaluations} evaluations (the limit)"
        if max_compute is not None and meter.spent >= max_compute - 1e-9:
            return f"compute {meter.spent:.4g} full trainings reached the limit {max_compute:g}"
        if until_hypervolume is not None and front.hypervolume >= until_hypervolume * (1 - 1e-9):
            return "reached the target hypervolume"
        spent = Spent(train_flops=meter.train_flops, wall_seconds=time.perf_counter() - t0)
        return budget.reason(spent) or (plateau.reason() if plateau else None)

    def train_full(cand: Candidate, arch: str) -> float:
        """Train ``cand`` on to the full fidelity: bill it, tell the controller, update the front; the cost."""
        nonlocal full
        assert cand.profile is not None
        cost = meter.train(cand.number, table.full_epochs, cand.profile.mflops)
        metrics = seen[arch] = {acc_name: table.accuracy(arch), **controller.costs(cand.profile)}
        controller.tell(cand.number, metrics)
        full += 1
        front.add({"arch": arch, "trial": cand.number, **metrics, "test_accuracy": table.test_accuracy(arch)})
        return cost

    def record_point() -> None:
        run.trajectory.append(Point(evaluations, full, meter.spent, front.hypervolume))
        if plateau is not None:
            plateau.add(meter.spent, front.hypervolume)

    while (reason := stop_reason()) is None:
        pick = promoter.pick(front.rows) if promoter is not None and promoter.wants(meter.spent, spent_full) else None
        if pick is not None:
            assert promoter is not None
            cand = controller.propose(fixed=promoter.params[pick])
            if cand.error or cand.profile is None or key(cand.params) != pick:
                raise RuntimeError(f"a promotion of {pick} came back as {cand.params} ({cand.error})")
            evaluations += 1
            spent_full += train_full(cand, pick)
            promoter.add_promoted(pick, table.accuracy(pick))
            run.promoted += 1
            record_point()
            continue
        cand = controller.propose()
        if cand.error or cand.profile is None:
            failures += 1
            run.failed += 1
            if failures >= MAX_FAILURES_IN_A_ROW:
                reason = f"{failures} candidates in a row could not be looked up: {cand.error}"
                break
            continue
        failures = 0
        arch = key(cand.params)
        if reuse and arch in seen:
            known = seen[arch]
            if isinstance(known, dict):
                controller.tell(cand.number, known)
            else:
                controller.tell_pruned(cand.number, f"already stopped by pareto-asha at epoch {known}")
            run.repeats += 1
            repeats += 1
            if repeats >= MAX_REPEATS_IN_A_ROW:
                reason = f"the sampler proposed only evaluated architectures {repeats} times in a row"
                break
            continue
        repeats = 0
        costs = controller.costs(cand.profile)
        evaluations += 1
        stopped_at = None
        for i, rung in enumerate(rungs):
            meter.train(cand.number, rung, cand.profile.mflops)
            at_rung = {acc_name: table.accuracy(arch, rung), **costs}
            if i == 0:
                controller.observe_rung(cand.number, at_rung[acc_name])
            if promoter is not None:
                stopped_at = seen[arch] = rung
                controller.tell_pruned(cand.number, f"stopped at epoch {rung}, waiting for a promotion (pareto-promote)")
                promoter.add_stopped(arch, at_rung, cand.params)
                run.stopped_early += 1
                break
            assert asha is not None
            if not asha.on_result(cand.number, rung, at_rung):
                stopped_at = seen[arch] = rung
                controller.tell_pruned(cand.number, f"stopped by pareto-asha at epoch {rung}")
                run.stopped_early += 1
                break
        if stopped_at is None:
            train_full(cand, arch)
        record_point()
    run.stop_reason = reason or ""
    cost = next((n for n, _ in objectives if n != acc_name), acc_name)
    run.front = sorted(front.rows, key=lambda r: r[cost])
    run.screened = controller.stats.screened_out
    run.proxy = controller.active_proxy() if scorer is not None else ""
    run.correlations = controller.proxy_correlations() if scorer is not None else {}
    run.wall_s = time.perf_counter() - t0
    log.debug("bench seed %d: %s", run.seed, run.stop_reason)
    return run
