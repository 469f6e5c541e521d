"""The one-transaction child-run writer for sqlite stores leaves exactly what the client's three requests leave.

A record is logged twice in one store, once through ``_OneTransactionRuns`` and once through the MLflow client
(``create_run`` + ``log_batch`` + ``set_terminated``); every table that holds a ``run_uuid`` must then hold the same
rows for both runs (run ids aside), and MLflow's own readers must see the same run. This catches a future MLflow
that writes somewhere else on the way.
"""

from __future__ import annotations

import math
import os
import sqlite3
import time
from pathlib import Path

import pytest
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException

from nas.tracking.tracker import MODEL_DIR, SearchTracker, trial_runs
from nas.training.records import TrialRecord


def _record(number: int, **over) -> TrialRecord:
    now = 1_700_000_000.0 + number
    rec = TrialRecord(
        number=number, params={"width": 64, "depth": 2, "activation": "relu", "dropout": 0.125, "sizes": [1, 2]},
        training={"epochs": 2, "optimizer": "adam", "lr": 0.003, "max_seconds": None},
        profile={"mflops": 0.0123, "params": 4321, "size_mb": 0.0165},
        status="complete",
        metrics={"mflops": 0.0123, "params": 4321, "size_mb": 0.0165, "val_accuracy": 0.9, "train_seconds": 0.5,
                 "latency_ms": float("nan"), "energy_j": float("inf"), "flag": True},
        history=[{"epoch": 1, "val_accuracy": 0.8, "val_loss": 0.5}, {"epoch": 2, "val_accuracy": 0.9, "val_loss": 0.4},
                 {"epoch": 2, "val_accuracy": 0.9, "val_loss": 0.4}],  # a repeated epoch: duplicates dropped
        start_time=now - 3.0, end_time=now, checkpoint_dir="/tmp/ckpt",
    )
    for k, v in over.items():
        setattr(rec, k, v)
    return rec


@pytest.fixture
def tracker(tmp_path: Path) -> SearchTracker:
    t = SearchTracker(f"sqlite:///{tmp_path / 'mlflow.db'}", "fast")
    t.start("parent", {"a": 1}, {"b": 2}, {})
    assert t._runs is not None, "an sqlite store gets the one-transaction writer"
    return t


def _log_through_client(tracker: SearchTracker, rec: TrialRecord) -> str:
    fast, tracker._runs = tracker._runs, None
    try:
        return tracker.log_trial(rec)
    finally:
        tracker._runs = fast


def _rows(db: Path, run_id: str) -> dict[str, list[tuple]]:
    """Every row of every table with a run_uuid column that belongs to ``run_id``, the run id blanked out."""
    con = sqlite3.connect(db)
    try:
        tables = [r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        out = {}
        for table in tables:
            cols = [r[1] for r in con.execute(f"PRAGMA table_info({table})")]
            if "run_uuid" not in cols:
                continue
            rows = con.execute(f"SELECT * FROM {table} WHERE run_uuid = ?", (run_id,)).fetchall()
            out[table] = sorted(tuple("<id>" if v == run_id else v for v in row) for row in rows)
        return out
    finally:
        con.close()


@pytest.mark.parametrize("status", ["complete", "failed"])
def test_same_rows_as_the_client_path(tracker: SearchTracker, tmp_path: Path, status: str) -> None:
    fast_id = tracker.log_trial(_record(1, status=status, reason="boom" if status == "failed" else ""))
    slow_id = _log_through_client(tracker, _record(1, status=status, reason="boom" if status == "failed" else ""))
    fast_rows, slow_rows = _rows(tmp_path / "mlflow.db", fast_id), _rows(tmp_path / "mlflow.db", slow_id)
    for rows in (fast_rows, slow_rows):  # artifact URIs differ by run id only
        rows["runs"] = [tuple(str(v).replace(fast_id, "<id>").replace(slow_id, "<id>") for v in r) for r in rows["runs"]]
    assert fast_rows == slow_rows
    assert fast_rows["metrics"] and fast_rows["params"] and fast_rows["latest_metrics"] and fast_rows["tags"]


def test_mlflow_reads_the_same_run(tracker: SearchTracker) -> None:
    fast_id = tracker.log_trial(_record(2))
    slow_id = _log_through_client(tracker, _record(2))
    client = MlflowClient(tracker.uri)
    fast, slow = client.get_run(fast_id), client.get_run(slow_id)
    for field in ("status", "start_time", "end_time", "lifecycle_stage", "user_id", "run_name", "experiment_id"):
        assert getattr(fast.info, field) == getattr(slow.info, field), field
    assert fast.info.status == "FINISHED" and fast.info.run_name == "trial-0002"
    assert fast.info.artifact_uri == slow.info.artifact_uri.replace(slow_id, fast_id)
    assert fast.data.params == slow.data.params and fast.data.params["arch/sizes"] == "[1, 2]"
    assert fast.data.tags == slow.data.tags and fast.data.tags["mlflow.parentRunId"] == tracker.run_id
    assert fast.data.metrics.keys() == slow.data.metrics.keys()
    assert math.isnan(fast.data.metrics["latency_ms"]) and fast.data.metrics["energy_j"] > 1e300
    assert "flag" not in fast.data.metrics
    for key in fast.data.metrics:
        hist = [(m.step, m.timestamp, m.value) for m in client.get_metric_history(fast_id, key)]
        assert str(sorted(hist)) == str(sorted((m.step, m.timestamp, m.value)
                                               for m in client.get_metric_history(slow_id, key))), key
    assert [m.step for m in client.get_metric_history(fast_id, "epoch/val_accuracy")] == [1, 2]
    found = {r.info.run_id for r in trial_runs(client, client.get_run(tracker.run_id))}
    assert {fast_id, slow_id} <= found


def test_resume_sees_fast_runs_as_logged(tracker: SearchTracker) -> None:
    ids = {n: tracker.log_trial(_record(n)) for n in (3, 4)}
    assert tracker.logged_trials() == ids


def test_deleted_child_runs_are_not_listed(tracker: SearchTracker) -> None:
    ids = [tracker.log_trial(_record(n)) for n in (8, 9)]
    client = MlflowClient(tracker.uri)
    client.delete_run(ids[0])
    assert [r.info.run_id for r in trial_runs(client, client.get_run(tracker.run_id))] == [ids[1]]
    assert tracker.logged_trials() == {9: ids[1]}  # a resume writes trial 8 again


def test_log_model_on_a_fast_run(tracker: SearchTracker, tmp_path: Path) -> None:
    import torch

    from nas.builders import build
    from nas.space import load_space
    from nas.tracking.models import write_model_dir

    space = load_space(Path(__file__).resolve().parent.parent / "search_spaces" / "mlp.yaml")
    params = {"width": 16, "depth": 1, "activation": "relu", "norm": "none", "dropout": 0.0}
    ckpt = tmp_path / "ckpt"
    ckpt.mkdir()
    torch.save(build(space, params, input_shape=(1, 8, 8), num_classes=10, seed=0).state_dict(), ckpt / "weights.pt")
    data = {"name": "digits", "seed": 0, "val_fraction": 0.2, "test_fraction": 0.2}
    client = MlflowClient(tracker.uri)
    versions = []
    for n in (5, 6):
        rec = _record(n, params=params, checkpoint_dir=str(ckpt))
        tracker.log_trial(rec)
        tracker.mark_pareto(rec, 0)
        model_dir = tmp_path / f"model{n}"
        model_dir.mkdir()
        write_model_dir(model_dir, rec, space, (1, 8, 8), 10, 0, data)
        versions.append(tracker.log_model(rec, str(model_dir), "nas-fast"))
        listed = {a.path for a in client.list_artifacts(rec.run_id, MODEL_DIR)}
        assert {f"{MODEL_DIR}/arch.json", f"{MODEL_DIR}/weights.pt", f"{MODEL_DIR}/space.yaml"} <= listed
        mv = client.get_model_version("nas-fast", versions[-1])
        assert mv.source == client.get_run(rec.run_id).data.tags["nas.model_uri"]  # the MLflow model
        assert mv.run_id == rec.run_id
    assert [str(v) for v in versions] == ["1", "2"]
    assert client.get_model_version_by_alias("nas-fast", "best").version == versions[-1]


def test_parent_run_batches_leave_the_client_rows(tracker: SearchTracker, tmp_path: Path, monkeypatch) -> None:
    """Progress metrics and tags on a run (``_batch`` without params) go in one transaction on sqlite: the same
    rows as the client's ``log_batch``, latest metrics included."""
    monkeypatch.setattr("nas.tracking.tracker._now_ms", lambda: 1_700_000_000_000)  # the same timestamps
    ids = []
    for fast in (True, False):
        rid = MlflowClient(tracker.uri).create_run(tracker.experiment_id, run_name="r").info.run_id
        saved = tracker._runs
        tracker._runs = saved if fast else None
        try:
            for step in (1, 2, 2):
                tracker._batch(rid, metrics={"hypervolume": 0.5 * step, "trials_finished": step, "nan": math.nan},
                               step=step)
            tracker._batch(rid, tags={"nas.pareto_trials": "1,2", "nas.repeats": 0})
            tracker._batch(rid, tags={"nas.pareto_trials": "1,2,5"})  # replaced, not added
        finally:
            tracker._runs = saved
        ids.append(rid)
    fast_rows, slow_rows = (_rows(tmp_path / "mlflow.db", rid) for rid in ids)
    for rows in (fast_rows, slow_rows):
        rows.pop("runs")  # created alike; artifact URIs differ by run id only
    assert fast_rows == slow_rows
    assert len(fast_rows["metrics"]) == 6 and len(fast_rows["latest_metrics"]) == 3
    assert [r for r in fast_rows["tags"] if "nas.pareto_trials" in r] == [("nas.pareto_trials", "1,2,5", "<id>")]


def test_deleted_experiment_is_refused(tracker: SearchTracker) -> None:
    MlflowClient(tracker.uri).delete_experiment(tracker.experiment_id)
    with pytest.raises(MlflowException, match="active"):
        tracker.log_trial(_record(7))


def test_one_trial_is_cheap(tracker: SearchTracker) -> None:
    """Loose guard (measured ~2 ms here against ~17 ms through the client): well under the client's cost."""
    tracker.log_trial(_record(8))
    t0 = time.perf_counter()
    for n in range(9, 19):
        tracker.log_trial(_record(n))
    fast = (time.perf_counter() - t0) / 10
    t0 = time.perf_counter()
    for n in range(19, 29):
        _log_through_client(tracker, _record(n))
    slow = (time.perf_counter() - t0) / 10
    assert fast < slow / 2, (fast, slow)


def test_deferred_calls_wait_their_delay_in_order_and_flush_hurries_them(tmp_path: Path) -> None:
    t = SearchTracker(f"sqlite:///{tmp_path / 'mlflow.db'}", "delay", write_delay_s=0.2)
    ran: list[tuple[int, float]] = []
    t0 = time.monotonic()
    for i in range(3):
        t.defer(lambda i=i: ran.append((i, time.monotonic() - t0)))
    time.sleep(0.3)
    assert [i for i, _ in ran] == [0, 1, 2] and all(dt >= 0.2 for _, dt in ran)

    t.write_delay_s = 60.0  # flush must not wait for the delay
    t.defer(lambda: ran.append((3, time.monotonic() - t0)))
    t1 = time.monotonic()
    t.flush()
    assert ran[-1][0] == 3 and time.monotonic() - t1 < 5.0

    def boom() -> None:
        raise ValueError("store down")

    t.defer(boom)
    with pytest.raises(ValueError, match="store down"):
        t.flush()
    t.write_delay_s = 0.2  # after a flush the delay applies again
    t1 = time.monotonic()
    t.defer(lambda: ran.append((4, time.monotonic() - t1)))
    t.flush()
    t2 = time.monotonic()
    t.defer(lambda: ran.append((5, time.monotonic() - t2)))
    time.sleep(0.05)
    assert ran[-1][0] == 4
    t._writer.shutdown(wait=True)
    assert ran[-1][0] == 5 and ran[-1][1] >= 0.2


def test_fast_path_only_for_the_schema_it_writes(monkeypatch):
    from mlflow.store.tracking.dbmodels.models import SqlRun

    from nas.tracking import tracker as tracking

    assert tracking._schema_as_written()
    monkeypatch.setitem(tracking._WRITTEN_COLUMNS, SqlRun, tracking._WRITTEN_COLUMNS[SqlRun] - {"user_id"})
    assert not tracking._schema_as_written()  # an MLflow with other columns falls back to the client path


def test_logging_a_model_shows_no_download_bars_and_keeps_the_users_setting(monkeypatch):
    """MLflow copies a model's extra files through downloads with progress bars (a few stderr lines per Pareto
    model at the end of each search): off while nas logs a model, unless the user set the variable."""
    from mlflow.environment_variables import MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR as BARS

    from nas.tracking.tracker import _no_progress_bars

    monkeypatch.delenv(BARS.name, raising=False)
    with _no_progress_bars():
        assert BARS.get() is False
    assert BARS.name not in os.environ
    monkeypatch.setenv(BARS.name, "true")
    with _no_progress_bars():
        assert BARS.get() is True
    assert os.environ[BARS.name] == "true"
