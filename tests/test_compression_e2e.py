"""Compression end to end (real Ray, MLflow sqlite, Optuna): a search with a `compression:` block measures its
objectives after compression, and `nas compress` adds compressed Pareto models as child runs and merges fronts."""

from __future__ import annotations

import pytest
import yaml
from mlflow import MlflowClient

import nas
from nas.cli import main
from nas.config.experiment import load_experiment
from nas.data import load_data
from nas.search.api import run_search
from nas.training.train import evaluate

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

SPACE = {
    "builder": "mlp", "input_shape": [1, 8, 8], "num_classes": 10,
    "params": {"width": {"type": "categorical", "choices": [32, 64]}, "depth": 1},
    "compression": {"prune": {"type": "categorical", "choices": [0.0, 0.5]},
                    "quantize": {"type": "categorical", "choices": [False, True]}},
}


@pytest.fixture(scope="module")
def searched(tmp_path_factory, ray_cluster):
    tmp = tmp_path_factory.mktemp("compress")
    (tmp / "space.yaml").write_text(yaml.safe_dump(SPACE))
    doc = {"name": "comp", "space": "space.yaml", "training": {"epochs": 3, "lr": 0.01},
           "objectives": [{"name": "val_accuracy", "direction": "maximize"},
                          {"name": "size_mb", "direction": "minimize"}],
           "search": {"sampler": "random", "trials": 6, "concurrency": 2, "seed": 2},
           "tracking": {"uri": f"sqlite:///{tmp / 'mlflow.db'}", "experiment": "comp"}}
    (tmp / "exp.yaml").write_text(yaml.safe_dump(doc))
    exp = load_experiment(tmp / "exp.yaml")
    return exp, run_search(exp, storage_path=str(tmp / "ray"))


def test_compressed_objectives_are_measured_and_logged(searched):
    exp, result = searched
    client = MlflowClient(exp.tracking.uri)
    runs = {int(r.data.tags["nas.trial_number"]): r for r in client.search_runs(
        [client.get_run(result.run_id).info.experiment_id], f"tags.`nas.search_run_id` = '{result.run_id}'")}
    compressed = [r for r in result.records if r.params.get("compression/prune") or r.params.get("compression/quantize")]
    plain = [r for r in result.records if r not in compressed]
    assert compressed and plain, [r.params for r in result.records]
    for rec in compressed:
        m = runs[rec.number].data.metrics
        assert {"uncompressed_val_accuracy", "compress_flops", "size_mb", "effective_mflops"} <= set(m)
        # objectives are the compressed model's: size re-measured, accuracy evaluated (not copied)
        assert m["size_mb"] < rec.profile["size_mb"]
        assert m["val_accuracy"] == pytest.approx(rec.metrics["val_accuracy"])
        if rec.params.get("compression/prune"):
            assert m["mflops"] < rec.profile["mflops"]
    for rec in plain:
        assert "uncompressed_val_accuracy" not in runs[rec.number].data.metrics


def test_compressed_pareto_models_load_and_match(searched):
    exp, result = searched
    splits = load_data("digits", seed=0)
    for rank, rec in enumerate(result.pareto):
        model = nas.load_model(result.run_id, rank=rank, tracking_uri=exp.tracking.uri)
        acc, _ = evaluate(model, splits.val)
        assert acc == pytest.approx(rec.metrics["val_accuracy"], abs=1e-6), rec.params


def test_nas_compress_adds_child_runs_and_merges_the_front(searched, capsys):
    exp, result = searched
    assert main(["compress", result.run_id, "--tracking-uri", exp.tracking.uri, "--method", "lowrank"]) == 0
    out = capsys.readouterr().out
    assert "merged front" in out
    client = MlflowClient(exp.tracking.uri)
    exp_id = client.get_run(result.run_id).info.experiment_id
    uncompressed_pareto = [r for r in result.pareto if r.checkpoint_dir and not (
        r.params.get("compression/prune") or r.params.get("compression/quantize"))]
    comp = client.search_runs([exp_id], f"tags.`nas.search_run_id` = '{result.run_id}' and tags.`nas.kind` = 'compressed'")
    assert len(comp) == len(uncompressed_pareto)
    for run in comp:
        assert run.data.tags["nas.compression_method"] == "lowrank"
        assert run.data.tags["mlflow.parentRunId"] == result.run_id
        assert {"val_accuracy", "mflops", "size_mb", "latency_ms"} <= set(run.data.metrics)
    assert "pareto_compressed.png" in {a.path for a in client.list_artifacts(result.run_id)}
    assert client.get_run(result.run_id).data.metrics["nas_cost/compress_tflops"] >= 0
    merged = nas.pareto_set(result.run_id, exp.tracking.uri, front="merged")
    assert merged
    model = nas.load_model(result.run_id, rank=0, tracking_uri=exp.tracking.uri, front="merged")
    acc, _ = evaluate(model, load_data("digits", seed=0).val)
    assert acc == pytest.approx(merged[0].metrics["val_accuracy"], abs=1e-6)
