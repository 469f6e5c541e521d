"""The search loop keeps its Pareto front incrementally and writes the live front artifacts only when they change:
the same front, hypervolume and files as recomputing everything, for less driver time per trial (a real
SearchLoop + Controller with Optuna; the tracker is a unit-test fake that runs deferred calls at once)."""

from __future__ import annotations

import math
import random
from typing import Any

import pytest
from conftest import FIXTURES

from nas.config.experiment import parse_experiment
from nas.search.controller.core import Controller
from nas.search.loop import SearchLoop
from nas.space import load_space


class WritingTracker:
    """Runs every deferred call at once and keeps the file names each artifact write carried."""

    run_id = "run"
    seconds = 0.0

    def __init__(self) -> None:
        self.writes: list[list[str]] = []

    def defer(self, fn: Any, *args: Any) -> None:
        fn(*args)

    def start_trial(self, rec: Any) -> None: ...
    def log_epoch(self, number: int, metrics: Any) -> None: ...
    def log_trial(self, rec: Any) -> None: ...
    def log_progress(self, step: int, metrics: Any) -> None: ...

    def log_artifacts(self, files: dict[str, Any], tags: dict[str, Any] | None = None) -> None:
        self.writes.append(sorted(files))


def _loop(objectives: list[dict[str, str]], reference: dict[str, float], space: str = str(FIXTURES / "tiny_cnn.yaml"),
          **kw: Any) -> SearchLoop:
    exp = parse_experiment({"space": space, "objectives": objectives, "training": {"lr": {"type": "float", "low": 1e-4, "high": 0.1}},
                            "search": {"sampler": "random", "trials": 40, "seed": 3}}, source="exp.yaml")
    space = load_space(exp.space)
    controller = Controller(exp, space, input_shape=(1, 8, 8), num_classes=10, train_samples_per_trial=1000)
    return SearchLoop(exp, space, controller, WritingTracker(), reference, **kw)


def _trial(loop: SearchLoop, acc: float) -> int:
    spec = loop.propose()
    assert spec is not None
    loop.on_trial_start(spec.number)
    loop.on_trial_complete(spec.number, {"val_accuracy": acc, "train_flops": 1e9, "epochs_run": 1.0}, None)
    return spec.number


def test_incremental_front_and_hypervolume_match_a_full_recomputation():
    loop = _loop([{"name": "val_accuracy", "direction": "maximize"}, {"name": "mflops", "direction": "minimize"}],
                 {"val_accuracy": 0.0, "mflops": 10.0})
    rng = random.Random(0)
    for _ in range(30):
        _trial(loop, rng.random())
        hv = loop.state.hypervolume
        flags = {r.number: r.pareto for r in loop.completed()}
        front, full_hv = loop.front()  # recomputed from every completed trial (sets the flags again)
        assert hv == pytest.approx(full_hv, rel=1e-12) and math.isfinite(hv)
        assert flags == {r.number: r.pareto for r in loop.completed()}
        assert sorted(r.number for r in loop._front) == sorted(r.number for r in front)


def test_live_front_artifacts_are_written_only_when_they_change(tmp_path):
    # one architecture (the trials differ by learning rate): the same MFLOPs, so accuracy alone decides the front
    space = tmp_path / "one_arch.yaml"
    space.write_text("builder: nas.testing.faults:faulty\ninput_shape: [1, 8, 8]\nnum_classes: 10\n"
                     "params: {width: 16, mode: ok}\n")
    loop = _loop([{"name": "val_accuracy", "direction": "maximize"}, {"name": "mflops", "direction": "minimize"}],
                 {"val_accuracy": 0.0, "mflops": 1.0}, space=str(space), artifact_every_s=0.0, plots_every_s=0.0)
    writes: list[list[str]] = loop.tracker.writes  # type: ignore[attr-defined]
    plots = ["hv_vs_compute.png", "pareto.csv", "pareto.png"]
    _trial(loop, 0.8)
    assert writes == [plots]  # the first front
    _trial(loop, 0.5)  # dominated: the same front, the same pareto.csv
    _trial(loop, 0.7)
    assert writes == [plots]
    _trial(loop, 0.9)  # a new front
    assert writes == [plots, plots]
    loop.plots_every_s = math.inf  # plots throttled: the csv still follows the front
    _trial(loop, 0.95)
    _trial(loop, 0.1)
    assert writes == [plots, plots, ["pareto.csv"]]
    loop.plots_every_s = 0.0  # the front the plots show is out of date: they are redrawn, once
    _trial(loop, 0.2)
    _trial(loop, 0.3)
    assert writes == [plots, plots, ["pareto.csv"], plots]
    loop.log_front_artifacts()  # the final call writes everything, changed or not
    assert writes[-1] == plots and len(writes) == 5
