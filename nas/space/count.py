"""Enumerate a space: every dimension that can appear, and the number of distinct configurations."""

from __future__ import annotations

from dataclasses import replace
from functools import singledispatch
from math import prod
from typing import Any

from nas.space.dims import Dimension
from nas.space.errors import join
from nas.space.tree import Choice, Const, Group, Repeat


@singledispatch
def dimensions(node: Any, name: str) -> list[Dimension]:
    """Named dimensions under ``node`` (at param name ``name``), in spec order: every repeat index up to
    ``high``, every branch."""
    raise TypeError(f"not a space node: {node!r}")


@dimensions.register
def _(node: Const, name: str) -> list[Dimension]:
    return []


@dimensions.register
def _(node: Dimension, name: str) -> list[Dimension]:
    return [replace(node, name=name)]


@dimensions.register
def _(node: Group, name: str) -> list[Dimension]:
    return [d for key, child in node.fields for d in dimensions(child, join(name, key))]


@dimensions.register
def _(node: Repeat, name: str) -> list[Dimension]:
    head = [] if node.fixed else [node.count_dimension(name)]
    return head + [d for i in range(node.high) for d in dimensions(node.each, join(name, i))]


@dimensions.register
def _(node: Choice, name: str) -> list[Dimension]:
    branches = [d for branch, body in node.branches for d in dimensions(body, join(name, branch))]
    return [node.branch_dimension(name), *branches]


@singledispatch
def size(node: Any) -> int | None:
    """Distinct configurations under ``node``: a product over fields, a sum over branches and over repeat
    depths (depth n counts each^n); ``None`` when a continuous float can appear."""
    raise TypeError(f"not a space node: {node!r}")


@size.register
def _(node: Const) -> int | None:
    return 1


@size.register
def _(node: Dimension) -> int | None:
    return node.size()


@size.register
def _(node: Group) -> int | None:
    sizes = [size(child) for _, child in node.fields]
    return None if None in sizes else prod(sizes)


@size.register
def _(node: Repeat) -> int | None:
    if node.high == 0:
        return 1
    each = size(node.each)
    return None if each is None else sum(each**n for n in range(node.low, node.high + 1))


@size.register
def _(node: Choice) -> int | None:
    sizes = [size(body) for _, body in node.branches]
    return None if None in sizes else sum(sizes)
