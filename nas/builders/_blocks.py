"""Convolution blocks of the ``cnn`` builder: conv-BN-act, squeeze-excitation and MBConv.

Every block takes a :class:`Geometry` that turns a kernel size ``k`` and stride ``s`` into 2-D arguments: square
for images, ``(1, k)``/``(1, s)`` for sequences viewed as ``(C, 1, L)``, so a 1-D input is never padded along
its dummy height and its FLOPs are those of a true 1-D convolution.
"""

from __future__ import annotations

from dataclasses import dataclass

from torch import Tensor, nn

from nas.builders._common import make_activation

KERNELS = (3, 5, 7)


@dataclass(frozen=True)
class Geometry:
    """Kernel/stride/padding arguments for 2-D convolutions; ``flat`` means height 1 (a 1-D input)."""

    flat: bool

    def kernel(self, k: int) -> tuple[int, int]:
        return (1, k) if self.flat else (k, k)

    def stride(self, s: int) -> tuple[int, int]:
        return (1, s) if self.flat else (s, s)

    def padding(self, k: int) -> tuple[int, int]:
        # "same" padding k // 2 keeps at least one output pixel at any input size and stride
        return (0, k // 2) if self.flat else (k // 2, k // 2)


def conv_bn(
    c_in: int,
    c_out: int,
    k: int,
    stride: int,
    geo: Geometry,
    *,
    groups: int = 1,
    activation: str | None = None,
) -> nn.Sequential:
    """Conv(k, stride, same padding, no bias) -> BatchNorm -> activation (if ``activation`` is given)."""
    layers: list[nn.Module] = [
        nn.Conv2d(c_in, c_out, geo.kernel(k), geo.stride(stride), geo.padding(k), groups=groups, bias=False),
        nn.BatchNorm2d(c_out),
    ]
    if activation is not None:
        layers.append(make_activation(activation))
    return nn.Sequential(*layers)


class SqueezeExcite(nn.Module):
    """Squeeze-and-excitation (Hu et al. 2018): global pool, 1x1 reduce, activation, 1x1 expand, sigmoid gate."""

    def __init__(self, channels: int, reduced: int, activation: str) -> None:
        super().__init__()
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.reduce = nn.Conv2d(channels, reduced, 1)
        self.act = make_activation(activation)
        self.expand = nn.Conv2d(reduced, channels, 1)
        self.gate = nn.Sigmoid()

    def forward(self, x: Tensor) -> Tensor:
        return x * self.gate(self.expand(self.act(self.reduce(self.pool(x)))))


class ConvBlock(nn.Sequential):
    """Plain block: Conv(k, stride, no bias) -> BN -> activation."""

    def __init__(
        self, c_in: int, c_out: int, stride: int, geo: Geometry, activation: str, *, kernel: int = 3
    ) -> None:
        _check_kernel(kernel)
        super().__init__(*conv_bn(c_in, c_out, kernel, stride, geo, activation=activation))


class MBConv(nn.Module):
    """Inverted residual (MobileNetV2/EfficientNet): 1x1 expand (skipped when ``expand == 1``), depthwise kxk
    with the stride, optional squeeze-excitation, 1x1 project with BN and no activation; residual when the
    input and output shapes match."""

    def __init__(
        self,
        c_in: int,
        c_out: int,
        stride: int,
        geo: Geometry,
        activation: str,
        *,
        expand: int = 1,
        kernel: int = 3,
        se: bool = False,
    ) -> None:
        super().__init__()
        _check_kernel(kernel)
        if isinstance(expand, bool) or not isinstance(expand, int) or expand < 1:
            raise ValueError(f"cnn: mbconv expand must be an int >= 1, got {expand!r}")
        hidden = c_in * expand
        layers: list[nn.Module] = []
        if expand != 1:
            layers.append(conv_bn(c_in, hidden, 1, 1, geo, activation=activation))
        layers.append(conv_bn(hidden, hidden, kernel, stride, geo, groups=hidden, activation=activation))
        if se:
            layers.append(SqueezeExcite(hidden, max(1, c_in // 4), activation))
        layers.append(conv_bn(hidden, c_out, 1, 1, geo))
        self.body = nn.Sequential(*layers)
        self.residual = stride == 1 and c_in == c_out

    def forward(self, x: Tensor) -> Tensor:
        out = self.body(x)
        return out + x if self.residual else out


#: Block type (the ``type`` of a resolved ``block`` choice) -> block class.
BLOCKS: dict[str, type[nn.Module]] = {"conv": ConvBlock, "mbconv": MBConv}


def _check_kernel(kernel: object) -> None:
    if kernel not in KERNELS or isinstance(kernel, bool):
        raise ValueError(f"cnn: kernel must be one of {list(KERNELS)}, got {kernel!r}")
