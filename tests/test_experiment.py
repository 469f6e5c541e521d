"""Experiment files: defaults, overrides, and every refusal naming file, field and fix."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from nas.config.experiment import Constraint, load_experiment, parse_experiment
from nas.errors import ConfigError

ROOT = Path(__file__).resolve().parent.parent
SPACE = str(ROOT / "search_spaces" / "cnn.yaml")


def test_shipped_experiments_load():
    for path in sorted((ROOT / "experiments").glob("*.yaml")):
        exp = load_experiment(path)
        assert Path(exp.space).is_file()
        assert len(exp.objectives) >= 2


def test_minimal_file_gets_defaults():
    exp = parse_experiment({"space": SPACE})
    assert [o.name for o in exp.objectives] == ["val_accuracy", "mflops"]
    assert exp.search.sampler == "nsga2" and exp.data.name == "digits"
    assert exp.tracking.uri == "sqlite:///mlflow.db"


def test_overrides():
    exp = parse_experiment({"space": SPACE}).with_overrides(trials=3, seed=7, tracking_uri="sqlite:///x.db")
    assert (exp.search.trials, exp.search.seed, exp.tracking.uri) == (3, 7, "sqlite:///x.db")


def test_constraint_violation():
    c = Constraint("mflops", max=5.0)
    assert c.violation(4.0) == 0.0 and c.violation(7.5) == 2.5
    assert Constraint("params", min=10.0).violation(4.0) == 6.0


BAD = [
    ({"spaec": SPACE}, "spaec", "did you mean 'space'"),
    ({}, "space", "missing required field"),
    ({"space": "nope.yaml"}, "space", "not found"),
    ({"space": SPACE, "objectives": [{"name": "acuracy"}, {"name": "mflops"}]}, "objectives/0/name",
     "did you mean 'val_accuracy'"),
    ({"space": SPACE, "objectives": [{"name": "val_accuracy", "direction": "up"}, "mflops"]},
     "objectives/0/direction", "unknown direction"),
    ({"space": SPACE, "objectives": ["val_accuracy"]}, "objectives", "at least two objectives"),
    ({"space": SPACE, "objectives": ["mflops", "mflops"]}, "objectives/1/name", "listed twice"),
    ({"space": SPACE, "constraints": {"mflop": {"max": 5}}}, "constraints/mflop", "did you mean 'mflops'"),
    ({"space": SPACE, "constraints": {"mflops": {"max": "five"}}}, "constraints/mflops/max", "must be a number"),
    ({"space": SPACE, "constraints": {"mflops": {"min": 5, "max": 1}}}, "constraints/mflops", "greater than max"),
    ({"space": SPACE, "constraints": {"mflops": {"maks": 1}}}, "constraints/mflops/maks", "did you mean 'max'"),
    ({"space": SPACE, "search": {"sampler": "nsga3"}}, "search/sampler", "did you mean 'nsga2'"),
    ({"space": SPACE, "search": {"trials": 0}}, "search/trials", "must be >= 1"),
    ({"space": SPACE, "search": {"trials": "ten"}}, "search/trials", "expected int"),
    ({"space": SPACE, "search": {"trails": 5}}, "search/trails", "did you mean 'trials'"),
    ({"space": SPACE, "training": {"epochs": 2.5}}, "training/epochs", "expected int"),
    ({"space": SPACE, "training": {"optimizer": "adamm"}}, "training/optimizer", "did you mean 'adam'"),
    ({"space": SPACE, "training": {"lr": {"low": 1e-3, "high": 1e-2}}}, "training/lr", "dimension with `type:`"),
    ({"space": SPACE, "resources": {"gpu": -1}}, "resources/gpu", "must be >= 0"),
    ({"space": SPACE, "data": {"val_fraction": 0.7, "test_fraction": 0.4}}, "data/test_fraction", "leave training data"),
    ({"space": SPACE, "data": "digits"}, "data", "must be a mapping"),
    (["space"], "", "top level must be a mapping"),
]


@pytest.mark.parametrize(("doc", "path", "message"), BAD, ids=[b[1] or "top" for b in BAD])
def test_bad_experiments(doc, path, message):
    with pytest.raises(ConfigError) as info:
        parse_experiment(doc, source="exp.yaml")
    err = info.value
    assert err.file == "exp.yaml" and err.path == path
    assert message in str(err)
    assert "Fix:" in str(err)


def test_malformed_yaml_names_line(tmp_path):
    p = tmp_path / "bad.yaml"
    p.write_text("space: x\nsearch:\n  trials: [1,\n")
    with pytest.raises(ConfigError, match=r"bad.yaml: <top>: malformed YAML at line \d+"):
        load_experiment(p)


def test_missing_file():
    with pytest.raises(ConfigError, match="experiment file not found"):
        load_experiment("/no/such/exp.yaml")


def test_relative_space_resolves_against_file(tmp_path):
    (tmp_path / "exps").mkdir()
    (tmp_path / "exps" / "e.yaml").write_text(yaml.safe_dump({"space": "../s.yaml"}))
    (tmp_path / "s.yaml").write_text(Path(SPACE).read_text())
    assert load_experiment(tmp_path / "exps" / "e.yaml").space == str((tmp_path / "s.yaml").resolve())
