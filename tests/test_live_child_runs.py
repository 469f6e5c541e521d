"""A trial's child run exists from its start (RUNNING) with its epochs arriving live, and is completed in place
(real MLflow sqlite store; the trial records are plain values)."""

from __future__ import annotations

import time

import pytest
from mlflow import MlflowClient

from nas.tracking.tracker import SearchTracker, trial_runs
from nas.training.records import TrialRecord


@pytest.mark.parametrize("path", ["one-transaction", "client"])
def test_child_run_is_running_from_the_start_and_completed_in_place(path, tmp_path):
    tracker = SearchTracker(f"sqlite:///{tmp_path / 'mlflow.db'}", "live", write_delay_s=0.0)
    if path == "client":
        tracker._runs = None  # the path every non-sqlite store takes
    tracker.start("search", params={}, tags={}, texts={})
    client = MlflowClient(tracker.uri)
    rec = TrialRecord(number=4, params={"width": 8}, training={"lr": 0.01}, profile={"mflops": 0.5},
                      start_time=time.time())
    rid = tracker.start_trial(rec)
    run = client.get_run(rid)
    assert run.info.status == "RUNNING" and run.data.params["arch/width"] == "8"
    assert run.data.tags["mlflow.parentRunId"] == tracker.run_id and run.data.tags["nas.status"] == "running"
    for epoch, acc in ((1, 0.5), (2, 0.7)):
        tracker.log_epoch(4, {"epoch": epoch, "val_accuracy": acc})
        history = client.get_metric_history(rid, "epoch/val_accuracy")
        assert [(m.step, m.value) for m in history][-1] == (epoch, acc)  # visible while the trial runs
    rec.history = [{"epoch": 1, "val_accuracy": 0.5}, {"epoch": 2, "val_accuracy": 0.7}]
    rec.status, rec.end_time, rec.metrics = "complete", time.time(), {"val_accuracy": 0.7, "mflops": 0.5}
    assert tracker.log_trial(rec) == rid
    tracker.finish()
    run = client.get_run(rid)
    assert run.info.status == "FINISHED" and run.data.metrics["val_accuracy"] == 0.7
    assert run.data.tags["nas.status"] == "complete" and run.info.end_time >= run.info.start_time
    assert run.data.metrics["epoch/val_accuracy"] == 0.7  # the latest epoch's value
    assert len(client.get_metric_history(rid, "epoch/val_accuracy")) == 2  # not logged twice
    assert [r.info.run_id for r in trial_runs(client, client.get_run(tracker.run_id))] == [rid]


@pytest.mark.parametrize("writer", ["one transaction", "client"])
def test_a_dead_drivers_live_run_is_completed_not_written_twice(tmp_path, writer: str) -> None:
    """A trial running when its driver died has a RUNNING child run with the epochs logged so far. The next driver
    adopts it: it ends that run with the record's status, adds the epochs it lacks, and never writes a second run
    nor deletes one (seen before: the live run deleted, softly, and a new one written; every reader listed both)."""
    from mlflow.entities import ViewType

    tracker = SearchTracker(f"sqlite:///{tmp_path / 'mlflow.db'}", "live", write_delay_s=0.0)
    tracker.start("search", params={}, tags={}, texts={})
    live = TrialRecord(number=7, params={"width": 8}, training={"lr": 0.01}, profile={"mflops": 0.5},
                       start_time=time.time())
    rid = tracker.start_trial(live)
    tracker.log_epoch(7, {"epoch": 1, "val_accuracy": 0.8, "val_loss": 0.5})
    # the next driver, on the same parent run
    again = SearchTracker(tracker.uri, "live")
    again.run_id = tracker.run_id
    if writer == "client":
        again._runs = None
    assert again.logged_trials() == {}
    rec = TrialRecord(number=7, params={"width": 8}, training={"lr": 0.01}, profile={"mflops": 0.5},
                      status="interrupted", reason="interrupted: the driver stopped",
                      metrics={"mflops": 0.5, "val_accuracy": 0.9}, start_time=live.start_time, end_time=time.time(),
                      history=[{"epoch": 1, "val_accuracy": 0.8, "val_loss": 0.5},
                               {"epoch": 2, "val_accuracy": 0.9, "val_loss": 0.4}])
    assert again.log_trial(rec) == rid
    client = MlflowClient(tracker.uri)
    parent = client.get_run(tracker.run_id)
    assert [r.info.run_id for r in trial_runs(client, parent)] == [rid]
    every = client.search_runs([parent.info.experiment_id], "tags.`nas.kind` = 'trial'", ViewType.ALL)
    assert [r.info.run_id for r in every] == [rid], "a run deleted and written again"
    run = client.get_run(rid)
    assert run.info.status == "KILLED" and run.data.tags["nas.status"] == "interrupted"
    assert sorted(m.step for m in client.get_metric_history(rid, "epoch/val_accuracy")) == [1, 2]
    assert run.data.metrics["val_accuracy"] == 0.9
    assert again.logged_trials() == {7: rid}


@pytest.mark.parametrize("lasts_s", [0.0, 0.6])
def test_a_live_run_appears_live_after_s_into_a_trial_and_a_shorter_trial_is_written_once(tmp_path, lasts_s):
    """Deferred as the search loop defers it, the live run is created ``live_after_s`` after the trial started:
    a trial still running then is shown RUNNING with its epochs; one that ended before gets no live run, and its
    one run (epochs included) is written whole at its end, one write instead of three."""
    from mlflow.entities import ViewType

    tracker = SearchTracker(f"sqlite:///{tmp_path / 'mlflow.db'}", "live", write_delay_s=0.0, live_after_s=0.3)
    tracker.start("search", params={}, tags={}, texts={})
    client = MlflowClient(tracker.uri)
    rec = TrialRecord(number=2, params={"width": 8}, training={"lr": 0.01}, profile={"mflops": 0.5},
                      start_time=time.time())
    tracker.defer(tracker.start_trial, rec)
    rec.history = [{"epoch": 1, "val_accuracy": 0.6}]
    tracker.defer(tracker.log_epoch, 2, dict(rec.history[0]))
    time.sleep(lasts_s)
    parent = client.get_run(tracker.run_id)
    running = [r.info.status for r in trial_runs(client, parent)]
    assert running == (["RUNNING"] if lasts_s > 0.3 else [])
    rec.status, rec.end_time, rec.metrics = "complete", time.time(), {"val_accuracy": 0.6, "mflops": 0.5}
    tracker.defer(tracker.log_trial, rec)
    tracker.finish()
    every = client.search_runs([parent.info.experiment_id], "tags.`nas.kind` = 'trial'", ViewType.ALL)
    assert [r.info.status for r in every] == ["FINISHED"]  # one run, never a second nor a deleted one
    assert [(m.step, m.value) for m in client.get_metric_history(every[0].info.run_id, "epoch/val_accuracy")] == [
        (1, 0.6)]
