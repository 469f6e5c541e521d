"""End to end: a one-shot search with real Ray, MLflow (sqlite in a temp dir) and Optuna.

The supernet is deliberately left untrained (``one_shot.epochs: 0``), so its ranking says nothing about the
stand-alone accuracies: the self-check must notice (Kendall's tau below the threshold), say so on the parent run
and spend the rest on the multi-fidelity search (Pareto-ASHA trials in the same study and run).
"""

from __future__ import annotations

import csv
import io
import json
import math
from pathlib import Path

import pytest
from conftest import write_experiment
from mlflow import MlflowClient

from nas.config.experiment import load_experiment
from nas.errors import ConfigError
from nas.search.api import SearchInterruptedError, run_search
from nas.search.oneshot.run import TAU_METRIC
from nas.tracking.tracker import trial_runs

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


@pytest.fixture(scope="module")
def untrained(tmp_path_factory, ray_cluster):
    tmp = tmp_path_factory.mktemp("oneshot")
    exp = load_experiment(write_experiment(
        tmp, "oneshot", training={"epochs": 3, "lr": 0.01},
        search={"sampler": "nsga2", "trials": 8, "concurrency": 2, "seed": 3, "strategy": "one-shot"},
        one_shot={"epochs": 0, "subnets": 40, "batch": 16, "top_k": 4, "controls": 2, "tau_threshold": 0.5,
                  "fallback_trials": 3, "calibration_batches": 2},
        constraints={"params": {"max": 20000}}))
    return exp, run_search(exp, storage_path=str(tmp / "ray"), register_models=False)


def test_untrained_supernet_falls_back_and_everything_is_recorded(untrained):
    exp, result = untrained
    info = result.one_shot
    assert info is not None and info["scored"] == 40
    tau = info["tau"]
    assert not info["trusted"] and (math.isnan(tau) or tau < 0.5)
    client = MlflowClient(exp.tracking.uri)
    parent = client.get_run(result.run_id)
    assert parent.data.tags["nas.strategy"] == "one-shot"
    assert parent.data.tags["nas.one_shot_trusted"] == "false"
    assert "Pareto-ASHA" in parent.data.tags["nas.one_shot_fallback"]
    if not math.isnan(tau):
        assert parent.data.metrics[TAU_METRIC] == pytest.approx(tau)
    # the scored subnets: one table artifact on the parent, not child runs
    table = Path(client.download_artifacts(result.run_id, "one_shot_subnets.csv"))
    rows = list(csv.DictReader(io.StringIO(table.read_text())))
    assert len(rows) == 40
    scored = [r for r in rows if not r["error"]]
    assert all(float(r["params"]) <= 20000 for r in scored)  # hard constraint honoured while scoring
    assert {r["role"] for r in rows} >= {"top", "control"}
    # stand-alone trainings are child runs: 6 finalists + 3 fallback trials
    children = client.search_runs([parent.info.experiment_id],
                                  filter_string=f"tags.mlflow.parentRunId = '{result.run_id}'", max_results=100)
    assert len(children) == 9 == len(result.records)
    finalists = {json.dumps(json.loads(r["params_json"]), sort_keys=True) for r in rows if r["role"]}
    trained = {json.dumps(r.params, sort_keys=True) for r in result.records}
    assert finalists <= trained
    # billed: the scoring is search compute on top of the trials' training
    trials_flops = sum(r.metrics.get("train_flops", 0.0) for r in result.records)
    assert result.bill is not None and result.bill.train_flops == pytest.approx(trials_flops + info["scoring_flops"])
    assert result.pareto


def test_trained_supernet_is_billed_and_tau_logged(tmp_path, ray_cluster):
    exp = load_experiment(write_experiment(
        tmp_path, "oneshot-trained", training={"epochs": 2, "lr": 0.01},
        search={"sampler": "random", "trials": 4, "concurrency": 2, "seed": 1, "strategy": "one-shot"},
        one_shot={"epochs": 2, "checkpoint_every": 1, "subnets": 20, "batch": 10, "top_k": 3, "controls": 1,
                  "tau_threshold": -1.0, "calibration_batches": 1},
        tracking={"uri": f"sqlite:///{tmp_path / 'mlflow.db'}", "experiment": "oneshot"}))
    result = run_search(exp, storage_path=str(tmp_path / "ray"), register_models=False)
    info = result.one_shot
    assert info["supernet_flops"] > 0 and len(result.records) == 4  # tau >= -1 always: no fallback
    parent = MlflowClient(exp.tracking.uri).get_run(result.run_id)
    assert parent.data.metrics["one_shot_supernet_tflops"] == pytest.approx(info["supernet_flops"] / 1e12)
    assert TAU_METRIC in parent.data.metrics or math.isnan(info["tau"])
    trials_flops = sum(r.metrics.get("train_flops", 0.0) for r in result.records)
    assert result.bill.train_flops == pytest.approx(trials_flops + info["supernet_flops"] + info["scoring_flops"])
    assert Path(parent.data.tags["nas.one_shot_checkpoint"], "supernet.pt").is_file()
    # one engine: the shared finalize (driver sessions, Pareto tags kept equal to the front), and a refused
    # resume leaves the run as it was
    client = MlflowClient(exp.tracking.uri)
    assert json.loads(parent.data.tags["nas.driver_sessions"])[0]["wall_s"] > 0
    pareto = {r.info.run_id for r in trial_runs(client, parent) if r.data.tags.get("nas.pareto") == "true"}
    assert pareto == {r.run_id for r in result.pareto}
    with pytest.raises(ConfigError, match="cannot be resumed"):
        run_search(exp, storage_path=str(tmp_path / "ray"), resume=result.run_id)
    again = client.get_run(result.run_id)
    assert again.info.status == "FINISHED" and again.data.tags == parent.data.tags


def test_a_signal_while_finalists_train_ends_the_one_shot_search_killed_and_recorded(tmp_path, ray_cluster):
    """The one-shot search runs inside the one search session: SIGINT during the stand-alone stage stops it
    gracefully (no new trial, the trials in flight recorded as interrupted, the parent KILLED), as any search."""
    import os
    import signal
    import threading

    exp = load_experiment(write_experiment(
        tmp_path, "oneshot-signal", training={"epochs": 6, "lr": 0.01},
        search={"sampler": "random", "trials": 6, "concurrency": 1, "seed": 2, "strategy": "one-shot"},
        one_shot={"epochs": 0, "subnets": 10, "batch": 10, "top_k": 4, "controls": 0, "tau_threshold": -1.0,
                  "calibration_batches": 1},
        tracking={"uri": f"sqlite:///{tmp_path / 'mlflow.db'}", "experiment": "oneshot"}))

    def on_update(state) -> None:  # the first finalist ended: interrupt, as Ctrl-C would
        if state.done >= 1 and not sent:
            sent.append(True)
            threading.Timer(0.5, os.kill, (os.getpid(), signal.SIGINT)).start()

    sent: list[bool] = []
    with pytest.raises(SearchInterruptedError):
        run_search(exp, storage_path=str(tmp_path / "ray"), register_models=False, on_update=on_update)
    client = MlflowClient(exp.tracking.uri)
    parent = client.search_runs([client.get_experiment_by_name("oneshot").experiment_id],
                                "tags.`nas.kind` = 'search'")[0]
    assert parent.info.status == "KILLED" and parent.data.tags["nas.stop_reason"] == "interrupted"
    statuses = [r.data.tags["nas.status"] for r in trial_runs(client, parent)]
    assert "complete" in statuses and len(statuses) < 4  # stopped before every finalist trained

