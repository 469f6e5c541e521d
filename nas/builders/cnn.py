"""``cnn``: a stem convolution, a list of stages of conv or MBConv blocks, then pool + dropout + Linear.

Works on images ``(C, H, W)`` and on sequences ``(C, L)``; a sequence is viewed as ``(C, 1, L)`` and then
uses ``(1, k)`` kernels and ``(1, s)`` strides, i.e. 1-D convolutions. "Same" padding (``k // 2``) keeps at
least one pixel at any input size, so no sampled architecture can fail on a small input such as 8x8 digits.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from torch import Tensor, nn

from nas.builders._blocks import BLOCKS, Geometry, conv_bn
from nas.builders._common import check_dropout, check_positive_int, check_shape, lookup, make_activation
from nas.space.registry import register_builder

_DEFAULT_BLOCK: dict[str, Any] = {"type": "conv", "kernel": 3}


class CNN(nn.Module):
    """The network the ``cnn`` builder returns; ``forward`` takes ``(B, *input_shape)``, gives ``(B, classes)``."""

    def __init__(
        self, input_shape: tuple[int, ...], stem: nn.Module, stages: nn.Sequential, head: nn.Module
    ) -> None:
        super().__init__()
        self.input_shape = input_shape
        self.stem = stem
        self.stages = stages
        self.head = head

    def forward(self, x: Tensor) -> Tensor:
        if len(self.input_shape) == 2:  # (B, C, L) -> (B, C, 1, L)
            x = x.unsqueeze(-2)
        return self.head(self.stages(self.stem(x)))


@register_builder("cnn")
def cnn(
    *,
    input_shape: Sequence[int],
    num_classes: int,
    stages: Sequence[Mapping[str, Any]],
    stem_channels: int = 16,
    activation: str = "relu",
    dropout: float = 0.0,
) -> nn.Module:
    """Stem Conv3x3-BN-act, then ``stages``, then global average pool, dropout and a Linear classifier.

    Each stage is ``{"channels": int, "depth": int >= 1, "stride": 1 | 2, "block": block}`` (depth defaults to
    1, stride to 1, block to a 3x3 conv); the stride applies in the stage's first block. ``block`` is
    ``{"type": "conv", "kernel": k}`` or ``{"type": "mbconv", "expand": e, "kernel": k, "se": bool}`` with
    ``k`` in 3, 5, 7. ``input_shape`` is ``(C, H, W)`` or ``(C, L)``.
    """
    shape = check_shape(input_shape, "cnn", ndims=(2, 3))
    num_classes = check_positive_int(num_classes, "num_classes", "cnn")
    stem_channels = check_positive_int(stem_channels, "stem_channels", "cnn")
    p = check_dropout(dropout, "cnn")
    make_activation(activation)
    geo = Geometry(flat=len(shape) == 2 or shape[1] == 1)

    stem = conv_bn(shape[0], stem_channels, 3, 1, geo, activation=activation)
    blocks: list[nn.Module] = []
    c_in = stem_channels
    for i, stage in enumerate(stages):
        where = f"cnn: stages[{i}]"
        if not isinstance(stage, Mapping):
            raise ValueError(f"{where} must be a mapping with channels/depth/stride/block, got {stage!r}")
        c_out = check_positive_int(stage.get("channels"), "channels", where)
        depth = check_positive_int(stage.get("depth", 1), "depth", where)
        stride = stage.get("stride", 1)
        if stride not in (1, 2) or isinstance(stride, bool):
            raise ValueError(f"{where}: stride must be 1 or 2, got {stride!r}")
        block = dict(stage.get("block") or _DEFAULT_BLOCK)
        try:
            block_cls = lookup(BLOCKS, block.pop("type", None), "block type")
        except ValueError as err:
            raise ValueError(f"{where}: {err}") from None
        for j in range(depth):
            try:
                blocks.append(block_cls(c_in, c_out, stride if j == 0 else 1, geo, activation, **block))
            except TypeError as err:
                raise ValueError(f"{where}: bad block options {sorted(block)}: {err}") from None
            c_in = c_out
    head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Dropout(p), nn.Linear(c_in, num_classes))
    return CNN(shape, stem, nn.Sequential(*blocks), head)
