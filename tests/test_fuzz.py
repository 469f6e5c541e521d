"""Fuzzing the parsers with hypothesis: every random space spec ends in a clean SpaceError (at load or build) or in
a space whose samples all build and run forward; every random experiment ends in a ConfigError or an Experiment.

Runs >= 1000 examples in all (NAS_FUZZ_EXAMPLES sets the space share; the experiment share is 40% of it).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nas.builders import build
from nas.builders._common import ACTIVATIONS
from nas.config.experiment import Experiment, parse_experiment
from nas.errors import ConfigError
from nas.space import SpaceError, parse_space

pytestmark = [pytest.mark.fuzz, pytest.mark.slow]

SPACE_EXAMPLES = int(os.environ.get("NAS_FUZZ_EXAMPLES", "750"))  # + 40% experiments: 1,050 in all
EXPERIMENT_EXAMPLES = max(1, SPACE_EXAMPLES * 4 // 10)
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
spaces = st.one_of(
    st.fixed_dictionaries({"builder": st.just("mlp"), "params": mlp_params},
                          optional={"input_shape": st.sampled_from([[1, 8, 8], [1, 8, 8], [40], [0, 3], "8x8"]),
                                    "num_classes": st.integers(0, 12)}),
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


SPACE = str(Path(__file__).resolve().parent.parent / "search_spaces" / "mlp.yaml")
anything = st.recursive(st.one_of(st.none(), st.booleans(), st.integers(-5, 50), st.floats(allow_nan=False),
                                  st.text(max_size=8)),
                        lambda c: st.one_of(st.lists(c, max_size=3), st.dictionaries(st.text(max_size=6), c, max_size=3)),
                        max_leaves=6)
sections = {
    "data": st.fixed_dictionaries({}, optional={"name": st.sampled_from(["digits", 3]), "batch_size": anything,
                                                "val_fraction": anything, "seed": anything}),
    "training": st.fixed_dictionaries({}, optional={"epochs": anything, "lr": anything, "optimizer": anything}),
    "search": st.fixed_dictionaries({}, optional={"sampler": st.sampled_from(["nsga2", "tpe", "gp", "random", "cma"]),
                                                  "trials": anything, "concurrency": anything, "seed": anything}),
    "resources": st.fixed_dictionaries({}, optional={"cpu": anything, "gpu": anything}),
    "constraints": st.dictionaries(st.sampled_from(["mflops", "params", "flops"]), anything, max_size=2),
    "objectives": st.one_of(anything, st.lists(st.sampled_from(["val_accuracy", "mflops", "latency_ms", "energy"]),
                                                max_size=3)),
    "tracking": anything,
    "bogus": anything,
}
experiments = st.fixed_dictionaries({"space": st.sampled_from([SPACE, SPACE, "missing.yaml", 7])},
                                    optional=sections)


@settings(max_examples=EXPERIMENT_EXAMPLES, **SETTINGS)
@given(doc=experiments)
def test_random_experiments_fail_cleanly_or_load(doc):
    try:
        exp = parse_experiment(doc, source="fuzz-exp.yaml")
    except ConfigError as e:
        assert e.file == "fuzz-exp.yaml" and "Fix:" in str(e)
        return
    assert isinstance(exp, Experiment) and exp.search.trials >= 1 and len(exp.objectives) >= 2
