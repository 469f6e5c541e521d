"""Builder specifics: the mlp and cnn layouts, small and 1-D inputs, validation errors, and ``build``."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from nas.builders import build
from nas.builders._blocks import Geometry, MBConv, SqueezeExcite
from nas.builders.cnn import cnn
from nas.builders.mlp import mlp
from nas.space import parse_space

CONV3 = {"type": "conv", "kernel": 3}
MB = {"type": "mbconv", "expand": 3, "kernel": 5, "se": True}


@pytest.mark.parametrize("activation", ["relu", "gelu", "silu", "tanh", "hardswish"])
@pytest.mark.parametrize("norm", ["none", "batch", "layer"])
def test_mlp_layout(activation: str, norm: str) -> None:
    model = mlp(
        input_shape=(1, 8, 8),
        num_classes=10,
        width=16,
        depth=2,
        activation=activation,
        dropout=0.1,
        norm=norm,
    )
    linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
    assert [(m.in_features, m.out_features) for m in linears] == [(64, 16), (16, 16), (16, 10)]
    assert sum(isinstance(m, nn.Dropout) for m in model.modules()) == 2
    norms = sum(isinstance(m, (nn.BatchNorm1d, nn.LayerNorm)) for m in model.modules())
    assert norms == (0 if norm == "none" else 2)
    assert model(torch.randn(4, 1, 8, 8)).shape == (4, 10)


def test_mlp_depth_zero_is_linear() -> None:
    model = mlp(input_shape=(40,), num_classes=3, width=99, depth=0)
    assert [type(m) for m in model] == [nn.Flatten, nn.Linear]
    assert model(torch.randn(2, 40)).shape == (2, 3)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"activation": "swish"}, "unknown activation 'swish'"),
        ({"norm": "group"}, "unknown norm 'group'"),
        ({"width": 0}, "width must be an int >= 1"),
        ({"depth": -1}, "depth must be an int >= 0"),
        ({"dropout": 1.0}, "dropout must be a float in"),
    ],
)
def test_mlp_rejects_bad_values(kwargs: dict, match: str) -> None:
    config = {"width": 8, "depth": 1, **kwargs}
    with pytest.raises(ValueError, match=match):
        mlp(input_shape=(4,), num_classes=2, **config)


@pytest.mark.parametrize("shape", [(1, 8, 8), (3, 32, 32), (1, 40), (1, 1, 40), (2, 1, 1), (1, 2, 3), (1, 3)])
def test_cnn_any_input_size(shape: tuple[int, ...]) -> None:
    # three stride-2 stages and kernel 7 still keep >= 1 pixel on every input
    stages = [
        {"channels": 8, "depth": 2, "stride": 2, "block": blk}
        for blk in (CONV3, MB, {"type": "conv", "kernel": 7})
    ]
    model = cnn(input_shape=shape, num_classes=5, stages=stages, stem_channels=4)
    assert model(torch.randn(2, *shape)).shape == (2, 5)


def test_cnn_sequence_input_uses_1d_convolutions() -> None:
    model = cnn(input_shape=(1, 40), num_classes=10, stages=[{"channels": 8, "stride": 2, "block": MB}])
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d) and m.kernel_size != (1, 1)]
    assert {m.kernel_size for m in convs} == {(1, 3), (1, 5)}
    assert {m.stride for m in convs} == {(1, 1), (1, 2)}
    feats = model.stages(model.stem(torch.randn(2, 1, 1, 40)))
    assert feats.shape == (2, 8, 1, 20)


def test_cnn_stride_applies_in_first_block_only() -> None:
    model = cnn(
        input_shape=(1, 16, 16),
        num_classes=2,
        stages=[{"channels": 8, "depth": 3, "stride": 2, "block": CONV3}],
    )
    strides = [m.stride for m in model.stages.modules() if isinstance(m, nn.Conv2d)]
    assert strides == [(2, 2), (1, 1), (1, 1)]


def test_mbconv_parts() -> None:
    model = cnn(
        input_shape=(1, 8, 8),
        num_classes=2,
        stem_channels=8,
        stages=[{"channels": 8, "depth": 2, "block": MB}],
    )
    blocks = list(model.stages)
    assert all(isinstance(b, MBConv) and b.residual for b in blocks)  # stride 1, 8 -> 8: residual
    convs = [m for m in blocks[0].modules() if isinstance(m, nn.Conv2d)]
    # expand 1x1 (8 -> 24), depthwise 5x5, SE reduce/expand, project 1x1 (24 -> 8)
    assert [(m.in_channels, m.out_channels, m.kernel_size, m.groups) for m in convs] == [
        (8, 24, (1, 1), 1),
        (24, 24, (5, 5), 24),
        (24, 2, (1, 1), 1),
        (2, 24, (1, 1), 1),
        (24, 8, (1, 1), 1),
    ]
    assert any(isinstance(m, SqueezeExcite) for m in blocks[0].modules())
    no_expand = MBConv(8, 16, 2, Geometry(flat=False), "relu", expand=1)
    assert not no_expand.residual  # stride 2, 8 -> 16
    assert (
        sum(isinstance(m, nn.Conv2d) for m in no_expand.modules()) == 2
    )  # no 1x1 expansion: depthwise, project


@pytest.mark.parametrize(
    ("stage", "match"),
    [
        ({"channels": 8, "block": {"type": "conv", "kernel": 4}}, "kernel must be one of"),
        ({"channels": 8, "stride": 3}, "stride must be 1 or 2"),
        ({"channels": 8, "block": {"type": "resnet"}}, "unknown block type 'resnet'"),
        ({"channels": 8, "block": {"type": "conv", "kernel": 3, "se": True}}, "bad block options"),
        ({"depth": 1}, "channels must be an int"),
    ],
)
def test_cnn_rejects_bad_stages(stage: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        cnn(input_shape=(1, 8, 8), num_classes=2, stages=[stage])


SPEC = {
    "builder": "mlp",
    "params": {"width": {"type": "categorical", "choices": [8, 16]}, "depth": 1},
}


def test_build_needs_shape_and_classes() -> None:
    space = parse_space(SPEC, source="spaces/tiny.yaml")
    with pytest.raises(ValueError, match=r"spaces/tiny\.yaml.*input_shape"):
        build(space, {"width": 8})
    with pytest.raises(ValueError, match=r"spaces/tiny\.yaml.*num_classes"):
        build(space, {"width": 8}, input_shape=(3,))
    model = build(space, {"width": 16}, input_shape=(3, 2), num_classes=4)
    assert model(torch.randn(5, 3, 2)).shape == (5, 4)


def test_build_arguments_override_space_defaults() -> None:
    space = parse_space({**SPEC, "input_shape": [1, 8, 8], "num_classes": 10})
    model = build(space, {"width": 8}, input_shape=(1, 40), num_classes=3)
    assert model(torch.randn(2, 1, 40)).shape == (2, 3)


def test_build_seed_is_reproducible_and_private() -> None:
    space = parse_space({**SPEC, "input_shape": [6], "num_classes": 2})
    torch.manual_seed(123)
    expected_next = torch.rand(3)
    torch.manual_seed(123)
    a = build(space, {"width": 8}, seed=5)
    assert torch.equal(torch.rand(3), expected_next)  # the global stream is where it was
    b = build(space, {"width": 8}, seed=5)
    assert all(torch.equal(a.state_dict()[k], b.state_dict()[k]) for k in a.state_dict())
