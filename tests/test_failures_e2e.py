"""Failure injection, one real search per kind (real Ray, MLflow sqlite, Optuna): each failing trial is recorded
with its reason in MLflow and told to Optuna as failed, and the search goes on to finish its other trials."""

from __future__ import annotations

from pathlib import Path

import optuna
import pytest
import yaml
from mlflow import MlflowClient

from nas.config.experiment import load_experiment
from nas.search.api import SearchAbortedError, run_search
from nas.search.controller import open_storage

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

TRIALS = 4


def _seed_with_both(kind: str) -> int:
    """A search seed whose first TRIALS random draws of `mode` include both 'ok' and `kind` (found, not assumed)."""
    for seed in range(50):
        sampler = optuna.samplers.RandomSampler(seed=seed)
        study = optuna.create_study(sampler=sampler)
        draws = [study.ask().suggest_categorical("mode", ["ok", kind]) for _ in range(TRIALS)]
        if draws[0] == "ok" and kind in draws:
            return seed
    raise AssertionError("no seed found")


def _search(tmp_path: Path, kind: str, **extra):
    space = {"builder": "nas.testing.faults:faulty", "input_shape": [1, 8, 8], "num_classes": 10,
             "params": {"width": 8, "mode": {"type": "categorical", "choices": ["ok", kind]}}}
    (tmp_path / "space.yaml").write_text(yaml.safe_dump(space))
    doc = {"name": f"fail-{kind}", "space": "space.yaml", "training": {"epochs": 2, "lr": 0.01, **extra},
           "search": {"sampler": "random", "trials": TRIALS, "concurrency": 1, "seed": _seed_with_both(kind)},
           "tracking": {"uri": f"sqlite:///{tmp_path / 'mlflow.db'}", "experiment": "failures"}}
    (tmp_path / "exp.yaml").write_text(yaml.safe_dump(doc))
    return load_experiment(tmp_path / "exp.yaml")


CASES = {
    "raise": "injected failure: exception in forward",
    "nan": "NonFiniteLossError",
    "oom": "OutOfMemoryError",
    "slow": "TrialTimeoutError",
    "kill": "",  # the worker process dies: Ray reports it, whatever its words
    "unbuildable": "cannot build or profile this architecture",
}


@pytest.mark.parametrize("kind", list(CASES))
def test_failing_trials_are_recorded_and_the_search_goes_on(kind, tmp_path, ray_cluster):
    extra = {"max_seconds": 15.0} if kind == "slow" else {}  # slow mode sleeps 2 s per batch; ok trials take ~1 s
    exp = _search(tmp_path, kind, **extra)
    result = run_search(exp, storage_path=str(tmp_path / "ray"))
    failed = [r for r in result.records if r.status == "failed"]
    ok = [r for r in result.records if r.status == "complete"]
    assert len(result.records) == TRIALS
    assert failed and ok, [(r.params, r.status, r.reason) for r in result.records]
    assert all(r.params["mode"] == kind for r in failed) and all(r.params["mode"] == "ok" for r in ok)
    for r in failed:
        assert r.reason and CASES[kind] in r.reason
    # MLflow: one child run per trial, the failed ones FAILED with their reason
    client = MlflowClient(exp.tracking.uri)
    runs = client.search_runs([client.get_run(result.run_id).info.experiment_id],
                              f"tags.`nas.search_run_id` = '{result.run_id}'")
    by_number = {int(r.data.tags["nas.trial_number"]): r for r in runs}
    assert sorted(by_number) == sorted(r.number for r in result.records)
    for r in failed:
        assert by_number[r.number].info.status == "FAILED"
        assert CASES[kind] in by_number[r.number].data.tags["nas.failure_reason"]
    # Optuna: failed trials are FAIL, finished ones COMPLETE
    study = optuna.load_study(study_name=f"nas-{result.run_id}", storage=open_storage(exp.study_storage()))
    states = {t.number: t.state for t in study.trials}
    assert all(states[r.number] == optuna.trial.TrialState.FAIL for r in failed)
    assert all(states[r.number] == optuna.trial.TrialState.COMPLETE for r in ok)
    assert client.get_run(result.run_id).info.status == "FINISHED"


def test_max_failures_aborts_with_a_clear_message_and_keeps_records(tmp_path, ray_cluster):
    space = {"builder": "nas.testing.faults:faulty", "input_shape": [1, 8, 8], "num_classes": 10,
             "params": {"width": 8, "mode": "raise"}}
    (tmp_path / "space.yaml").write_text(yaml.safe_dump(space))
    doc = {"space": "space.yaml", "training": {"epochs": 1},
           "search": {"sampler": "random", "trials": 6, "concurrency": 1, "max_failures": 1},
           "tracking": {"uri": f"sqlite:///{tmp_path / 'mlflow.db'}", "experiment": "abort"}}
    (tmp_path / "exp.yaml").write_text(yaml.safe_dump(doc))
    exp = load_experiment(tmp_path / "exp.yaml")
    with pytest.raises(SearchAbortedError, match=r"2 trials failed, more than search.max_failures \(1\)"):
        run_search(exp, storage_path=str(tmp_path / "ray"))
    client = MlflowClient(exp.tracking.uri)
    (parent,) = client.search_runs([client.get_experiment_by_name("abort").experiment_id], "tags.`nas.kind` = 'search'")
    assert parent.info.status == "FAILED" and parent.data.tags["nas.stop_reason"] == "max_failures"
    children = client.search_runs([parent.info.experiment_id], f"tags.`nas.search_run_id` = '{parent.info.run_id}'")
    assert len(children) == 2 and all(c.info.status == "FAILED" for c in children)
