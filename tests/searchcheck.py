"""Helpers for the end-to-end durability tests: write a small search, drive the CLI, and check a run's invariants
(MLflow children == Optuna trials, no number or params twice, Pareto tags == front, registry == front, bill ==
the sum over child runs)."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import optuna
import yaml
from conftest import FIXTURES, ROOT
from mlflow import MlflowClient

from nas.pareto import pareto_mask
from nas.search.controller import open_storage

OBJECTIVES = [("val_accuracy", "maximize"), ("mflops", "minimize")]
TRAINED = ("complete", "pruned", "failed")  # statuses of trials that trained (or tried to)


def write_search(folder: Path, *, trials: int, concurrency: int = 2, epochs: int = 3, name: str = "durable",
                 live_after_s: float | None = None, **search: Any) -> Path:
    """An experiment (tiny CNN on digits, lr sampled so no two draws share params) in ``folder``; ``live_after_s``
    sets ``tracking.live_after_s`` (0: a trial's child run is live from its start)."""
    shutil.copy(FIXTURES / "tiny_cnn.yaml", folder / "space.yaml")
    doc = {"name": name, "space": "space.yaml",
           "training": {"epochs": epochs, "lr": {"type": "float", "low": 1e-3, "high": 1e-1, "log": True}},
           "search": {"sampler": "random", "trials": trials, "concurrency": concurrency, "seed": 0, **search},
           "resources": {"cpu": 1},
           "tracking": {"uri": f"sqlite:///{folder / 'mlflow.db'}", "experiment": name,
                        **({} if live_after_s is None else {"live_after_s": live_after_s})}}
    (folder / "exp.yaml").write_text(yaml.safe_dump(doc))
    return folder / "exp.yaml"


def cli(folder: Path, *args: str) -> subprocess.Popen:
    """``nas search exp.yaml ARGS --quiet`` in ``folder``, in its own process group; its output goes to a file
    (a pipe nobody reads could fill and block it): read it with :func:`output`."""
    log = folder / f"driver-{time.monotonic_ns()}.log"
    with open(log, "w") as f:
        proc = subprocess.Popen([sys.executable, "-m", "nas.cli", "search", "exp.yaml", "--quiet", *args],
                                cwd=folder, stdout=f, stderr=subprocess.STDOUT, start_new_session=True,
                                env={**os.environ, "PYTHONPATH": str(ROOT)})
    proc.log_path = log  # type: ignore[attr-defined]
    return proc


def output(proc: subprocess.Popen) -> str:
    return Path(proc.log_path).read_text()  # type: ignore[attr-defined]


def finish(proc: subprocess.Popen, timeout_s: float) -> tuple[int, str]:
    """Wait for the driver; its exit code and output."""
    proc.wait(timeout=timeout_s)
    return proc.returncode, output(proc)


def kill_group(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)  # the driver and everything it started, at once
    except ProcessLookupError:
        pass
    proc.wait()


def journals(folder: Path) -> list[Path]:
    return sorted((folder / "nas_studies").glob("*.journal")) if (folder / "nas_studies").is_dir() else []


def finished_trials(folder: Path) -> int:
    """Trials finished (complete, pruned or failed) in the folder's study so far (0 before it exists)."""
    found = journals(folder)
    if not found:
        return 0
    try:
        storage = open_storage(str(found[0]))
        (name,) = optuna.study.get_all_study_names(storage)
        study = optuna.load_study(study_name=name, storage=storage)
    except Exception:
        return 0
    return sum(t.state.is_finished() and t.user_attrs.get("nas_status") in TRAINED for t in study.trials)


def wait_for(pred, timeout_s: float, proc: subprocess.Popen | None = None, what: str = "") -> None:
    deadline = time.time() + timeout_s
    while not pred():
        if proc is not None and proc.poll() is not None:
            raise AssertionError(f"the driver ended (rc {proc.returncode}) before {what}: {output(proc)[-3000:]}")
        assert time.time() < deadline, f"timed out waiting for {what}"
        time.sleep(0.5)


def parent_run(folder: Path, name: str = "durable") -> Any:
    client = MlflowClient(f"sqlite:///{folder / 'mlflow.db'}")
    exp = client.get_experiment_by_name(name)
    (parent,) = client.search_runs([exp.experiment_id], "tags.`nas.kind` = 'search'")
    return parent


def study_of(folder: Path, run_id: str) -> optuna.Study:
    return optuna.load_study(study_name=f"nas-{run_id}",
                             storage=open_storage(str(folder / "nas_studies" / f"{run_id}.journal")))


def live_runs(folder: Path, name: str = "durable") -> dict[int, str]:
    """Trial number -> run id of the child runs now RUNNING with at least one epoch logged (trials in flight)."""
    try:
        client = MlflowClient(f"sqlite:///{folder / 'mlflow.db'}")
        exp = client.get_experiment_by_name(name)
        if exp is None:
            return {}
        runs = client.search_runs([exp.experiment_id], "tags.`nas.kind` = 'trial' and attributes.status = 'RUNNING'")
    except Exception:  # the store is being created
        return {}
    return {int(r.data.tags["nas.trial_number"]): r.info.run_id for r in runs
            if any(k.startswith("epoch/") for k in r.data.metrics)}


def deleted_children(folder: Path, run_id: str, name: str = "durable") -> list[int]:
    """Trial numbers of the search's deleted child runs (MLflow deletes softly: they stay in the store)."""
    from mlflow.entities import ViewType

    client = MlflowClient(f"sqlite:///{folder / 'mlflow.db'}")
    exp = client.get_experiment_by_name(name)
    runs = client.search_runs([exp.experiment_id], f"tags.`nas.search_run_id` = '{run_id}'", ViewType.DELETED_ONLY)
    return sorted(int(r.data.tags["nas.trial_number"]) for r in runs)


def check_invariants(folder: Path, run_id: str, *, planned: int, name: str = "durable") -> dict[str, Any]:
    """Assert the run's durable invariants; returns a few figures for the caller."""
    client = MlflowClient(f"sqlite:///{folder / 'mlflow.db'}")
    exp = client.get_experiment_by_name(name)
    parents = client.search_runs([exp.experiment_id], "tags.`nas.kind` = 'search'")
    assert [p.info.run_id for p in parents] == [run_id]
    parent = client.get_run(run_id)
    assert parent.info.status == "FINISHED", parent.data.tags.get("nas.stop_reason")
    children = client.search_runs([exp.experiment_id], f"tags.`nas.search_run_id` = '{run_id}'")
    numbers = [int(c.data.tags["nas.trial_number"]) for c in children]
    assert len(numbers) == len(set(numbers)), "a trial number twice in MLflow"
    flat = sorted(int(c.data.tags["nas.trial_number"]) for c in children
                  if c.data.tags.get("nas.status") in ("complete", "pruned")
                  and not any(k.startswith("epoch/") for k in c.data.metrics))
    assert not flat, f"child runs of trained trials {flat} have no per-epoch metrics"
    study = study_of(folder, run_id)
    trials = [t for t in study.trials if t.user_attrs.get("nas_status") not in ("infeasible", "screened")]
    assert {t.number for t in trials} == set(numbers), "MLflow children != Optuna trials"
    assert not [t for t in trials if not t.state.is_finished()], "a trial left RUNNING"
    trained = [t for t in trials if t.user_attrs.get("nas_status") in TRAINED]
    keys = [json.dumps(t.params, sort_keys=True) for t in trained]
    assert len(keys) == len(set(keys)), "the same params trained twice"
    assert len(trained) == planned, (len(trained), planned)
    interrupted = [t for t in trials if t.user_attrs.get("nas_status") == "interrupted"]
    assert all(t.state == optuna.trial.TrialState.FAIL for t in interrupted)
    complete = [t for t in trials if t.state == optuna.trial.TrialState.COMPLETE]
    mask = pareto_mask([{"val_accuracy": t.values[0], "mflops": t.values[1]} for t in complete], OBJECTIVES)
    front = {t.number for t, m in zip(complete, mask, strict=True) if m}
    tagged = {int(c.data.tags["nas.trial_number"]) for c in children if c.data.tags.get("nas.pareto") == "true"}
    assert tagged == front, "Pareto tags != the front"
    versions = client.search_model_versions(f"name='nas-{name}'")
    by_run = {c.info.run_id: int(c.data.tags["nas.trial_number"]) for c in children}
    registered = [by_run.get(v.run_id) for v in versions]
    assert sorted(registered) == sorted(front), "registry versions != Pareto models"
    flops = sum(c.data.metrics.get("nas_cost/train_tflops", 0.0) for c in children)
    bill = parent.data.metrics
    assert int(bill["nas_cost/trials_count"]) == len(children), "the bill counts other trials than MLflow"
    assert abs(bill["nas_cost/train_tflops"] - flops) <= 1e-6 * max(1.0, flops), "bill != sum over child runs"
    return {"trials": len(trials), "interrupted": len(interrupted), "front": sorted(front)}
