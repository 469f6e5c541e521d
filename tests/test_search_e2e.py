"""End to end: a real search with real Ray (local cluster), real MLflow (sqlite in a temp dir), real Optuna.

Checks the parent run and its child runs, Pareto tags and artifacts, that a constraint-violating architecture is
never trained, and the ``load_model`` round trip (re-evaluated accuracy equals the logged one).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from conftest import write_experiment
from mlflow import MlflowClient

import nas
from nas.cli import main
from nas.config.experiment import load_experiment
from nas.data import load_data
from nas.search.api import run_search
from nas.training.train import evaluate

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

MFLOPS_MAX = 0.1  # the tiny space spans ~0.01-0.6 MFLOPs, so some samples break this and must be rejected


def _experiment(tmp_path: Path, **search) -> Path:
    return write_experiment(
        tmp_path, "e2e", constraints={"mflops": {"max": MFLOPS_MAX}}, training={"epochs": 3, "lr": 0.01},
        objectives=[{"name": "val_accuracy", "direction": "maximize"}, {"name": "mflops", "direction": "minimize"}],
        search={"sampler": "nsga2", "trials": 6, "concurrency": 2, "seed": 3, **search})


@pytest.fixture(scope="module")
def search(tmp_path_factory, ray_cluster):
    tmp = tmp_path_factory.mktemp("e2e")
    exp = load_experiment(_experiment(tmp))
    result = run_search(exp, storage_path=str(tmp / "ray"))
    return exp, result


def test_parent_and_child_runs(search):
    exp, result = search
    client = MlflowClient(exp.tracking.uri)
    parent = client.get_run(result.run_id)
    assert parent.info.status == "FINISHED"
    assert parent.data.tags["nas.kind"] == "search"
    assert len(parent.data.tags["nas.space_hash"]) == 16
    assert parent.data.params["sampler"] == "nsga2"
    assert json.loads(parent.data.tags["nas.versions"])["optuna"]
    children = client.search_runs([parent.info.experiment_id], f"tags.`mlflow.parentRunId` = '{result.run_id}'")
    assert len(children) == 6
    for child in children:
        assert child.info.status == "FINISHED", child.data.tags.get("nas.failure_reason")
        assert 0.0 <= child.data.metrics["val_accuracy"] <= 1.0
        assert child.data.metrics["mflops"] > 0 and child.data.metrics["params"] > 0
        assert "train_seconds" in child.data.metrics
        assert any(k.startswith("arch/") for k in child.data.params)
        history = client.get_metric_history(child.info.run_id, "epoch/val_accuracy")
        assert [m.step for m in sorted(history, key=lambda m: m.step)] == [1, 2, 3]
    assert parent.data.metrics["trials_finished"] == 6
    assert parent.data.metrics["hypervolume"] > 0


def test_pareto_tags_and_artifacts(search):
    exp, result = search
    client = MlflowClient(exp.tracking.uri)
    names = {a.path for a in client.list_artifacts(result.run_id)}
    assert {"pareto.csv", "pareto.png", "experiment.yaml", "space.yaml"} <= names
    pareto = client.search_runs(
        [client.get_run(result.run_id).info.experiment_id],
        f"tags.`nas.search_run_id` = '{result.run_id}' and tags.`nas.pareto` = 'true'",
    )
    assert len(pareto) == len(result.pareto) >= 1
    tagged = client.get_run(result.run_id).data.tags["nas.pareto_trials"].split(",")
    assert sorted(int(t) for t in tagged) == sorted(r.number for r in result.pareto)
    for run in pareto:
        assert "nas_model" in {a.path for a in client.list_artifacts(run.info.run_id)}
    csv_path = client.download_artifacts(result.run_id, "pareto.csv")
    assert len(Path(csv_path).read_text().strip().splitlines()) == len(result.pareto) + 1


def test_constraint_violating_candidates_are_never_trained(search):
    exp, result = search
    client = MlflowClient(exp.tracking.uri)
    parent = client.get_run(result.run_id)
    assert parent.data.metrics["rejected_candidates"] >= 1, "the space should produce some too-large candidates"
    assert parent.data.metrics["rejected_saved_tflops"] > 0
    trained = client.search_runs([parent.info.experiment_id], f"tags.`nas.search_run_id` = '{result.run_id}'")
    assert all(r.data.metrics["mflops"] <= MFLOPS_MAX for r in trained)
    # every trained trial number is a feasible Optuna trial; rejected ones never reached Ray
    trained_numbers = {int(r.data.tags["nas.trial_number"]) for r in trained}
    assert all(rec.profile["mflops"] <= MFLOPS_MAX for rec in result.records)
    assert trained_numbers == {rec.number for rec in result.records}


def test_pareto_models_are_registered(search):
    exp, result = search
    client = MlflowClient(exp.tracking.uri)
    versions = client.search_model_versions("name = 'nas-e2e'")
    assert sorted(v.run_id for v in versions) == sorted(r.run_id for r in result.pareto)


def test_cli_pareto_and_export(search, tmp_path, capsys):
    exp, result = search
    assert main(["pareto", result.run_id, "--tracking-uri", exp.tracking.uri, "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [r["trial"] for r in rows] == [r.number for r in result.pareto]
    cheapest = min(r.metrics["mflops"] for r in result.pareto)
    out = tmp_path / "model.pt"
    assert main(["export", result.run_id, "--tracking-uri", exp.tracking.uri, "--where", f"mflops<={cheapest}",
                 "--best", "val_accuracy", "-o", str(out)]) == 0
    saved = torch.load(out, weights_only=False)
    assert saved["arch"]["metrics"]["mflops"] == pytest.approx(cheapest)
    assert main(["export", result.run_id, "--tracking-uri", exp.tracking.uri, "--where", "mflops<=0", "-o",
                 str(out)]) == 2
    assert "no Pareto model" in capsys.readouterr().err
    assert main(["pareto", "0123456789abcdef", "--tracking-uri", exp.tracking.uri]) == 2
    assert "no search run id starts with '0123456789abcdef'" in capsys.readouterr().err


def test_load_model_round_trip(search):
    exp, result = search
    model = nas.load_model(result.run_id, rank=0, tracking_uri=exp.tracking.uri)
    best = max(result.pareto, key=lambda r: r.metrics["val_accuracy"])
    assert model.nas_arch["trial"] == best.number
    splits = load_data("digits", seed=0)
    acc, _ = evaluate(model, splits.val)
    assert acc == pytest.approx(best.metrics["val_accuracy"], abs=1e-6)


def test_report_renders_and_is_logged(search, tmp_path, capsys):
    exp, result = search
    assert main(["report", result.run_id, "--tracking-uri", exp.tracking.uri, "-o", str(tmp_path / "rep")]) == 0
    html = (tmp_path / "rep" / "report.html").read_text()
    for section in ("Pareto", "ypervolume", "bill", "reak-even", "caling"):
        assert section in html, section
    assert html.count("<img") >= 3
    assert "logreg" in html  # the classical baselines are on the Pareto plot
    client = MlflowClient(exp.tracking.uri)
    logged = {a.path for a in client.list_artifacts(result.run_id, "report")}
    assert "report/report.html" in logged


def test_dry_run_forecast_brackets_the_real_compute(search, capsys):
    exp, result = search
    assert main(["search", exp.source, "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "Forecast:" in out and "kWh" in out and "CO2" in out
    # "compute: median X FLOPs, range LOW to HIGH": the real search's training FLOPs land inside the range
    line = next(ln for ln in out.splitlines() if ln.strip().startswith("compute:"))
    low, high = (float(x) for x in line.split("range ")[1].split(" (")[0].replace(" FLOPs", "").split(" to "))
    assert low <= result.bill.train_flops <= high, (low, result.bill.train_flops, high)
