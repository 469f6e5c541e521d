"""``Space.size`` counted by hand on small specs, and ``Space.dimensions`` enumeration."""

from __future__ import annotations

import pytest
from conftest import open_builder

from nas.space import Dimension, parse_space

BUILDER = "_space_size"

CAT2 = {"type": "categorical", "choices": ["a", "b"]}
CAT3 = {"type": "categorical", "choices": [1, 2, 3]}
FLOAT = {"type": "float", "low": 0.0, "high": 1.0}
BLOCK = {"choice": {"conv": {"k": CAT2}, "mbconv": {"e": CAT3, "se": CAT2}, "skip": None}}


@pytest.fixture(scope="module", autouse=True)
def builder():
    with open_builder(BUILDER):
        yield


def space(**params):
    return parse_space({"builder": BUILDER, "params": params})


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        # constants only: one configuration
        ({"a": 1, "b": [1, 2], "g": {"x": "y"}}, 1),
        # 3 choices * 4 ints (1..4) * constant 1 = 12
        ({"a": CAT3, "b": {"type": "int", "low": 1, "high": 4}, "c": 7}, 12),
        # int 8..64 step 8: 8, 16, ..., 64 = 8 values
        ({"c": {"type": "int", "low": 8, "high": 64, "step": 8}}, 8),
        # int 1..8 log: every int from 1 to 8 = 8 values
        ({"c": {"type": "int", "low": 1, "high": 8, "log": True}}, 8),
        # float 0.0..0.3 step 0.1: 0.0, 0.1, 0.2, 0.3 = 4 values
        ({"f": {"type": "float", "low": 0.0, "high": 0.3, "step": 0.1}}, 4),
        # float with low == high: one value
        ({"f": {"type": "float", "low": 0.5, "high": 0.5}}, 1),
        # repeat 1..3 of a 2-way categorical: 2 + 2^2 + 2^3 = 14
        ({"s": {"repeat": {"low": 1, "high": 3}, "each": {"x": CAT2}}}, 14),
        # repeat 0..2: the empty list + 2 + 4 = 7
        ({"s": {"repeat": {"low": 0, "high": 2}, "each": {"x": CAT2}}}, 7),
        # fixed repeat 2 of a 3-way categorical: 3^2 = 9
        ({"s": {"repeat": 2, "each": {"x": CAT3}}}, 9),
        # choice: conv 2 + mbconv 3*2 + skip 1 = 9
        ({"block": BLOCK}, 9),
        # element = channels (8) * block (9) = 72; depth 1..3: 72 + 72^2 + 72^3 = 378504; * 3 stems = 1135512
        (
            {
                "stem": CAT3,
                "stages": {
                    "repeat": {"low": 1, "high": 3},
                    "each": {"channels": {"type": "int", "low": 8, "high": 64, "step": 8}, "block": BLOCK},
                },
            },
            1135512,
        ),
        # a float that can never appear (repeat high 0) does not make the size unknown: only the empty list
        ({"s": {"repeat": {"low": 0, "high": 0}, "each": {"f": FLOAT}}}, 1),
        # continuous floats make the count unknown, wherever they can appear
        ({"f": FLOAT}, None),
        ({"s": {"repeat": {"low": 0, "high": 2}, "each": {"f": FLOAT}}}, None),
        ({"b": {"choice": {"x": None, "y": {"f": FLOAT}}}}, None),
    ],
)
def test_size(params: dict, expected: int | None) -> None:
    assert space(**params).size() == expected


def test_dimensions_cover_every_repeat_index_and_branch_in_spec_order() -> None:
    s = space(
        lr={"type": "float", "low": 1e-4, "high": 1e-2, "log": True},
        stages={"repeat": {"low": 1, "high": 2}, "each": {"c": CAT2, "block": BLOCK}},
        head={"repeat": 1, "each": {"u": CAT3}},
        norm="batch",
    )
    names = [d.name for d in s.dimensions()]
    per_stage = ["c", "block", "block/conv/k", "block/mbconv/e", "block/mbconv/se"]
    assert names == [
        "lr",
        "stages/n",
        *[f"stages/0/{n}" for n in per_stage],
        *[f"stages/1/{n}" for n in per_stage],
        "head/0/u",
    ]
    by_name = {d.name: d for d in s.dimensions()}
    assert by_name["stages/n"] == Dimension("stages/n", "int", 1, 2, 1, False, None)
    assert by_name["stages/1/block"].choices == ("conv", "mbconv", "skip")
    assert by_name["lr"].log and by_name["lr"].size() is None
    assert by_name["stages/0/c"].size() == 2


def test_dimension_distributions() -> None:
    import optuna.distributions as od

    s = space(
        i={"type": "int", "low": 8, "high": 64, "step": 8},
        f={"type": "float", "low": 1e-4, "high": 1e-2, "log": True},
        g={"type": "float", "low": 0, "high": 1, "step": 0.25},
        c={"type": "categorical", "choices": ["x", None, 2, 0.5, False]},
    )
    dists = {d.name: d.distribution for d in s.dimensions()}
    assert dists == {
        "i": od.IntDistribution(8, 64, step=8),
        "f": od.FloatDistribution(1e-4, 1e-2, log=True),
        "g": od.FloatDistribution(0.0, 1.0, step=0.25),
        "c": od.CategoricalDistribution(["x", None, 2, 0.5, False]),
    }
    assert {d.name: d.size() for d in s.dimensions()} == {"i": 8, "f": None, "g": 5, "c": 5}
