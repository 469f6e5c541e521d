"""Fuzzing the parsers with hypothesis: every random space spec (``compression:`` block included) ends in a clean
SpaceError (at load or build) or in a space whose samples all build and run forward; every random experiment, with
every section of the schema, ends in a ConfigError or an Experiment, never in a traceback.

Runs 750 space and 1,000 experiment examples (NAS_FUZZ_EXAMPLES sets the space share, NAS_FUZZ_EXPERIMENTS the
experiment share).
"""

from __future__ import annotations

import math
import os
from dataclasses import is_dataclass
from pathlib import Path

import pytest
import torch
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from nas.builders import build
from nas.builders._common import ACTIVATIONS
from nas.config.experiment import Experiment, parse_experiment
from nas.errors import ConfigError
from nas.space import SpaceError, parse_space

pytestmark = [pytest.mark.fuzz, pytest.mark.slow]

SPACE_EXAMPLES = int(os.environ.get("NAS_FUZZ_EXAMPLES", "750"))
EXPERIMENT_EXAMPLES = int(os.environ.get("NAS_FUZZ_EXPERIMENTS", "1000"))
SETTINGS = dict(deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)

small = st.integers(-2, 24)
number = st.one_of(small, st.floats(-2, 24, allow_nan=False, allow_infinity=False), st.just("3"))


def dim(values: st.SearchStrategy, lo: int = 1, hi: int = 16) -> st.SearchStrategy:
    """Mostly well-formed dimensions (so many specs reach build and forward), some broken ones."""
    broken = st.fixed_dictionaries(
        {"type": st.sampled_from(["int", "float", "integer"]), "low": number, "high": number},
        optional={"step": number, "log": st.booleans()},
    )
    bounds = st.tuples(st.integers(lo, hi), st.integers(lo, hi)).map(sorted)
    good_int = bounds.map(lambda b: {"type": "int", "low": b[0], "high": b[1]})
    categorical = st.fixed_dictionaries(
        {"type": st.just("categorical"), "choices": st.lists(values, min_size=1, max_size=3, unique=True)})
    return st.one_of(values, good_int, categorical, categorical, broken)


ints = st.integers(-1, 24)
acts = st.sampled_from([*ACTIVATIONS, "bogus"])

mlp_params = st.fixed_dictionaries(
    {"width": dim(ints), "depth": dim(st.integers(-1, 3), 0, 3)},
    optional={"activation": dim(acts), "dropout": dim(st.floats(-0.5, 1.0), 0, 0), "norm": dim(st.sampled_from(
        ["none", "batch", "layer", "group"])), "widht": st.just(8)},
)
block = st.fixed_dictionaries({"choice": st.fixed_dictionaries(
    {}, optional={"conv": st.fixed_dictionaries({}, optional={"kernel": dim(st.sampled_from([1, 3, 4, 5, 7]))}),
                  "mbconv": st.fixed_dictionaries({}, optional={
                      "expand": dim(st.integers(0, 6), 1, 6), "kernel": dim(st.sampled_from([3, 5]), 3, 3),
                      "se": dim(st.booleans())})})})
stage = st.fixed_dictionaries({"channels": dim(ints)}, optional={
    "depth": dim(st.integers(0, 2), 1, 2), "stride": dim(st.sampled_from([1, 2, 3]), 1, 2), "block": block})
cnn_params = st.fixed_dictionaries(
    {"stages": st.one_of(st.fixed_dictionaries({"repeat": st.one_of(st.integers(-1, 3), st.fixed_dictionaries(
        {"low": st.integers(-1, 2), "high": st.integers(0, 3)})), "each": stage}), st.lists(stage, max_size=2))},
    optional={"stem_channels": dim(ints), "activation": dim(acts), "dropout": dim(st.floats(0, 0.5), 0, 0)},
)
compression = st.one_of(st.none(), st.just("prune"), st.fixed_dictionaries({}, optional={
    "prune": dim(st.floats(-0.5, 1.0), 0, 0), "sparsity": dim(st.sampled_from([0.0, 0.5, 0.9])),
    "rank_energy": dim(st.floats(0.5, 1.0), 0, 0), "quantize": dim(st.booleans()),
    "finetune_epochs": dim(st.integers(0, 2), 0, 2), "prun": st.just(0.5)}))
spaces = st.one_of(
    st.fixed_dictionaries({"builder": st.just("mlp"), "params": mlp_params},
                          optional={"input_shape": st.sampled_from([[1, 8, 8], [1, 8, 8], [40], [0, 3], "8x8"]),
                                    "num_classes": st.integers(0, 12), "compression": compression}),
    st.fixed_dictionaries({"builder": st.sampled_from(["cnn", "cnn", "cnn", "cnnn"]), "params": cnn_params},
                          optional={"input_shape": st.sampled_from([[1, 8, 8], [3, 16, 16], [1, 40]]),
                                    "num_classes": st.integers(1, 12)}),
)


@settings(max_examples=SPACE_EXAMPLES, **SETTINGS)
@given(spec=spaces)
def test_random_spaces_fail_cleanly_or_build_and_run(spec):
    try:
        space = parse_space(spec, source="fuzz.yaml")
    except SpaceError as e:
        assert e.file == "fuzz.yaml" and "Fix:" in str(e)
        return
    space.size()
    assert len(space.hash) == 16
    if "compression" in spec:  # the block resolves to known plan keys for every sample
        from nas.compress.plan import PLAN_KEYS

        assert set(space.resolve(space.sample_random(0)).get("compression") or {}) <= set(PLAN_KEYS)
    shape = space.input_shape or (1, 8, 8)
    classes = space.num_classes or 10
    for seed in (0, 1):
        params = space.sample_random(seed)
        try:
            model = build(space, params, input_shape=shape, num_classes=classes, seed=seed)
        except SpaceError as e:  # the builder refused the values: a clean error naming the space
            assert e.file == "fuzz.yaml" and "Fix:" in str(e)
            return
        model.eval()
        with torch.no_grad():
            out = model(torch.randn(2, *shape))
        assert out.shape == (2, classes)



# ---- experiments: every field of every section, from the schema itself ---------------------------------------

SPACE = str(Path(__file__).resolve().parent.parent / "search_spaces" / "mlp.yaml")
anything = st.recursive(st.one_of(st.none(), st.booleans(), st.integers(-5, 50), st.floats(), st.text(max_size=8)),
                        lambda c: st.one_of(st.lists(c, max_size=3), st.dictionaries(st.text(max_size=6), c, max_size=3)),
                        max_leaves=6)
#: names that are valid somewhere (and their typos), so values often pass the name checks and reach the next ones
WORDS = ["digits", "digit", "nsga2", "tpe", "gp", "random", "cma", "adam", "sgd", "nesterov", "nesterv", "cosine",
         "constant", "auto", "synflow", "naswot", "params", "screen", "prior", "objective", "off", "none",
         "pareto-asha", "pareto-promote", "flops_M", "cifar10_valid_acc", "usd", "cpu", "sqlite:///x.db", "t.csv", ""]
number = st.one_of(st.integers(-1, 3), st.floats(-1, 1))
dimension = st.fixed_dictionaries({"type": st.sampled_from(["float", "int", "categorical", "floot"])},
                                  optional={"low": number, "high": number, "log": st.booleans(),
                                            "choices": st.lists(number, max_size=3)})
plausible = st.one_of(
    st.integers(-2, 30), st.floats(-1, 30), st.sampled_from([0.5, 1e-3, float("inf"), float("nan"), True]),
    st.sampled_from(WORDS), st.lists(st.integers(-1, 30), max_size=3),
    st.dictionaries(st.one_of(st.integers(-1, 200), st.sampled_from(["mflops", "params", "val_accuracy", "12"])),
                    st.one_of(st.sampled_from(WORDS), st.floats(0, 2)), max_size=2),
    dimension,
)


def near(default: object) -> st.SearchStrategy:
    """Values of the default's type, often valid, sometimes out of range."""
    if isinstance(default, bool):
        return st.booleans()
    if isinstance(default, int):
        return st.integers(-1, 30)
    if isinstance(default, float):
        return st.one_of(st.floats(-0.5, 30, allow_nan=False), st.integers(0, 30))
    if isinstance(default, str):
        return st.sampled_from([default, *WORDS])
    return plausible


def section_strategy(cls: type) -> st.SearchStrategy:
    """One to three of ``cls``'s fields, each near its default, plausible or anything; rarely a typo or junk."""
    info = cls.__pydantic_fields__
    values = {name: st.one_of(near(f.get_default(call_default_factory=True)), near(f.get_default(
        call_default_factory=True)), plausible, anything) for name, f in info.items()}
    some = st.lists(st.sampled_from(sorted(values)), min_size=1, max_size=3, unique=True).flatmap(
        lambda keys: st.fixed_dictionaries({k: values[k] for k in keys}))
    typo = some.map(lambda d: {**d, "bogus_key": 1})
    return st.one_of(*[some] * 8, typo, anything)


SECTIONS = {name: section_strategy(info.annotation) for name, info in Experiment.__pydantic_fields__.items()
            if isinstance(info.annotation, type) and is_dataclass(info.annotation)}
assert {"early_stopping", "proxy", "surrogate", "budget", "plateau", "bench", "energy", "training", "search",
        "data", "resources", "profile", "tracking"} <= set(SECTIONS)
TOP = {**SECTIONS, "name": st.one_of(st.sampled_from(["x", ""]), anything),
       "constraints": st.one_of(st.dictionaries(st.sampled_from(["mflops", "params", "flops"]),
                                                st.one_of(plausible, anything), max_size=2), anything),
       "objectives": st.one_of(anything, st.lists(st.sampled_from(["val_accuracy", "mflops", "latency_ms", "energy"]),
                                                  max_size=3))}
base = st.lists(st.sampled_from(sorted(TOP)), max_size=3, unique=True).flatmap(
    lambda keys: st.fixed_dictionaries({"space": st.sampled_from([SPACE] * 8 + ["missing.yaml", 7]),
                                        **{k: TOP[k] for k in keys}}))
experiments = st.one_of(*[base] * 12, base.map(lambda d: {**d, "bogus": 1}), base.map(lambda d: {**d, "source": "x"}))


@settings(max_examples=EXPERIMENT_EXAMPLES, **SETTINGS)
@example(doc={"space": SPACE, "early_stopping": {"method": "pareto-asha", "rungs": 12}})
@example(doc={"space": SPACE, "bench": {"table": "t.csv", "cost_columns": "flops_M"}})
@example(doc={"space": SPACE, "training": {"lr": float("inf")}})
@example(doc={"space": SPACE, "training": {"optimizer": "nesterov", "lr_schedule": "constant", "momentum": 0.5}})
@given(doc=experiments)
def test_random_experiments_fail_cleanly_or_load(doc):
    try:
        exp = parse_experiment(doc, source="fuzz-exp.yaml")
    except ConfigError as e:
        assert e.file == "fuzz-exp.yaml" and "Fix:" in str(e) and "\n" not in str(e)
        return
    assert isinstance(exp, Experiment) and exp.search.trials >= 1 and len(exp.objectives) >= 2
    t = exp.training
    for v in (t.lr, t.weight_decay):
        assert isinstance(v, dict) or math.isfinite(v)
    assert isinstance(t.lr, dict) or t.lr > 0
    assert all(isinstance(r, int) and 1 <= r < t.epochs for r in exp.early_stopping.rungs or [])
    assert all(isinstance(v, str) for v in exp.bench.cost_columns.values())
    exp.to_dict()
