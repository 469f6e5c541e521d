"""The space hash: SHA-256 (first 16 hex digits) of the canonical JSON of the parsed spec.

Canonical means: sorted keys, no whitespace, numbers as parsed (a float bound is a float, so ``1e-3`` and
``0.001`` agree), defaults filled in (an int ``step`` of 1, ``log: false``). The order of ``choices`` and of
``choice:`` branches is kept (it is the order of the categorical); ``description`` is not hashed.
"""

from __future__ import annotations

import hashlib
import json
from functools import singledispatch
from typing import Any

from nas.space.dims import Dimension
from nas.space.tree import Choice, Const, Group, Repeat


def space_hash(
    builder: str, input_shape: tuple[int, ...] | None, num_classes: int | None, root: Group
) -> str:
    """16 hex digits identifying the meaning of a space."""
    doc = {
        "builder": builder,
        "input_shape": input_shape,
        "num_classes": num_classes,
        "params": canonical(root),
    }
    text = json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


@singledispatch
def canonical(node: Any) -> Any:
    """A JSON-able form of a tree node (round-trips its meaning, not its formatting)."""
    raise TypeError(f"not a space node: {node!r}")


@canonical.register
def _(node: Const) -> Any:
    return list(node.value) if isinstance(node.value, tuple) else node.value


@canonical.register
def _(node: Dimension) -> Any:
    fields = {"type": node.kind}
    if node.kind == "categorical":
        fields["choices"] = list(node.choices or ())
    else:
        fields.update(low=node.low, high=node.high, step=node.step, log=node.log)
    return fields


@canonical.register
def _(node: Group) -> Any:
    return {key: canonical(child) for key, child in node.fields}


@canonical.register
def _(node: Repeat) -> Any:
    count = node.low if node.fixed else {"low": node.low, "high": node.high}
    return {"repeat": count, "each": canonical(node.each)}


@canonical.register
def _(node: Choice) -> Any:
    return {"choice": [[name, canonical(body)] for name, body in node.branches]}
