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
    ({"space": SPACE, "constraints": {"mflops": {"max": "five"}}}, "constraints/mflops/max", "expected a number"),
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
    with pytest.raises(ConfigError, match=r"bad.yaml: <top>: invalid YAML at line \d+"):
        load_experiment(p)


def test_missing_file():
    with pytest.raises(ConfigError, match="experiment file not found"):
        load_experiment("/no/such/exp.yaml")


def test_relative_space_resolves_against_file(tmp_path):
    (tmp_path / "exps").mkdir()
    (tmp_path / "exps" / "e.yaml").write_text(yaml.safe_dump({"space": "../s.yaml"}))
    (tmp_path / "s.yaml").write_text(Path(SPACE).read_text())
    assert load_experiment(tmp_path / "exps" / "e.yaml").space == str((tmp_path / "s.yaml").resolve())


# ---- issue 13: schema-checked sections -------------------------------------------------------------------

SCHEMA_BAD = [
    # used to pass the substring type check and crash later with a traceback
    ({"early_stopping": {"method": "pareto-asha", "rungs": 12}}, "early_stopping/rungs", "must be a list"),
    ({"bench": {"table": "t.csv", "cost_columns": "flops_M"}}, "bench/cost_columns", "must be a mapping"),
    ({"bench": {"accuracy_columns": {"200": "acc"}}}, "bench/accuracy_columns/200", "must be int"),
    ({"early_stopping": {"rungs": [1, True]}}, "early_stopping/rungs/1", "expected int"),
    ({"training": {"lr": float("inf")}}, "training/lr", "finite number > 0"),
    ({"training": {"lr": float("nan")}}, "training/lr", "finite number > 0"),
    ({"training": {"lr": 0}}, "training/lr", "finite number > 0"),
    ({"training": {"lr": "1e-3"}}, "training/lr", "finite number > 0"),
    ({"training": {"lr": {"type": "float", "low": -1.0, "high": 1.0}}}, "training/lr", "finite number > 0"),
    ({"training": {"lr": {"type": "float", "low": 1e-3, "hgh": 1.0}}}, "training/lr/hgh", "unknown key"),
    ({"training": {"weight_decay": -0.1}}, "training/weight_decay", "finite number >= 0"),
    ({"training": {"momentum": 1.5}}, "training/momentum", "[0, 1)"),
    ({"training": {"optimizer": "nesterov", "momentum": 0.0}}, "training/momentum", "nesterov needs momentum"),
    ({"training": {"lr_schedule": "cosin"}}, "training/lr_schedule", "did you mean 'cosine'"),
    ({"training": {"optimizer": "nesterv"}}, "training/optimizer", "did you mean 'nesterov'"),
    ({"search": {"sampler": "tp"}}, "search/sampler", "did you mean 'tpe'"),
    ({"search": {"seed": -1}}, "search/seed", "must be >= 0"),
    ({"proxy": {"name": "synflw"}}, "proxy/name", "did you mean 'synflow'"),
    ({"proxy": {"use": "objective"}}, "proxy/name", "not auto"),
    ({"data": {"name": "digit"}}, "data/name", "did you mean 'digits'"),
    ({"surrogate": {"kappa": -1}}, "surrogate/kappa", "must be >= 0"),
    ({"plateau": {"window": 0}}, "plateau/window", "must be >= 1"),
    ({"budget": {"wall_hours": 0}}, "budget/wall_hours", "must be > 0"),
    ({"budget": {"wall_hours": True}}, "budget/wall_hours", "expected a number"),
    ({"energy": {"pue": 0.5}}, "energy/pue", "must be >= 1"),
    ({"energy": {"currency": "US$"}}, "energy/currency", "must match"),
    ({"energy": {"wats": 1}}, "energy/wats", "unknown key"),
    ({"tracking": {"uri": ""}}, "tracking/uri", "must not be empty"),
    ({"resources": {"cpu": "2"}}, "resources/cpu", "expected a number"),
    ({"source": "x.yaml"}, "source", "unknown key"),
]


@pytest.mark.parametrize(("doc", "path", "message"), SCHEMA_BAD, ids=[b[1] for b in SCHEMA_BAD])
def test_schema_refusals_are_config_errors(doc, path, message):
    with pytest.raises(ConfigError) as info:
        parse_experiment({"space": SPACE, **doc}, source="exp.yaml")
    err = info.value
    assert (err.file, err.path) == ("exp.yaml", path), str(err)
    assert message in err.problem, str(err)
    assert err.fix and "\n" not in str(err)


def test_every_training_setting_can_be_set():
    from nas.training.train import OPTIMIZERS

    for name in OPTIMIZERS:
        exp = parse_experiment({"space": SPACE, "training": {"optimizer": name, "momentum": 0.5,
                                                             "lr_schedule": "constant", "lr": 1}})
        t = exp.training
        assert (t.optimizer, t.momentum, t.lr_schedule, t.lr) == (name, 0.5, "constant", 1.0)


def test_lr_schedule_and_momentum_reach_train(monkeypatch):
    """The controller's training dict carries them and the trial passes them to train()."""
    import nas.training.trial as trial_mod
    from nas.search.controller.core import Controller
    from nas.space import load_space

    exp = parse_experiment({"space": SPACE, "training": {"optimizer": "nesterov", "momentum": 0.7,
                                                         "lr_schedule": "constant", "epochs": 1}})
    training = Controller._sample_training(type("C", (), {"exp": exp})(), trial=None)
    assert (training["momentum"], training["lr_schedule"], training["optimizer"]) == (0.7, "constant", "nesterov")
    seen = {}

    class Stop(Exception):
        pass

    def fake_train(model, splits, **kwargs):  # unit test: capture the call, train nothing
        seen.update(kwargs)
        raise Stop

    monkeypatch.setattr(trial_mod, "train", fake_train)
    space = load_space(exp.space)
    spec = trial_mod.TrialSpec(number=0, params=space.sample_random(0), space_yaml=Path(exp.space).read_text(),
                               space_source=exp.space, space_hash=space.hash, data={"name": "digits"},
                               training={**training, "lr": 0.01}, seed=0, mflops=0.0)
    with pytest.raises(Stop):
        trial_mod.run_trial(spec)
    assert (seen["momentum"], seen["lr_schedule"], seen["optimizer"]) == (0.7, "constant", "nesterov")


def test_a_registered_name_is_allowed_at_once():
    """The registries are the one source of truth: a plugin's optimizer is accepted as soon as it is registered."""
    from nas.training.train import OPTIMIZERS, register_optimizer

    register_optimizer("plugin_sgd")(OPTIMIZERS["sgd"])
    try:
        assert parse_experiment({"space": SPACE, "training": {"optimizer": "plugin_sgd"}}).training.optimizer
    finally:
        OPTIMIZERS.pop("plugin_sgd")
    with pytest.raises(ConfigError, match="plugin_sgd"):
        parse_experiment({"space": SPACE, "training": {"optimizer": "plugin_sgd"}})


def test_registry_table_resolves():
    from nas.config.names import REGISTRIES, registered

    for kind in REGISTRIES:
        assert registered(kind), kind
    assert "nesterov" in registered("optimizer") and "nsga2" in registered("sampler")


def test_duplicate_top_level_key_is_refused(tmp_path):
    p = tmp_path / "dup.yaml"
    p.write_text(f"space: {SPACE}\nsearch: {{trials: 3}}\nsearch: {{trials: 5}}\n")
    with pytest.raises(ConfigError, match="appears twice") as info:
        load_experiment(p)
    assert info.value.path == "search"


def test_sections_are_validated_dataclasses():
    from dataclasses import asdict, replace

    exp = parse_experiment({"space": SPACE})
    assert asdict(exp.data)["name"] == "digits"
    assert replace(exp, search=replace(exp.search, trials=3)).search.trials == 3
    with pytest.raises(ValueError):  # replace validates too
        replace(exp.search, trials=0)
    with pytest.raises(ConfigError, match="--trials"):
        exp.with_overrides(trials=0)
