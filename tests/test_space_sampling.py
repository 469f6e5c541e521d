"""Define-by-run sampling with real Optuna samplers, FixedTrial replay, and ``resolve``."""

from __future__ import annotations

import logging
import math

import optuna
import pytest
import yaml
from torch import nn

from nas.space import Dimension, Space, SpaceError, parse_space
from nas.space.registry import register_builder, unregister_builder

BUILDER = "_space_sampling"
HOOKED = "_space_sampling_hooked"

SPEC = f"""
builder: {BUILDER}
input_shape: [1, 8, 8]
num_classes: 10
params:
  stem_channels: {{type: categorical, choices: [8, 16, 24]}}
  dropout: {{type: float, low: 0.0, high: 0.3}}
  lr: {{type: float, low: 1.0e-4, high: 1.0e-2, log: true}}
  wd: {{type: float, low: 0.0, high: 0.01, step: 0.001}}
  act: {{type: categorical, choices: [relu, 2, 0.5, true, null]}}
  norm: batch
  kernel_sizes: [3, 5]
  stages:
    repeat: {{low: 1, high: 3}}
    each:
      channels: {{type: int, low: 8, high: 64, step: 8}}
      width_mult: {{type: int, low: 1, high: 8, log: true}}
      block:
        choice:
          conv: {{kernel: {{type: categorical, choices: [3, 5]}}}}
          mbconv:
            expand: {{type: categorical, choices: [1, 3, 6]}}
            se: {{type: categorical, choices: [true, false]}}
          skip:
  head:
    repeat: 2
    each: {{units: {{type: int, low: 16, high: 32}}, bias: true}}
"""


@pytest.fixture(scope="module", autouse=True)
def builders():
    for name in (BUILDER, HOOKED):
        unregister_builder(name)

    @register_builder(BUILDER)
    def _open(*, input_shape, num_classes, **config):
        """Takes any parameter."""
        return nn.Identity()

    def hook(params):
        # "a.b" -> the flat form; flat params pass through unchanged, as the registry contract asks.
        if "code" not in params:
            return dict(params)
        first, second = params["code"].split(".")
        return {"first": first, "second": int(second)}

    @register_builder(HOOKED, params_hook=hook)
    def _hooked(*, input_shape, num_classes, first, second):
        """Takes two parameters."""
        return nn.Identity()

    yield
    for name in (BUILDER, HOOKED):
        unregister_builder(name)


@pytest.fixture(scope="module")
def space(builders) -> Space:
    return parse_space(yaml.safe_load(SPEC))


def _within(dim: Dimension, value: object) -> bool:
    """Independent of Dimension.check: is ``value`` a point of ``dim``'s distribution?"""
    if dim.kind == "categorical":
        return any(type(value) is type(c) and value == c for c in dim.choices)
    if dim.kind == "int" and (not isinstance(value, int) or isinstance(value, bool)):
        return False
    if not dim.low <= value <= dim.high:
        return False
    if dim.step is None:
        return True
    k = (value - dim.low) / dim.step
    return math.isclose(k, round(k), abs_tol=1e-8)


def _run(space: Space, sampler: optuna.samplers.BaseSampler, n: int) -> list[optuna.trial.FrozenTrial]:
    study = optuna.create_study(sampler=sampler)

    def objective(trial: optuna.Trial) -> float:
        params = space.sample(trial)
        config = space.resolve(params)
        return len(config["stages"]) + config["dropout"]

    study.optimize(objective, n_trials=n)
    return study.trials


@pytest.mark.parametrize(
    "make_sampler",
    [
        lambda: optuna.samplers.RandomSampler(seed=7),
        lambda: optuna.samplers.TPESampler(seed=7, n_startup_trials=5),
    ],
    ids=["random", "tpe"],
)
def test_names_are_stable_and_values_within_their_dimension(space: Space, make_sampler) -> None:
    dims = {d.name: d for d in space.dimensions()}
    trials = _run(space, make_sampler(), 25)
    for trial in trials:
        assert set(trial.params) <= set(dims)
        for name, value in trial.params.items():
            assert trial.distributions[name] == dims[name].distribution, name
            assert _within(dims[name], value), (name, value)
    # The same seed gives the same sequence of params.
    assert [t.params for t in _run(space, make_sampler(), 25)] == [t.params for t in trials]


def test_sample_returns_exactly_the_trial_params(space: Space) -> None:
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=1))
    trial = study.ask()
    params = space.sample(trial)
    assert params == trial.params


def test_sample_random_is_seeded(space: Space) -> None:
    assert space.sample_random(3) == space.sample_random(3)
    assert len({repr(space.sample_random(seed)) for seed in range(8)}) > 1


def test_sample_random_does_not_log_its_scratch_study(space: Space) -> None:
    seen: list[str] = []
    handler = logging.Handler(logging.DEBUG)
    handler.emit = lambda record: seen.append(record.getMessage())  # type: ignore[method-assign]
    root = logging.getLogger("optuna")
    before = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.INFO)
    root.addHandler(handler)
    try:
        space.sample_random(0)
        optuna.create_study(study_name="visible")  # other studies still log
    finally:
        root.removeHandler(handler)
        optuna.logging.set_verbosity(before)
    assert not any("sample_random" in m for m in seen)
    assert any("visible" in m for m in seen)


def test_fixed_trial_replays(space: Space) -> None:
    for seed in range(10):
        params = space.sample_random(seed)
        assert space.sample(optuna.trial.FixedTrial(params)) == params
        assert space.resolve(params) == space.resolve(space.sample(optuna.trial.FixedTrial(params)))


def test_names_follow_the_format(space: Space) -> None:
    for seed in range(10):
        params = space.sample_random(seed)
        n = params["stages/n"]
        expected = {"stem_channels", "dropout", "lr", "wd", "act", "stages/n"}
        for i in range(n):
            branch = params[f"stages/{i}/block"]
            expected |= {f"stages/{i}/channels", f"stages/{i}/width_mult", f"stages/{i}/block"}
            expected |= {
                f"stages/{i}/block/{branch}/{f}"
                for f in {"conv": ["kernel"], "mbconv": ["expand", "se"], "skip": []}[branch]
            }
        expected |= {"head/0/units", "head/1/units"}  # a fixed repeat has no head/n
        assert set(params) == expected


def test_resolve_shapes(space: Space) -> None:
    for seed in range(10):
        params = space.sample_random(seed)
        config = space.resolve(params)
        assert config["norm"] == "batch" and config["kernel_sizes"] == [3, 5]
        assert len(config["stages"]) == params["stages/n"]
        for i, stage in enumerate(config["stages"]):
            assert stage["channels"] == params[f"stages/{i}/channels"]
            block = stage["block"]
            assert block["type"] == params[f"stages/{i}/block"]
            fields = {k: v for k, v in params.items() if k.startswith(f"stages/{i}/block/{block['type']}/")}
            assert {k: v for k, v in block.items() if k != "type"} == {
                k.rsplit("/", 1)[1]: v for k, v in fields.items()
            }
        assert config["head"] == [
            {"units": params["head/0/units"], "bias": True},
            {"units": params["head/1/units"], "bias": True},
        ]
        assert set(config) == {
            "stem_channels",
            "dropout",
            "lr",
            "wd",
            "act",
            "norm",
            "kernel_sizes",
            "stages",
            "head",
        }


def test_resolve_ignores_unused_names_and_returns_fresh_lists(space: Space) -> None:
    params = {**space.sample_random(0), "not/in/space": 1}
    config = space.resolve(params)
    config["kernel_sizes"].append(7)
    assert space.resolve(params)["kernel_sizes"] == [3, 5]


def test_resolve_keeps_the_choice_type(space: Space) -> None:
    params = space.sample_random(0)
    for choice in ["relu", 2, 0.5, True, None]:
        resolved = space.resolve({**params, "act": choice})["act"]
        assert type(resolved) is type(choice) and resolved == choice
    assert space.resolve({**params, "act": 2.0})["act"] == 2  # numbers match numerically
    assert space.resolve({**params, "stem_channels": 16.0})["stem_channels"] == 16


@pytest.mark.parametrize(
    ("change", "where", "needle"),
    [
        ({"stem_channels": 12}, "stem_channels", "not one of [8, 16, 24]"),
        ({"dropout": 0.5}, "dropout", "outside [0.0, 0.3]"),
        ({"dropout": "0.1"}, "dropout", "not a finite number"),
        ({"wd": 0.0015}, "wd", "not on the grid"),
        ({"lr": 1.0}, "lr", "outside"),
        ({"act": 1}, "act", "not one of"),  # 1 is not true: bools match only bools
        ({"act": "RELU"}, "act", "not one of"),
        ({"stages/n": 4}, "stages/n", "outside [1, 3]"),
        ({"stages/n": True}, "stages/n", "not an integer"),
        ({"stages/0/channels": 12}, "stages/0/channels", "not on the grid"),
        ({"stages/0/channels": 16.5}, "stages/0/channels", "not an integer"),
        ({"stages/0/block": "resnet"}, "stages/0/block", "not one of ['conv', 'mbconv', 'skip']"),
    ],
)
def test_resolve_refuses_values_outside_their_distribution(
    space: Space, change: dict, where: str, needle: str
) -> None:
    params = {**space.sample_random(0), **change}
    with pytest.raises(SpaceError) as info:
        space.resolve(params)
    assert (info.value.file, info.value.path) == ("<string>", where)
    assert needle in info.value.problem


def test_resolve_refuses_missing_params_with_a_hint(space: Space) -> None:
    params = space.sample_random(0)
    branch = params["stages/0/block"]
    for name in ["dropout", "stages/n", "stages/0/block", "head/1/units"]:
        partial = {k: v for k, v in params.items() if k != name}
        with pytest.raises(SpaceError) as info:
            space.resolve(partial)
        assert info.value.path == name and "missing" in info.value.problem
    # A missing branch field, and a misspelled name that is suggested.
    fields = [k for k in params if k.startswith(f"stages/0/block/{branch}/")]
    if fields:
        with pytest.raises(SpaceError, match="missing"):
            space.resolve({k: v for k, v in params.items() if k != fields[0]})
    typo = {("dropuot" if k == "dropout" else k): v for k, v in params.items()}
    with pytest.raises(SpaceError, match="did you mean 'dropuot'"):
        space.resolve(typo)


def test_resolve_passes_params_through_the_builder_hook(builders) -> None:
    space = parse_space(
        {
            "builder": HOOKED,
            "params": {
                "first": {"type": "categorical", "choices": ["a", "b"]},
                "second": {"type": "int", "low": 0, "high": 3},
            },
        }
    )
    assert space.resolve({"code": "b.2"}) == {"first": "b", "second": 2}
    assert space.resolve({"first": "a", "second": 0}) == {"first": "a", "second": 0}
    with pytest.raises(SpaceError) as info:
        space.resolve({"code": "b.9"})
    assert info.value.path == "second"
    with pytest.raises(SpaceError, match="could not read the params"):
        space.resolve({"code": "no-dot"})


def test_space_is_immutable_and_reports_its_header(space: Space) -> None:
    assert (space.builder, space.input_shape, space.num_classes, space.source) == (
        BUILDER,
        (1, 8, 8),
        10,
        "<string>",
    )
    with pytest.raises(AttributeError):
        space.builder = "other"  # type: ignore[misc]
