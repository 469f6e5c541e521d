"""One contract suite for every registered builder, driven by its shipped space (search_spaces/<name>.yaml).

For a few sampled params per builder: the params build; the forward pass gives (batch, num_classes);
rebuilding from the same params and seed gives an identical state_dict and identical FLOPs; building
leaves the global RNG alone; one SGD training step runs and changes the weights.
"""

from __future__ import annotations

from pathlib import Path

import optuna
import pytest
import torch
import torch.nn.functional as F

from nas.builders import build
from nas.profile import count_flops
from nas.space import Space, load_space
from nas.space.registry import builder_names

SPACES = Path(__file__).resolve().parent.parent / "search_spaces"
SAMPLE_SEEDS = (0, 1, 2)
BATCH = 2

optuna.logging.set_verbosity(optuna.logging.WARNING)


def _space(name: str) -> Space:
    path = SPACES / f"{name}.yaml"
    assert path.is_file(), f"builder {name!r} ships no search space at {path}"
    return load_space(path)


@pytest.fixture(scope="module", params=builder_names())
def space(request: pytest.FixtureRequest) -> Space:
    return _space(request.param)


@pytest.mark.parametrize("sample_seed", SAMPLE_SEEDS)
def test_builder_contract(space: Space, sample_seed: int) -> None:
    params = space.sample_random(sample_seed)
    shape = space.input_shape
    assert shape is not None and space.num_classes is not None

    rng_before = torch.get_rng_state()
    model = build(space, params, seed=7)
    assert torch.equal(torch.get_rng_state(), rng_before), "build(seed=...) must not touch the global RNG"
    twin = build(space, params, seed=7)

    state, twin_state = model.state_dict(), twin.state_dict()
    assert state.keys() == twin_state.keys()
    assert all(torch.equal(state[k], twin_state[k]) for k in state)
    flops, by_op, unsupported = count_flops(model, shape)
    assert flops > 0 and unsupported == {}
    assert count_flops(twin, shape) == (flops, by_op, unsupported)

    x = torch.randn(BATCH, *shape)
    model.train()
    out = model(x)
    assert out.shape == (BATCH, space.num_classes)
    assert torch.isfinite(out).all()

    before = {k: v.detach().clone() for k, v in model.named_parameters()}
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    loss = F.cross_entropy(out, torch.randint(space.num_classes, (BATCH,)))
    loss.backward()
    optimizer.step()
    assert torch.isfinite(loss)
    assert any(not torch.equal(before[k], v) for k, v in model.named_parameters()), "SGD step changed nothing"


def test_seed_changes_weights(space: Space) -> None:
    params = space.sample_random(0)
    a, b = build(space, params, seed=1).state_dict(), build(space, params, seed=2).state_dict()
    assert any(not torch.equal(a[k], b[k]) for k in a if a[k].is_floating_point())


def test_every_builder_has_a_space() -> None:
    for name in builder_names():
        assert _space(name).builder == name
