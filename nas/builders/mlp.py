"""``mlp``: a multilayer perceptron on the flattened input.

Layout: Flatten, then ``depth`` hidden blocks ``Linear(width) -> norm -> activation -> dropout``, then
``Linear(num_classes)``. ``depth == 0`` is a linear classifier.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

from torch import nn

from nas.builders._common import check_dropout, check_positive_int, check_shape, lookup, make_activation
from nas.space.registry import register_builder

#: Normalization name -> factory ``f(width) -> module or None`` (None: no layer).
NORMS: dict[str, Callable[[int], nn.Module | None]] = {
    "none": lambda width: None,
    "batch": nn.BatchNorm1d,
    "layer": nn.LayerNorm,
}


@register_builder("mlp")
def mlp(
    *,
    input_shape: Sequence[int],
    num_classes: int,
    width: int,
    depth: int,
    activation: str = "relu",
    dropout: float = 0.0,
    norm: str = "none",
) -> nn.Module:
    """MLP on the flattened input: ``depth`` hidden layers of ``width`` units, then a linear classifier.

    ``input_shape`` is per sample (any rank); ``activation`` is one of relu, gelu, silu, tanh, hardswish;
    ``norm`` one of none, batch, layer; ``dropout`` in [0, 1) after each hidden activation.
    """
    shape = check_shape(input_shape, "mlp", ndims=(1, 2, 3, 4))
    num_classes = check_positive_int(num_classes, "num_classes", "mlp")
    width = check_positive_int(width, "width", "mlp")
    depth = check_positive_int(depth, "depth", "mlp", minimum=0)
    p = check_dropout(dropout, "mlp")
    make_norm = lookup(NORMS, norm, "norm")
    make_activation(activation)  # validate the name even when depth == 0

    layers: list[nn.Module] = [nn.Flatten()]
    fan_in = math.prod(shape)
    for _ in range(depth):
        layers.append(nn.Linear(fan_in, width))
        norm_layer = make_norm(width)
        if norm_layer is not None:
            layers.append(norm_layer)
        layers.append(make_activation(activation))
        if p > 0:
            layers.append(nn.Dropout(p))
        fan_in = width
    layers.append(nn.Linear(fan_in, num_classes))
    return nn.Sequential(*layers)
