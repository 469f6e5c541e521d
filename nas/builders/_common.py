"""Small shared pieces of the built-in builders: lookup tables and input-shape handling.

Tables, not if/elif chains: a new activation or normalization is one line here.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import TypeVar

from torch import nn

T = TypeVar("T")

#: Activation name -> module factory (a fresh module per call).
ACTIVATIONS: dict[str, Callable[[], nn.Module]] = {
    "relu": nn.ReLU,
    "gelu": nn.GELU,
    "silu": nn.SiLU,
    "tanh": nn.Tanh,
    "hardswish": nn.Hardswish,
}


def lookup(table: Mapping[str, T], key: str, what: str) -> T:
    """``table[key]``, or a ``ValueError`` that names ``what`` and the accepted keys."""
    try:
        return table[key]
    except (KeyError, TypeError):
        raise ValueError(f"unknown {what} {key!r}; expected one of: {', '.join(sorted(table))}") from None


def make_activation(name: str) -> nn.Module:
    """A fresh activation module for ``name`` (a key of :data:`ACTIVATIONS`)."""
    return lookup(ACTIVATIONS, name, "activation")()


def check_shape(input_shape: Sequence[int], builder: str, ndims: Sequence[int]) -> tuple[int, ...]:
    """``input_shape`` (per sample, no batch dimension) as a tuple of positive ints with an allowed rank."""
    shape = tuple(int(s) for s in input_shape)
    if len(shape) not in ndims or any(s <= 0 for s in shape):
        allowed = " or ".join(f"{n}-D" for n in ndims)
        raise ValueError(
            f"{builder}: input_shape must be a {allowed} shape of positive sizes, got {list(input_shape)}"
        )
    return shape


def check_positive_int(value: object, name: str, builder: str, minimum: int = 1) -> int:
    """``value`` as an int >= ``minimum`` (bools refused), else a ``ValueError`` naming the parameter."""
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"{builder}: {name} must be an int >= {minimum}, got {value!r}")
    return value


def check_dropout(value: object, builder: str) -> float:
    """``value`` as a probability in [0, 1)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 <= float(value) < 1.0:
        raise ValueError(f"{builder}: dropout must be a float in [0, 1), got {value!r}")
    return float(value)
