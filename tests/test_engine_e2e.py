"""End to end on the real Ray backend (MLflow sqlite in a temp dir, Optuna): the search loop never trains a
known trial twice, and pareto-promote resumes a stopped trial from its rung checkpoint, billed its extra epochs."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import yaml
from conftest import write_experiment
from mlflow import MlflowClient

from nas.config.experiment import load_experiment
from nas.search.api import run_search
from nas.search.controller.repeats import trial_key
from nas.search.loop import RESUMED_FROM
from nas.training.trial import SNAPSHOT_FILE

pytestmark = [pytest.mark.e2e, pytest.mark.slow]
FIXTURES = Path(__file__).resolve().parent / "fixtures"


def _experiment(tmp_path: Path, space: Path, **sections) -> Path:
    return write_experiment(tmp_path, "engine", **{"space": str(space), "training": {"epochs": 4, "lr": 0.01},
                                                   "search": {"sampler": "random", "trials": 8, "concurrency": 1,
                                                              "seed": 2}, **sections})


def test_a_repeated_architecture_is_not_retrained(tmp_path, ray_cluster):
    space = tmp_path / "two.yaml"  # two architectures only: the sampler must repeat itself
    space.write_text(yaml.safe_dump({"builder": "mlp", "input_shape": [1, 8, 8], "num_classes": 10,
                                     "params": {"width": {"type": "categorical", "choices": [16, 32]}, "depth": 1,
                                                "activation": "relu", "norm": "none", "dropout": 0.0}}))
    exp = load_experiment(_experiment(tmp_path, space, search={"sampler": "random", "trials": 4, "seed": 0}))
    result = run_search(exp, storage_path=str(tmp_path / "ray"), register_models=False)
    trained = [r for r in result.records if r.status == "complete"]
    assert len(trained) == 2  # one training per architecture, however often the sampler proposed it
    assert len({trial_key("mlp", r.params, r.training) for r in trained}) == 2
    assert result.state.stop_reason.startswith("the sampler proposed only trials with known results")
    parent = MlflowClient(exp.tracking.uri).get_run(result.run_id)
    assert parent.data.metrics["repeats"] >= 2000 and int(parent.data.tags["nas.repeats"]) >= 2000


def test_pareto_promote_resumes_from_the_rung_checkpoint(tmp_path, ray_cluster):
    exp = load_experiment(_experiment(
        tmp_path, FIXTURES / "tiny_cnn.yaml",
        early_stopping={"method": "pareto-promote", "rungs": [2], "full_share": 0.5, "min_pairs": 100,
                        "promote_after": 0}))
    result = run_search(exp, storage_path=str(tmp_path / "ray"), register_models=False)
    by_number = {r.number: r for r in result.records}
    promoted = [r for r in result.records if r.status == "complete" and RESUMED_FROM in r.metrics]
    assert promoted, [(r.number, r.status, r.reason) for r in result.records]
    for r in promoted:
        stopped = by_number[int(r.metrics[RESUMED_FROM])]
        assert stopped.status == "pruned" and stopped.reason.startswith("pareto-promote: stopped after 2 of 4")
        assert stopped.params == r.params and stopped.training == r.training
        assert Path(stopped.checkpoint_dir, SNAPSHOT_FILE).is_file()
        assert torch.load(Path(stopped.checkpoint_dir, SNAPSHOT_FILE), weights_only=True)["train"]["epoch"] == 2
        # resumed at epoch 3: it ran the 2 epochs past the rung and is billed those only, as many FLOPs as the
        # 2 epochs the stopped trial ran (same architecture, same training set)
        assert [h["epoch"] for h in r.history] == [3.0, 4.0]
        assert r.metrics["epochs_run"] == 2
        assert r.metrics["train_flops"] == pytest.approx(stopped.metrics["train_flops"])
    assert all(r.status in ("pruned", "complete") for r in result.records)
    assert all(RESUMED_FROM in r.metrics for r in result.records if r.status == "complete")  # only promotions
    assert result.pareto and all(RESUMED_FROM in r.metrics for r in result.pareto)
    parent = MlflowClient(exp.tracking.uri).get_run(result.run_id)
    assert parent.data.metrics["trials_promoted"] == len(promoted)
