"""How a builder's networks share weights in a supernet: the small protocol a builder implements to offer one.

A supernet (:class:`nas.oneshot.supernet.Supernet`) keeps one tensor per **slot**, at the largest shape any
architecture of the space gives it. A :class:`SharingRule` says two things about the builder's networks:

* ``slots(config, model)``: for the model ``build(space, params)`` returns (``config`` is
  ``space.resolve(params)``, the builder's keyword arguments), the slot of each ``state_dict`` key. Two
  architectures share a weight exactly when their keys map to the same slot. The subnet's tensor is the slot's
  leading block (output and input channels, features) and, for a 4-D convolution weight, the centred block of
  its kernel (a 3x3 kernel is the middle of a 5x5 one, as in Once-for-All).
* ``cover(space)``: flat params of a few architectures that, together, give every slot its largest shape.

Sharing **by slicing** is a slot name that ignores the width, kernel or depth chosen; sharing **by op** is a slot
name that contains the op chosen. :class:`SliceRule` is the default: the key itself is the slot (a builder whose
keys do not depend on the choices needs nothing more), and the cover sets every number to its maximum and walks
the string choices in step (all first choices, all second choices, ...). A custom builder registers its rule::

    register_sharing("mybuilder", SliceRule())          # keys are stable: share by slicing
    register_sharing("mybuilder", MyRule())             # or override slots() / cover()

Nothing here imports Ray or MLflow.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

from torch import nn

from nas.space import Space
from nas.space.dims import is_number


class SharingRule(Protocol):
    """What a builder offers so that its space gets a supernet (see the module docstring)."""

    def slots(self, config: Mapping[str, Any], model: nn.Module) -> Mapping[str, str]: ...

    def cover(self, space: Space) -> list[dict[str, Any]]: ...


class SliceRule:
    """Default rule: every ``state_dict`` key is its own slot (sharing by slicing); cover by maxima (above)."""

    def slots(self, config: Mapping[str, Any], model: nn.Module) -> Mapping[str, str]:
        return {k: k for k in model.state_dict()}

    def cover(self, space: Space) -> list[dict[str, Any]]:
        dims = space.dimensions()
        strings = [d for d in dims if d.kind == "categorical" and any(isinstance(c, str) for c in d.choices or ())]
        n = max([len(d.choices or ()) for d in strings] or [1])
        out = []
        for i in range(n):
            params: dict[str, Any] = {}
            for d in dims:
                if d in strings:
                    params[d.name] = d.choices[i % len(d.choices)]
                elif d.kind == "categorical":
                    choices = list(d.choices or ())
                    nums = [c for c in choices if is_number(c)]
                    params[d.name] = max(nums) if nums else True if any(c is True for c in choices) else choices[0]
                else:
                    params[d.name] = d.high
            out.append(params)
        return out


_RULES: dict[str, SharingRule] = {}


def register_sharing(builder: str, rule: SharingRule) -> SharingRule:
    """Offer a supernet for ``builder``'s spaces; a duplicate name raises ``ValueError``."""
    if builder in _RULES:
        raise ValueError(f"a sharing rule for builder {builder!r} is already registered")
    _RULES[builder] = rule
    return rule


def sharing_rule(builder: str) -> SharingRule:
    """The rule registered for ``builder``; ``KeyError`` naming the builders that have one."""
    try:
        return _RULES[builder]
    except KeyError:
        raise KeyError(f"builder {builder!r} offers no supernet; builders with one: {', '.join(sorted(_RULES))}. "
                       "Register a SharingRule with nas.oneshot.register_sharing") from None


def has_supernet(builder: str) -> bool:
    """Whether ``builder`` has a registered sharing rule."""
    try:
        sharing_rule(builder)
    except KeyError:
        return False
    return True
