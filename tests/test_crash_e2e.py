"""Randomized crash test: kill -9 the driver of real searches at random moments, resume each time, and check that
the end state is exactly that of a search never killed (see searchcheck.check_invariants).

The kill moments are drawn from ``random.Random(seed)`` for each seed in SEEDS: a delay, uniform in [0, MAX_S] s,
counted from the moment the driver holds the run (its lease: validation and Ray's start are over, and the parent
run exists), so kills land during the study's creation, training, telling Optuna, writing MLflow and the final
models. A driver that finishes before its kill ends that search's kills.
"""

from __future__ import annotations

import random
import subprocess
import time

import pytest
from searchcheck import check_invariants, cli, kill_group, output, wait_for, write_search

from nas.config.experiment import load_experiment
from nas.search.api import run_search

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

SEEDS = (101, 202)
KILLS_PER_SEARCH = 3
MAX_S = 30.0
TRIALS = 6


def _holds(folder, since: float) -> bool:
    """A driver started after ``since`` holds the run (it wrote the lease's holder file)."""
    return any(p.stat().st_mtime >= since for p in folder.glob("nas_studies/*.lease.holder"))


def _parents(folder):
    from mlflow import MlflowClient

    client = MlflowClient(f"sqlite:///{folder / 'mlflow.db'}")
    exp = client.get_experiment_by_name("durable")
    return [] if exp is None else client.search_runs([exp.experiment_id], "tags.`nas.kind` = 'search'")


@pytest.mark.timeout(1500)  # several drivers, each starting Ray, on a shared 2-core box
@pytest.mark.parametrize("seed", SEEDS)
def test_random_kills_then_resume_leave_a_consistent_search(tmp_path, seed, ray_cluster, capsys):
    rng = random.Random(seed)
    write_search(tmp_path, trials=TRIALS, epochs=3, seed=seed)
    kills, moments = 0, []
    for _ in range(KILLS_PER_SEARCH):
        parents = _parents(tmp_path)
        assert len(parents) <= 1
        started = time.time()
        proc = cli(tmp_path, *(["--resume", parents[0].info.run_id] if parents else []))
        delay = rng.uniform(0.0, MAX_S)
        wait_for(lambda p=proc, t=started: _holds(tmp_path, t) or p.poll() is not None, 300, what="the lease")
        try:
            proc.wait(timeout=delay)
        except subprocess.TimeoutExpired:  # still running at its moment: kill it
            kill_group(proc)
            kills += 1
            moments.append(round(delay, 1))
            continue
        assert proc.returncode == 0, output(proc)[-3000:]
        break  # finished before its kill
    parents = _parents(tmp_path)
    exp = load_experiment(tmp_path / "exp.yaml")
    if parents:
        run_id = parents[0].info.run_id
        run_search(exp, resume=run_id, storage_path=str(tmp_path / "nas_runs"))
    else:  # every kill came before the parent run existed
        run_id = run_search(exp, storage_path=str(tmp_path / "nas_runs")).run_id
    figures = check_invariants(tmp_path, run_id, planned=TRIALS)
    with capsys.disabled():
        print(f"\ncrash test seed {seed}: {kills} kills at {moments} s after start; {figures['trials']} trials, "
              f"{figures['interrupted']} interrupted, front {figures['front']} ({time.strftime('%H:%M:%S')})")
