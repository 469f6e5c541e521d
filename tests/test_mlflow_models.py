"""Pareto models as MLflow models (issue 12): a real trained trial (in-process, no Ray) logged to a real MLflow
sqlite store, loaded back through MLflow's own APIs and through nas.load_model, on raw inputs."""

from __future__ import annotations

import time
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest
import torch
import yaml
from mlflow import MlflowClient

from nas.data.base import split_sizes, stratified_indices
from nas.space import load_space
from nas.tracking.models import load_model, pareto_set, write_model_dir
from nas.tracking.tracker import SearchTracker
from nas.training.records import TrialRecord
from nas.training.trial import TrialSpec, run_trial

ROOT = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.slow


def _csv(path: Path) -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import make_classification

    x, y = make_classification(n_samples=400, n_features=5, n_informative=4, n_redundant=0, random_state=1)
    x = x * np.array([1, 10, 100, 0.1, 1000]) + np.array([0, 5, -50, 1, 200])
    frame = pd.DataFrame(x, columns=[f"f{i}" for i in range(5)])
    frame["label"] = y
    frame.to_csv(path, index=False)
    return x, y


def _logged(tmp_path: Path, data: dict) -> tuple[SearchTracker, TrialRecord, str]:
    """Train one MLP trial in-process, log it as a search's Pareto model, register it; returns the tracker, the
    record and the registered model's name."""
    space = load_space(ROOT / "search_spaces" / "mlp.yaml")
    params = {"width": 32, "depth": 1, "activation": "relu", "norm": "none", "dropout": 0.0}
    spec = TrialSpec(number=3, params=params, space_yaml=Path(space.source).read_text(), space_source=space.source,
                     space_hash=space.hash, data=data, training={"epochs": 4, "lr": 0.01}, seed=0, mflops=0.01)
    _, state, final = run_trial(spec)
    ckpt = tmp_path / "ckpt"
    ckpt.mkdir()
    torch.save(state, ckpt / "weights.pt")
    tracker = SearchTracker(f"sqlite:///{tmp_path / 'mlflow.db'}", "models-test")
    tracker.start("search", params={}, tags={"nas.space_hash": space.hash}, texts={})
    now = time.time()
    rec = TrialRecord(number=3, params=params, training=spec.training, profile={}, status="complete",
                      metrics={**final, "mflops": 0.01, "params": 1000.0}, start_time=now - 1, end_time=now,
                      checkpoint_dir=str(ckpt))
    tracker.log_trial(rec)
    tracker.mark_pareto(rec, 0)
    model_dir = tmp_path / "model"
    model_dir.mkdir()
    from nas.training.trial import cached_splits

    splits = cached_splits(data)
    write_model_dir(model_dir, rec, space, splits.input_shape, splits.num_classes, 0, data)
    version = tracker.log_model(rec, str(model_dir), "nas-models-test")
    tracker.finish()
    assert str(version) == "1"
    return tracker, rec, "nas-models-test"


def _accuracy(logits, y) -> float:
    return float((np.asarray(logits).argmax(axis=1) == np.asarray(y)).mean())


def test_digits_model_takes_raw_pixels_through_mlflow(tmp_path):
    data = {"name": "digits", "seed": 0, "val_fraction": 0.2, "test_fraction": 0.2, "batch_size": 64}
    tracker, rec, name = _logged(tmp_path, data)
    uri = tracker.uri
    assert 0.5 < rec.metrics["test_accuracy"] <= 1.0
    from sklearn.datasets import load_digits

    bunch = load_digits()
    y = bunch.target
    test = stratified_indices(y, split_sizes(len(y), 0.2, 0.2, name="digits"), 0)[2]
    raw = bunch.images[test].astype(np.float32)[:, None]  # pixels 0..16, as sklearn gives them
    mlflow.set_tracking_uri(uri)
    try:
        pyfunc = mlflow.pyfunc.load_model(f"models:/{name}/1")
        assert abs(_accuracy(pyfunc.predict(raw), y[test]) - rec.metrics["test_accuracy"]) <= 0.01
        torch_model = mlflow.pytorch.load_model(f"models:/{name}/1")
        with torch.no_grad():
            assert _accuracy(torch_model(torch.from_numpy(raw)).numpy(), y[test]) == pytest.approx(
                rec.metrics["test_accuracy"], abs=0.01)
    finally:
        mlflow.set_tracking_uri(None)
    # the registered version: description, metrics, tags; the logged model: linked metrics and tags
    client = MlflowClient(uri)
    mv = client.get_model_version(name, "1")
    assert f"trial 3 of nas search {tracker.run_id}" in mv.description and "test_accuracy" in mv.description
    assert mv.tags["nas.search_run_id"] == tracker.run_id and mv.tags["nas.trial_number"] == "3"
    assert float(mv.tags["metric.test_accuracy"]) == pytest.approx(rec.metrics["test_accuracy"], rel=1e-5)
    assert mv.run_id == rec.run_id and mv.source.startswith("models:/m-")
    model = client.get_logged_model(mv.source[len("models:/"):])
    linked = {m.key: m.value for m in model.metrics}
    assert {"val_accuracy", "test_accuracy", "mflops", "params", "latency_ms"} <= set(linked)
    assert model.tags["nas.search_run_id"] == tracker.run_id and model.tags["nas.space_hash"]
    assert model.source_run_id == rec.run_id
    # nas.load_model: from the search's run id and from the registered version, the same weights
    a = load_model(tracker.run_id, tracking_uri=uri)
    b = load_model(f"models:/{name}/1", tracking_uri=uri)
    for (ka, va), (kb, vb) in zip(a.state_dict().items(), b.state_dict().items(), strict=True):
        assert ka == kb and torch.equal(va, vb)
    assert a.nas_arch["preprocessing"] == {"offset": 0.0, "divisor": 16.0}
    entry = pareto_set(tracker.run_id, uri)[0]
    assert entry.row()["test_accuracy"] == pytest.approx(rec.metrics["test_accuracy"])


def test_csv_model_takes_raw_rows_as_a_dataframe(tmp_path):
    x, y = _csv(tmp_path / "table.csv")
    data = {"name": "csv", "seed": 0, "val_fraction": 0.2, "test_fraction": 0.2, "batch_size": 32,
            "options": {"path": str(tmp_path / "table.csv"), "label_column": "label"}}
    tracker, rec, name = _logged(tmp_path, data)
    test = stratified_indices(y, split_sizes(len(y), 0.2, 0.2, name="csv"), 0)[2]
    frame = pd.read_csv(tmp_path / "table.csv").iloc[test]
    mlflow.set_tracking_uri(tracker.uri)
    try:
        pyfunc = mlflow.pyfunc.load_model(f"models:/{name}/1")
        features = frame[[f"f{i}" for i in range(5)]]
        acc = _accuracy(pyfunc.predict(features), frame["label"])
    finally:
        mlflow.set_tracking_uri(None)
    assert acc > 0.7 and abs(acc - rec.metrics["test_accuracy"]) <= 0.01
    assert yaml.safe_load(yaml.safe_dump(pyfunc.metadata.get_input_schema().input_names())) == [f"f{i}" for i in range(5)]
