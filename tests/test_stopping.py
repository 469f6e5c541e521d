"""Stopping rules, worked by hand: Pareto-ASHA decisions, the plateau stop on a synthetic flattening curve, the
budget stop, and both driving a real SearchLoop + Controller (Optuna) with a recording tracker (a unit-test fake:
no MLflow), which must stop proposing at the right trial and record why."""

from __future__ import annotations

import math
from typing import Any

import pytest
from conftest import FIXTURES

from nas.config.experiment import parse_experiment
from nas.pareto import front_order as order
from nas.search.controller.core import Controller
from nas.search.loop import SearchLoop
from nas.space import load_space
from nas.stopping import BudgetRule, ParetoASHA, PlateauRule, Spent, default_rungs

OBJ = [("acc", "maximize"), ("cost", "minimize")]


def test_default_rungs():
    assert default_rungs(9, 3) == (1, 3)
    assert default_rungs(27, 3) == (1, 3, 9)
    assert default_rungs(10, 3) == (1, 3)
    assert default_rungs(2, 3) == ()
    with pytest.raises(ValueError):
        default_rungs(9, 1)


def test_order_is_fronts_then_crowding():
    # front 0: (0.9, 5), (0.8, 2), (0.5, 1); (0.7, 3) is dominated by (0.8, 2); (0.85, 3.5) is on the front too
    losses = [[-0.9, 5], [-0.8, 2], [-0.5, 1], [-0.7, 3], [-0.85, 3.5]]
    import numpy as np

    o = order(np.array(losses, dtype=float))
    assert set(o[:4]) == {0, 1, 2, 4} and o[4] == 3
    assert set(o[:2]) == {0, 2}  # the two extremes have infinite crowding distance


def test_asha_keeps_top_one_over_eta_of_the_rung():
    asha = ParetoASHA([1, 3], OBJ, eta=2)
    assert asha.on_result("a", 1, {"acc": 0.5, "cost": 1})  # first at the rung: grace
    assert not asha.on_result("b", 1, {"acc": 0.4, "cost": 2})  # dominated by a; keep ceil(2/2)=1
    assert asha.on_result("c", 1, {"acc": 0.9, "cost": 5})  # new extreme of the front; keep 2 of 3
    assert asha.on_result("d", 1, {"acc": 0.1, "cost": 0.5})  # cheapest: on the front, an extreme
    assert asha.stopped_at("b") == 1 and asha.stopped_at("a") is None
    assert asha.on_result("a", 2, {"acc": 0.6, "cost": 1})  # no new rung reached: goes on
    assert asha.on_result("a", 3, {"acc": 0.7, "cost": 1})  # first at rung 3
    assert not asha.on_result("c", 3, {"acc": math.nan, "cost": 5})  # NaN accuracy ranks last
    assert asha.decisions[-1][1].rung == 3


def test_asha_judges_a_jump_at_the_highest_rung_reached():
    asha = ParetoASHA([1, 3], OBJ, eta=3)
    asha.on_result("a", 3, {"acc": 0.5, "cost": 1})
    assert "a" in asha.recorded[1] and "a" in asha.recorded[3]
    assert asha.decisions[-1][1].rung == 3


def test_plateau_fires_when_the_curve_flattens():
    rule = PlateauRule(window=5, threshold=0.01, min_evaluations=10)
    # hypervolume rises fast for 12 evaluations, then flattens completely; each evaluation costs 1
    hv = [1 - 0.7 ** (i + 1) for i in range(12)] + [1 - 0.7 ** 12] * 10
    fired = None
    for i, h in enumerate(hv):
        rule.add(float(i + 1), h)
        if rule.reason() is not None:
            fired = i
            break
    # during the rise the gain over 5 evaluations is >= 0.7**12 * (0.7**-5 - 1) / ~1 >> 0.05; it drops below
    # 1% per evaluation only once the window holds mostly flat points
    assert fired is not None and 12 <= fired <= 16
    assert rule.reason().startswith("plateau: hypervolume rose")
    assert rule.rate() < 0.01


def test_plateau_waits_for_min_evaluations_and_a_front():
    rule = PlateauRule(window=3, threshold=0.5, min_evaluations=8)
    for i in range(7):
        rule.add(float(i), 1.0)
        assert rule.reason() is None
    rule.add(7.0, 1.0)
    assert rule.reason() is not None
    empty = PlateauRule(window=2, threshold=0.5, min_evaluations=3)
    for i in range(5):
        empty.add(float(i), 0.0)
    assert empty.reason() is None  # nothing on the front yet is not a plateau


def test_budget_reasons():
    rule = BudgetRule(train_tflops=2.0, device_hours=1.0, wall_hours=0.5)
    assert rule.reason(Spent(1.9e12, 3000, 100)) is None
    assert rule.reason(Spent(2.0e12, 0, 0)).startswith("budget: training compute 2 TFLOPs")
    assert "device_hours" in rule.reason(Spent(0, 3600, 0))
    assert "wall_hours" in rule.reason(Spent(0, 0, 1800))
    assert not BudgetRule().active and BudgetRule().reason(Spent(1e30, 1e30, 1e30)) is None
    with pytest.raises(ValueError):
        BudgetRule(train_tflops=0)


# ---- the rules inside the search loop (real Controller and Optuna; the tracker is a recording fake) --------------

class RecordingTracker:
    run_id = "run"
    seconds = 0.0

    def __init__(self) -> None:
        self.calls: list[tuple[str, Any]] = []

    def defer(self, fn, *args) -> None:
        self.calls.append((fn.__name__, args))

    def start_trial(self, rec) -> None: ...
    def log_epoch(self, number, metrics) -> None: ...
    def log_trial(self, rec) -> None: ...
    def log_progress(self, step, metrics) -> None: ...
    def log_artifacts(self, files, tags=None) -> None: ...


def _loop(**doc) -> SearchLoop:
    exp = parse_experiment({"space": str(FIXTURES / "tiny_cnn.yaml"), **doc}, source="exp.yaml")
    space = load_space(exp.space)
    controller = Controller(exp, space, input_shape=(1, 8, 8), num_classes=10, train_samples_per_trial=1000)
    return SearchLoop(exp, space, controller, RecordingTracker(), {"val_accuracy": 0.0, "mflops": 1.0})


def _run(loop: SearchLoop, accuracy, flops_per_trial: float = 1e9) -> int:
    """Drive the loop like the runner does, one trial at a time; returns how many trials ran."""
    n = 0
    while (spec := loop.propose()) is not None:
        loop.on_trial_start(spec.number)
        acc = accuracy(n)
        loop.on_epoch(spec.number, {"epoch": 1.0, "val_accuracy": acc, "train_flops": flops_per_trial})
        loop.on_trial_complete(spec.number, {"val_accuracy": acc, "train_flops": flops_per_trial, "epochs_run": 1.0},
                               None)
        n += 1
    return n


def test_search_loop_stops_at_the_plateau_and_records_why():
    loop = _loop(search={"sampler": "random", "trials": 200, "seed": 0},
                 plateau={"enabled": True, "window": 5, "threshold": 0.01, "min_trials": 10})
    # accuracy improves for 12 trials (every new trial dominates), then never again: the hypervolume flattens
    ran = _run(loop, lambda i: 0.5 + 0.04 * min(i, 12))
    assert 13 <= ran <= 20
    assert loop.state.stop_reason.startswith("plateau: ")
    assert len(loop.hv_curve) == ran and loop.hv_curve[-1][0] == pytest.approx(ran * 1e9 / 1e12)


def test_search_loop_stops_at_the_budget_and_records_why():
    loop = _loop(search={"sampler": "random", "trials": 100, "seed": 0}, budget={"train_tflops": 0.0105})
    ran = _run(loop, lambda i: 0.5, flops_per_trial=1e9)
    assert ran == 11  # after 10 trials 0.010 TFLOPs < 0.0105; the 11th reaches it
    assert loop.state.stop_reason == "budget: training compute 0.011 TFLOPs reached budget.train_tflops=0.0105"


def test_running_trials_are_cut_when_the_budget_is_reached():
    loop = _loop(search={"sampler": "random", "trials": 10, "seed": 0}, budget={"train_tflops": 0.002})
    a, b = loop.propose(), loop.propose()
    loop.on_trial_start(a.number)
    loop.on_trial_start(b.number)
    assert loop.should_stop(a.number, {"epoch": 1.0, "val_accuracy": 0.5, "train_flops": 1e9}) is None
    reason = loop.should_stop(b.number, {"epoch": 1.0, "val_accuracy": 0.5, "train_flops": 1.5e9})
    assert reason.startswith("budget: training compute")
    loop.on_trial_pruned(b.number, reason, {"epoch": 1.0, "val_accuracy": 0.5, "train_flops": 1.5e9})
    assert loop.records[b.number].status == "pruned" and loop.propose() is None


def test_asha_in_the_loop_bills_and_prunes():
    loop = _loop(search={"sampler": "tpe", "trials": 6, "seed": 0}, training={"epochs": 4},
                 early_stopping={"method": "pareto-asha", "eta": 2, "rungs": [2]})
    stopped = 0
    for i in range(6):
        spec = loop.propose()
        loop.on_trial_start(spec.number)
        acc = 0.9 - 0.1 * i  # later trials are worse at the same or higher cost
        m = {"epoch": 2.0, "val_accuracy": acc, "train_flops": 2e9}
        reason = loop.should_stop(spec.number, m)
        if reason:
            loop.on_trial_pruned(spec.number, reason, m)
            stopped += 1
            assert loop.records[spec.number].metrics["saved_train_flops"] == pytest.approx(2e9)
        else:
            loop.on_trial_complete(spec.number, {**m, "epoch": 4.0, "train_flops": 4e9}, None)
    assert stopped >= 1 and loop.state.pruned == stopped
    assert loop.state.saved_tflops == pytest.approx(stopped * 2e9 / 1e12)
    assert loop.controller.stats.told_pruned == stopped
    assert loop.propose() is None  # TPE kept sampling with pruned trials in the study; the plan is done
