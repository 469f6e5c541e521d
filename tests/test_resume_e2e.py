"""Kill -9 the driver of a real search after some trials finished, then `--resume` it: nothing is lost or doubled."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pytest
import yaml
from conftest import FIXTURES
from mlflow import MlflowClient

from nas.config.experiment import load_experiment
from nas.pareto import pareto_mask
from nas.search.api import run_search
from nas.search.controller import open_storage

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

TRIALS, KILL_AFTER = 8, 3


def _finished(path: str) -> int:
    if not Path(path).exists():
        return 0
    storage = open_storage(path)
    names = optuna.study.get_all_study_names(storage)
    if not names:
        return 0
    study = optuna.load_study(study_name=names[0], storage=storage)
    return sum(t.state == optuna.trial.TrialState.COMPLETE for t in study.trials)


def test_kill_and_resume(tmp_path, ray_cluster):
    shutil.copy(FIXTURES / "tiny_cnn.yaml", tmp_path / "space.yaml")
    doc = {"name": "resume", "space": "space.yaml", "training": {"epochs": 3, "lr": 0.01},
           "search": {"sampler": "nsga2", "trials": TRIALS, "concurrency": 2, "seed": 0},
           "tracking": {"uri": f"sqlite:///{tmp_path / 'mlflow.db'}", "experiment": "resume"}}
    (tmp_path / "exp.yaml").write_text(yaml.safe_dump(doc))
    exp = load_experiment(tmp_path / "exp.yaml")
    storage = open_storage(exp.study_storage())

    proc = subprocess.Popen([sys.executable, "-m", "nas.cli", "search", "exp.yaml", "--quiet"], cwd=tmp_path,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        deadline = time.time() + 240
        while _finished(exp.study_storage()) < KILL_AFTER:
            assert proc.poll() is None, "the search ended before it could be killed"
            assert time.time() < deadline, "no trials finished in time"
            time.sleep(0.5)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)  # the driver and everything it started, at once
        proc.wait()

    client = MlflowClient(exp.tracking.uri)
    exp_id = client.get_experiment_by_name("resume").experiment_id
    (parent,) = client.search_runs([exp_id], "tags.`nas.kind` = 'search'")
    run_id = parent.info.run_id
    study = optuna.load_study(study_name=f"nas-{run_id}", storage=storage)
    done_before = {t.number for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE
                   and t.user_attrs.get("nas_status") != "repeat"}
    assert len(done_before) >= KILL_AFTER

    result = run_search(exp, resume=run_id, storage_path=str(tmp_path / "nas_runs"))

    # exactly one parent run, continued and finished
    parents = client.search_runs([exp_id], "tags.`nas.kind` = 'search'")
    assert [p.info.run_id for p in parents] == [run_id]
    assert client.get_run(run_id).info.status == "FINISHED"
    # no trial number twice, and every Optuna trial is in MLflow and the other way round
    children = client.search_runs([exp_id], f"tags.`nas.search_run_id` = '{run_id}'")
    numbers = [int(c.data.tags["nas.trial_number"]) for c in children]
    assert len(numbers) == len(set(numbers))
    study = optuna.load_study(study_name=f"nas-{run_id}", storage=storage)
    # a re-proposal answered from a known result is an Optuna trial but was never trained (no child run)
    trained = [t for t in study.trials if t.user_attrs.get("nas_status") != "repeat"]
    assert {t.number for t in trained} == set(numbers)
    # finished trials were not rerun: they keep their numbers; in-flight ones were marked interrupted
    complete = {t.number for t in trained if t.state == optuna.trial.TrialState.COMPLETE}
    assert done_before <= complete
    interrupted = [t for t in trained if t.user_attrs.get("nas_status") == "interrupted"]
    assert all(t.state == optuna.trial.TrialState.FAIL for t in interrupted)
    assert len(complete) + sum(t.user_attrs.get("nas_status") == "failed" for t in trained) == TRIALS
    # the final Pareto set is built from all finished trials
    rows = [{"val_accuracy": t.values[0], "mflops": t.values[1]} for t in trained
            if t.state == optuna.trial.TrialState.COMPLETE]
    nums = [t.number for t in trained if t.state == optuna.trial.TrialState.COMPLETE]
    front = {n for n, m in zip(nums, pareto_mask(rows, [("val_accuracy", "maximize"), ("mflops", "minimize")]),
                               strict=True) if m}
    assert {r.number for r in result.pareto} == front
    tagged = {int(c.data.tags["nas.trial_number"]) for c in children if c.data.tags.get("nas.pareto") == "true"}
    assert tagged == front
    assert Path(tmp_path / "optuna.journal").is_file()
