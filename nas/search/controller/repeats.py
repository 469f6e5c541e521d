"""Never train twice: the canonical key of a trial and the results already paid for, by key.

A trial's key is its architecture in canonical form plus its training settings (sampled ``lr``, ``weight_decay``
and the fixed ones), so two trials share a key exactly when training one tells the result of the other.
Builders whose params can name one network several ways register a canonicaliser in :data:`CANONICAL`:
for ``nb201``, isomorphic cells as NAS-Bench-201 / NATS-Bench define them (:func:`nb201_cell`): an op on a
node that never reaches the output is dropped, ``none`` is a zero, ``skip_connect`` passes its input through,
and the sum at a node is order-free.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from nas.builders.nb201 import EDGES, params_to_arch

#: the canonical form of a zero tensor in a cell string
ZERO = "#"


def nb201_cell(arch: str) -> str:
    """The canonical computation of an NB201 cell string ``|op~0|+|op~0|op~1|+|op~0|op~1|op~2|``: what its
    output node computes from the input ``0``, equal for isomorphic cells. This is NATS-Bench's
    ``Structure.to_unique_str(consider_zero=True)`` term for term (``none`` or a zero input gives ``#``,
    ``skip_connect`` passes its input, a node sums its sorted terms), so the 15,625 cells fall into the 6,466
    unique ones the NAS-Bench-201 paper counts."""
    nodes = ["0"]
    for column in arch.split("+"):
        terms = []
        for i, edge in enumerate(e for e in column.strip("|").split("|") if e):
            op, _, src = edge.partition("~")
            x = nodes[int(src) if src else i]
            if op == "none" or x == ZERO:
                terms.append(ZERO)
            else:
                terms.append(x if op == "skip_connect" else f"({x})@{op}")
        nodes.append("+".join(sorted(terms)))
    return nodes[-1]


def _nb201(params: Mapping[str, Any]) -> dict[str, Any]:
    rest = {k: v for k, v in params.items() if k not in EDGES}
    return {**rest, "cell": nb201_cell(params_to_arch(params))}


#: builder name -> params -> the canonical params of the same network
CANONICAL: dict[str, Callable[[Mapping[str, Any]], dict[str, Any]]] = {"nb201": _nb201}


def trial_key(builder: str, params: Mapping[str, Any], training: Mapping[str, Any]) -> str:
    """The key two trials share exactly when one's training result answers the other (see the module)."""
    canon = CANONICAL.get(builder)
    arch = canon(params) if canon is not None else dict(params)
    return json.dumps({"arch": arch, "training": dict(training)}, sort_keys=True, default=str)


@dataclass(frozen=True)
class Known:
    """A result paid for: ``metrics`` of a complete training (``stopped`` empty), or why it was stopped."""

    params: dict[str, Any]
    metrics: dict[str, float]
    stopped: str = ""


class ResultCache:
    """Results by trial key. A complete result replaces a stopped one (a promotion), never the reverse."""

    def __init__(self) -> None:
        self._known: dict[str, Known] = {}

    def __len__(self) -> int:
        return len(self._known)

    def get(self, key: str) -> Known | None:
        return self._known.get(key)

    def complete(self, key: str, params: Mapping[str, Any], metrics: Mapping[str, float]) -> None:
        self._known[key] = Known(dict(params), dict(metrics))

    def stopped(self, key: str, params: Mapping[str, Any], reason: str) -> None:
        if key not in self._known:
            self._known[key] = Known(dict(params), {}, reason or "stopped early")
