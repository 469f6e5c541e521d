"""Property: any valid spec samples, replays and resolves consistently (hypothesis, kept small and fast)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import optuna
import pytest
from conftest import open_builder
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nas.space import parse_space

BUILDER = "_space_property"
NAMES = st.sampled_from(["a", "b", "c", "d"])
SCALARS = st.sampled_from(["relu", "gelu", 3, 2.5, None, True, ""])


@st.composite
def int_dim(draw: st.DrawFn) -> dict[str, Any]:
    low, step, k = draw(st.integers(-5, 5)), draw(st.integers(1, 3)), draw(st.integers(0, 4))
    return {"type": "int", "low": low, "high": low + k * step, "step": step}


@st.composite
def float_dim(draw: st.DrawFn) -> dict[str, Any]:
    low = draw(st.decimals(Decimal("0.001"), Decimal("10"), places=3))
    if draw(st.booleans()):
        return {
            "type": "float",
            "low": float(low),
            "high": float(low) + draw(st.floats(0.0, 10.0)),
            "log": True,
        }
    step = draw(st.sampled_from([Decimal("0.5"), Decimal("0.25"), Decimal("0.1")]))
    high = low + step * draw(st.integers(0, 4))  # on the grid in decimal, as written in a file
    return {"type": "float", "low": float(low), "high": float(high), "step": float(step)}


LEAVES = st.one_of(
    SCALARS,
    st.lists(SCALARS, max_size=3),
    int_dim(),
    float_dim(),
    st.lists(SCALARS, min_size=1, max_size=4, unique=True).map(
        lambda cs: {"type": "categorical", "choices": cs}
    ),
)


def _extend(children: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    group = st.dictionaries(NAMES, children, max_size=3)
    count = st.one_of(
        st.integers(0, 2),
        st.tuples(st.integers(0, 1), st.integers(0, 2)).map(lambda t: {"low": t[0], "high": t[0] + t[1]}),
    )
    return st.one_of(
        group,
        st.builds(lambda n, e: {"repeat": n, "each": e}, count, group),
        st.dictionaries(NAMES, st.one_of(st.none(), group), min_size=1, max_size=3).map(
            lambda b: {"choice": b}
        ),
    )


SPECS = st.dictionaries(NAMES, st.recursive(LEAVES, _extend, max_leaves=8), max_size=4)


@pytest.fixture(scope="module", autouse=True)
def builder():
    with open_builder(BUILDER):
        yield


@pytest.mark.filterwarnings("error::UserWarning")  # Optuna must never need to adjust a distribution
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(params=SPECS, seed=st.integers(0, 2**16))
def test_random_valid_specs_sample_replay_and_resolve(params: dict[str, Any], seed: int) -> None:
    space = parse_space({"builder": BUILDER, "params": params})
    dims = {d.name: d for d in space.dimensions()}
    sampled = space.sample_random(seed)
    assert set(sampled) <= set(dims)
    for name, value in sampled.items():
        assert dims[name].check(value) == value
    assert space.sample(optuna.trial.FixedTrial(sampled)) == sampled
    config = space.resolve(sampled)
    assert set(config) == set(params)
    size = space.size()
    assert size is None or size >= 1
    if not dims:
        assert sampled == {} and size == 1
