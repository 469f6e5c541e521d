"""Controller with real Optuna: constraints are checked before training, infeasible candidates are told at once."""

from __future__ import annotations

import optuna
import pytest
from conftest import FIXTURES

from nas.config.experiment import parse_experiment
from nas.search.controller import SAMPLERS, STATUS_ATTR, Controller, NoFeasibleCandidateError
from nas.space import load_space

SPACE = FIXTURES / "tiny_cnn.yaml"


def _controller(**doc) -> Controller:
    exp = parse_experiment({"space": str(SPACE), **doc}, source="exp.yaml")
    return Controller(exp, load_space(exp.space), input_shape=(1, 8, 8), num_classes=10,
                      train_samples_per_trial=10 * 1000)


def test_every_sampler_in_the_table_proposes():
    for name in SAMPLERS:
        c = _controller(search={"sampler": name, "trials": 4, "seed": 0})
        cand = c.propose()
        assert cand.profile.mflops > 0 and cand.params["stages/n"] in (1, 2)
        c.tell(cand.number, {"val_accuracy": 0.5, "mflops": cand.profile.mflops})


def test_constraint_rejects_before_training_and_tells_optuna():
    c = _controller(constraints={"mflops": {"max": 0.05}}, search={"sampler": "random", "seed": 1})
    feasible = [c.propose() for _ in range(8)]
    assert all(f.profile.mflops <= 0.05 for f in feasible)
    assert c.stats.rejected >= 1, "the tiny space has models above 0.05 MFLOPs"
    rejected = [t for t in c.study.trials if t.user_attrs.get(STATUS_ATTR) == "infeasible"]
    assert len(rejected) == c.stats.rejected
    for t in rejected:
        assert t.state == optuna.trial.TrialState.COMPLETE
        assert t.constraints["mflops"] > 0  # Optuna's constrained samplers see it as infeasible
        assert t.values[0] == 0.0  # accuracy at its worst: never trained
    # the saved compute is 3 x forward FLOPs x the samples the trial would have seen
    expected = sum(3 * t.values[1] * 1e6 * 10_000 for t in rejected)
    assert c.stats.rejected_saved_train_flops == pytest.approx(expected)


def test_impossible_constraints_fail_clearly():
    c = _controller(constraints={"mflops": {"max": 1e-9}}, search={"max_rejections": 20})
    with pytest.raises(NoFeasibleCandidateError, match="20 candidates in a row broke the hard constraints"):
        c.propose()


def test_failed_trial_is_told_with_reason():
    c = _controller(search={"sampler": "tpe"})
    cand = c.propose()
    c.tell_failed(cand.number, "RuntimeError: boom")
    t = c.study.trials[cand.number]
    assert t.state == optuna.trial.TrialState.FAIL and t.user_attrs["nas_reason"] == "RuntimeError: boom"


def test_training_dimensions_are_sampled():
    c = _controller(training={"lr": {"type": "float", "low": 1e-4, "high": 1e-2, "log": True}})
    cand = c.propose()
    assert 1e-4 <= cand.training["lr"] <= 1e-2
    assert "train/lr" in c.study.trials[cand.number].params


def test_same_seed_same_sequence():
    def seq() -> list[dict]:
        c = _controller(search={"sampler": "nsga2", "seed": 5, "trials": 12})
        out = []
        for _ in range(6):
            cand = c.propose()
            out.append(cand.params)
            c.tell(cand.number, {"val_accuracy": 0.1 * len(out), "mflops": cand.profile.mflops})
        return out

    assert seq() == seq()


