"""Proxy screening: the isotonic accuracy prediction, the hypervolume-gain pick (worked by hand), and the
controller's screen / prior / objective modes with real Optuna (every sampler survives pruned trials)."""

from __future__ import annotations

import math

import pytest
from conftest import FIXTURES
from optuna.trial import TrialState

from nas.config.experiment import parse_experiment
from nas.proxies.screen import pick_candidate, predict_accuracy
from nas.search.controller import SAMPLERS, STATUS_ATTR, Controller, NoFeasibleCandidateError
from nas.space import load_space

OBJ = [("val_accuracy", "maximize"), ("mflops", "minimize")]


def test_predict_accuracy_is_monotone_and_clipped():
    pairs = [(1.0, 0.5), (2.0, 0.6), (3.0, 0.9)]
    assert predict_accuracy(pairs, [2.0, 10.0, -5.0]) == pytest.approx([0.6, 0.9, 0.5])
    assert math.isnan(predict_accuracy(pairs, [math.nan])[0])
    # a violation of monotonicity is pooled: (2, 0.8), (3, 0.6) -> both 0.7
    assert predict_accuracy([(1, 0.5), (2, 0.8), (3, 0.6)], [2, 3]) == pytest.approx([0.7, 0.7])


def test_pick_candidate_maximizes_hypervolume_gain():
    observed = [{"val_accuracy": 0.8, "mflops": 0.5}]
    ref = {"val_accuracy": 0.0, "mflops": 1.0}
    # HV of observed: 0.8 * 0.5 = 0.4
    cands = [{"val_accuracy": 0.7, "mflops": 0.6},   # dominated: gain 0
             {"val_accuracy": 0.9, "mflops": 0.5},   # gain 0.1 * 0.5 = 0.05
             {"val_accuracy": 0.6, "mflops": 0.1}]   # gain 0.6 * 0.4 = 0.24
    best, gains = pick_candidate(cands, observed, OBJ, ref)
    assert best == 2 and gains == pytest.approx([0.0, 0.05, 0.24])
    best, gains = pick_candidate([{"val_accuracy": math.nan, "mflops": 0.1}, cands[0]], observed, OBJ, ref)
    assert best == 0 and gains == [0.0, 0.0]  # no gain anywhere: the sampler's first candidate


def _controller(scorer=None, **doc) -> Controller:
    exp = parse_experiment({"space": str(FIXTURES / "tiny_cnn.yaml"), **doc}, source="exp.yaml")
    return Controller(exp, load_space(exp.space), input_shape=(1, 8, 8), num_classes=10,
                      train_samples_per_trial=1000, scorer=scorer, reference={"val_accuracy": 0.0, "mflops": 1.0})


def fake_scorer(params):  # unit-test fake: a deterministic "proxy" from the params
    n = params["stem_channels"] + 10 * params["stages/n"]
    return {"naswot": float(n), "params": float(params["stem_channels"])}


@pytest.mark.parametrize("sampler", list(SAMPLERS))
def test_every_sampler_survives_pruned_and_screened_trials(sampler):
    c = _controller(fake_scorer, search={"sampler": sampler, "trials": 12, "seed": 0},
                    proxy={"use": "screen", "name": "naswot", "candidates": 3, "min_pairs": 2})
    for i in range(8):
        cand = c.propose()
        if i % 2:
            c.tell_pruned(cand.number, "pareto-asha: stopped")
        else:
            c.tell(cand.number, {"val_accuracy": 0.5 + 0.01 * i, "mflops": cand.profile.mflops})
    states = [t.state for t in c.study.trials]
    # a pool whose chosen candidate repeats a known trial is answered from that result and drawn again
    repeated_stops = sum(t.user_attrs.get(STATUS_ATTR) == "repeat" and t.state == TrialState.PRUNED
                         for t in c.study.trials)
    assert states.count(TrialState.PRUNED) == 4 + c.stats.screened_out + repeated_stops
    assert c.stats.screened_out == (8 + c.stats.repeats) * 2
    assert sum(t.user_attrs.get(STATUS_ATTR) == "screened" for t in c.study.trials) == c.stats.screened_out


def test_screening_uses_the_proxy_once_it_has_evidence():
    c = _controller(fake_scorer, search={"sampler": "random", "trials": 50, "seed": 0},
                    proxy={"use": "screen", "name": "naswot", "candidates": 4, "min_pairs": 3})
    for _ in range(6):  # accuracy follows the proxy exactly, so naswot beats params once defined
        cand = c.propose()
        c.tell(cand.number, {"val_accuracy": cand.scores["naswot"] / 100, "mflops": cand.profile.mflops})
    assert c.proxy_correlations()["naswot"] == pytest.approx(1.0)
    assert c.active_proxy() in ("naswot", "params")
    chosen = c.propose()
    assert set(chosen.scores) == {"naswot", "params"}


def test_prior_enqueues_the_best_covering_architectures():
    c = _controller(fake_scorer, search={"sampler": "nsga2", "trials": 20, "seed": 0},
                    proxy={"use": "prior", "name": "naswot", "prior_samples": 12, "prior_top": 3})
    assert c.seed_prior() == 3
    first = [c.propose() for _ in range(3)]
    waiting = {tuple(sorted(t.params.items())) for t in c.study.trials[:3]}
    assert len(waiting) == 3 and all(f.number < 3 for f in first)
    assert c.seed_prior() == 0  # only before the study has trials


def test_proxy_as_an_extra_objective():
    c = _controller(fake_scorer, search={"sampler": "nsga2", "trials": 20, "seed": 0},
                    proxy={"use": "objective", "name": "naswot"})
    assert len(c.study.directions) == 3
    cand = c.propose()
    c.tell(cand.number, {"val_accuracy": 0.7, "mflops": cand.profile.mflops})
    assert c.study.trials[-1].values[2] == cand.scores["naswot"]


def test_per_trial_caps():
    # a full training here is 3 x forward FLOPs x 1000 samples: 3e-4 TFLOPs admits candidates up to 0.1 MFLOPs
    c = _controller(search={"sampler": "random", "trials": 20, "seed": 0},
                    budget={"trial_seconds": 7.5, "trial_tflops": 3e-4})
    cands = [c.propose() for _ in range(6)]
    assert all(x.training["max_seconds"] == 7.5 for x in cands)
    assert all(c.train_flops(x.profile) <= 3e8 for x in cands)
    assert c.stats.rejections_by_metric.get("trial_tflops", 0) >= 1  # the tiny space goes up to ~0.6 MFLOPs
    tight = _controller(search={"sampler": "random", "trials": 20, "seed": 0, "max_rejections": 20},
                        budget={"trial_tflops": 1e-9})
    with pytest.raises(NoFeasibleCandidateError, match="budget.trial_tflops"):
        tight.propose()


def test_profiles_are_cached_by_architecture():
    calls = []
    c = _controller(search={"sampler": "random", "trials": 50, "seed": 0})
    cache = c._profile  # the controller's ProfileCache
    real = cache._measure
    cache._measure = lambda params: calls.append(dict(params)) or real(params)
    params = c.space.sample_random(0)
    first = c.profile(params)
    assert c.profile(dict(reversed(list(params.items())))) is first  # same architecture, any key order
    assert len(calls) == 1
    c.profile(c.space.sample_random(1) if c.space.sample_random(1) != params else c.space.sample_random(2))
    assert len(calls) == 2
