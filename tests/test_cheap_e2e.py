"""End to end: the cheap-search features in a real search (real Ray, MLflow sqlite in a temp dir, Optuna).

One search combines multi-objective TPE, Pareto-ASHA and proxy screening: early-stopped trials must reach Optuna
as PRUNED without crashing TPE (optuna#5260), be recorded as child runs with their reason, and bill only the
epochs they ran. A second search stops at a training-compute budget and records why.
"""

from __future__ import annotations

import json
from pathlib import Path

import optuna
import pytest
from conftest import write_experiment
from mlflow import MlflowClient
from optuna.trial import TrialState

from nas.config.experiment import load_experiment
from nas.durable.study import run_study_storage
from nas.search.api import run_search
from nas.search.controller import STATUS_ATTR, open_storage
from nas.search.controller.core import REPEAT_STATUS

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


def _experiment(tmp_path: Path, **sections) -> Path:
    return write_experiment(tmp_path, "cheap", **{"training": {"epochs": 4, "lr": 0.01},
                                                  "search": {"sampler": "tpe", "trials": 10, "concurrency": 2,
                                                             "seed": 5}, **sections})


@pytest.fixture(scope="module")
def asha_search(tmp_path_factory, ray_cluster):
    tmp = tmp_path_factory.mktemp("asha")
    exp = load_experiment(_experiment(
        tmp, early_stopping={"method": "pareto-asha", "eta": 2, "rungs": [1, 2]},
        proxy={"use": "screen", "name": "naswot", "candidates": 3, "min_pairs": 3, "batch_size": 32}))
    return exp, run_search(exp, storage_path=str(tmp / "ray"), register_models=False)


def test_early_stopped_trials_are_pruned_in_optuna_and_recorded(asha_search):
    exp, result = asha_search
    pruned = [r for r in result.records if r.status == "pruned"]
    complete = [r for r in result.records if r.status == "complete"]
    assert pruned and complete and len(pruned) + len(complete) == 10
    for r in pruned:
        assert r.reason.startswith("pareto-asha: stopped after ")
        assert r.metrics["epoch"] in (1.0, 2.0)
        assert r.metrics["saved_train_flops"] > 0
        # billed for what it ran: train_flops of a 1-epoch stop is a quarter of a full 4-epoch training
        assert r.metrics["train_flops"] == pytest.approx(r.metrics["saved_train_flops"] * r.metrics["epoch"]
                                                         / (4 - r.metrics["epoch"]))
    assert all(r.metrics["epochs_run"] == 4 for r in complete)
    assert not any(r.pareto for r in pruned)  # a low-fidelity accuracy never enters the front

    client = MlflowClient(exp.tracking.uri)
    parent = client.get_run(result.run_id)
    assert parent.data.metrics["trials_early_stopped"] == len(pruned)
    assert parent.data.metrics["early_stop_saved_tflops"] > 0
    assert parent.data.tags["nas.stop_reason"] == "trials"
    assert "hv_vs_compute.png" in {a.path for a in client.list_artifacts(result.run_id)}
    children = client.search_runs([parent.info.experiment_id], f"tags.`mlflow.parentRunId` = '{result.run_id}'")
    statuses = {(c.data.tags["nas.status"], c.info.status) for c in children}
    assert statuses == {("pruned", "KILLED"), ("complete", "FINISHED")}
    for c in children:
        if c.data.tags["nas.status"] == "pruned":
            assert c.data.tags["nas.failure_reason"].startswith("pareto-asha: stopped after ")


def test_screening_and_online_rho(asha_search):
    exp, result = asha_search
    study = optuna.load_study(study_name=f"nas-{result.run_id}", storage=_journal(exp, result.run_id))
    screened = [t for t in study.trials if t.user_attrs.get(STATUS_ATTR) == "screened"]
    # every pool of three candidates screens two out; a pool whose pick was a known result (a repeat, answered
    # from it, never trained) is followed by a new pool, so there are 10 + repeats pools
    repeats = [t for t in study.trials if t.user_attrs.get(STATUS_ATTR) == REPEAT_STATUS]
    assert len(screened) == 2 * (10 + len(repeats))
    assert all(t.state == TrialState.PRUNED for t in screened)
    pruned = [t for t in study.trials if t.user_attrs.get(STATUS_ATTR) == "pruned"]
    assert pruned and all(t.state == TrialState.PRUNED for t in pruned)
    trained = [r for r in result.records if r.status == "complete"]
    assert all("proxy_naswot" in r.metrics and "proxy_params" in r.metrics for r in trained)
    parent = MlflowClient(exp.tracking.uri).get_run(result.run_id)
    assert parent.data.metrics["candidates_screened_out"] == len(screened)
    # rho is logged once defined (>= 2 trained trials with distinct scores and accuracies)
    assert all(-1.0 <= v <= 1.0 for k, v in parent.data.metrics.items() if k.startswith("proxy_rho_"))
    if len({r.metrics["proxy_naswot"] for r in trained}) > 1 and len(trained) >= 2:
        assert "proxy_rho_naswot" in parent.data.metrics
    assert parent.data.tags["nas.proxy_active"] in ("naswot", "params")


def _journal(exp, run_id):
    return open_storage(run_study_storage(exp.tracking.uri, run_id, exp.search.storage))


def test_budget_stops_the_search_and_records_why(tmp_path, ray_cluster):
    # one full training of a tiny digits CNN is ~1e9-1e10 FLOPs; 0.01 TFLOPs allows a few trials, not 12
    exp = load_experiment(_experiment(tmp_path, budget={"train_tflops": 0.01},
                                      search={"sampler": "random", "trials": 40, "concurrency": 2, "seed": 1}))
    result = run_search(exp, storage_path=str(tmp_path / "ray"), register_models=False)
    assert result.state.stop_reason.startswith("budget: training compute")
    finished = [r for r in result.records if r.status in ("complete", "pruned")]
    assert 1 <= len(finished) < 40
    spent = sum(r.metrics.get("train_flops", 0.0) for r in result.records)
    per_trial = max(r.metrics.get("train_flops", 0.0) for r in result.records)
    assert spent >= 0.01e12 and spent <= 0.01e12 + 2 * per_trial  # stops at the budget, running trials cut short
    parent = MlflowClient(exp.tracking.uri).get_run(result.run_id)
    assert parent.data.tags["nas.stop_reason"].startswith("budget: training compute")
    assert parent.info.status == "FINISHED"


def test_surrogate_proposals_in_a_real_search(tmp_path, ray_cluster):
    """surrogate.enabled in `nas search`: after its warm-up it learns the first rung's accuracies (reported by the
    trials through Ray Tune) and its proposals are the trials Optuna runs; no architecture is trained twice."""
    exp = load_experiment(_experiment(
        tmp_path, search={"sampler": "random", "trials": 8, "concurrency": 2, "seed": 3},
        training={"epochs": 2, "lr": 0.01}, early_stopping={"method": "pareto-asha", "eta": 2, "rungs": [1]},
        surrogate={"enabled": True, "warmup": 3, "candidates": 16, "refit_every": 2}))
    result = run_search(exp, storage_path=str(tmp_path / "ray"), register_models=False)
    study = optuna.load_study(study_name=f"nas-{result.run_id}", storage=_journal(exp, result.run_id))
    proposed = [t for t in study.trials if "fixed_params" in t.system_attrs]  # enqueued by the surrogate
    assert len(proposed) >= 3
    trained = [r for r in result.records if r.status in ("complete", "pruned")]
    assert len(trained) == 8
    archs = [json.dumps({k: v for k, v in r.params.items()}, sort_keys=True) for r in trained]
    assert len(set(archs)) == len(archs)
