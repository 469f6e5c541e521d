"""Two searches at the same time against one MLflow store and one Optuna storage must not corrupt each other."""

from __future__ import annotations

import shutil
import subprocess
import sys

import optuna
import pytest
import yaml
from conftest import FIXTURES
from mlflow import MlflowClient

from nas.search.controller import open_storage

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


def test_two_searches_share_stores(tmp_path):
    shutil.copy(FIXTURES / "tiny_cnn.yaml", tmp_path / "space.yaml")
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    procs = []
    for i, trials in enumerate((4, 5)):
        doc = {"name": f"conc{i}", "space": "space.yaml", "training": {"epochs": 2, "lr": 0.01},
               "search": {"sampler": "random", "trials": trials, "concurrency": 1, "seed": i},
               "tracking": {"uri": uri, "experiment": "shared"}}
        (tmp_path / f"exp{i}.yaml").write_text(yaml.safe_dump(doc))
        procs.append(subprocess.Popen([sys.executable, "-m", "nas.cli", "search", f"exp{i}.yaml", "--quiet"],
                                      cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True))
    outputs = [p.communicate(timeout=400)[0] for p in procs]
    for p, out in zip(procs, outputs, strict=True):
        assert p.returncode == 0, out[-3000:]
    run_ids = [next(line.split()[1] for line in out.splitlines() if line.startswith("run_id:")) for out in outputs]

    client = MlflowClient(uri)
    exp_id = client.get_experiment_by_name("shared").experiment_id
    parents = client.search_runs([exp_id], "tags.`nas.kind` = 'search'")
    assert sorted(p.info.run_id for p in parents) == sorted(run_ids)
    for run_id, trials in zip(run_ids, (4, 5), strict=True):
        assert client.get_run(run_id).info.status == "FINISHED"
        children = client.search_runs([exp_id], f"tags.`nas.search_run_id` = '{run_id}'")
        assert len(children) == trials
        assert all(c.data.tags["mlflow.parentRunId"] == run_id for c in children)
        storage = open_storage(str(tmp_path / "nas_studies" / f"{run_id}.journal"))  # one journal per search
        study = optuna.load_study(study_name=f"nas-{run_id}", storage=storage)
        trained = [t for t in study.trials if t.user_attrs.get("nas_status") != "repeat"]  # repeats never train
        assert len(trained) == trials
        assert {t.number for t in trained} == {int(c.data.tags["nas.trial_number"]) for c in children}
