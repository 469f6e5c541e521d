"""No silent failure (issue 12): each case a user hit, through the `nas` command in-process, with its exit code and
the message it must show. Real Ray, MLflow (sqlite in a temp dir) and Optuna where a search runs."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from nas.cli import main

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

BUILDER = '''\
from torch import nn


def tabular_net(*, input_shape, num_classes, width: int = 16, depth: int = 1):
    """An MLP over a feature vector: `depth` hidden layers of `width` units."""
    layers, n = [], input_shape[0]
    for _ in range(depth):
        layers += [nn.Linear(n, width), nn.ReLU()]
        n = width
    layers.append(nn.Linear(n, num_classes))
    return nn.Sequential(*layers)


def returns_none(*, input_shape, num_classes, width: int = 16, depth: int = 1):
    nn.Linear(input_shape[0], width)


def bad_signature(width, depth):
    return nn.Linear(width, depth)
'''


def write_csv(path: Path, n: int = 300, seed: int = 0) -> None:
    """A generated two-class table with raw (unscaled, offset) features and string labels."""
    from sklearn.datasets import make_classification

    x, y = make_classification(n_samples=n, n_features=6, n_informative=4, random_state=seed)
    x = x * np.array([1, 10, 100, 0.1, 5, 1000]) + np.array([0, 5, -50, 1, 0, 200])
    frame = pd.DataFrame(x, columns=[f"f{i}" for i in range(6)])
    frame["label"] = np.where(y == 1, "yes", "no")
    frame.to_csv(path, index=False)


def problem(root: Path, *, builder: str = "mynet:tabular_net", training: dict | None = None,
            space: dict | None = None, data: dict | None = None, trials: int = 2, search: dict | None = None) -> Path:
    """A user's own problem folder: data.csv, mynet.py, space.yaml and experiment.yaml side by side (relative
    paths); returns the experiment file."""
    root.mkdir(parents=True, exist_ok=True)
    write_csv(root / "data.csv")
    (root / "mynet.py").write_text(BUILDER)
    (root / "space.yaml").write_text(yaml.safe_dump(space or {
        "builder": builder,
        "params": {"width": {"type": "categorical", "choices": [8, 16]}, "depth": {"type": "int", "low": 1, "high": 2}},
    }))
    (root / "experiment.yaml").write_text(yaml.safe_dump({
        "name": "own-problem", "space": "space.yaml",
        "data": data or {"name": "csv", "batch_size": 32, "options": {"path": "data.csv", "label_column": "label"}},
        "objectives": [{"name": "val_accuracy", "direction": "maximize"}, {"name": "params", "direction": "minimize"}],
        "training": {"epochs": 2, "lr": 0.01, **(training or {})},
        "search": {"sampler": "random", "trials": trials, "concurrency": 1, "seed": 0, **(search or {})},
        "tracking": {"experiment": "own-problem"},
    }))
    return root / "experiment.yaml"


def search(exp: Path, tmp_path: Path, *extra: str) -> list[str]:
    return ["search", str(exp), "--quiet", "--tracking-uri", f"sqlite:///{tmp_path / 'mlflow.db'}", *extra]


def test_relative_csv_and_builder_beside_the_experiment(tmp_path, ray_cluster, capsys, monkeypatch):
    exp = problem(tmp_path / "mine")
    monkeypatch.chdir(tmp_path / "mine")  # as the user ran it: the paths are relative to here, not to the workers
    rc = main(search(Path("experiment.yaml"), tmp_path))
    out, err = capsys.readouterr()
    assert rc == 0, err
    assert "Pareto set (" in out and "failed" not in err, (out, err)
    assert exp.is_file()


def test_every_trial_failing_exits_non_zero_with_the_reasons_counted(tmp_path, ray_cluster, capsys):
    # the fault fires in trials only (not in the driver's check step): as a failure only workers see would
    space = {"builder": "nas.testing.faults:faulty", "input_shape": [6], "num_classes": 2,
             "params": {"width": {"type": "categorical", "choices": [8, 16]},
                        "mode": {"type": "categorical", "choices": ["raise"]}}}
    rc = main(search(problem(tmp_path / "p", space=space, trials=3), tmp_path))
    out, err = capsys.readouterr()
    assert rc == 1
    assert "3 of 3 trials failed:" in err
    assert re.search(r"3 x \(trials \d+, \d+, \d+\): RuntimeError: injected failure: exception in forward", err), err
    assert "no trial of search" in err and "completed" in err
    assert "Pareto set (" not in out


def test_a_search_stopped_by_max_failures_prints_the_reasons_counted(tmp_path, ray_cluster, capsys):
    space = {"builder": "nas.testing.faults:faulty", "input_shape": [6], "num_classes": 2,
             "params": {"width": {"type": "categorical", "choices": [8]},
                        "mode": {"type": "categorical", "choices": ["raise"]}}}
    rc = main(search(problem(tmp_path / "p", space=space, trials=4, search={"max_failures": 1}), tmp_path))
    err = capsys.readouterr().err
    assert rc == 1
    assert re.search(r"(\d+) of \1 trials failed:\n  \1 x \(trials [\d, ]+\): RuntimeError: injected failure", err), err
    assert "more than search.max_failures (1)" in err


@pytest.mark.parametrize(("case", "message"), [
    ({"training": {"lr": -0.01}}, "experiment.yaml: training/lr: must be a finite number > 0"),
    ({"builder": "nosuchmod:net"}, "no module named 'nosuchmod'"),
    ({"builder": "mynet:tabular_nte"}, "did you mean 'tabular_net'"),
    ({"builder": "mynet:bad_signature"}, "has the wrong signature"),
    ({"builder": "mynet:returns_none"}, "returned NoneType, not a torch.nn.Module"),
    ({"space": {"builder": "cnn", "input_shape": [1, 8, 8], "num_classes": 10, "params": {
        "stem_channels": {"type": "categorical", "choices": [8]},
        "stages": {"repeat": {"low": 1, "high": 1}, "each": {
            "channels": {"type": "categorical", "choices": [0]}, "depth": 1, "stride": 1,
            "block": {"choice": {"conv": {"kernel": 3}}}}}}},
      "data": {"name": "digits"}}, "none of 8 sampled architectures can be built"),
], ids=["negative-lr", "no-module", "typo-function", "wrong-signature", "returns-none", "zero-channels"])
def test_an_error_every_trial_would_hit_is_exit_2_before_any_trial(case, message, tmp_path, ray_cluster, capsys):
    rc = main(search(problem(tmp_path / "p", **case), tmp_path))
    out, err = capsys.readouterr()
    assert rc == 2, (out, err)
    assert err.startswith("error: ") and message in err and "Fix:" in err, err
    assert "Traceback" not in err and err.count("\n") == 1  # one paragraph
    if case.get("builder") == "nosuchmod:net":
        assert "PYTHONPATH" in err
